/**
 * In-memory store: the reference implementation of the Store contract. Used
 * by tests and as the fastest backend for throwaway cities. Every operation
 * runs synchronously inside its promise, so each one is atomic.
 */
import {
  ConflictError,
  NotFoundError,
  ValidationError,
  newBeadId,
  systemClock,
  type Clock,
} from '../core/index.js';
import { MemoryRecords } from './memory-records.js';
import { beadToRow, newRow, rowToBead, type Row } from './memory-rows.js';
import type { Store } from './store.js';
import {
  BLOCKING_DEP_TYPES,
  PARENT_CHILD,
  ROUTED_TO,
  type Bead,
  type BeadCounts,
  type BeadFilter,
  type BeadStatus,
  type ClaimOptions,
  type CloseOptions,
  type CloseResult,
  type CreateBeadInput,
  type Dependency,
  type ListQuery,
  type Page,
  type ReadyQuery,
  type UnclaimOptions,
  type UpdateBeadInput,
  type Workload,
  type OutboxRow,
  type WriteRecord,
} from './types.js';
import {
  DEFAULT_LEASE_MS,
  checkActor,
  checkLease,
  checkMetadataKey,
  checkMetadata,
  checkType,
  decideClaim,
  decodeCursor,
  encodeCursor,
  hasFilter,
  isBlockingType,
  isInfraType,
  zeroCounts,
  normalizeCreate,
  normalizeBatch,
  resolveBatch,
  type NormalizedCreate,
  normalizeUpdate,
  pageSize,
  statusList,
  decideUnclaim,
} from './validate.js';

export interface MemoryStoreOptions {
  prefix?: string;
  clock?: Clock;
  defaultLeaseMs?: number;
}

export class MemoryStore implements Store {
  readonly backend = 'memory';
  private readonly rows = new Map<string, Row>();
  /** issue -> (dependsOn -> type) */
  private readonly down = new Map<string, Map<string, string>>();
  /** dependsOn -> issues */
  private readonly up = new Map<string, Set<string>>();
  private seq = 0;
  private disposed = false;
  private readonly prefix: string;
  private readonly clock: Clock;
  private readonly defaultLeaseMs: number;
  private readonly records: MemoryRecords;

  constructor(options: MemoryStoreOptions = {}) {
    this.prefix = options.prefix ?? 'gc';
    this.clock = options.clock ?? systemClock;
    this.records = new MemoryRecords(() => this.clock.now());
    this.defaultLeaseMs = options.defaultLeaseMs ?? DEFAULT_LEASE_MS;
  }

  /**
   * Hold beads kept elsewhere (an exec script's store), each at its place in
   * creation order, with the dependencies among them; dependencies on beads
   * not given are left out. Entries come in `seq` order (lists page by it).
   */
  loadBeads(entries: readonly { bead: Bead; seq: number }[]): void {
    for (const { bead, seq } of entries) {
      this.rows.set(bead.id, beadToRow(bead, seq));
      if (seq > this.seq) this.seq = seq;
    }
    for (const { bead } of entries) {
      for (const d of bead.dependencies) {
        if (this.rows.has(d.depends_on_id)) this.link(bead.id, d.depends_on_id, d.type);
      }
    }
  }

  private live(): void {
    if (this.disposed) throw new ConflictError('store is disposed');
  }

  private row(id: string): Row {
    const r = this.rows.get(id);
    if (!r) throw new NotFoundError('bead', id);
    return r;
  }

  private toBead(r: Row): Bead {
    return rowToBead(r, this.down.get(r.id));
  }

  create(input: CreateBeadInput, rec?: WriteRecord<Bead>): Promise<Bead> {
    return this.write(() => {
      const n = normalizeCreate(input);
      for (const need of n.needs) this.row(need.id);
      if (n.parent) this.row(n.parent);
      return this.toBead(this.insert(n));
    }, rec);
  }

  createMany(inputs: readonly CreateBeadInput[], rec?: WriteRecord<Bead[]>): Promise<Bead[]> {
    return this.write(() => {
      // Everything is checked before the first row is made: all or none.
      const batch = normalizeBatch(inputs);
      for (const b of batch) for (const id of b.outside) this.row(id);
      const ids: string[] = [];
      const rows = batch.map((b) => {
        const r = this.insert(resolveBatch(b.n, ids));
        ids.push(r.id);
        return r;
      });
      return rows.map((r) => this.toBead(r));
    }, rec);
  }

