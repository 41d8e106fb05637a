/**
 * Generates docs/config.md from the city.toml schema (keys, types, defaults,
 * descriptions). `npx tsx scripts/gen-config-doc.ts > docs/config.md`; a test
 * fails when the committed page and the schema drift apart.
 */
import { renderConfigReference } from '../src/config/index.js';

process.stdout.write(renderConfigReference());
