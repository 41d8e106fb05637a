/**
 * Build dist/ once before the tests: end-to-end tests run the built gc, as
 * users and agents do (agents call gc constantly; a per-call TypeScript
 * transpile would dominate their timing on a 2-core machine).
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';

export default function setup(): void {
  const repo = join(import.meta.dirname, '..');
  const tsx = createRequire(join(repo, 'package.json')).resolve('tsx');
  execFileSync(process.execPath, ['--import', tsx, join(repo, 'scripts', 'build.ts')], {
    cwd: repo,
    stdio: 'inherit',
  });
}
