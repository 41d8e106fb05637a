/**
 * The merge engine of one rig: parallel speculative testing, merges in
 * queue order, the target moved only by fast-forward to a tested commit.
 *
 * The train holds up to K candidates in merge order. Candidate i is built
 * on candidate i-1's tested commit (the first on the target's head):
 * conflict check with `git merge-tree` (no worktree touched), rebase in a
 * scratch worktree, optional squash, then the gates, all K at once. Only
 * the head of the train lands: when it passed, the target ref moves from
 * exactly its base to exactly its tested commit (compare and swap); when it
 * failed, it is finalized (needs-rebase / needs-fix) and dropped. Whenever
 * a candidate's expected base changes (a candidate before it failed, or
 * the target moved), it is cancelled and rebuilt on the new base, so a
 * failure before it never reaches the target through it, and a failure of
 * its own counts only once everything before it has merged.
 *
 * Crash safety: a request is marked `merging` (with base and tested
 * commit) before the ref moves. On start, such a request is finished if
 * its tested commit is already in the target, landed if the target is
 * still at its base, and queued again otherwise; `testing` requests go back
 * to the queue. Nothing merges twice, and the target only ever receives
 * tested commits.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { errorMessage, killPoint } from '../core/index.js';
import { Git } from '../git/index.js';
import { GatePids } from './gate-pids.js';
import { runGate, type GateRun, type GateSpec } from './gates.js';
import type { MergeQueue, MergeRequest } from './queue.js';

export type MergeStyle = 'rebase' | 'squash';

/** What the engine tells the rest of the city; implemented over store, mail and events. */
export interface MergeHooks {
  record(
    type: string,
    mr: MergeRequest,
    payload: Record<string, unknown>,
    message: string,
  ): Promise<void>;
  merged(mr: MergeRequest): Promise<void>;
  /** Returns the id of the conflict bead filed for the author. */
  conflicted(mr: MergeRequest, files: string[]): Promise<string>;
  gateFailed(mr: MergeRequest, gate: string, tail: string): Promise<void>;
  /**
   * Before a request naming a bead is queued: throws (NotFoundError) when
   * there is no such bead, so a typo is refused instead of merged with a
   * close that fails later. Absent: beads are not checked.
   */
  checkBead?(bead: string): Promise<void>;
}

export interface RigEngineOptions {
  rig: string;
  repo: string;
  target: string;
  workers: number;
  style: MergeStyle;
  gates: GateSpec[];
  /** Where the scratch worktrees go (one per worker). */
  scratchDir: string;
  queue: MergeQueue;
  hooks: MergeHooks;
  log?: (msg: string) => void;
  /** How often to look for requests submitted elsewhere and a moved target. */
  pollMs?: number;
}

type Status = 'waiting' | 'building' | 'testing' | 'passed' | 'conflict' | 'failed';

interface Entry {
  mr: MergeRequest;
  base: string;
  tip: string | undefined;
  status: Status;
  /** Bumped on every restart: results of an older run are ignored. */
  gen: number;
  abort: AbortController;
  files: string[] | undefined;
  gate: string | undefined;
  tail: string | undefined;
}

const DONE: readonly Status[] = ['passed', 'conflict', 'failed'];

export class RigEngine {
  private readonly git: Git;
  private train: Entry[] = [];
  private readonly slots: (Git | undefined)[];
  private readonly freeSlots: number[];
  private readonly tasks = new Set<Promise<void>>();
  private running = false;
  private again = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private idleWaiters: (() => void)[] = [];
  private warnedNoTarget = false;
  private readonly log: (msg: string) => void;
  /** Process groups of running gates, recorded for crash recovery. */
  private readonly gatePids: GatePids;

  constructor(private readonly o: RigEngineOptions) {
    this.git = new Git(o.repo);
    this.gatePids = new GatePids(`${o.scratchDir}.gates`);
    this.slots = Array.from({ length: o.workers }, () => undefined);
    this.freeSlots = Array.from({ length: o.workers }, (_, i) => i);
    this.log = o.log ?? (() => undefined);
  }

  get rig(): string {
    return this.o.rig;
  }

  private get targetRef(): string {
    return `refs/heads/${this.o.target}`;
  }

