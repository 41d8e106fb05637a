/**
 * Convoys: a bead of type `convoy` parenting the work it groups, released
 * in waves when asked (waves.ts), closed by itself once its children are
 * closed (unless labelled `owned`).
 *
 * Waves are kept in the store: each child has `gc.wave` = its wave (1..n);
 * waves after the first are held by a gate bead (type `gate`, metadata
 * `gc.convoy`, `gc.wave`) that their children depend on, so they are not
 * ready work until the gate closes: the hold shows in `gc bead show` as a
 * dependency. The convoy keeps `convoy.wave_size`, `convoy.wave_timeout_ms`,
 * `convoy.waves_released` and `convoy.wave_released_at`.
 */
import { ConflictError, ValidationError, errorMessage, parseDuration } from '../core/index.js';
import type { CityOps } from '../city/index.js';
import { INFRA_TYPES, type Bead } from '../store/index.js';
import { nextRelease, planWaves } from './waves.js';

export const CONVOY = 'convoy';
const WAVE = 'gc.wave';
const OF_CONVOY = 'gc.convoy';
const M = {
  owner: 'convoy.owner',
  size: 'convoy.wave_size',
  timeout: 'convoy.wave_timeout_ms',
  released: 'convoy.waves_released',
  releasedAt: 'convoy.wave_released_at',
} as const;
/** Sends one mail: the city's mail, as the convoy's actor. */
export type ConvoyNotifier = (to: string, subject: string, body: string) => Promise<void>;

export const MERGE_STRATEGIES = ['direct', 'mr', 'local'] as const;
export const CONVOY_META = {
  owner: 'convoy.owner',
  notify: 'convoy.notify',
  merge: 'convoy.merge',
  molecule: 'convoy.molecule',
  target: 'target',
} as const;
/** Default time a wave may stay out before the next goes anyway. */
export const DEFAULT_WAVE_TIMEOUT_MS = 30 * 60_000;

export interface ConvoyOptions {
  /** Release the work in waves of this many beads (absent: all at once). */
  waveSize?: number;
  waveTimeoutMs?: number;
  /** Manual lifecycle: never closed by itself. */
  owned?: boolean;
  /** Ready-made metadata on the convoy (e.g. convoy.merge, target). */
  metadata?: Record<string, string>;
}

/** A convoy as the API and the CLI ask for one. */
export interface ConvoyCreate {
  title: string;
  beads: string[];
  wave_size?: number;
  /** A duration ("30m"); default 30m. */
  wave_timeout?: string;
  owned?: boolean;
  /** Who manages it (default: the creator). */
  owner?: string;
  /** Who is told by mail when it closes (besides the owner). */
  notify?: string;
  /** How its work merges: direct, mr or local. */
  merge?: string;
  /** The branch its work targets. */
  target?: string;
}

export function convoyOptions(input: ConvoyCreate): ConvoyOptions {
  let timeout: number | undefined;
  if (input.wave_timeout !== undefined) {
    try {
      timeout = parseDuration(input.wave_timeout);
    } catch {
      throw new ValidationError(
        `expected a duration like 30m, got ${JSON.stringify(input.wave_timeout)}`,
        {
          where: 'wave_timeout',
        },
      );
    }
  }
  if (input.merge !== undefined && !(MERGE_STRATEGIES as readonly string[]).includes(input.merge)) {
    throw new ValidationError(
      `expected ${MERGE_STRATEGIES.join(', ')}, got ${JSON.stringify(input.merge)}`,
      { where: 'merge' },
    );
  }
  const metadata: Record<string, string> = {};
  if (input.owner) metadata[CONVOY_META.owner] = input.owner;
  if (input.notify) metadata[CONVOY_META.notify] = input.notify;
  if (input.merge) metadata[CONVOY_META.merge] = input.merge;
  if (input.target) metadata[CONVOY_META.target] = input.target;
  return {
    ...(input.wave_size !== undefined ? { waveSize: input.wave_size } : {}),
    ...(timeout !== undefined ? { waveTimeoutMs: timeout } : {}),
    ...(input.owned ? { owned: true } : {}),
    ...(Object.keys(metadata).length ? { metadata } : {}),
  };
}

/** Whether a bead still has a merge request waiting (it is closed but not landed). */
export type PendingMerge = (bead: string) => Promise<boolean>;

export interface ConvoyWave {
  wave: number;
  released: boolean;
  gate: string;
  beads: { id: string; title: string; status: string; assignee: string; landed: boolean }[];
}

