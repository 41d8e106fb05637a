/**
 * The work store through a user script (`[beads] provider = "exec:<script>"`),
 * Gas City's exec beads protocol (REFERENCE.md 2). The script gets the
 * operation as argv (never through a shell), JSON on stdin, and prints JSON
 * on stdout. Exit 0 = success, 2 = unsupported (treated as success where gc
 * can do without an answer), anything else = failure, described by stderr;
 * stderr saying "not found" or "no issue found" is a NotFoundError.
 *
 * The script keeps the beads; gc keeps the contract. Each operation reads
 * what it needs from the script into a memory store (the reference
 * implementation of the contract), runs there, and sends the script the
 * difference: `create`, `update`, `close`, `delete --force`, `dep-add`,
 * `dep-remove`. So every backend refuses the same inputs, claims follow the
 * same lease and attempt rules, and ready, lists, counts and cursors mean
 * the same thing. What the beads fields cannot hold (lease, attempt, close
 * reason, gc's clock) travels in the `gc.store` metadata key (exec-beads.ts).
 *
 * Writes run one at a time in this process, so a claim is a compare-and-set
 * for every caller of this server; another process writing through the
 * same script at the same moment is not fenced (the city's one server is
 * its only writer). Reads ask the script for every bead (`list`): an exec
 * store is for compatibility with existing trackers, not for scale.
 * Events and request results of writes (WriteRecord) are kept in memory
 * until the city appends them to its event log.
 */
import {
  ConflictError,
  GcError,
  NotFoundError,
  UnsupportedError,
  checkScript,
  runScript,
  systemClock,
  type Clock,
  type ScriptOptions,
} from '../core/index.js';
import {
  checkNotReserved,
  createRequest,
  dependencyChanges,
  fromScript,
  listFromScript,
  updateRequest,
} from './exec-beads.js';
import { MemoryRecords } from './memory-records.js';
import { MemoryStore } from './memory.js';
import type { Store } from './store.js';
import type {
  Bead,
  BeadCounts,
  BeadFilter,
  ClaimOptions,
  CloseOptions,
  CloseResult,
  CreateBeadInput,
  Dependency,
  ListQuery,
  OutboxRow,
  Page,
  ReadyQuery,
  UnclaimOptions,
  UpdateBeadInput,
  Workload,
  WriteRecord,
} from './types.js';
import { DEFAULT_LEASE_MS, normalizeBatch } from './validate.js';

/** `env` carries GC_STORE_ROOT, GC_STORE_SCOPE and GC_BEADS_PREFIX. */
export interface ExecStoreOptions extends ScriptOptions {
  prefix?: string;
  clock?: Clock;
  defaultLeaseMs?: number;
}
/** Places in creation order per millisecond (see `snapshot`). */
const PER_MS = 4096;

/** Which beads an operation reads before it runs: every one, or the ids named. */
type Scope = 'all' | string[];

export class ExecStore implements Store {
  readonly backend = 'exec';
  private readonly clock: Clock;
  private readonly records: MemoryRecords;
  private tail: Promise<unknown> = Promise.resolve();
  private disposed = false;

  constructor(
    readonly script: string,
    private readonly options: ExecStoreOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.records = new MemoryRecords(() => this.clock.now());
  }

  /** Check the script, then run the optional `ensure-ready` op (exit 2 = not needed). */
  async open(): Promise<this> {
    await checkScript('beads', this.script);
    await this.call('ensure-ready', []);
    return this;
  }

  /** Run one op; undefined when the script says it does not support it (exit 2). */
  private async call(op: string, args: string[], input = ''): Promise<string | undefined> {
    if (this.disposed) throw new ConflictError('store is disposed');
    const r = await runScript('beads', this.script, [op, ...args], input, {
      ...this.options,
      env: { GC_BEADS_PREFIX: this.options.prefix ?? 'gc', ...this.options.env },
    });
    if (r.code === 2) return undefined;
    if (r.code !== 0) {
      const message = r.stderr.trim() || `exit status ${r.code}`;
      if (/not found|no issue found/i.test(message) && args[0]) {
        throw new NotFoundError('bead', args.find((a) => !a.startsWith('--')) ?? args[0]);
      }
      throw new GcError('unavailable', `beads script ${op} failed: ${message}`, {
        details: { op, exit: r.code },
      });
    }
    return r.stdout.trim();
  }

  /** An op whose answer gc needs: exit 2 is an error here. */
  private async need(op: string, args: string[], input = ''): Promise<string> {
    const out = await this.call(op, args, input);
    if (out === undefined) throw new UnsupportedError(`beads script does not support ${op}`);
    return out;
  }

  private async scriptGet(id: string): Promise<Bead> {
    const out = await this.need('get', [id]);
    if (!out) throw new NotFoundError('bead', id);
    return fromScript(JSON.parse(out) as unknown, 'get');
  }

  private async all(): Promise<Bead[]> {
    return listFromScript(await this.need('list', []), 'list');
  }

