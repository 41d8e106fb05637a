/**
 * A git worktree per session of a rig agent: `.gc/worktrees/<rig>/<session>`
 * on a fresh branch from the rig's target, made (or reused) before the
 * session starts. The rig's `copy_files` (untracked files such as .env)
 * are copied in when it is made. When a pool session stops, its worktree
 * is removed if it holds no unmerged work: nothing uncommitted, and every
 * commit either already in the target (also when rebased or squashed by
 * the merge queue) or merged through it.
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { RigConfig } from '../config/index.js';
import { randomBase36 } from '../core/index.js';
import { Git } from '../git/index.js';
import type { MergeQueue } from './queue.js';

export class SessionWorktrees {
  constructor(
    private readonly root: string,
    private readonly gcDir: string,
    private readonly queue: MergeQueue | undefined,
  ) {}

  dir(rig: string, session: string): string {
    return path.join(this.gcDir, 'worktrees', rig, session);
  }

  private repo(rig: RigConfig): Git {
    return new Git(path.resolve(this.root, rig.path));
  }

  /** The session's worktree, made on a fresh branch from the target if it is not there. */
  async prepare(rig: RigConfig, session: string): Promise<string> {
    const dir = this.dir(rig.name, session);
    const repo = this.repo(rig);
    const known = (await repo.worktrees()).find((w) => path.resolve(w.path) === path.resolve(dir));
    if (known && existsSync(dir)) return dir;
    if (known) await repo.exec(['worktree', 'prune']);
    const start = (await repo.resolve(`refs/heads/${rig.target}`)) ?? (await repo.resolve('HEAD'));
    if (!start) throw new Error(`rig ${rig.name} has no commits to start a worktree from`);
    mkdirSync(path.dirname(dir), { recursive: true });
    const branch = `gc/${session}/${randomBase36(6)}`;
    await repo.addWorktree(dir, start, branch);
    for (const f of rig.copy_files) {
      const from = path.resolve(repo.dir, f);
      const to = path.resolve(dir, f);
      // Only files inside both trees; never outside the worktree.
      if (!to.startsWith(dir + path.sep) || !existsSync(from) || existsSync(to)) continue;
      mkdirSync(path.dirname(to), { recursive: true });
      copyFileSync(from, to);
    }
    return dir;
  }

  /** What unmerged work the worktree holds (empty: none). */
  async unmerged(rig: RigConfig, session: string): Promise<string[]> {
    const dir = this.dir(rig.name, session);
    if (!existsSync(dir)) return [];
    const wt = new Git(dir);
    const problems: string[] = [];
    const dirty = await wt.exec(['status', '--porcelain', '--untracked-files=normal']);
    const copied = new Set(rig.copy_files.map((f) => path.normalize(f)));
    const changes = dirty.stdout
      .split('\n')
      .filter(Boolean)
      .filter((l) => !copied.has(path.normalize(l.slice(3))));
    if (changes.length) problems.push(`${changes.length} uncommitted change(s)`);
    const head = await wt.resolve('HEAD');
    const target = await wt.resolve(`refs/heads/${rig.target}`);
    if (head && target && !(await wt.isAncestor(head, target))) {
      const mergedHeads = new Set(
        (this.queue?.list({ rig: rig.name, states: ['merged'], limit: 1000 }) ?? []).map(
          (m) => m.head,
        ),
      );
      if (!mergedHeads.has(head)) {
        // Commits whose patch is not in the target (rebased copies count as in).
        const cherry = await wt.exec(['cherry', target, head]);
        const missing = cherry.stdout.split('\n').filter((l) => l.startsWith('+')).length;
        if (missing) problems.push(`${missing} commit(s) not merged into ${rig.target}`);
      }
    }
    return problems;
  }

  /** Remove the worktree and its branch when it holds no unmerged work. */
  async prune(rig: RigConfig, session: string): Promise<{ removed: boolean; kept: string[] }> {
    const dir = this.dir(rig.name, session);
    if (!existsSync(dir)) return { removed: false, kept: [] };
    const kept = await this.unmerged(rig, session);
    if (kept.length) return { removed: false, kept };
    const wt = new Git(dir);
    const branch = await wt.currentBranch();
    const repo = this.repo(rig);
    await repo.removeWorktree(dir);
    if (branch?.startsWith('gc/')) await repo.exec(['branch', '-D', branch]);
    return { removed: true, kept: [] };
  }
}