export interface ConvoyStatus {
  convoy: Bead;
  total: number;
  closed: number;
  landed: number;
  /** Waves, in order; one wave holding everything when the convoy has no waves. */
  waves: ConvoyWave[];
  waves_released: number;
}

async function children(ops: CityOps, id: string): Promise<Bead[]> {
  const out: Bead[] = [];
  let cursor: string | undefined;
  do {
    const p = await ops.store.list({ parent: id, limit: 1000, ...(cursor ? { cursor } : {}) });
    out.push(...p.items);
    cursor = p.next_cursor ?? undefined;
  } while (cursor);
  return out;
}

async function gates(ops: CityOps, id: string): Promise<Map<number, Bead>> {
  const p = await ops.store.list({ type: 'gate', metadata: { [OF_CONVOY]: id }, limit: 1000 });
  return new Map(p.items.map((g) => [Number(g.metadata[WAVE]), g]));
}

async function getConvoy(ops: CityOps, id: string): Promise<Bead> {
  const c = await ops.store.get(id);
  if (c.issue_type !== CONVOY) {
    throw new ValidationError(`${id} is a ${c.issue_type}, not a convoy`, { where: 'convoy' });
  }
  return c;
}

/** The beads to add, checked: they exist, are work, and belong to no other parent. */
async function members(ops: CityOps, convoy: string, ids: readonly string[]): Promise<Bead[]> {
  const beads: Bead[] = [];
  for (const id of new Set(ids)) {
    const b = await ops.store.get(id);
    // A molecule is not work itself, but a convoy may carry one (its root).
    if (INFRA_TYPES.has(b.issue_type) && b.issue_type !== 'molecule') {
      throw new ValidationError(`${id} is a ${b.issue_type}, not work`, { where: 'beads' });
    }
    if (b.parent && b.parent !== convoy) {
      throw new ConflictError(`${id} already belongs to ${b.parent}`, {
        fix: `take it out first: gc bead update ${id} --parent ""`,
      });
    }
    beads.push(b);
  }
  return beads;
}

function sizeOf(v: number | undefined, where: string): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || v < 1 || v > 10_000) {
    throw new ValidationError(`expected a whole number from 1 to 10000, got ${v}`, { where });
  }
  return v;
}

export async function createConvoy(
  ops: CityOps,
  actor: string,
  title: string,
  beadIds: readonly string[],
  o: ConvoyOptions = {},
): Promise<ConvoyStatus> {
  if (!title.trim()) throw new ValidationError('must not be empty', { where: 'title' });
  const waveSize = sizeOf(o.waveSize, 'wave_size');
  const timeout = o.waveTimeoutMs ?? DEFAULT_WAVE_TIMEOUT_MS;
  if (!Number.isFinite(timeout) || timeout < 0) {
    throw new ValidationError(`expected a duration, got ${timeout}`, { where: 'wave_timeout' });
  }
  const beads = await members(ops, '', beadIds);
  const convoy = await ops.createBead(actor, {
    title,
    type: CONVOY,
    labels: o.owned ? ['owned'] : [],
    metadata: {
      [M.owner]: actor,
      ...o.metadata,
      ...(waveSize
        ? {
            [M.size]: String(waveSize),
            [M.timeout]: String(timeout),
            [M.released]: '1',
            [M.releasedAt]: String(Date.now()),
          }
        : {}),
    },
  });
  await place(ops, actor, convoy, beads, true);
  await ops.events.record({
    type: 'convoy.created',
    actor,
    subject: convoy.id,
    payload: { title, beads: beads.map((b) => b.id), wave_size: waveSize ?? null },
    message: `convoy ${convoy.id} (${title}) with ${beads.length} bead(s)${waveSize ? ` in waves of ${waveSize}` : ''}`,
  });
  if (waveSize && beads.length) {
    await recordRelease(
      ops,
      actor,
      convoy.id,
      1,
      (await status(ops, convoy.id)).waves[0]!,
      'created',
    );
  }
  return status(ops, convoy.id);
}

export async function addToConvoy(
  ops: CityOps,
  actor: string,
  convoyId: string,
  beadIds: readonly string[],
): Promise<ConvoyStatus> {
  const convoy = await getConvoy(ops, convoyId);
  if (convoy.status === 'closed') {
    throw new ConflictError(`convoy ${convoyId} is closed`, { fix: `gc bead reopen ${convoyId}` });
  }
  const beads = (await members(ops, convoyId, beadIds)).filter((b) => b.parent !== convoyId);
  await place(ops, actor, convoy, beads, false);
  if (beads.length) {
    await ops.events.record({
      type: 'convoy.added',
      actor,
      subject: convoyId,
      payload: { beads: beads.map((b) => b.id) },
      message: `${beads.length} bead(s) added to convoy ${convoyId}`,
    });
  }
  return status(ops, convoyId);
}

