/**
 * The merge queues of a city: the request table, one engine per rig (only
 * in the city server), and the operations the CLI and the API expose.
 */
import path from 'node:path';
import { ms, type RigConfig } from '../config/index.js';
import { NotFoundError, ValidationError, errorMessage } from '../core/index.js';
import { Git } from '../git/index.js';
import { RigEngine, type MergeHooks } from './engine.js';
import { GATE_NAMES, type GateSpec } from './gates.js';
import {
  MR_STATES,
  type MergeQueue,
  type MergeRequest,
  type MrState,
  type RigStats,
  type SubmitResult,
} from './queue.js';
import type { Page } from '../store/index.js';

export interface SubmitRequest {
  /** Default: the city's only rig. */
  rig?: string;
  branch: string;
  /** Commit to merge; default: the branch's head in the rig's repository. */
  head?: string;
  bead?: string;
  priority?: number;
  /** Refuse to replace another author's request (set for agents). */
  ownOnly?: boolean;
}

export interface MqListQuery {
  rig?: string;
  states?: MrState[];
  limit?: number;
  cursor?: string;
}

export interface RefineryOptions {
  /** The city root (rig paths are relative to it). */
  root: string;
  /** The city's `.gc` directory (scratch worktrees go under mq-scratch/<rig>). */
  gcDir: string;
  rigs: readonly RigConfig[];
  queue: MergeQueue;
  hooks: MergeHooks;
  log?: (msg: string) => void;
  pollMs?: number;
  /** Whether this server may merge now (it leads the city); default always. */
  mayAct?: () => boolean;
}

export function rigGates(rig: RigConfig): GateSpec[] {
  return GATE_NAMES.flatMap((name) => {
    const g = rig.gates[name];
    return g ? [{ name, command: g.command, timeoutMs: ms(g.timeout) }] : [];
  });
}

export class Refinery {
  private readonly engines = new Map<string, RigEngine>();
  private readonly rigs: Map<string, RigConfig>;
  private readonly log: (msg: string) => void;
  private started = false;

  constructor(private readonly o: RefineryOptions) {
    this.rigs = new Map(o.rigs.map((r) => [r.name, r]));
    this.log = o.log ?? (() => undefined);
  }

  get queue(): MergeQueue {
    return this.o.queue;
  }

  /** The current config of a rig (follows reloads). */
  rigConfig(name: string): RigConfig | undefined {
    return this.rigs.get(name);
  }

  rigNames(): string[] {
    return [...this.rigs.keys()];
  }

  /** The rig a request means: the one named, else the city's only rig. */
  resolveRig(rig: string | undefined): string {
    if (rig) return this.rig(rig).name;
    const names = this.rigNames();
    if (names.length === 1) return names[0]!;
    throw new ValidationError(
      names.length
        ? `the city has ${names.length} rigs; say which (${names.join(', ')})`
        : 'the city has no rigs',
      { where: 'rig', fix: names.length ? 'pass --rig NAME' : 'gc rig add NAME PATH' },
    );
  }

  /** Requests newest first, a page at a time (`cursor` = the last page's next_cursor). */
  async list(query: MqListQuery = {}): Promise<Page<MergeRequest>> {
    for (const st of query.states ?? []) {
      if (!(MR_STATES as readonly string[]).includes(st)) {
        throw new ValidationError(
          `unknown state ${JSON.stringify(st)}; one of ${MR_STATES.join(', ')}`,
          { where: 'state' },
        );
      }
    }
    const before = query.cursor ? Number(query.cursor) : undefined;
    if (query.cursor && !(Number.isInteger(before) && before! > 0)) {
      throw new ValidationError('not a cursor from this list', { where: 'cursor' });
    }
    const limit = Math.min(Math.max(query.limit ?? 100, 1), 1000);
    const rows = await this.o.queue.list({
      ...(query.rig ? { rig: this.rig(query.rig).name } : {}),
      ...(query.states ? { states: query.states } : {}),
      limit: limit + 1,
      ...(before ? { before } : {}),
    });
    const items = rows.slice(0, limit);
    return {
      items,
      next_cursor: rows.length > limit ? String(items[items.length - 1]!.seq) : null,
    };
  }

  rigPath(rig: RigConfig): string {
    return path.resolve(this.o.root, rig.path);
  }

  private rig(name: string): RigConfig {
    const r = this.rigs.get(name);
    if (!r) {
      throw new NotFoundError('rig', name, {
        fix: `known rigs: ${[...this.rigs.keys()].join(', ') || 'none (gc rig add NAME PATH)'}`,
      });
    }
    return r;
  }

  /** Start one engine per rig that is not suspended. */
  async start(): Promise<void> {
    this.started = true;
    for (const rig of this.rigs.values()) await this.startRig(rig);
  }

