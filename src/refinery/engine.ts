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
 * Batches (`[[rigs]] merge_batch` > 1): a candidate may hold several
 * waiting requests, rebased one after another and gated once on the last
 * commit (batching.ts). A green batch lands all of them with one ref move; a
 * red one is bisected in place in the train until the failing request is
 * alone, and a conflict splits the batch around the request that conflicts.
 * The batch size adapts to the recent failure rate.
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
import { Git, type Region } from '../git/index.js';
import {
  bisect,
  formBatches,
  nextBatchSize,
  splitAtConflict,
  type BuildOutcome,
} from './batching.js';
import { rebaseChain, runGates, withTouches, type MergeStyle } from './build.js';
import { ConflictScreen, finalizeFailure, recordSplit } from './finalize.js';
import { GatePids } from './gate-pids.js';
import { recoverUnfinished } from './recover.js';
import { requeueReturned } from './requeue.js';
import { runGate, type GateRun, type GateSpec } from './gates.js';
import type { MergeHooks } from './merge-hooks.js';
import type { BuildRecord, MergeQueue, MergeRequest } from './queue.js';

export type { MergeStyle } from './build.js';

export type { MergeHooks } from './merge-hooks.js';

export interface RigEngineOptions {
  /** Whether this server may change the target now (it leads the city); default always. */
  mayAct?: () => boolean;
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
  /** Largest batch of requests tested as one candidate (1: no batching). */
  maxBatch?: number;
  /** Resolve conflicts where both sides only added lines by keeping both (then gate). */
  autoResolve?: boolean;
}

type Status = 'waiting' | 'building' | 'testing' | 'passed' | 'conflict' | 'failed';

interface Entry {
  /** The requests of this candidate, in merge order (one unless batching). */
  mrs: MergeRequest[];
  /** How many times the batch it came from was split (bisection depth). */
  depth: number;
  base: string;
  tip: string | undefined;
  /** Each request's own commit in the tested chain. */
  tips: string[];
  status: Status;
  /** Bumped on every restart: results of an older run are ignored. */
  gen: number;
  abort: AbortController;
  files: string[] | undefined;
  /** Index in `mrs` of the request that conflicts. */
  conflictAt: number;
  gate: string | undefined;
  tail: string | undefined;
}