/** Parent the beads to the convoy; with waves, put them in waves behind gates. */
async function place(
  ops: CityOps,
  actor: string,
  convoy: Bead,
  beads: Bead[],
  fresh: boolean,
): Promise<void> {
  const size = Number(convoy.metadata[M.size] ?? 0);
  for (const b of beads) await ops.updateBead(actor, b.id, { parent: convoy.id });
  if (!size || !beads.length) return;
  const released = Number(convoy.metadata[M.released] ?? 1);
  const existing = await children(ops, convoy.id);
  const counts = new Map<number, number>();
  for (const c of existing) {
    const w = Number(c.metadata[WAVE] ?? 0);
    if (w) counts.set(w, (counts.get(w) ?? 0) + 1);
  }
  const order = planWaves(
    beads.map((b) => ({ id: b.id, needs: b.dependencies.map((d) => d.depends_on_id) })),
    1,
  ).flat();
  const gateOf = await gates(ops, convoy.id);
  // A new convoy fills its waves from the first; later additions go after
  // the waves already released.
  let wave = fresh ? 1 : released + 1;
  for (const id of order) {
    while ((counts.get(wave) ?? 0) >= size) wave++;
    counts.set(wave, (counts.get(wave) ?? 0) + 1);
    await ops.setMetadata(actor, id, WAVE, String(wave));
    if (wave <= released) continue;
    let gate = gateOf.get(wave);
    if (!gate) {
      gate = await ops.createBead(actor, {
        title: `wave ${wave} of convoy ${convoy.id}: ${convoy.title}`.slice(0, 200),
        type: 'gate',
        description: `Holds wave ${wave} of convoy ${convoy.id} until the waves before it have merged (or their timeout).`,
        metadata: { [OF_CONVOY]: convoy.id, [WAVE]: String(wave) },
      });
      gateOf.set(wave, gate);
    }
    await ops.addDependency(actor, id, gate.id, 'blocks');
  }
}

export async function status(
  ops: CityOps,
  convoyId: string,
  pending: PendingMerge = () => Promise.resolve(false),
): Promise<ConvoyStatus> {
  const convoy = await getConvoy(ops, convoyId);
  const kids = await children(ops, convoyId);
  const gateOf = await gates(ops, convoyId);
  const released = Number(convoy.metadata[M.released] ?? 0);
  const byWave = new Map<number, Bead[]>();
  for (const k of kids) {
    const w = released ? Number(k.metadata[WAVE] ?? 1) : 1;
    byWave.set(w, [...(byWave.get(w) ?? []), k]);
  }
  const landedIds = new Set<string>();
  for (const k of kids) if (k.status === 'closed' && !(await pending(k.id))) landedIds.add(k.id);
  const landed = (b: Bead) => landedIds.has(b.id);
  const waves = [...byWave.keys()]
    .sort((a, b) => a - b)
    .map((w): ConvoyWave => ({
      wave: w,
      released: !released || w <= released,
      gate: gateOf.get(w)?.id ?? '',
      beads: byWave.get(w)!.map((b) => ({
        id: b.id,
        title: b.title,
        status: b.status,
        assignee: b.assignee,
        landed: landed(b),
      })),
    }));
  return {
    convoy,
    total: kids.length,
    closed: kids.filter((b) => b.status === 'closed').length,
    landed: kids.filter(landed).length,
    waves,
    waves_released: released ? Math.min(released, waves.length) : waves.length,
  };
}

async function recordRelease(
  ops: CityOps,
  actor: string,
  convoy: string,
  wave: number,
  w: ConvoyWave,
  reason: string,
): Promise<void> {
  await ops.events.record({
    type: 'wave.released',
    actor,
    subject: convoy,
    payload: { convoy, wave, beads: w.beads.map((b) => b.id), reason },
    message: `convoy ${convoy}: wave ${wave} released (${w.beads.length} bead(s); ${reason})`,
  });
}