  private insert(n: NormalizedCreate): Row {
    let id = newBeadId(this.prefix, this.rows.size);
    for (let extra = 1; this.rows.has(id); extra++) {
      id = newBeadId(this.prefix, this.rows.size, extra);
    }
    const r = newRow(++this.seq, id, n, this.clock.now());
    this.rows.set(id, r);
    if (n.parent) this.link(id, n.parent, PARENT_CHILD);
    for (const need of n.needs) this.link(id, need.id, need.type);
    return r;
  }

  get(id: string): Promise<Bead> {
    return this.run(() => this.toBead(this.row(id)));
  }

  getMany(ids: readonly string[]): Promise<Bead[]> {
    return this.run(() =>
      ids.flatMap((id) => {
        const r = this.rows.get(id);
        return r ? [this.toBead(r)] : [];
      }),
    );
  }

  update(id: string, patch: UpdateBeadInput, rec?: WriteRecord<Bead>): Promise<Bead> {
    return this.write(() => {
      const p = normalizeUpdate(patch);
      const r = this.row(id);
      if (p.parent !== undefined && p.parent !== '' && p.parent !== r.parent) {
        this.row(p.parent);
        this.checkNoCycle(id, p.parent);
      }
      const now = this.clock.now();
      if (p.title !== undefined) r.title = p.title;
      if (p.priority !== undefined) r.priority = p.priority;
      if (p.description !== undefined) r.description = p.description;
      if (p.assignee !== undefined) r.assignee = p.assignee;
      if (p.type !== undefined) r.type = p.type;
      if (p.ref !== undefined) r.ref = p.ref;
      for (const l of p.labels ?? []) r.labels.add(l);
      for (const l of p.remove_labels ?? []) r.labels.delete(l);
      for (const [k, v] of Object.entries(p.metadata ?? {})) r.metadata.set(k, v);
      if (p.parent !== undefined && p.parent !== r.parent) {
        if (r.parent) this.unlink(id, r.parent);
        r.parent = p.parent;
        if (p.parent) this.link(id, p.parent, PARENT_CHILD);
      }
      if (p.status !== undefined) this.setStatus(r, p.status, now);
      r.updatedAt = now;
      return this.toBead(r);
    }, rec);
  }

  private setStatus(r: Row, status: BeadStatus, now: number): void {
    if (status === r.status) return;
    if (status === 'closed') r.closedAt = now;
    else r.closedAt = null;
    if (status !== 'in_progress') {
      r.claimedAt = null;
      r.leaseExpiresAt = null;
    }
    r.status = status;
  }

  close(
    id: string,
    options: CloseOptions = {},
    rec?: WriteRecord<CloseResult>,
  ): Promise<CloseResult> {
    return this.write(() => {
      const r = this.row(id);
      if (r.status === 'closed') return { bead: this.toBead(r), changed: false };
      const now = this.clock.now();
      this.setStatus(r, 'closed', now);
      r.closeReason = options.reason ?? '';
      r.updatedAt = now;
      return { bead: this.toBead(r), changed: true };
    }, rec);
  }

  delete(id: string, rec?: WriteRecord<void>): Promise<void> {
    return this.write(() => {
      this.row(id);
      for (const dep of [...(this.down.get(id)?.keys() ?? [])]) this.unlink(id, dep);
      for (const issue of [...(this.up.get(id) ?? [])]) {
        this.unlink(issue, id);
        const child = this.rows.get(issue);
        if (child && child.parent === id) child.parent = '';
      }
      this.rows.delete(id);
    }, rec);
  }

  private matches(r: Row, f: BeadFilter & { statuses?: BeadStatus[] | undefined }): boolean {
    if (f.statuses && !f.statuses.includes(r.status)) return false;
    if (f.assignee !== undefined && r.assignee !== f.assignee) return false;
    if (f.unassigned && r.assignee !== '') return false;
    if (f.type !== undefined && r.type !== f.type) return false;
    if (f.work && isInfraType(r.type)) return false;
    if (f.label !== undefined && !r.labels.has(f.label)) return false;
    if (f.parent !== undefined && r.parent !== f.parent) return false;
    for (const [k, v] of Object.entries(f.metadata ?? {})) {
      if (r.metadata.get(k) !== v) return false;
    }
    return true;
  }