  private async startRig(rig: RigConfig): Promise<void> {
    if (rig.suspended) return;
    const engine = new RigEngine({
      rig: rig.name,
      repo: this.rigPath(rig),
      target: rig.target,
      workers: rig.merge_workers,
      maxBatch: rig.merge_batch,
      autoResolve: rig.merge_auto_resolve,
      style: rig.merge_style,
      gates: rigGates(rig),
      // Apart from session worktrees (.gc/worktrees/<rig>/<session>): a
      // session may be named anything, mq included.
      scratchDir: path.join(this.o.gcDir, 'mq-scratch', rig.name),
      queue: this.o.queue,
      hooks: this.o.hooks,
      log: this.log,
      ...(this.o.pollMs !== undefined ? { pollMs: this.o.pollMs } : {}),
      ...(this.o.mayAct ? { mayAct: this.o.mayAct } : {}),
    });
    try {
      await engine.start();
      this.engines.set(rig.name, engine);
    } catch (e) {
      this.log(`mq ${rig.name}: not started: ${errorMessage(e)}`);
    }
  }

  /**
   * A reloaded config: engines of removed or changed rigs stop (their
   * in-flight requests go back to the queue), new and changed ones start.
   */
  async setRigs(rigs: readonly RigConfig[]): Promise<void> {
    const next = new Map(rigs.map((r) => [r.name, r]));
    const changed: RigConfig[] = [];
    for (const [name, old] of this.rigs) {
      const now = next.get(name);
      if (now && JSON.stringify(now) === JSON.stringify(old)) continue;
      await this.engines.get(name)?.stop();
      this.engines.delete(name);
    }
    for (const [name, now] of next) {
      const old = this.rigs.get(name);
      if (!old || JSON.stringify(now) !== JSON.stringify(old)) changed.push(now);
    }
    this.rigs.clear();
    for (const [k, v] of next) this.rigs.set(k, v);
    if (this.started) for (const r of changed) await this.startRig(r);
  }

  async stop(): Promise<void> {
    this.started = false;
    await Promise.all([...this.engines.values()].map((e) => e.stop()));
    this.engines.clear();
  }

  /** Look at the queue now (of one rig, or all): a request came in through another server. */
  kick(rig?: string): void {
    for (const [name, engine] of this.engines) if (!rig || name === rig) engine.kick();
  }

  /** Resolves when every rig's queue is empty and nothing is in flight. */
  async idle(): Promise<void> {
    await Promise.all([...this.engines.values()].map((e) => e.idle()));
  }

  async submit(actor: string, req: SubmitRequest): Promise<SubmitResult> {
    const rig = this.rig(this.resolveRig(req.rig));
    const git = new Git(this.rigPath(rig));
    let head = req.head;
    if (!head) {
      head = await git.resolve(`refs/heads/${req.branch}`);
      if (!head) {
        throw new ValidationError(
          `no branch ${req.branch} in rig ${rig.name} (${this.rigPath(rig)})`,
          {
            where: 'branch',
            fix: 'push or commit the branch in the rig repository first',
          },
        );
      }
    } else if (!(await git.resolve(head))) {
      throw new ValidationError(`commit ${head} is not in rig ${rig.name}'s repository`, {
        where: 'head',
      });
    }
    if (req.branch === rig.target) {
      throw new ValidationError(`is the rig's target branch; submit a work branch`, {
        where: 'branch',
      });
    }
    if (req.bead) await this.o.hooks.checkBead?.(req.bead);
    const result = await this.o.queue.submit({
      rig: rig.name,
      branch: req.branch,
      head,
      author: actor,
      ...(req.bead ? { bead: req.bead } : {}),
      ...(req.priority !== undefined ? { priority: req.priority } : {}),
      ...(req.ownOnly ? { ownOnly: true } : {}),
    });
    if (result.created && req.bead && this.o.hooks.touched) {
      // What this attempt changes: later beads overlapping it wait (conflict-aware claims).
      try {
        const files = await git.changedSince(`refs/heads/${rig.target}`, head);
        await this.o.hooks.touched(req.bead, files);
      } catch (e) {
        this.log(`mq ${rig.name}: files of ${result.request.id}: ${errorMessage(e)}`);
      }
    }
    if (result.created) {
      await this.o.hooks.record(
        'mq.submitted',
        result.request,
        { head, bead: req.bead ?? '', superseded: result.superseded },
        `merge request ${result.request.id} for ${req.branch} (${head.slice(0, 10)}) submitted by ${actor}${result.superseded.length ? `, replacing ${result.superseded.join(', ')}` : ''}`,
      );
      this.engines.get(rig.name)?.kick();
    }
    return result;
  }

  async reject(actor: string, id: string, reason: string): Promise<MergeRequest> {
    const mr = await this.o.queue.reject(id, reason || `rejected by ${actor}`);
    await this.o.hooks.record(
      'mq.rejected',
      mr,
      { by: actor, reason },
      `merge request ${id} rejected by ${actor}${reason ? `: ${reason}` : ''}`,
    );
    this.engines.get(mr.rig)?.kick();
    return mr;
  }

  async retry(actor: string, id: string): Promise<MergeRequest> {
    const mr = await this.o.queue.retry(id);
    await this.o.hooks.record(
      'mq.submitted',
      mr,
      { retry: mr.retries, by: actor },
      `merge request ${id} queued again by ${actor} (retry ${mr.retries})`,
    );
    this.engines.get(mr.rig)?.kick();
    return mr;
  }

  async stats(rig?: string): Promise<RigStats[]> {
    const names = rig ? [this.rig(rig).name] : [...this.rigs.keys()];
    const out: RigStats[] = [];
    for (const n of names) out.push(await this.o.queue.stats(n));
    return out;
  }
}