  /**
   * A memory store holding the beads in scope, in creation order: by
   * creation time, then the script's own order (a script lists in the
   * order it stored). The place is a number, so cursors stay valid across
   * reads while beads are added.
   */
  private async snapshot(scope: Scope): Promise<{ snap: MemoryStore; ids: string[] }> {
    let beads: Bead[];
    if (scope === 'all') beads = await this.all();
    else {
      beads = [];
      for (const id of new Set(scope)) {
        try {
          beads.push(await this.scriptGet(id));
        } catch (e) {
          if (!(e instanceof NotFoundError)) throw e;
        }
      }
    }
    const order = beads
      .map((bead, i) => ({ bead, i, t: Date.parse(bead.created_at) || 0 }))
      .sort((a, b) => a.t - b.t || a.i - b.i);
    // Unique and increasing: beads sharing a timestamp take the next places
    // (a tracker importing thousands at once spills into the following ms).
    let prev = 0;
    const entries = order.map(({ bead, t }) => {
      prev = Math.max(prev + 1, t * PER_MS + 1);
      return { bead, seq: prev };
    });
    const snap = new MemoryStore({
      prefix: this.options.prefix ?? 'gc',
      clock: this.clock,
      defaultLeaseMs: this.options.defaultLeaseMs ?? DEFAULT_LEASE_MS,
    });
    snap.loadBeads(entries);
    return { snap, ids: entries.map((e) => e.bead.id) };
  }

  private async read<T>(fn: (snap: MemoryStore) => Promise<T>): Promise<T> {
    return fn((await this.snapshot('all')).snap);
  }

  /** One write at a time, with its record (events, the request's kept result). */
  private write<T>(fn: () => Promise<T>, rec: WriteRecord<T> | undefined): Promise<T> {
    const run = () => {
      if (this.disposed) throw new ConflictError('store is disposed');
      return this.records.applyAsync(fn, rec);
    };
    const p = this.tail.then(run, run);
    this.tail = p.catch(() => undefined);
    return p;
  }

  /**
   * Run `op` on the beads in scope, then send the script what changed. The
   * answer is the memory store's: what the script now holds.
   */
  private async mutate<T>(scope: Scope, op: (snap: MemoryStore) => Promise<T>): Promise<T> {
    const { snap, ids } = await this.snapshot(scope);
    const before = new Map((await snap.getMany(ids)).map((b) => [b.id, b]));
    const result = await op(snap);
    for (const after of await snap.getMany([...before.keys()])) {
      const was = before.get(after.id)!;
      await this.push(was, after);
    }
    return result;
  }

  /** Send the script one bead's change: a close, then an update, then dependencies. */
  private async push(before: Bead, after: Bead): Promise<void> {
    const closing = before.status !== 'closed' && after.status === 'closed';
    if (closing) await this.call('close', [after.id]);
    const patch = updateRequest(closing ? { ...before, status: 'closed' } : before, after);
    if (patch) await this.call('update', [after.id], JSON.stringify(patch));
    const deps = dependencyChanges(before, after);
    for (const d of deps.remove) await this.call('dep-remove', [d.issue_id, d.depends_on_id]);
    for (const d of deps.add) await this.call('dep-add', [d.issue_id, d.depends_on_id, d.type]);
  }

  create(input: CreateBeadInput, rec?: WriteRecord<Bead>): Promise<Bead> {
    return this.write(() => this.createOne(input), rec);
  }