function entry(mrs: MergeRequest[], depth: number): Entry {
  return {
    mrs,
    depth,
    base: '',
    tip: undefined,
    tips: [],
    status: 'waiting',
    gen: 0,
    abort: new AbortController(),
    files: undefined,
    conflictAt: 0,
    gate: undefined,
    tail: undefined,
  };
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
  /** The next batch's size, and the recent build outcomes it follows. */
  private batchSize: number;
  private readonly outcomes: BuildOutcome[] = [];
  private lastSweep = 0;
  /** Build records on their way to the queue's stats. */
  private statsWrites: Promise<void> = Promise.resolve();
  /** Where each head changes the target since it left it (for batch forming). */
  private readonly touchesOf = new Map<string, Region[]>();
  private readonly screen: ConflictScreen;

  constructor(private readonly o: RigEngineOptions) {
    this.git = new Git(o.repo);
    this.gatePids = new GatePids(`${o.scratchDir}.gates`);
    this.screen = new ConflictScreen(this.git);
    this.slots = Array.from({ length: o.workers }, () => undefined);
    this.freeSlots = Array.from({ length: o.workers }, (_, i) => i);
    this.log = o.log ?? (() => undefined);
    this.batchSize = Math.max(1, o.maxBatch ?? 1);
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
  async idle(): Promise<void> {
    if (await this.isIdle()) return;
    return new Promise((r) => {
      this.idleWaiters.push(r);
      this.kick();
    });
  }

  private async isIdle(): Promise<boolean> {
    if (this.running || this.train.length) return false;
    return (await this.o.queue.depth(this.o.rig)) === 0;
  }

  /**
   * Record a build for the stats without holding up the train (a restart
   * or an outcome happens where nothing can wait); `stop` waits for them.
   */
  private recordBuild(b: BuildRecord): void {
    this.statsWrites = this.statsWrites
      .then(() => this.o.queue.recordBuild(this.o.rig, b))
      .catch((e: unknown) => this.log(`mq ${this.o.rig}: recording a build: ${errorMessage(e)}`));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    for (const e of this.train) e.abort.abort();
    while (this.running || this.tasks.size) {
      await Promise.allSettled([...this.tasks]);
      await new Promise((r) => setTimeout(r, 10));
    }
    for (const e of this.train) for (const mr of e.mrs) await this.o.queue.requeue(mr.id);
    this.train = [];
    await this.statsWrites;
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
    await recoverUnfinished(this.git, this.o.queue, this.o.rig, this.targetRef, this.log, (mr) =>
      this.finishMerged(mr, mr.tested),
    );
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
    if (this.idleWaiters.length && (await this.isIdle().catch(() => false))) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const r of w) r();
    }
  }

  private async step(): Promise<void> {
    if (this.stopped) return;
    if (Date.now() - this.lastSweep >= (this.o.pollMs ?? 2000)) {
      this.lastSweep = Date.now();
      await requeueReturned(this.git, this.o.queue, this.o.rig, this.o.hooks, this.log);
    }
    // Requests rejected or superseded while in the train leave it (their
    // batch goes on without them, rebuilt).
    for (const e of [...this.train]) {
      const gone: MergeRequest[] = [];
      for (const mr of e.mrs) {
        const now = await this.o.queue.get(mr.id);
        if (now.state === 'rejected' || now.state === 'superseded') gone.push(mr);
      }
      if (!gone.length) continue;
      e.abort.abort();
      const rest = e.mrs.filter((mr) => !gone.includes(mr));
      this.replace(e, rest.length ? [entry(rest, e.depth)] : []);
    }
    // Red batches are bisected and conflicting ones split, wherever they are.
    for (const e of [...this.train]) {
      if (e.mrs.length < 2) continue;
      if (e.status === 'failed') {
        const [a, b] = bisect(e.mrs);
        await this.recordSplit(e, 'failed', [a, b]);
        this.replace(e, [entry(a, e.depth + 1), entry(b, e.depth + 1)]);
      } else if (e.status === 'conflict') {
        const parts = splitAtConflict(e.mrs, e.conflictAt);
        await this.recordSplit(e, 'conflict', parts);
        this.replace(
          e,
          parts.map((p) => entry(p, e.depth)),
        );
      }
    }
    // Land or finalize from the head, in order.
    while (this.train[0] && DONE.includes(this.train[0].status)) {
      const e = this.train.shift()!;
      if (e.status === 'passed') await this.land(e);
      else await this.finalizeFailure(e);
    }
    const head = await this.git.resolve(this.targetRef);
    if (head) await this.failFast(head);
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
    const inTrain = new Set(this.train.flatMap((e) => e.mrs.map((mr) => mr.id)));
    for (const e of this.train) this.place(e, expected, (x) => (expected = x));
    if (this.train.length < this.o.workers) {
      let waiting = (await this.o.queue.queued(this.o.rig)).filter((mr) => !inTrain.has(mr.id));
      if (this.batchSize > 1 && head) {
        // The ones about to be batched are checked against the target first:
        // a request that conflicts with it goes back now instead of splitting a batch.
        const soon = waiting.slice(0, this.batchSize * (this.o.workers - this.train.length));
        const back = new Set<string>();
        for (const mr of soon) if (await this.sendBackIfConflicting(head, mr)) back.add(mr.id);
        waiting = waiting.filter((mr) => !back.has(mr.id));
      }
      const batchable =
        this.batchSize > 1
          ? await withTouches(this.git, this.targetRef, waiting.slice(0, 64), this.touchesOf)
          : waiting.map((mr) => ({ id: mr.id, mr }));
      for (const batch of formBatches(
        batchable,
        this.batchSize,
        this.o.workers - this.train.length,
      )) {
        const e = entry(
          batch.map((b) => b.mr),
          0,
        );
        this.train.push(e);
        this.place(e, expected, (x) => (expected = x));
      }
    }
  }

  /**
   * A request further down the train that conflicts with the target itself
   * (not only with the candidates before it) goes back to its author now:
   * whatever lands before it cannot take that conflict away.
   */
  private async failFast(head: string): Promise<void> {
    for (const e of this.train.slice(1)) {
      if (e.status !== 'conflict' || e.mrs.length !== 1 || e.base === head) continue;
      if (await this.sendBackIfConflicting(head, e.mrs[0]!)) {
        this.train.splice(this.train.indexOf(e), 1);
      }
    }
  }

  /** True when `mr` conflicts with the target's `head` (then it went back to its author). */
  private async sendBackIfConflicting(head: string, mr: MergeRequest): Promise<boolean> {
    const files = await this.screen.conflicts(head, mr.head);
    if (!files) return false;
    const e = entry([mr], 0);
    Object.assign(e, { status: 'conflict', files, base: head });
    await this.finalizeFailure(e);
    return true;
  }

  /** Put `parts` where `e` was in the train. */
  private replace(e: Entry, parts: Entry[]): void {
    const i = this.train.indexOf(e);
    if (i >= 0) this.train.splice(i, 1, ...parts);
  }

  private recordSplit(e: Entry, why: 'failed' | 'conflict', parts: MergeRequest[][]) {
    return recordSplit(this.o.queue, this.o.hooks, this.o.rig, { ...e, why, parts });
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
      // Built on a base that did not hold: speculative work thrown away.
      if (e.status === 'building' || e.status === 'testing' || e.status === 'passed') {
        this.recordBuild({ size: e.mrs.length, outcome: 'cancelled', depth: e.depth, gateRuns: 0 });
      }
    }
    e.gen++;
    e.base = base;
    e.tip = undefined;
    e.tips = [];
    e.status = 'waiting';
    e.files = undefined;
    e.conflictAt = 0;
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

  /** A build finished: its outcome steers the next batch's size. */
  private finished(e: Entry, outcome: BuildOutcome, gateRuns: number): void {
    this.outcomes.push(outcome);
    if (this.outcomes.length > 50) this.outcomes.splice(0, this.outcomes.length - 50);
    this.batchSize = nextBatchSize(this.batchSize, this.outcomes, { max: this.o.maxBatch ?? 1 });
    this.recordBuild({ size: e.mrs.length, outcome, depth: e.depth, gateRuns });
  }

  private async run(e: Entry, gen: number, slot: number): Promise<void> {
    const stale = () => e.gen !== gen || this.stopped;
    const { mrs } = e;
    const first = mrs[0]!;
    try {
      const wt = await this.worktree(slot, e.base);
      const chain = await rebaseChain(
        this.git,
        wt,
        e.base,
        mrs,
        this.o.style,
        stale,
        this.o.autoResolve ?? false,
      );
      if (stale()) return;
      if (!chain.ok) {
        e.files = chain.files;
        e.conflictAt = chain.at;
        e.status = 'conflict';
        this.finished(e, 'conflict', 0);
        return;
      }
      for (const mr of mrs) {
        if (!(await this.o.queue.startTesting(mr.id, e.base))) {
          e.abort.abort();
          return;
        }
      }
      const tip = chain.tip;
      e.tip = tip;
      e.tips = chain.tips;
      e.status = 'testing';
      this.kick(); // the next candidate can build on this one now
      const batch = mrs.length > 1 ? { batch: mrs.map((mr) => mr.id) } : {};
      for (const [i, mr] of mrs.entries()) {
        await this.o.hooks.record(
          'mq.rebased',
          mr,
          {
            base: e.base,
            tested: tip,
            commit: chain.tips[i],
            ...batch,
            ...(chain.resolved[i]?.length ? { auto_resolved: chain.resolved[i] } : {}),
          },
          `merge request ${mr.id} (${mr.branch}) rebased onto ${e.base.slice(0, 10)} as ${chain.tips[i]!.slice(0, 10)}${mrs.length > 1 ? ` (batch of ${mrs.length}, tested at ${tip.slice(0, 10)})` : ''}`,
        );
      }
      const env = {
        GC_RIG: this.o.rig,
        GC_MQ_ID: first.id,
        GC_MQ_IDS: mrs.map((mr) => mr.id).join(' '),
        GC_MQ_BRANCH: first.branch,
        GC_MQ_HEAD: first.head,
        GC_MQ_BASE: e.base,
        GC_MQ_TESTED: tip,
      };
      const r = await runGates(this.o.gates, wt.dir, env, e.abort.signal, stale, (g, d, v, sig) =>
        this.gate(g, d, v, sig),
      );
      if (stale() || (!r.ok && r.cancelled)) return;
      if (!r.ok) {
        if (r.cancelled) return;
        e.gate = r.gate;
        e.tail = r.tail;
        e.status = 'failed';
        this.finished(e, 'failed', r.runs);
        return;
      }
      e.status = 'passed';
      this.finished(e, 'passed', r.runs);
      for (const mr of mrs) {
        await this.o.hooks.record(
          'mq.gated',
          mr,
          { tested: tip, gates: this.o.gates.map((g) => g.name), flaky: r.flaky, ...batch },
          `merge request ${mr.id} passed its gates${mrs.length > 1 ? ` in a batch of ${mrs.length}` : ''}${r.flaky.length ? ` (flaky, passed on retry: ${r.flaky.join(', ')})` : ''}`,
        );
      }
    } catch (err) {
      if (stale()) return;
      e.gate = 'internal';
      e.tail = errorMessage(err);
      e.status = 'failed';
      this.finished(e, 'failed', 0);
    }
  }

  private async land(e: Entry): Promise<void> {
    // A server that no longer leads (paused past its lease, cut off from the
    // database) changes nothing: the leader's engine takes the request up.
    const leading = () => this.o.mayAct?.() !== false;
    if (!leading()) return;
    const mrs: MergeRequest[] = [];
    for (const mr of e.mrs) mrs.push(await this.o.queue.markMerging(mr.id, e.base, e.tip!));
    const ids = mrs.map((mr) => mr.id).join(', ');
    if (!leading()) return;
    const ok = await this.git.casRef(
      this.targetRef,
      e.tip!,
      e.base,
      `gc mq: merge ${ids}${mrs.length === 1 ? ` (${mrs[0]!.branch})` : ''}`,
    );
    if (!ok) {
      // The target moved under us (a push from elsewhere): rebuild on it.
      this.log(`mq ${this.o.rig}: ${this.o.target} moved during ${ids}; testing again`);
      for (const mr of mrs) await this.o.queue.requeue(mr.id);
      return;
    }
    killPoint('mq.landed');
    for (const [i, mr] of mrs.entries()) await this.finishMerged(mr, e.tips[i] ?? e.tip!);
  }

  private async finishMerged(mr: MergeRequest, sha: string): Promise<void> {
    const done = await this.o.queue.markMerged(mr.id, sha);
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
      {
        sha,
        base: done.base,
        branch: done.branch,
        bead: done.bead,
        wait_ms: Math.max(0, (done.finished_at ?? Date.now()) - done.submitted_at),
      },
      `merge request ${done.id} (${done.branch}) merged into ${this.o.target} at ${sha.slice(0, 10)}`,
    );
  }

  private async finalizeFailure(e: Entry): Promise<void> {
    await finalizeFailure(this.o.queue, this.o.hooks, this.o.rig, this.o.target, this.log, {
      mr: e.mrs[0]!,
      conflict: e.status === 'conflict',
      files: e.files ?? [],
      gate: e.gate ?? 'internal',
      tail: e.tail ?? '',
      base: e.base,
      tested: e.tip ?? '',
    });
  }
}