  async start(): Promise<void> {
    const killed = this.gatePids.killLeftovers();
    if (killed.length) {
      this.log(
        `mq ${this.o.rig}: killed ${killed.length} gate process group(s) left by a server that died: ${killed.join(', ')}`,
      );
    }
    await this.recover();
    this.timer = setInterval(() => this.kick(), this.o.pollMs ?? 2000);
    this.timer.unref();
    this.kick();
  }

  /** Run a gate with its process group recorded while it runs (see gate-pids.ts). */
  private async gate(
    gate: GateSpec,
    dir: string,
    env: Record<string, string>,
    signal: AbortSignal,
  ): Promise<GateRun> {
    let pgid: number | undefined;
    try {
      return await runGate(gate, dir, env, signal, (id) => {
        pgid = id;
        this.gatePids.add(id);
      });
    } finally {
      if (pgid !== undefined) this.gatePids.remove(pgid);
    }
  }

  /** Look at the queue now (a request was submitted, a result came in). */
  kick(): void {
    // advance() logs its own failures; this catch is for the unforeseen.
    if (!this.stopped) this.advance().catch((e: unknown) => this.log(`mq: ${errorMessage(e)}`));
  }

  /** Resolves once the queue and the train are empty. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((r) => {
      this.idleWaiters.push(r);
      this.kick();
    });
  }

  private isIdle(): boolean {
    return !this.running && this.train.length === 0 && this.o.queue.queued(this.o.rig).length === 0;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    for (const e of this.train) e.abort.abort();
    while (this.running || this.tasks.size) {
      await Promise.allSettled([...this.tasks]);
      await new Promise((r) => setTimeout(r, 10));
    }
    for (const e of this.train) this.o.queue.requeue(e.mr.id);
    this.train = [];
    // The scratch worktrees are made again at the next start: leave none behind.
    for (const [slot, wt] of this.slots.entries()) {
      if (!wt) continue;
      await this.git.removeWorktree(wt.dir).catch((e: unknown) => {
        this.log(`mq ${this.o.rig}: removing scratch worktree ${wt.dir}: ${errorMessage(e)}`);
      });
      this.slots[slot] = undefined;
    }
  }

  // ------------------------------------------------------------- recovery

  private async recover(): Promise<void> {
    for (const mr of this.o.queue.unfinished(this.o.rig)) {
      if (mr.state === 'merging' && mr.tested) {
        const head = await this.git.resolve(this.targetRef);
        if (head && (await this.git.isAncestor(mr.tested, head))) {
          this.log(`mq ${this.o.rig}: ${mr.id} had landed before the restart; finishing it`);
          await this.finishMerged(mr, mr.tested);
          continue;
        }
        if (head === mr.base) {
          const ok = await this.git.casRef(
            this.targetRef,
            mr.tested,
            mr.base,
            `gc mq: merge ${mr.id}`,
          );
          if (ok) {
            this.log(`mq ${this.o.rig}: landing ${mr.id}, interrupted by the restart`);
            await this.finishMerged(mr, mr.tested);
            continue;
          }
        }
      }
      this.o.queue.requeue(mr.id);
    }
  }

  // ------------------------------------------------------------ the loop

  private async advance(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      do {
        this.again = false;
        await this.step();
      } while (this.again && !this.stopped);
    } catch (e) {
      this.log(`mq ${this.o.rig}: ${errorMessage(e)}`);
    } finally {
      this.running = false;
    }
    if (this.idleWaiters.length && this.isIdle()) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const r of w) r();
    }
  }

  private async step(): Promise<void> {
    if (this.stopped) return;
    // Requests rejected or superseded while in the train leave it.
    for (const e of [...this.train]) {
      const now = this.o.queue.get(e.mr.id);
      if (now.state === 'rejected' || now.state === 'superseded') {
        e.abort.abort();
        this.train.splice(this.train.indexOf(e), 1);
      }
    }
    // Land or finalize from the head, in order.
    while (this.train[0] && DONE.includes(this.train[0].status)) {
      const e = this.train.shift()!;
      if (e.status === 'passed') await this.land(e);
      else await this.finalizeFailure(e);
    }
    const head = await this.git.resolve(this.targetRef);
    if (!head) {
      if (!this.warnedNoTarget)
        this.log(`mq ${this.o.rig}: target branch ${this.o.target} not found`);
      this.warnedNoTarget = true;
      return;
    }
    this.warnedNoTarget = false;
    // Every candidate must sit on the tested commit of the last one before
    // it that has not failed (the first on the target's head).
    let expected: string | undefined = head;
    const inTrain = new Set(this.train.map((e) => e.mr.id));
    for (const e of this.train) this.place(e, expected, (x) => (expected = x));
    if (this.train.length < this.o.workers) {
      for (const mr of this.o.queue.queued(this.o.rig)) {
        if (this.train.length >= this.o.workers) break;
        if (inTrain.has(mr.id)) continue;
        const e: Entry = {
          mr,
          base: '',
          tip: undefined,
          status: 'waiting',
          gen: 0,
          abort: new AbortController(),
          files: undefined,
          gate: undefined,
          tail: undefined,
        };
        this.train.push(e);
        this.place(e, expected, (x) => (expected = x));
      }
    }
  }

  /** Put `e` on `expected` (restarting it if it was built on something else); start it if it can. */
  private place(
    e: Entry,
    expected: string | undefined,
    next: (x: string | undefined) => void,
  ): void {
    if (expected === undefined) {
      if (e.status !== 'waiting') this.restart(e, '');
      next(undefined);
      return;
    }
    if (e.base !== expected) this.restart(e, expected);
    if (e.status === 'waiting') this.build(e);
    if (e.status === 'conflict' || e.status === 'failed') {
      next(expected);
      return;
    }
    next(e.tip);
  }

