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
import { errorMessage, randomBase36 } from '../core/index.js';
import { Git } from '../git/index.js';
import type { MergeQueue } from './queue.js';

/** How long a prune waits for the queue to decide on the session's last submission. */
const PRUNE_QUEUE_WAIT_MS = 60_000;

export class SessionWorktrees {
  /** Prunes under way (see `pruneLater`): the server waits for them before it closes the queue. */
  private readonly pruning = new Set<Promise<void>>();

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

  /** Until no request of `rig` for `head` is queued, testing or merging, or `ms` pass. */
  private async awaitQueue(rig: RigConfig, head: string, ms = PRUNE_QUEUE_WAIT_MS): Promise<void> {
    const deadline = Date.now() + ms;
    const inQueue = async () =>
      (
        (await this.queue?.list({
          rig: rig.name,
          states: ['queued', 'testing', 'merging'],
          limit: 1000,
        })) ?? []
      ).some((m) => m.head === head);
    // A session stops rarely: a short poll of the queue table is fine here.
    while ((await inQueue()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
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
    if (head && target) {
      const missing = await this.notMerged(wt, rig, head, target);
      if (missing) problems.push(`${missing} commit(s) not merged into ${rig.target}`);
    }
    return problems;
  }

  /**
   * How many commits of `head` are not in `target`: 0 when head is in it,
   * was merged through the queue, or every commit's patch is there (the
   * queue rebased or squashed it).
   */
  private async notMerged(git: Git, rig: RigConfig, head: string, target: string): Promise<number> {
    if (await git.isAncestor(head, target)) return 0;
    const mergedHeads = new Set(
      ((await this.queue?.list({ rig: rig.name, states: ['merged'], limit: 1000 })) ?? []).map(
        (m) => m.head,
      ),
    );
    if (mergedHeads.has(head)) return 0;
    const cherry = await git.exec(['cherry', target, head]);
    return cherry.stdout.split('\n').filter((l) => l.startsWith('+')).length;
  }

  /** Delete the session's branches (gc/<session>/...) whose work is merged; what was deleted. */
  async deleteMergedBranches(rig: RigConfig, session: string): Promise<string[]> {
    const repo = this.repo(rig);
    const target = await repo.resolve(`refs/heads/${rig.target}`);
    if (!target) return [];
    const refs = await repo.exec([
      'for-each-ref',
      '--format=%(refname:short) %(objectname)',
      `refs/heads/gc/${session}/`,
    ]);
    const deleted: string[] = [];
    for (const line of refs.stdout.split('\n').filter(Boolean)) {
      const [name, head] = line.split(' ');
      if (!name || !head) continue;
      if ((await this.notMerged(repo, rig, head, target)) > 0) continue;
      if (await repo.deleteBranchAt(name, head)) deleted.push(name);
    }
    return deleted;
  }

  /**
   * `prune` in the background, reporting through `log`; `settle` waits for
   * every one started, so nothing it needs is closed under it.
   */
  pruneLater(rig: RigConfig, session: string, log: (line: string) => void): void {
    const p: Promise<void> = this.prune(rig, session)
      .then(
        (r) => {
          if (r.kept.length) log(`kept the worktree of ${session}: ${r.kept.join(', ')}`);
        },
        (e: unknown) => log(`pruning the worktree of ${session}: ${errorMessage(e)}`),
      )
      .finally(() => this.pruning.delete(p));
    this.pruning.add(p);
  }

  /** Wait for the prunes under way. */
  async settle(): Promise<void> {
    while (this.pruning.size) await Promise.all([...this.pruning]);
  }

  /** Remove the worktree and its branch when it holds no unmerged work. */
  async prune(rig: RigConfig, session: string): Promise<{ removed: boolean; kept: string[] }> {
    const dir = this.dir(rig.name, session);
    if (!existsSync(dir)) return { removed: false, kept: [] };
    // Work the queue still has in hand is decided by the queue: wait for it
    // (bounded) rather than keep a worktree whose work merges a moment later.
    const head = await new Git(dir).resolve('HEAD');
    if (head) await this.awaitQueue(rig, head);
    const kept = await this.unmerged(rig, session);
    if (kept.length) return { removed: false, kept };
    await this.repo(rig).removeWorktree(dir);
    // Its branches whose work is merged go with it (the one it had out too).
    await this.deleteMergedBranches(rig, session);
    return { removed: true, kept: [] };
  }
}