  list(query: ListQuery): Promise<Page<Bead>> {
    return this.run(() => {
      if (!hasFilter(query) && !query.scan) {
        throw new ValidationError(
          'a list with no filter walks every bead; pass a filter, or scan: true to mean it',
          { where: 'list' },
        );
      }
      const limit = pageSize(query.limit);
      const after = decodeCursor(query.cursor, 1)?.[0] ?? 0;
      const f = { ...query, statuses: statusList(query.status) };
      const out: Row[] = [];
      for (const r of this.rows.values()) {
        if (r.seq <= after || !this.matches(r, f)) continue;
        out.push(r);
        if (out.length > limit) break;
      }
      return this.page(out, limit, (r) => [r.seq]);
    });
  }

  private page(rows: Row[], limit: number, key: (r: Row) => number[]): Page<Bead> {
    const items = rows.slice(0, limit);
    const last = items[items.length - 1];
    return {
      items: items.map((r) => this.toBead(r)),
      next_cursor: rows.length > limit && last ? encodeCursor(key(last)) : null,
    };
  }

  /** Blocked = an unclosed blocking dependency, or a blocked parent. */
  private isBlocked(id: string, memo: Map<string, boolean>): boolean {
    const known = memo.get(id);
    if (known !== undefined) return known;
    memo.set(id, false); // cycle guard
    let blocked = false;
    for (const [dep, type] of this.down.get(id) ?? []) {
      const target = this.rows.get(dep);
      if (!target) continue;
      if (BLOCKING_DEP_TYPES.has(type) && target.status !== 'closed') blocked = true;
      else if (type === PARENT_CHILD && this.isBlocked(dep, memo)) blocked = true;
      if (blocked) break;
    }
    memo.set(id, blocked);
    return blocked;
  }

  private readyRows(q: ReadyQuery): Row[] {
    const memo = new Map<string, boolean>();
    const out: Row[] = [];
    for (const r of this.rows.values()) {
      if (r.status !== 'open' || isInfraType(r.type)) continue;
      if (!this.matches(r, q) || this.isBlocked(r.id, memo)) continue;
      out.push(r);
    }
    return out.sort((a, b) => a.priority - b.priority || a.seq - b.seq);
  }

  ready(query: ReadyQuery = {}): Promise<Page<Bead>> {
    return this.run(() => {
      const limit = pageSize(query.limit);
      const after = decodeCursor(query.cursor, 2);
      let rows = this.readyRows(query);
      if (after) {
        const [p, s] = after as [number, number];
        rows = rows.filter((r) => r.priority > p || (r.priority === p && r.seq > s));
      }
      return this.page(rows.slice(0, limit + 1), limit, (r) => [r.priority, r.seq]);
    });
  }

  children(parentId: string, query: { limit?: number; cursor?: string } = {}): Promise<Page<Bead>> {
    return this.list({ ...query, parent: parentId });
  }

  count(filter: BeadFilter = {}): Promise<number> {
    return this.run(() => {
      const f = { ...filter, statuses: statusList(filter.status) };
      let n = 0;
      for (const r of this.rows.values()) if (this.matches(r, f)) n++;
      return n;
    });
  }

  countReady(query: ReadyQuery = {}): Promise<number> {
    return this.run(() => this.readyRows(query).length);
  }

  counts(): Promise<BeadCounts> {
    return this.run(() => {
      const c = zeroCounts();
      for (const r of this.rows.values()) {
        if (isInfraType(r.type)) {
          c.other++;
          continue;
        }
        c[r.status]++;
        c.total++;
      }
      c.ready = this.readyRows({}).length;
      return c;
    });
  }