  private restart(e: Entry, base: string): void {
    if (e.status !== 'waiting') {
      e.abort.abort();
      e.abort = new AbortController();
    }
    e.gen++;
    e.base = base;
    e.tip = undefined;
    e.status = 'waiting';
    e.files = undefined;
    e.gate = undefined;
    e.tail = undefined;
  }

  private build(e: Entry): void {
    if (!e.base) return;
    const slot = this.freeSlots.shift();
    if (slot === undefined) return; // a cancelled run still holds it; its end kicks us
    e.status = 'building';
    const task = this.run(e, e.gen, slot).finally(() => {
      this.freeSlots.push(slot);
      this.tasks.delete(task);
      this.kick();
    });
    this.tasks.add(task);
  }

  private async worktree(slot: number, at: string): Promise<Git> {
    let wt = this.slots[slot];
    if (wt) return wt;
    const dir = path.join(this.o.scratchDir, `worker-${slot}`);
    mkdirSync(this.o.scratchDir, { recursive: true });
    const known = (await this.git.worktrees()).some(
      (w) => path.resolve(w.path) === path.resolve(dir),
    );
    wt = known ? new Git(dir) : await this.git.addWorktree(dir, at);
    this.slots[slot] = wt;
    return wt;
  }

  private async run(e: Entry, gen: number, slot: number): Promise<void> {
    const stale = () => e.gen !== gen || this.stopped;
    const { mr } = e;
    try {
      const check = await this.git.mergeCheck(e.base, mr.head);
      if (stale()) return;
      if (!check.clean) {
        e.files = check.files;
        e.status = 'conflict';
        return;
      }
      const wt = await this.worktree(slot, e.base);
      const rebased = await wt.rebaseOnto(mr.head, e.base);
      if (stale()) return;
      if (!rebased.ok) {
        e.files = rebased.files;
        e.status = 'conflict';
        return;
      }
      let tip = rebased.tip;
      if (this.o.style === 'squash' && tip !== e.base) {
        tip = await this.git.squash(tip, e.base, squashMessage(mr));
      }
      if (stale()) return;
      if (!this.o.queue.startTesting(mr.id, e.base)) {
        e.abort.abort();
        return;
      }
      e.tip = tip;
      e.status = 'testing';
      this.kick(); // the next candidate can build on this one now
      await this.o.hooks.record(
        'mq.rebased',
        mr,
        { base: e.base, tested: tip },
        `merge request ${mr.id} (${mr.branch}) rebased onto ${e.base.slice(0, 10)} as ${tip.slice(0, 10)}`,
      );
      const env = {
        GC_RIG: this.o.rig,
        GC_MQ_ID: mr.id,
        GC_MQ_BRANCH: mr.branch,
        GC_MQ_HEAD: mr.head,
        GC_MQ_BASE: e.base,
        GC_MQ_TESTED: tip,
      };
      const flaky: string[] = [];
      for (const gate of this.o.gates) {
        let r = await this.gate(gate, wt.dir, env, e.abort.signal);
        if (!r.ok && !r.cancelled && !stale()) {
          // One retry: a gate that passes the second time is flaky, not failing.
          const again = await this.gate(gate, wt.dir, env, e.abort.signal);
          if (again.ok) flaky.push(gate.name);
          r = again;
        }
        if (stale() || r.cancelled) return;
        if (!r.ok) {
          e.gate = gate.name;
          e.tail = r.tail;
          e.status = 'failed';
          return;
        }
      }
      e.status = 'passed';
      await this.o.hooks.record(
        'mq.gated',
        mr,
        { tested: tip, gates: this.o.gates.map((g) => g.name), flaky },
        `merge request ${mr.id} passed its gates${flaky.length ? ` (flaky, passed on retry: ${flaky.join(', ')})` : ''}`,
      );
    } catch (err) {
      if (stale()) return;
      e.gate = 'internal';
      e.tail = errorMessage(err);
      e.status = 'failed';
    }
  }

