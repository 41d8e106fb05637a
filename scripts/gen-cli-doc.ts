/**
 * Generates docs/cli.md from the command trees of gc and bd.
 * `npx tsx scripts/gen-cli-doc.ts > docs/cli.md`; a test fails when the
 * committed page and the commands drift apart.
 */
import { renderCliReference } from '../src/cli/reference.js';

process.stdout.write(renderCliReference());
