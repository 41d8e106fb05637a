/**
 * The git CLI, run without a shell: every argument is passed as its own
 * argv entry, so branch names, paths and messages are never parsed by a
 * shell. One `Git` per repository; worktrees are separate `Git`s.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { GcError, runFile } from '../core/index.js';

export interface GitResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class GitError extends GcError {
  constructor(
    readonly args: readonly string[],
    readonly result: GitResult,
  ) {
    super(
      'internal',
      `git ${args.join(' ')} failed (exit ${result.code}): ${(result.stderr || result.stdout).trim().slice(0, 2000)}`,
    );
  }
}

/** Identity for commits the orchestrator makes (rebases, squashes). */
const IDENTITY = {
  GIT_AUTHOR_NAME: 'gc merge queue',
  GIT_AUTHOR_EMAIL: 'mq@gc.invalid',
  GIT_COMMITTER_NAME: 'gc merge queue',
  GIT_COMMITTER_EMAIL: 'mq@gc.invalid',
};

/** Lines start..end (1-based, inclusive) of a file in the target's version. */
export interface Region {
  file: string;
  start: number;
  end: number;
}

export interface ConflictCheck {
  clean: boolean;
  /** The merged tree when clean. */
  tree: string;
  /** Paths with conflicts when not clean. */
  files: string[];
}

export class Git {
  constructor(readonly dir: string) {}