  private async land(e: Entry): Promise<void> {
    const mr = this.o.queue.markMerging(e.mr.id, e.base, e.tip!);
    const ok = await this.git.casRef(
      this.targetRef,
      e.tip!,
      e.base,
      `gc mq: merge ${mr.id} (${mr.branch})`,
    );
    if (!ok) {
      // The target moved under us (a push from elsewhere): rebuild on it.
      this.log(`mq ${this.o.rig}: ${this.o.target} moved during ${mr.id}; testing it again`);
      this.o.queue.requeue(mr.id);
      return;
    }
    killPoint('mq.landed');
    await this.finishMerged(mr, e.tip!);
  }

  private async finishMerged(mr: MergeRequest, sha: string): Promise<void> {
    const done = this.o.queue.markMerged(mr.id, sha);
    // The merged branch goes, unless its owner moved it on or has it checked
    // out (a session worktree: deleted when the session's worktree is).
    await this.git.deleteBranchAt(mr.branch, mr.head).catch(() => false);
    try {
      await this.o.hooks.merged(done);
    } catch (err) {
      this.log(`mq ${this.o.rig}: after merging ${mr.id}: ${errorMessage(err)}`);
    }
    await this.o.hooks.record(
      'mq.merged',
      done,
      { sha, base: done.base, branch: done.branch, bead: done.bead },
      `merge request ${done.id} (${done.branch}) merged into ${this.o.target} at ${sha.slice(0, 10)}`,
    );
  }

  private async finalizeFailure(e: Entry): Promise<void> {
    const { mr } = e;
    try {
      if (e.status === 'conflict') {
        const files = e.files ?? [];
        let bead = '';
        try {
          bead = await this.o.hooks.conflicted(mr, files);
        } catch (err) {
          this.log(`mq ${this.o.rig}: conflict bead for ${mr.id}: ${errorMessage(err)}`);
        }
        const done = this.o.queue.markConflict(mr.id, files, bead);
        await this.o.hooks.record(
          'mq.conflicted',
          done,
          { files, conflict_bead: bead, base: e.base },
          `merge request ${mr.id} (${mr.branch}) conflicts with ${this.o.target} in ${files.length} file(s); back to ${mr.author || 'its author'}`,
        );
      } else {
        const gate = e.gate ?? 'internal';
        const tail = e.tail ?? '';
        const done = this.o.queue.markGateFailed(mr.id, gate, tail);
        try {
          await this.o.hooks.gateFailed(done, gate, tail);
        } catch (err) {
          this.log(`mq ${this.o.rig}: notifying ${mr.author} of ${mr.id}: ${errorMessage(err)}`);
        }
        await this.o.hooks.record(
          'mq.failed',
          done,
          { gate, base: e.base, tested: e.tip ?? '' },
          `merge request ${mr.id} (${mr.branch}) failed gate ${gate}`,
        );
      }
    } catch (err) {
      this.log(`mq ${this.o.rig}: finalizing ${mr.id}: ${errorMessage(err)}`);
    }
  }
}

function squashMessage(mr: MergeRequest): string {
  return `${mr.bead ? `${mr.bead}: ` : ''}merge ${mr.branch} (${mr.id})\n\nMerge-Request: ${mr.id}\nAuthor-Agent: ${mr.author}\n`;
}