  /**
   * The script has no batch op: the beads are made one by one, inside one
   * write of this store (no claim through it runs in between), and the ones
   * made are deleted again when a later one fails.
   */
  createMany(inputs: readonly CreateBeadInput[], rec?: WriteRecord<Bead[]>): Promise<Bead[]> {
    return this.write(async () => {
      normalizeBatch(inputs);
      const made: Bead[] = [];
      const real = (id: string) => (/^#\d+$/.test(id) ? made[Number(id.slice(1))]!.id : id);
      try {
        for (const input of inputs) {
          const needs = input.needs?.map((n) => {
            const colon = n.lastIndexOf(':');
            return colon < 0 ? real(n.trim()) : `${n.slice(0, colon)}:${real(n.slice(colon + 1))}`;
          });
          made.push(
            await this.createOne({
              ...input,
              ...(input.parent ? { parent: real(input.parent) } : {}),
              ...(needs ? { needs } : {}),
            }),
          );
        }
      } catch (e) {
        for (const b of made.reverse()) {
          await this.call('delete', ['--force', b.id]).catch(() => undefined);
        }
        throw e;
      }
      return made;
    }, rec);
  }

  private async createOne(input: CreateBeadInput): Promise<Bead> {
    checkNotReserved(input.metadata);
    const refs = [...(input.needs ?? []).map((n) => n.slice(n.lastIndexOf(':') + 1))];
    if (input.parent) refs.push(input.parent);
    // The memory store checks the input and fills the bead; the script makes the id.
    const planned = await (await this.snapshot(refs)).snap.create(input);
    const made = fromScript(
      JSON.parse(await this.need('create', [], JSON.stringify(createRequest(planned)))),
      'create',
    );
    try {
      const wanted = { ...planned, id: made.id };
      wanted.dependencies = planned.dependencies.map((d) => ({ ...d, issue_id: made.id }));
      // A script that ignored `needs`, or a bead born closed or claimed: finish it here.
      const deps = dependencyChanges(made, wanted);
      if (updateRequest(made, wanted) || deps.add.length || deps.remove.length) {
        await this.push(made, wanted);
        return await this.scriptGet(made.id);
      }
      return made;
    } catch (e) {
      await this.call('delete', ['--force', made.id]).catch(() => undefined);
      throw e;
    }
  }

  get(id: string): Promise<Bead> {
    return this.scriptGet(id);
  }

  async getMany(ids: readonly string[]): Promise<Bead[]> {
    if (ids.length === 0) return [];
    const byId = new Map((await this.all()).map((b) => [b.id, b]));
    return ids.flatMap((id) => byId.get(id) ?? []);
  }

  update(id: string, patch: UpdateBeadInput, rec?: WriteRecord<Bead>): Promise<Bead> {
    return this.write(() => {
      checkNotReserved(patch.metadata);
      // A new parent is checked for cycles against every bead.
      const scope: Scope = patch.parent ? 'all' : [id];
      return this.mutate(scope, (s) => s.update(id, patch));
    }, rec);
  }

  close(id: string, options?: CloseOptions, rec?: WriteRecord<CloseResult>): Promise<CloseResult> {
    return this.write(() => this.mutate([id], (s) => s.close(id, options)), rec);
  }

  delete(id: string, rec?: WriteRecord<void>): Promise<void> {
    return this.write(async () => {
      await this.scriptGet(id);
      await this.need('delete', ['--force', id]);
    }, rec);
  }

  list(query: ListQuery): Promise<Page<Bead>> {
    return this.read((s) => s.list(query));
  }

  ready(query?: ReadyQuery): Promise<Page<Bead>> {
    return this.read((s) => s.ready(query));
  }

  children(parentId: string, query?: { limit?: number; cursor?: string }): Promise<Page<Bead>> {
    return this.read((s) => s.children(parentId, query));
  }

  count(filter?: BeadFilter): Promise<number> {
    return this.read((s) => s.count(filter));
  }

  countReady(query?: ReadyQuery): Promise<number> {
    return this.read((s) => s.countReady(query));
  }

  counts(): Promise<BeadCounts> {
    return this.read((s) => s.counts());
  }

  workload(): Promise<Workload> {
    return this.read((s) => s.workload());
  }

  setMetadata(id: string, key: string, value: string, rec?: WriteRecord<Bead>): Promise<Bead> {
    return this.write(() => {
      checkNotReserved(undefined, key);
      return this.mutate([id], (s) => s.setMetadata(id, key, value));
    }, rec);
  }

  addDependency(
    issueId: string,
    dependsOnId: string,
    type?: string,
    rec?: WriteRecord<void>,
  ): Promise<void> {
    return this.write(
      () => this.mutate('all', (s) => s.addDependency(issueId, dependsOnId, type)),
      rec,
    );
  }

  removeDependency(issueId: string, dependsOnId: string, rec?: WriteRecord<void>): Promise<void> {
    return this.write(
      () => this.mutate([issueId, dependsOnId], (s) => s.removeDependency(issueId, dependsOnId)),
      rec,
    );
  }

  listDependencies(id: string, direction: 'down' | 'up'): Promise<Dependency[]> {
    return this.read((s) => s.listDependencies(id, direction));
  }

  claim(id: string, actor: string, options?: ClaimOptions, rec?: WriteRecord<Bead>): Promise<Bead> {
    return this.write(() => this.mutate([id], (s) => s.claim(id, actor, options)), rec);
  }

  claimNextReady(
    actor: string,
    query?: ReadyQuery & ClaimOptions,
    rec?: WriteRecord<Bead | null>,
  ): Promise<Bead | null> {
    return this.write(() => this.mutate('all', (s) => s.claimNextReady(actor, query)), rec);
  }

  renewClaim(id: string, actor: string, options?: ClaimOptions): Promise<Bead> {
    return this.write(() => this.mutate([id], (s) => s.renewClaim(id, actor, options)), undefined);
  }

  unclaim(id: string, options?: UnclaimOptions, rec?: WriteRecord<Bead>): Promise<Bead> {
    return this.write(() => this.mutate([id], (s) => s.unclaim(id, options)), rec);
  }

  releaseClaims(actor: string, rec?: WriteRecord<Bead[]>): Promise<Bead[]> {
    return this.write(() => this.mutate('all', (s) => s.releaseClaims(actor)), rec);
  }

  releaseExpiredClaims(now?: number, rec?: WriteRecord<Bead[]>): Promise<Bead[]> {
    return this.write(() => this.mutate('all', (s) => s.releaseExpiredClaims(now)), rec);
  }

  outbox(limit = 1000, afterId = 0): Promise<OutboxRow[]> {
    return Promise.resolve(this.records.outbox(limit, afterId));
  }

  ackOutbox(throughId: number): Promise<void> {
    this.records.ack(throughId);
    return Promise.resolve();
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    await this.tail;
    await this.call('shutdown', []).catch(() => undefined);
    this.disposed = true;
  }
}
