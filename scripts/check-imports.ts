/**
 * CI's import check: the rules of scripts/import-rules.ts on src/, with the
 * layers read from docs/architecture.md. Exits 1 listing every violation.
 */
import { resolve } from 'node:path';
import { checkImports } from './import-rules.js';

const repo = resolve(import.meta.dirname, '..');
const { problems, files } = checkImports({
  src: resolve(repo, 'src'),
  architectureDoc: resolve(repo, 'docs', 'architecture.md'),
});
if (problems.length) {
  for (const p of problems) console.error(p);
  console.error(`${problems.length} import rule violation(s)`);
  process.exit(1);
}
console.log(`imports ok: ${files} files, no cycles, layers respected`);