/** Close `c`, its held wave gates; record convoy.closed; tell its owner and notify. */
export async function finish(
  ops: CityOps,
  actor: string,
  c: Bead,
  reason: string,
  total: number,
  notify: ConvoyNotifier | undefined,
  extra: Record<string, unknown> = {},
): Promise<{ convoy: Bead; notified: string[] }> {
  await ops.closeBead(actor, c.id, reason);
  for (const g of (await gates(ops, c.id)).values()) {
    if (g.status !== 'closed') await ops.closeBead(actor, g.id, 'convoy closed');
  }
  await ops.events.record({
    type: 'convoy.closed',
    actor,
    subject: c.id,
    payload: { beads: total, reason, ...extra },
    message: `convoy ${c.id} (${c.title}) closed: ${reason}`,
  });
  const notified: string[] = [];
  if (notify) {
    const to = new Set(
      [c.metadata[CONVOY_META.notify], c.metadata[CONVOY_META.owner]].filter(
        (x): x is string => !!x && x !== actor,
      ),
    );
    for (const who of to) {
      await notify(
        who,
        `convoy ${c.id} closed: ${c.title}`,
        `Convoy ${c.id} (${c.title}) closed: ${reason}. ${total} bead(s).`,
      );
      notified.push(who);
    }
  }
  return { convoy: await ops.store.get(c.id), notified };
}

export interface PatrolResult {
  released: { convoy: string; wave: number; reason: string }[];
  closed: string[];
}

/**
 * One pass over the open convoys: release the next wave where it may go,
 * close convoys whose children are all closed (unless owned).
 */
export async function patrolConvoys(
  ops: CityOps,
  pending: PendingMerge,
  now = Date.now(),
  log: (line: string) => void = () => undefined,
  notify?: ConvoyNotifier,
): Promise<PatrolResult> {
  const out: PatrolResult = { released: [], closed: [] };
  const open = await ops.store.list({ type: CONVOY, status: ['open', 'in_progress'], limit: 1000 });
  for (const c of open.items) {
    try {
      const st = await status(ops, c.id, pending);
      const released = Number(c.metadata[M.released] ?? 0);
      if (released) {
        const waves = st.waves.map((w) => w.beads.map((b) => b.id));
        const landed = new Set(
          st.waves.flatMap((w) => w.beads.filter((b) => b.landed).map((b) => b.id)),
        );
        const next = nextRelease(
          waves,
          { released, releasedAt: Number(c.metadata[M.releasedAt] ?? now) },
          (id) => landed.has(id),
          now,
          Number(c.metadata[M.timeout] ?? DEFAULT_WAVE_TIMEOUT_MS),
        );
        if (next) {
          const w = st.waves[next.wave - 1]!;
          if (w.gate) await ops.closeBead('convoy', w.gate, `wave released (${next.reason})`);
          await ops.setMetadata('convoy', c.id, M.releasedAt, String(now));
          await ops.setMetadata('convoy', c.id, M.released, String(next.wave));
          await recordRelease(ops, 'convoy', c.id, next.wave, w, next.reason);
          out.released.push({ convoy: c.id, wave: next.wave, reason: next.reason });
        }
      }
      if (st.total > 0 && st.closed === st.total && !c.labels.includes('owned')) {
        await finish(ops, 'convoy', c, `all its ${st.total} bead(s) closed`, st.total, notify);
        out.closed.push(c.id);
      }
    } catch (e) {
      log(`convoy ${c.id}: ${errorMessage(e)}`);
    }
  }
  return out;
}

export interface ConvoySummary {
  id: string;
  title: string;
  status: string;
  owner: string;
  total: number;
  closed: number;
  wave_size: number | null;
  waves_released: number | null;
}

export async function listConvoys(
  ops: CityOps,
  o: { all?: boolean; limit?: number; cursor?: string } = {},
): Promise<{ items: ConvoySummary[]; next_cursor: string | null }> {
  const p = await ops.store.list({
    type: CONVOY,
    ...(o.all ? {} : { status: ['open', 'in_progress'] }),
    limit: o.limit ?? 100,
    ...(o.cursor ? { cursor: o.cursor } : {}),
  });
  const items: ConvoySummary[] = [];
  for (const c of p.items) {
    const total = await ops.store.count({ parent: c.id });
    const closed = await ops.store.count({ parent: c.id, status: 'closed' });
    items.push({
      id: c.id,
      title: c.title,
      status: c.status,
      owner: c.metadata[M.owner] ?? c.from,
      total,
      closed,
      wave_size: c.metadata[M.size] ? Number(c.metadata[M.size]) : null,
      waves_released: c.metadata[M.released] ? Number(c.metadata[M.released]) : null,
    });
  }
  return { items, next_cursor: p.next_cursor };
}
