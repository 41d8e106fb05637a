/**
 * Store conformance suite: every backend must pass it. Call
 * `runStoreConformance(name, factory)` from a test file; the factory gets a
 * controllable clock and returns a fresh, empty store.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  AlreadyClaimedError,
  ConflictError,
  FakeClock,
  NotFoundError,
  TooLargeError,
  ValidationError,
} from '../core/index.js';
import { runBatchConformance } from './conformance-batch.js';
import type { Store } from './store.js';
import type { Bead } from './types.js';

export type StoreFactory = (options: { clock: FakeClock; prefix: string }) => Promise<Store>;

export interface StoreConformanceOptions {
  /**
   * How many concurrent creates and claims the burst cases run (default
   * 300 creates, 60 beads for 25 claimers). A store whose every write
   * starts a process (exec) runs fewer; the cases are the same.
   */
  burst?: number;
  /** Whether readers never see part of a `createMany` (default true; see conformance-batch.ts). */
  batchWholeToReaders?: boolean;
}

export function runStoreConformance(
  name: string,
  factory: StoreFactory,
  options: StoreConformanceOptions = {},
): void {
  const burst = options.burst ?? 300;
  const beadsToClaim = Math.min(60, burst);
  describe(`Store conformance: ${name}`, () => {
    let store: Store;
    let clock: FakeClock;
    const opened: Store[] = [];

    async function fresh(): Promise<Store> {
      clock = new FakeClock();
      store = await factory({ clock, prefix: 'tc' });
      opened.push(store);
      return store;
    }

    afterEach(async () => {
      for (const s of opened.splice(0)) await s.dispose();
    });

    const ids = (beads: Bead[]): string[] => beads.map((b) => b.id);
    const tick = (): void => clock.advance(1000);

    describe('create and get', () => {
      it('fills id, status, type, priority and created_at', async () => {
        const s = await fresh();
        const b = await s.create({ title: 'first' });
        expect(b.id).toMatch(/^tc-[0-9a-z]{4,}$/);
        expect(b.status).toBe('open');
        expect(b.issue_type).toBe('task');
        expect(b.priority).toBe(2);
        expect(Date.parse(b.created_at)).toBe(clock.now());
        expect(b.assignee).toBe('');
        expect(b.attempt).toBe(0);
        expect(await s.get(b.id)).toEqual(b);
      });

      it('round-trips every field', async () => {
        const s = await fresh();
        const parent = await s.create({ title: 'epic', type: 'epic' });
        const b = await s.create({
          title: 'He said "hi"; it\'s `fine` $(x)\nsecond line ✓ 漢字 🚀',
          type: 'bug',
          priority: 0,
          description: 'x'.repeat(64 * 1024) + '\n"quoted"\t\u0001',
          assignee: 'alice',
          from: 'mayor',
          parent: parent.id,
          ref: 'refs/heads/x',
          labels: ['b', 'a', 'a'],
          metadata: { k: 'v', empty: '' },
        });
        const got = await s.get(b.id);
        expect(got.title).toBe('He said "hi"; it\'s `fine` $(x)\nsecond line ✓ 漢字 🚀');
        expect(got.description).toBe('x'.repeat(64 * 1024) + '\n"quoted"\t\u0001');
        expect(got.issue_type).toBe('bug');
        expect(got.priority).toBe(0);
        expect(got.assignee).toBe('alice');
        expect(got.from).toBe('mayor');
        expect(got.parent).toBe(parent.id);
        expect(got.ref).toBe('refs/heads/x');
        expect(got.labels).toEqual(['a', 'b']);
        expect(got.metadata).toEqual({ k: 'v', empty: '' });
        expect(got.dependencies).toEqual([
          { issue_id: b.id, depends_on_id: parent.id, type: 'parent-child' },
        ]);
      });

      it('what create answers is what get reads back', async () => {
        const s = await fresh();
        for (const input of [
          { title: 'plain' },
          {
            title: 'labels in byte order',
            labels: ['zeta', '\u{1F680}rocket', '\uFF5Ewide', 'Alpha', 'zeta'],
            metadata: { a: '1', b: '' },
            assignee: 'bob',
            from: 'carol',
            ref: 'r',
            description: 'd',
          },
          { title: 'born closed', status: 'closed' as const, type: 'message' },
        ]) {
          const b = await s.create(input);
          expect(await s.get(b.id)).toEqual(b);
        }
      });

      it('get of a missing bead is a NotFoundError', async () => {
        const s = await fresh();
        await expect(s.get('tc-nope')).rejects.toBeInstanceOf(NotFoundError);
      });

      it('getMany skips missing ids and keeps order', async () => {
        const s = await fresh();
        const a = await s.create({ title: 'a' });
        const b = await s.create({ title: 'b' });
        expect(ids(await s.getMany([b.id, 'tc-zzzz', a.id]))).toEqual([b.id, a.id]);
      });

      it('rejects bad input with the field named', async () => {
        const s = await fresh();
        await expect(s.create({ title: '' })).rejects.toThrow(/title/);
        await expect(s.create({ title: 'x', priority: 5 })).rejects.toBeInstanceOf(ValidationError);
        await expect(s.create({ title: 'x', priority: 1.5 })).rejects.toThrow(/priority/);
        await expect(s.create({ title: 'x', needs: ['tc-missing'] })).rejects.toBeInstanceOf(
          NotFoundError,
        );
        await expect(s.create({ title: 'x', parent: 'tc-missing' })).rejects.toBeInstanceOf(
          NotFoundError,
        );
        await expect(s.count()).resolves.toBe(0);
      });

      it('refuses over-limit sizes with a clear error', async () => {
        const s = await fresh();
        await expect(s.create({ title: 't'.repeat(5000) })).rejects.toBeInstanceOf(TooLargeError);
        await expect(
          s.create({ title: 'x', description: 'd'.repeat(1024 * 1024 + 1) }),
        ).rejects.toThrow(/description is 1048577 bytes; the limit is 1048576/);
      });

      it('ids stay unique across many creates', async () => {
        const s = await fresh();
        const made = await Promise.all(
          Array.from({ length: burst }, (_, i) => s.create({ title: `b${i}` })),
        );
        expect(new Set(ids(made)).size).toBe(burst);
      });
    });

    runBatchConformance(fresh, { wholeToReaders: options.batchWholeToReaders !== false });

    describe('close and update', () => {
      it('close is idempotent and removes the bead from ready', async () => {
        const s = await fresh();
        const b = await s.create({ title: 'x' });
        expect(ids((await s.ready()).items)).toEqual([b.id]);
        const first = await s.close(b.id, { reason: 'done' });
        expect(first.changed).toBe(true);
        expect(first.bead.status).toBe('closed');
        expect(first.bead.closed_at).not.toBeNull();
        expect(first.bead.close_reason).toBe('done');
        const second = await s.close(b.id);
        expect(second.changed).toBe(false);
        expect(second.bead.close_reason).toBe('done');
        expect((await s.ready()).items).toEqual([]);
        await expect(s.close('tc-missing')).rejects.toBeInstanceOf(NotFoundError);
      });

      it('absent fields do not change, labels append, metadata merges', async () => {
        const s = await fresh();
        const b = await s.create({
          title: 't',
          description: 'd',
          labels: ['a'],
          metadata: { x: '1', y: '2' },
        });
        tick();
        const u = await s.update(b.id, { labels: ['b'], metadata: { y: '3', z: '4' } });
        expect(u.title).toBe('t');
        expect(u.description).toBe('d');
        expect(u.labels).toEqual(['a', 'b']);
        expect(u.metadata).toEqual({ x: '1', y: '3', z: '4' });
        expect(Date.parse(u.updated_at)).toBe(clock.now());
        const r = await s.update(b.id, { remove_labels: ['a'], title: 'new', priority: 0 });
        expect(r.labels).toEqual(['b']);
        expect(r.title).toBe('new');
        expect(r.priority).toBe(0);
        await expect(s.update(b.id, { priority: -1 })).rejects.toBeInstanceOf(ValidationError);
        await expect(s.update('tc-missing', { title: 'x' })).rejects.toBeInstanceOf(NotFoundError);
      });

      it('status closed via update closes; moving out of closed reopens', async () => {
        const s = await fresh();
        const b = await s.create({ title: 't' });
        const closed = await s.update(b.id, { status: 'closed' });
        expect(closed.closed_at).not.toBeNull();
        const open = await s.update(b.id, { status: 'open' });
        expect(open.status).toBe('open');
        expect(open.closed_at).toBeNull();
        expect(ids((await s.ready()).items)).toEqual([b.id]);
      });

      it('metadata absent vs empty', async () => {
        const s = await fresh();
        const b = await s.create({ title: 't' });
        expect(b.metadata).toEqual({});
        expect('k' in b.metadata).toBe(false);
        const m = await s.setMetadata(b.id, 'k', '');
        expect(m.metadata).toEqual({ k: '' });
        expect((await s.setMetadata(b.id, 'k', 'v')).metadata).toEqual({ k: 'v' });
        await expect(s.setMetadata(b.id, '', 'v')).rejects.toBeInstanceOf(ValidationError);
      });

      it('delete removes the bead and unblocks its dependents', async () => {
        const s = await fresh();
        const a = await s.create({ title: 'a' });
        const b = await s.create({ title: 'b', needs: [a.id] });
        expect(ids((await s.ready()).items)).toEqual([a.id]);
        await s.delete(a.id);
        await expect(s.get(a.id)).rejects.toBeInstanceOf(NotFoundError);
        expect(ids((await s.ready()).items)).toEqual([b.id]);
        expect(await s.listDependencies(b.id, 'down')).toEqual([]);
      });
    });

    describe('list, children, counts', () => {
      it('refuses an unbounded list unless scan is asked for', async () => {
        const s = await fresh();
        await s.create({ title: 'x' });
        await expect(s.list({})).rejects.toThrow(/scan/);
        expect((await s.list({ scan: true })).items).toHaveLength(1);
      });

      it('filters alone and combined', async () => {
        const s = await fresh();
        const a = await s.create({ title: 'a', type: 'bug', labels: ['x'], assignee: 'al' });
        const b = await s.create({
          title: 'b',
          labels: ['x', 'y'],
          metadata: { 'gc.routed_to': 'w' },
        });
        const c = await s.create({ title: 'c', type: 'bug' });
        await s.close(c.id);
        expect(ids((await s.list({ type: 'bug' })).items)).toEqual([a.id, c.id]);
        expect(ids((await s.list({ label: 'x' })).items)).toEqual([a.id, b.id]);
        expect(ids((await s.list({ label: 'x', type: 'bug' })).items)).toEqual([a.id]);
        expect(ids((await s.list({ status: 'closed' })).items)).toEqual([c.id]);
        expect(ids((await s.list({ status: ['open', 'closed'], type: 'bug' })).items)).toEqual([
          a.id,
          c.id,
        ]);
        expect(ids((await s.list({ assignee: 'al' })).items)).toEqual([a.id]);
        expect(ids((await s.list({ unassigned: true, status: 'open' })).items)).toEqual([b.id]);
        expect(ids((await s.list({ metadata: { 'gc.routed_to': 'w' } })).items)).toEqual([b.id]);
        expect(await s.count({ label: 'x' })).toBe(2);
        expect(await s.count()).toBe(3);
      });

      it('work: true leaves out mail and other infrastructure records, and pages', async () => {
        const s = await fresh();
        const made: string[] = [];
        for (let i = 0; i < 5; i++) {
          made.push((await s.create({ title: `w${i}` })).id);
          await s.create({ title: `m${i}`, type: 'message', labels: ['x'] });
        }
        await s.create({ title: 'session record', type: 'session' });
        const seen: string[] = [];
        let cursor: string | undefined;
        do {
          const page = await s.list({
            status: 'open',
            work: true,
            limit: 2,
            ...(cursor ? { cursor } : {}),
          });
          seen.push(...ids(page.items));
          cursor = page.next_cursor ?? undefined;
        } while (cursor);
        expect(seen).toEqual(made);
        expect(await s.count({ work: true })).toBe(5);
        expect(await s.count({ status: 'open' })).toBe(11);
        expect((await s.list({ type: 'message' })).items).toHaveLength(5);
        expect((await s.list({ label: 'x', work: true })).items).toEqual([]);
      });

      it('paginates with cursors: every bead once, in creation order', async () => {
        const s = await fresh();
        const made: string[] = [];
        for (let i = 0; i < 25; i++) made.push((await s.create({ title: `b${i}` })).id);
        const seen: string[] = [];
        let cursor: string | undefined;
        for (;;) {
          const page = await s.list({ scan: true, limit: 7, ...(cursor ? { cursor } : {}) });
          seen.push(...ids(page.items));
          if (!page.next_cursor) break;
          cursor = page.next_cursor;
        }
        expect(seen).toEqual(made);
        await expect(s.list({ scan: true, cursor: 'garbage!' })).rejects.toThrow(/cursor/);
        await expect(s.list({ scan: true, limit: 0 })).rejects.toThrow(/limit/);
      });

      it('children lists direct children in order', async () => {
        const s = await fresh();
        const p = await s.create({ title: 'p', type: 'convoy' });
        const c1 = await s.create({ title: 'c1', parent: p.id });
        const c2 = await s.create({ title: 'c2', parent: p.id });
        await s.create({ title: 'grandchild', parent: c1.id });
        expect(ids((await s.children(p.id)).items)).toEqual([c1.id, c2.id]);
        expect((await s.children('tc-none')).items).toEqual([]);
      });

      it('counts by status and ready', async () => {
        const s = await fresh();
        const a = await s.create({ title: 'a' });
        const b = await s.create({ title: 'b', needs: [a.id] });
        await s.create({ title: 'm', type: 'message' });
        await s.claim(a.id, 'w1');
        const c = await s.create({ title: 'c' });
        await s.close(c.id);
        expect(await s.counts()).toEqual({
          open: 1,
          in_progress: 1,
          closed: 1,
          ready: 0,
          total: 3,
          other: 1,
        });
        await s.close(a.id);
        expect(await s.countReady()).toBe(1);
        expect(ids((await s.ready()).items)).toEqual([b.id]);
      });
    });

    describe('ready', () => {
      it('orders by priority, then creation', async () => {
        const s = await fresh();
        const low = await s.create({ title: 'low', priority: 3 });
        const hi1 = await s.create({ title: 'hi1', priority: 0 });
        const mid = await s.create({ title: 'mid' });
        const hi2 = await s.create({ title: 'hi2', priority: 0 });
        expect(ids((await s.ready()).items)).toEqual([hi1.id, hi2.id, mid.id, low.id]);
        const p1 = await s.ready({ limit: 3 });
        expect(ids(p1.items)).toEqual([hi1.id, hi2.id, mid.id]);
        const p2 = await s.ready({ limit: 3, cursor: p1.next_cursor ?? '' });
        expect(ids(p2.items)).toEqual([low.id]);
        expect(p2.next_cursor).toBeNull();
      });

      it('excludes infrastructure types', async () => {
        const s = await fresh();
        for (const type of [
          'merge-request',
          'gate',
          'molecule',
          'message',
          'session',
          'agent',
          'role',
          'rig',
          'convoy',
        ]) {
          await s.create({ title: type, type });
        }
        const t = await s.create({ title: 'task' });
        const e = await s.create({ title: 'epic', type: 'epic' });
        expect(ids((await s.ready()).items)).toEqual([t.id, e.id]);
      });

      it('blocking types block until the blocker closes; others do not', async () => {
        const s = await fresh();
        const blocker = await s.create({ title: 'blocker' });
        const blocked: string[] = [];
        for (const type of ['blocks', 'waits-for', 'conditional-blocks']) {
          blocked.push((await s.create({ title: type, needs: [`${type}:${blocker.id}`] })).id);
        }
        const free: string[] = [];
        for (const type of ['related', 'discovered-from', 'tracks', 'custom-thing']) {
          const b = await s.create({ title: type });
          await s.addDependency(b.id, blocker.id, type);
          free.push(b.id);
        }
        expect(ids((await s.ready()).items).sort()).toEqual([blocker.id, ...free].sort());
        await s.claim(blocker.id, 'w');
        expect(ids((await s.ready()).items)).not.toContain(blocked[0]);
        await s.close(blocker.id);
        expect(ids((await s.ready()).items).sort()).toEqual([...blocked, ...free].sort());
        await s.update(blocker.id, { status: 'open' });
        expect(ids((await s.ready()).items)).not.toContain(blocked[1]);
      });

      it('a child of a blocked parent is blocked, transitively', async () => {
        const s = await fresh();
        const gate = await s.create({ title: 'gate' });
        const epic = await s.create({ title: 'epic', type: 'epic', needs: [gate.id] });
        const child = await s.create({ title: 'child', parent: epic.id });
        const grand = await s.create({ title: 'grand', parent: child.id });
        expect(ids((await s.ready()).items)).toEqual([gate.id]);
        await s.close(gate.id);
        expect(ids((await s.ready()).items)).toEqual([epic.id, child.id, grand.id]);
        // An open (unblocked) parent does not block its children.
        const other = await s.create({ title: 'other' });
        await s.update(child.id, { parent: other.id });
        expect(ids((await s.ready()).items)).toContain(child.id);
      });

      it('filters by assignee, type, label and metadata', async () => {
        const s = await fresh();
        const a = await s.create({ title: 'a', metadata: { 'gc.routed_to': 'coder' } });
        const b = await s.create({ title: 'b', assignee: 'w1', labels: ['ui'] });
        const c = await s.create({
          title: 'c',
          type: 'bug',
          metadata: { 'gc.routed_to': 'coder' },
        });
        expect(ids((await s.ready({ metadata: { 'gc.routed_to': 'coder' } })).items)).toEqual([
          a.id,
          c.id,
        ]);
        expect(ids((await s.ready({ unassigned: true })).items)).toEqual([a.id, c.id]);
        expect(ids((await s.ready({ assignee: 'w1' })).items)).toEqual([b.id]);
        expect(ids((await s.ready({ label: 'ui' })).items)).toEqual([b.id]);
        expect(ids((await s.ready({ type: 'bug' })).items)).toEqual([c.id]);
        expect(
          await s.countReady({ metadata: { 'gc.routed_to': 'coder' }, unassigned: true }),
        ).toBe(2);
      });
    });

    describe('dependencies', () => {
      it('add is idempotent, re-add changes the type, list down and up, remove', async () => {
        const s = await fresh();
        const a = await s.create({ title: 'a' });
        const b = await s.create({ title: 'b' });
        await s.addDependency(b.id, a.id);
        await s.addDependency(b.id, a.id);
        expect(await s.listDependencies(b.id, 'down')).toEqual([
          { issue_id: b.id, depends_on_id: a.id, type: 'blocks' },
        ]);
        expect(await s.listDependencies(a.id, 'up')).toEqual([
          { issue_id: b.id, depends_on_id: a.id, type: 'blocks' },
        ]);
        expect(ids((await s.ready()).items)).toEqual([a.id]);
        await s.addDependency(b.id, a.id, 'related');
        expect(await s.listDependencies(b.id, 'down')).toEqual([
          { issue_id: b.id, depends_on_id: a.id, type: 'related' },
        ]);
        expect(ids((await s.ready()).items)).toEqual([a.id, b.id]);
        await s.addDependency(b.id, a.id, 'blocks');
        await s.removeDependency(b.id, a.id);
        await s.removeDependency(b.id, a.id);
        expect(await s.listDependencies(b.id, 'down')).toEqual([]);
        expect(ids((await s.ready()).items)).toEqual([a.id, b.id]);
        await expect(s.listDependencies('tc-missing', 'down')).rejects.toBeInstanceOf(
          NotFoundError,
        );
      });

      it('refuses self-dependencies, cycles and missing beads', async () => {
        const s = await fresh();
        const a = await s.create({ title: 'a' });
        const b = await s.create({ title: 'b', needs: [a.id] });
        const c = await s.create({ title: 'c', needs: [b.id] });
        await expect(s.addDependency(a.id, a.id)).rejects.toBeInstanceOf(ValidationError);
        await expect(s.addDependency(a.id, c.id)).rejects.toBeInstanceOf(ConflictError);
        await expect(s.addDependency(a.id, 'tc-missing')).rejects.toBeInstanceOf(NotFoundError);
        // A non-blocking edge may point backwards.
        await s.addDependency(a.id, c.id, 'related');
      });

      it('needs at create: "type:id" sets the type, bare id means blocks', async () => {
        const s = await fresh();
        const a = await s.create({ title: 'a' });
        const b = await s.create({ title: 'b' });
        const c = await s.create({ title: 'c', needs: [a.id, `waits-for:${b.id}`] });
        expect(
          (await s.listDependencies(c.id, 'down'))
            .map((d) => `${d.type}:${d.depends_on_id}`)
            .sort(),
        ).toEqual([`blocks:${a.id}`, `waits-for:${b.id}`].sort());
      });
    });

    describe('claims', () => {
      it('claim sets assignee, status, lease and attempt; idempotent for the same actor', async () => {
        const s = await fresh();
        const b = await s.create({ title: 'x' });
        const c = await s.claim(b.id, 'w1', { leaseMs: 60_000 });
        expect(c.status).toBe('in_progress');
        expect(c.assignee).toBe('w1');
        expect(c.attempt).toBe(1);
        expect(Date.parse(c.claimed_at ?? '')).toBe(clock.now());
        expect(Date.parse(c.lease_expires_at ?? '')).toBe(clock.now() + 60_000);
        tick();
        const again = await s.claim(b.id, 'w1', { leaseMs: 60_000 });
        expect(again.attempt).toBe(1);
        expect(Date.parse(again.lease_expires_at ?? '')).toBe(clock.now() + 60_000);
        await expect(s.claim(b.id, 'w2')).rejects.toBeInstanceOf(AlreadyClaimedError);
        await expect(s.claim(b.id, 'w2')).rejects.toThrow(/already claimed by w1/);
      });

      it('an open bead assigned to someone else cannot be claimed', async () => {
        const s = await fresh();
        const b = await s.create({ title: 'x', assignee: 'w1' });
        await expect(s.claim(b.id, 'w2')).rejects.toBeInstanceOf(AlreadyClaimedError);
        expect((await s.claim(b.id, 'w1')).status).toBe('in_progress');
      });

      it('a closed bead cannot be claimed; an empty actor is refused', async () => {
        const s = await fresh();
        const b = await s.create({ title: 'x' });
        await s.close(b.id);
        await expect(s.claim(b.id, 'w1')).rejects.toBeInstanceOf(ConflictError);
        const o = await s.create({ title: 'y' });
        await expect(s.claim(o.id, '')).rejects.toBeInstanceOf(ValidationError);
      });

      it('a lapsed lease can be taken over, bumping the attempt (fencing)', async () => {
        const s = await fresh();
        const b = await s.create({ title: 'x' });
        await s.claim(b.id, 'w1', { leaseMs: 5000 });
        clock.advance(4000);
        await expect(s.claim(b.id, 'w2')).rejects.toBeInstanceOf(AlreadyClaimedError);
        await s.renewClaim(b.id, 'w1', { leaseMs: 5000 });
        clock.advance(4000);
        await expect(s.claim(b.id, 'w2')).rejects.toBeInstanceOf(AlreadyClaimedError);
        clock.advance(1001);
        const taken = await s.claim(b.id, 'w2');
        expect(taken.assignee).toBe('w2');
        expect(taken.attempt).toBe(2);
        await expect(s.unclaim(b.id, { attempt: 1 })).rejects.toBeInstanceOf(ConflictError);
        await expect(s.renewClaim(b.id, 'w1')).rejects.toBeInstanceOf(ConflictError);
      });

      it('claimNextReady claims in ready order, skips others\u2019 work, null when empty', async () => {
        const s = await fresh();
        const low = await s.create({ title: 'low', priority: 4 });
        const mine = await s.create({ title: 'mine', priority: 1, assignee: 'w2' });
        const hi = await s.create({ title: 'hi', priority: 0 });
        expect((await s.claimNextReady('w1'))?.id).toBe(hi.id);
        expect((await s.claimNextReady('w1'))?.id).toBe(low.id);
        expect(await s.claimNextReady('w1')).toBeNull();
        expect((await s.claimNextReady('w2'))?.id).toBe(mine.id);
        const routed = await s.create({ title: 'r', metadata: { 'gc.routed_to': 'pool' } });
        await s.create({ title: 'other' });
        expect((await s.claimNextReady('w3', { metadata: { 'gc.routed_to': 'pool' } }))?.id).toBe(
          routed.id,
        );
      });

      it('concurrent claims of one bead: exactly one wins', async () => {
        const s = await fresh();
        const b = await s.create({ title: 'x' });
        const results = await Promise.allSettled(
          Array.from({ length: 20 }, (_, i) => s.claim(b.id, `w${i}`)),
        );
        const won = results.filter((r) => r.status === 'fulfilled');
        expect(won).toHaveLength(1);
        for (const r of results) {
          if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(AlreadyClaimedError);
        }
      });

      it('concurrent claimNextReady never double-assigns', async () => {
        const s = await fresh();
        for (let i = 0; i < beadsToClaim; i++) await s.create({ title: `b${i}`, priority: i % 5 });
        const claimed: string[] = [];
        await Promise.all(
          Array.from({ length: 25 }, async (_, w) => {
            for (;;) {
              const b = await s.claimNextReady(`w${w}`);
              if (!b) return;
              claimed.push(b.id);
            }
          }),
        );
        expect(claimed).toHaveLength(beadsToClaim);
        expect(new Set(claimed).size).toBe(beadsToClaim);
        expect(await s.count({ status: 'in_progress' })).toBe(beadsToClaim);
      });

      it('unclaim returns work to open; guarded by actor and attempt', async () => {
        const s = await fresh();
        const b = await s.create({ title: 'x' });
        const c = await s.claim(b.id, 'w1');
        await expect(s.unclaim(b.id, { actor: 'w2' })).rejects.toBeInstanceOf(ConflictError);
        const u = await s.unclaim(b.id, { actor: 'w1', attempt: c.attempt });
        expect(u.status).toBe('open');
        expect(u.assignee).toBe('');
        expect(u.lease_expires_at).toBeNull();
        expect((await s.unclaim(b.id)).status).toBe('open');
        expect(ids((await s.ready()).items)).toEqual([b.id]);
        await s.close(b.id);
        await expect(s.unclaim(b.id)).rejects.toBeInstanceOf(ConflictError);
        // Only the holder may release an assignment, even on an open bead.
        const assigned = await s.create({ title: 'pre-assigned', assignee: 'w1' });
        await expect(s.unclaim(assigned.id, { actor: 'w2' })).rejects.toBeInstanceOf(ConflictError);
        expect((await s.get(assigned.id)).assignee).toBe('w1');
      });

      it('releaseClaims and releaseExpiredClaims', async () => {
        const s = await fresh();
        const a = await s.create({ title: 'a' });
        const b = await s.create({ title: 'b' });
        const c = await s.create({ title: 'c' });
        await s.claim(a.id, 'w1', { leaseMs: 1000 });
        await s.claim(b.id, 'w1', { leaseMs: 100_000 });
        await s.claim(c.id, 'w2', { leaseMs: 1000 });
        clock.advance(2000);
        expect(ids(await s.releaseExpiredClaims()).sort()).toEqual([a.id, c.id].sort());
        expect(ids(await s.releaseClaims('w1'))).toEqual([b.id]);
        expect(await s.releaseClaims('w1')).toEqual([]);
        expect(await s.count({ status: 'open' })).toBe(3);
      });
    });

    describe('workload', () => {
      it('counts ready and in-progress beads per route and claims per assignee', async () => {
        const s = await fresh();
        const route = (agent: string) => ({ metadata: { 'gc.routed_to': agent } });
        const a1 = await s.create({ title: 'a1', ...route('worker') });
        await s.create({ title: 'a2', ...route('worker') });
        const blocker = await s.create({ title: 'blocker' });
        await s.create({ title: 'a3 blocked', needs: [blocker.id], ...route('worker') });
        const done = await s.create({ title: 'a4 done', ...route('worker') });
        await s.close(done.id);
        await s.create({ title: 'r1', ...route('reviewer') });
        await s.claim(a1.id, 'worker-1');
        await s.claim(blocker.id, 'alice');
        expect(await s.workload()).toEqual({
          routed: [
            { routed_to: 'reviewer', ready: 1, in_progress: 0 },
            { routed_to: 'worker', ready: 1, in_progress: 1 },
          ],
          claims: [
            { assignee: 'alice', in_progress: 1 },
            { assignee: 'worker-1', in_progress: 1 },
          ],
        });
      });

      it('is empty for an empty store', async () => {
        const s = await fresh();
        expect(await s.workload()).toEqual({ routed: [], claims: [] });
      });
    });
  });
}