  workload(): Promise<Workload> {
    return this.run(() => {
      const memo = new Map<string, boolean>();
      const routed = new Map<string, { ready: number; in_progress: number }>();
      const claims = new Map<string, number>();
      for (const r of this.rows.values()) {
        if (r.status === 'closed') continue;
        if (r.status === 'in_progress' && r.assignee) {
          claims.set(r.assignee, (claims.get(r.assignee) ?? 0) + 1);
        }
        const to = r.metadata.get(ROUTED_TO);
        if (to === undefined) continue;
        const w = routed.get(to) ?? { ready: 0, in_progress: 0 };
        if (r.status === 'in_progress') w.in_progress++;
        else if (!r.assignee && !isInfraType(r.type) && !this.isBlocked(r.id, memo)) w.ready++;
        routed.set(to, w);
      }
      return {
        routed: [...routed]
          .sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([routed_to, w]) => ({ routed_to, ...w })),
        claims: [...claims]
          .sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([assignee, in_progress]) => ({ assignee, in_progress })),
      };
    });
  }

  setMetadata(id: string, key: string, value: string, rec?: WriteRecord<Bead>): Promise<Bead> {
    return this.write(() => {
      checkMetadataKey(key);
      const v = checkMetadata({ [key]: value })[key] ?? '';
      const r = this.row(id);
      r.metadata.set(key, v);
      r.updatedAt = this.clock.now();
      return this.toBead(r);
    }, rec);
  }

  private link(issue: string, dep: string, type: string): void {
    let m = this.down.get(issue);
    if (!m) this.down.set(issue, (m = new Map<string, string>()));
    m.set(dep, type);
    let s = this.up.get(dep);
    if (!s) this.up.set(dep, (s = new Set<string>()));
    s.add(issue);
  }

  private unlink(issue: string, dep: string): void {
    this.down.get(issue)?.delete(dep);
    this.up.get(dep)?.delete(issue);
  }

  /** Refuse a blocking edge issue -> dep if dep already (transitively) waits on issue. */
  private checkNoCycle(issue: string, dep: string): void {
    const seen = new Set<string>();
    const stack = [dep];
    while (stack.length) {
      const cur = stack.pop() as string;
      if (cur === issue) {
        throw new ConflictError(`dependency ${issue} -> ${dep} would create a cycle`, {
          details: { issue_id: issue, depends_on_id: dep },
        });
      }
      if (seen.has(cur)) continue;
      seen.add(cur);
      for (const [next, type] of this.down.get(cur) ?? [])
        if (isBlockingType(type)) stack.push(next);
    }
  }

  addDependency(
    issueId: string,
    dependsOnId: string,
    type = 'blocks',
    rec?: WriteRecord<void>,
  ): Promise<void> {
    return this.write(() => {
      checkType(type);
      if (issueId === dependsOnId) {
        throw new ValidationError('a bead cannot depend on itself', { where: 'dependency' });
      }
      this.row(issueId);
      this.row(dependsOnId);
      const existing = this.down.get(issueId)?.get(dependsOnId);
      if (existing === type) return;
      if (isBlockingType(type)) this.checkNoCycle(issueId, dependsOnId);
      this.link(issueId, dependsOnId, type);
    }, rec);
  }

  removeDependency(issueId: string, dependsOnId: string, rec?: WriteRecord<void>): Promise<void> {
    return this.write(() => {
      this.row(issueId);
      const r = this.rows.get(issueId);
      if (
        r &&
        r.parent === dependsOnId &&
        this.down.get(issueId)?.get(dependsOnId) === PARENT_CHILD
      ) {
        r.parent = '';
      }
      this.unlink(issueId, dependsOnId);
    }, rec);
  }

  listDependencies(id: string, direction: 'down' | 'up'): Promise<Dependency[]> {
    return this.run(() => {
      this.row(id);
      if (direction === 'down') {
        return [...(this.down.get(id) ?? [])].map(([dep, type]) => ({
          issue_id: id,
          depends_on_id: dep,
          type,
        }));
      }
      return [...(this.up.get(id) ?? [])].map((issue) => ({
        issue_id: issue,
        depends_on_id: id,
        type: this.down.get(issue)?.get(id) ?? 'blocks',
      }));
    });
  }

  private claimRow(r: Row, actor: string, leaseMs: number): void {
    const now = this.clock.now();
    const { renew } = decideClaim(
      { id: r.id, status: r.status, assignee: r.assignee, leaseExpiresAt: r.leaseExpiresAt },
      actor,
      now,
    );
    if (!renew) {
      r.attempt++;
      r.claimedAt = now;
    }
    r.assignee = actor;
    r.status = 'in_progress';
    r.leaseExpiresAt = now + leaseMs;
    r.updatedAt = now;
  }

  claim(
    id: string,
    actor: string,
    options: ClaimOptions = {},
    rec?: WriteRecord<Bead>,
  ): Promise<Bead> {
    return this.write(() => {
      checkActor(actor, 'actor');
      if (actor === '') throw new ValidationError('must not be empty', { where: 'actor' });
      const lease = checkLease(options.leaseMs, this.defaultLeaseMs);
      const r = this.row(id);
      this.claimRow(r, actor, lease);
      return this.toBead(r);
    }, rec);
  }

  claimNextReady(
    actor: string,
    query: ReadyQuery & ClaimOptions = {},
    rec?: WriteRecord<Bead | null>,
  ): Promise<Bead | null> {
    return this.write(() => {
      checkActor(actor, 'actor');
      if (actor === '') throw new ValidationError('must not be empty', { where: 'actor' });
      const lease = checkLease(query.leaseMs, this.defaultLeaseMs);
      const candidates = this.readyRows(query);
      for (const r of candidates) {
        if (r.assignee !== '' && r.assignee !== actor) continue;
        this.claimRow(r, actor, lease);
        return this.toBead(r);
      }
      return null;
    }, rec);
  }

  renewClaim(id: string, actor: string, options: ClaimOptions = {}): Promise<Bead> {
    return this.run(() => {
      const lease = checkLease(options.leaseMs, this.defaultLeaseMs);
      const r = this.row(id);
      if (r.status !== 'in_progress' || r.assignee !== actor) {
        throw new ConflictError(`bead ${id} is not claimed by ${actor}`, {
          details: { id, holder: r.assignee, status: r.status },
        });
      }
      const now = this.clock.now();
      r.leaseExpiresAt = now + lease;
      r.updatedAt = now;
      return this.toBead(r);
    });
  }

  private unclaimRow(r: Row): void {
    r.status = 'open';
    r.assignee = '';
    r.claimedAt = null;
    r.leaseExpiresAt = null;
    r.updatedAt = this.clock.now();
  }

  unclaim(id: string, options: UnclaimOptions = {}, rec?: WriteRecord<Bead>): Promise<Bead> {
    return this.write(() => {
      const r = this.row(id);
      if (decideUnclaim(r, options)) this.unclaimRow(r);
      return this.toBead(r);
    }, rec);
  }

  releaseClaims(actor: string, rec?: WriteRecord<Bead[]>): Promise<Bead[]> {
    return this.write(() => {
      const out: Bead[] = [];
      for (const r of this.rows.values()) {
        if (r.status === 'in_progress' && r.assignee === actor) {
          this.unclaimRow(r);
          out.push(this.toBead(r));
        }
      }
      return out;
    }, rec);
  }

  releaseExpiredClaims(now = this.clock.now(), rec?: WriteRecord<Bead[]>): Promise<Bead[]> {
    return this.write(() => {
      const out: Bead[] = [];
      for (const r of this.rows.values()) {
        if (r.status === 'in_progress' && r.leaseExpiresAt !== null && r.leaseExpiresAt <= now) {
          this.unclaimRow(r);
          out.push(this.toBead(r));
        }
      }
      return out;
    }, rec);
  }

  outbox(limit = 1000, afterId = 0): Promise<OutboxRow[]> {
    return this.run(() => this.records.outbox(limit, afterId));
  }

  ackOutbox(throughId: number): Promise<void> {
    return this.run(() => this.records.ack(throughId));
  }

  dispose(): Promise<void> {
    this.disposed = true;
    return Promise.resolve();
  }

  private write<T>(fn: () => T, rec: WriteRecord<T> | undefined): Promise<T> {
    return this.run(() => this.records.apply(fn, rec));
  }

  private run<T>(fn: () => T): Promise<T> {
    try {
      this.live();
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }
}