  /** Run git; resolves with the exit code instead of throwing on non-zero. */
  async exec(
    args: readonly string[],
    options: { env?: NodeJS.ProcessEnv; input?: string; signal?: AbortSignal } = {},
  ): Promise<GitResult> {
    const r = await runFile('git', args, {
      cwd: this.dir,
      env: {
        ...process.env,
        GIT_TERMINAL_PROMPT: '0',
        GIT_EDITOR: 'true',
        LC_ALL: 'C',
        ...options.env,
      },
      maxOutputBytes: 64 * 1024 * 1024,
      ...(options.input !== undefined ? { input: options.input } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    if (r.code === null) {
      // Not an exit status: git was killed.
      throw new GcError('internal', `git ${args[0] ?? ''} was killed by ${r.signal ?? 'a signal'}`);
    }
    return { code: r.code, stdout: r.stdout, stderr: r.stderr };
  }

  /** Run git and return trimmed stdout; a non-zero exit is a GitError. */
  async run(args: readonly string[], options: { env?: NodeJS.ProcessEnv } = {}): Promise<string> {
    const r = await this.exec(args, options);
    if (r.code !== 0) throw new GitError(args, r);
    return r.stdout.trim();
  }

  /** The commit a revision names, or undefined when it does not exist. */
  async resolve(rev: string): Promise<string | undefined> {
    const r = await this.exec(['rev-parse', '--verify', '--quiet', `${rev}^{commit}`]);
    return r.code === 0 ? r.stdout.trim() : undefined;
  }

  async isAncestor(ancestor: string, descendant: string): Promise<boolean> {
    const r = await this.exec(['merge-base', '--is-ancestor', ancestor, descendant]);
    if (r.code > 1) throw new GitError(['merge-base', '--is-ancestor', ancestor, descendant], r);
    return r.code === 0;
  }

  /**
   * Would merging `theirs` into `ours` conflict? Decided by
   * `git merge-tree --write-tree`, which touches no worktree and no ref.
   */
  async mergeCheck(ours: string, theirs: string): Promise<ConflictCheck> {
    const args = ['merge-tree', '--write-tree', '--name-only', '--no-messages', ours, theirs];
    const r = await this.exec(args);
    if (r.code > 1) throw new GitError(args, r);
    const lines = r.stdout.split('\n').filter(Boolean);
    const tree = lines[0] ?? '';
    return r.code === 0
      ? { clean: true, tree, files: [] }
      : { clean: false, tree, files: [...new Set(lines.slice(1))] };
  }

  /**
   * Move `ref` from exactly `expected` to `next` (compare and swap): fails
   * when the ref moved meanwhile, so a concurrent push is never overwritten.
   */
  async casRef(ref: string, next: string, expected: string, reason: string): Promise<boolean> {
    const r = await this.exec(['update-ref', '-m', reason, ref, next, expected]);
    return r.code === 0;
  }

  /**
   * Delete branch `name` only while it still points at `expected` (so a
   * branch its owner moved on is kept) and is checked out nowhere. True when
   * it was deleted.
   */
  async deleteBranchAt(name: string, expected: string): Promise<boolean> {
    // update-ref would delete a branch a worktree has checked out: look first.
    const out = (await this.worktrees()).some(
      (w) => w.branch === name || w.branch === `refs/heads/${name}`,
    );
    if (out) return false;
    const r = await this.exec(['update-ref', '-d', `refs/heads/${name}`, expected]);
    return r.code === 0;
  }

  /** Files a branch changed since it left `target` (from their merge base). */
  async changedSince(target: string, head: string): Promise<string[]> {
    return (await this.run(['diff', '--name-only', `${target}...${head}`]))
      .split('\n')
      .filter(Boolean);
  }

  /**
   * Where a branch changed the target since it left it: per file, the line
   * ranges of the target's version its hunks replace (an insertion is the
   * line it follows; a new or deleted file is the whole file, line 0).
   */
  async changedRegions(target: string, head: string): Promise<Region[]> {
    const out = await this.run([
      'diff',
      '-U0',
      '--no-color',
      '--no-renames',
      `${target}...${head}`,
    ]);
    const regions: Region[] = [];
    let file = '';
    for (const line of out.split('\n')) {
      if (line.startsWith('diff --git ')) file = '';
      else if (line.startsWith('--- ')) {
        const p = line.slice(4);
        file = p === '/dev/null' ? '' : p.replace(/^a\//, '');
      } else if (line.startsWith('+++ ')) {
        const p = line.slice(4);
        if (p !== '/dev/null' && !file) {
          file = p.replace(/^b\//, '');
          regions.push({ file, start: 0, end: Number.MAX_SAFE_INTEGER }); // a new file
        }
      } else if (line.startsWith('@@ ') && file) {
        const m = /^@@ -(\d+)(?:,(\d+))? /.exec(line);
        if (!m) continue;
        const start = Number(m[1]);
        const len = m[2] === undefined ? 1 : Number(m[2]);
        regions.push({ file, start, end: start + Math.max(len, 1) - 1 });
      }
    }
    return regions;
  }

  /** Files changed between two commits. */
  async changedFiles(from: string, to: string): Promise<string[]> {
    return (await this.run(['diff', '--name-only', from, to])).split('\n').filter(Boolean);
  }

  /** Commits in `to` not in `from`, oldest first. */
  async commitsBetween(from: string, to: string): Promise<string[]> {
    return (await this.run(['rev-list', '--reverse', `${from}..${to}`]))
      .split('\n')
      .filter(Boolean);
  }

  async currentBranch(): Promise<string | undefined> {
    const r = await this.exec(['symbolic-ref', '--quiet', '--short', 'HEAD']);
    return r.code === 0 ? r.stdout.trim() : undefined;
  }

  /** Add a worktree at `dir`: on a new branch from `start`, or detached. */
  async addWorktree(dir: string, start: string, branch?: string): Promise<Git> {
    await this.run(
      branch
        ? ['worktree', 'add', '-b', branch, dir, start]
        : ['worktree', 'add', '--detach', dir, start],
    );
    return new Git(dir);
  }

  async removeWorktree(dir: string): Promise<void> {
    await this.exec(['worktree', 'remove', '--force', dir]);
    await this.exec(['worktree', 'prune']);
  }

  /** Worktree paths git knows of, with their branch (refs/heads/...) if any. */
  async worktrees(): Promise<{ path: string; head: string; branch?: string }[]> {
    const out = await this.run(['worktree', 'list', '--porcelain']);
    const list: { path: string; head: string; branch?: string }[] = [];
    for (const block of out.split('\n\n')) {
      const fields = new Map(
        block
          .split('\n')
          .filter(Boolean)
          .map((l) => {
            const i = l.indexOf(' ');
            return i < 0 ? [l, ''] : [l.slice(0, i), l.slice(i + 1)];
          }),
      );
      const p = fields.get('worktree');
      if (!p) continue;
      const branch = fields.get('branch');
      list.push({ path: p, head: fields.get('HEAD') ?? '', ...(branch ? { branch } : {}) });
    }
    return list;
  }

  /**
   * Replay the commits of `head` that `onto` lacks on top of `onto`, in
   * this worktree (left detached at the result). Returns the new tip, or
   * the conflicting files (the worktree is reset either way).
   */
  async rebaseOnto(
    head: string,
    onto: string,
    options: { unionAdditions?: boolean } = {},
  ): Promise<{ ok: true; tip: string; resolved: string[] } | { ok: false; files: string[] }> {
    await this.run(['checkout', '--detach', '--force', head]);
    await this.run(['clean', '-ffdq']);
    let r = await this.exec(['rebase', '--no-autosquash', '--no-verify', onto], {
      env: IDENTITY,
    });
    const resolved: string[] = [];
    let files: string[] = [];
    for (let step = 0; r.code !== 0 && step < 1000; step++) {
      files = await this.conflicted();
      if (!files.length || !options.unionAdditions) break;
      if (!(await this.unionAdditions(files))) break;
      resolved.push(...files);
      r = await this.exec(['rebase', '--continue'], { env: IDENTITY });
    }
    if (r.code === 0) {
      return {
        ok: true,
        tip: await this.run(['rev-parse', 'HEAD']),
        resolved: [...new Set(resolved)],
      };
    }
    if (!files.length) files = await this.conflicted();
    await this.exec(['rebase', '--abort']);
    return { ok: false, files };
  }

  private async conflicted(): Promise<string[]> {
    return (await this.exec(['diff', '--name-only', '--diff-filter=U'])).stdout
      .split('\n')
      .filter(Boolean);
  }

  /**
   * Resolve conflicted files where both sides only added lines (no line of
   * the common version removed or changed on either side): keep both sides'
   * additions (`git merge-file --union`). False, touching nothing, when any
   * file is not of that kind.
   */
  private async unionAdditions(files: string[]): Promise<boolean> {
    const merged: [string, string][] = [];
    for (const f of files) {
      const stages = new Map<string, string>();
      for (const line of (await this.run(['ls-files', '-u', '-z', '--', f])).split('\0')) {
        const m = /^\d+ ([0-9a-f]+) ([123])\t/.exec(line);
        if (m) stages.set(m[2]!, m[1]!);
      }
      const [base, ours, theirs] = ['1', '2', '3'].map((k) => stages.get(k));
      if (!base || !ours || !theirs) return false;
      for (const side of [ours, theirs]) {
        const stat = await this.run(['diff', '--numstat', base, side]);
        const [, deleted] = stat.split('\t');
        if (stat === '' || deleted !== '0') return false;
      }
      const dir = await this.run(['rev-parse', '--git-path', 'gc-union']);
      const at = path.resolve(this.dir, dir);
      mkdirSync(at, { recursive: true });
      const paths = (['ours', 'base', 'theirs'] as const).map((n) => path.join(at, n));
      for (const [i, blob] of [ours, base, theirs].entries()) {
        const b = await this.exec(['cat-file', 'blob', blob]);
        if (b.code !== 0 || b.stdout.includes('\0')) return false; // text only
        writeFileSync(paths[i]!, b.stdout);
      }
      const m = await this.exec(['merge-file', '-p', '--union', ...paths]);
      if (m.code < 0 || m.code > 127) return false;
      merged.push([f, m.stdout]);
    }
    for (const [f, text] of merged) {
      writeFileSync(path.join(this.dir, f), text);
      await this.run(['add', '--', f]);
    }
    return true;
  }

  /** One commit with the tree of `tip` on top of `parent`. */
  async squash(tip: string, parent: string, message: string): Promise<string> {
    return this.run(['commit-tree', `${tip}^{tree}`, '-p', parent, '-m', message], {
      env: IDENTITY,
    });
  }

  /** Put this worktree at `commit`, detached, with no stray files. */
  async checkoutDetached(commit: string): Promise<void> {
    await this.run(['checkout', '--detach', '--force', commit]);
    await this.run(['clean', '-ffdq']);
  }
}
