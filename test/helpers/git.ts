/** Real git repositories for merge-queue tests and benchmarks. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'Test Author',
  GIT_AUTHOR_EMAIL: 'author@example.invalid',
  GIT_COMMITTER_NAME: 'Test Author',
  GIT_COMMITTER_EMAIL: 'author@example.invalid',
  GIT_CONFIG_NOSYSTEM: '1',
};

export function git(dir: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd: dir, env: ENV, encoding: 'utf8' }).trim();
}

/**
 * A repository with one commit on `main` and a different branch checked out
 * (`work`), so the merge queue can move `main` without a checkout in the way.
 */
export function makeRepo(
  dir: string,
  files: Record<string, string> = { 'README.md': 'hello\n' },
): string {
  mkdirSync(dir, { recursive: true });
  git(dir, 'init', '-q', '-b', 'main');
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    writeFileSync(path.join(dir, f), text);
  }
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '-m', 'initial');
  git(dir, 'checkout', '-q', '-b', 'work');
  return git(dir, 'rev-parse', 'main');
}

/** A branch from `from` with one commit writing `files`; returns its head. */
export function branchWith(
  dir: string,
  branch: string,
  files: Record<string, string>,
  from = 'main',
): string {
  const wt = path.join(dir, '.git', 'tmp-wt', branch.replace(/[^a-zA-Z0-9_-]/g, '_'));
  git(dir, 'worktree', 'add', '-q', '-b', branch, wt, from);
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(wt, f)), { recursive: true });
    writeFileSync(path.join(wt, f), text);
  }
  git(wt, 'add', '-A');
  git(wt, 'commit', '-q', '-m', `${branch}: change ${Object.keys(files).join(', ')}`);
  const head = git(wt, 'rev-parse', 'HEAD');
  git(dir, 'worktree', 'remove', '--force', wt);
  return head;
}

/** First-parent history of a ref, oldest first, as commit subjects. */
export function subjects(dir: string, ref = 'main'): string[] {
  return git(dir, 'log', '--reverse', '--format=%s', ref).split('\n').filter(Boolean);
}
