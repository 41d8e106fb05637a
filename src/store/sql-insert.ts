/**
 * Inserting beads with no parent and no dependencies (most beads: mail,
 * plain work) in the store on a database server, one at a time or many in
 * one statement. Either way the bead is returned as a read would return it,
 * built from what was written (no read back).
 */
import { eventChannel, eventColumns, type EventRowInput, type SqlConn } from '../db/index.js';
import { addLabels, marks, num, setMetadata } from './sql-rows.js';
import { beadFromRow, type BeadRow } from './sqlite-rows.js';
import type { Bead } from './types.js';
import { isInfraType, type NormalizedCreate } from './validate.js';

/** Byte order of UTF-8 (the columns' collation), for labels built in memory. */
const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** A new bead's columns and its sorted labels and metadata, as written. */
interface Planned {
  n: NormalizedCreate;
  labels: string[];
  meta: [string, string][];
  closedAt: number | null;
  infra: number;
}

function plan(n: NormalizedCreate, now: number): Planned {
  return {
    n,
    labels: [...new Set(n.labels)].sort(byBytes),
    meta: Object.entries(n.metadata),
    closedAt: n.status === 'closed' ? now : null,
    infra: isInfraType(n.type) ? 1 : 0,
  };
}

function built(p: Planned, id: string, seq: number, now: number): Bead {
  const row: BeadRow = {
    seq,
    id,
    title: p.n.title,
    status: p.n.status,
    issue_type: p.n.type,
    priority: p.n.priority,
    created_at: now,
    updated_at: now,
    closed_at: p.closedAt,
    close_reason: '',
    assignee: p.n.assignee,
    from_actor: p.n.from,
    parent: p.n.parent,
    ref: p.n.ref,
    description: p.n.description,
    claimed_at: null,
    lease_expires_at: null,
    attempt: 0,
    blocked: 0,
  };
  return beadFromRow(row, p.labels, Object.fromEntries(p.meta), []);
}

/** The columns a new bead is inserted with, in the order the inserts here give them. */
export const COLUMNS = `id, title, status, issue_type, priority, created_at, updated_at,
  closed_at, close_reason, assignee, from_actor, parent, ref, description, infra`;

function columnValues(p: Planned, now: number): unknown[] {
  const n = p.n;
  return [
    n.title,
    n.status,
    n.type,
    n.priority,
    now,
    now,
    p.closedAt,
    n.assignee,
    n.from,
    n.parent,
    n.ref,
    n.description,
    p.infra,
  ];
}

/** `n` ids from `idFor`, none twice. */
function distinctIds(n: number, idFor: (extra: number) => string): string[] {
  const ids = new Set<string>();
  while (ids.size < n) {
    let id = idFor(0);
    for (let extra = 1; ids.has(id); extra++) id = idFor(extra);
    ids.add(id);
  }
  return [...ids];
}

/**
 * PostgreSQL: the beads whose ids are free (`b`: their ids and seqs), with
 * their labels and metadata, from arrays (see beadsParams): the same text
 * for any number of beads, so one prepared statement.
 */
const BEADS_CTE = `WITH input AS (
       SELECT * FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::int[], ?::bigint[],
         ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::smallint[])
       WITH ORDINALITY AS t(id, title, status, issue_type, priority, closed_at,
         assignee, from_actor, parent, ref, description, infra, ord)),
     b AS (
       INSERT INTO beads (${COLUMNS})
       SELECT id, title, status, issue_type, priority, ?::bigint, ?::bigint, closed_at, '',
         assignee, from_actor, parent, ref, description, infra
       FROM input ORDER BY ord
       ON CONFLICT (id) DO NOTHING RETURNING id, seq),
     l AS (INSERT INTO labels (bead_seq, label)
       SELECT b.seq, x.label FROM b JOIN unnest(?::text[], ?::text[]) AS x(id, label) ON x.id = b.id),
     m AS (INSERT INTO metadata (bead_seq, k, v)
       SELECT b.seq, x.k, x.v FROM b
       JOIN unnest(?::text[], ?::text[], ?::text[]) AS x(id, k, v) ON x.id = b.id)`;

function beadsParams(planned: readonly Planned[], ids: readonly string[], now: number): unknown[] {
  const col = <T>(f: (p: Planned) => T): T[] => planned.map(f);
  return [
    ids,
    col((p) => p.n.title),
    col((p) => p.n.status),
    col((p) => p.n.type),
    col((p) => p.n.priority),
    col((p) => p.closedAt),
    col((p) => p.n.assignee),
    col((p) => p.n.from),
    col((p) => p.n.parent),
    col((p) => p.n.ref),
    col((p) => p.n.description),
    col((p) => p.infra),
    now,
    now,
    planned.flatMap((p, i) => p.labels.map(() => ids[i]!)),
    planned.flatMap((p) => p.labels),
    planned.flatMap((p, i) => p.meta.map(() => ids[i]!)),
    planned.flatMap((p) => p.meta.map(([k]) => k)),
    planned.flatMap((p) => p.meta.map(([, v]) => v)),
  ];
}

/**
 * Insert a bead with no parent and no dependencies, its labels and its
 * metadata. PostgreSQL: one statement, the id taken only if free (`ON
 * CONFLICT DO NOTHING`; another id is tried when it was not). MySQL: a
 * check of the id, the insert, its row, the labels and the metadata.
 */
export async function insertPlainBead(
  tx: SqlConn,
  n: NormalizedCreate,
  now: number,
  idFor: (extra: number) => string,
  firstExtra = 0,
): Promise<Bead> {
  const p = plan(n, now);
  const values = columnValues(p, now);
  let id = '';
  let seq: number | undefined;
  for (let extra = firstExtra; seq === undefined; extra++) {
    id = idFor(extra);
    if (tx.dialect === 'postgres') {
      const [r] = await tx.query<{ seq: number }>(
        `WITH b AS (
           INSERT INTO beads (${COLUMNS})
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?, ?, ?)
           ON CONFLICT (id) DO NOTHING RETURNING seq),
         l AS (INSERT INTO labels (bead_seq, label)
           SELECT b.seq, x FROM b, unnest(?::text[]) AS x),
         m AS (INSERT INTO metadata (bead_seq, k, v)
           SELECT b.seq, t.k, t.v FROM b, unnest(?::text[], ?::text[]) AS t(k, v))
         SELECT seq FROM b`,
        [id, ...values, p.labels, p.meta.map(([k]) => k), p.meta.map(([, v]) => v)],
      );
      if (r) seq = num(r.seq);
      continue;
    }
    if ((await tx.query('SELECT 1 FROM beads WHERE id = ?', [id])).length) continue;
    await tx.run(
      `INSERT INTO beads (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?, ?, ?)`,
      [id, ...values],
    );
    const [r] = await tx.query<{ seq: number }>('SELECT LAST_INSERT_ID() AS seq');
    seq = num(r?.seq);
    await addLabels(tx, seq, p.labels);
    await setMetadata(tx, seq, p.meta);
  }
  return built(p, id, seq, now);
}

/**
 * Several such beads in a few statements instead of several each, in the
 * order given (their seqs ascend in it). A bead whose first id was taken
 * is inserted on its own afterwards with a longer one (so its seq may come
 * after the rest).
 */
export async function insertPlainBeads(
  tx: SqlConn,
  inputs: readonly NormalizedCreate[],
  now: number,
  idFor: (extra: number) => string,
): Promise<Bead[]> {
  const planned = inputs.map((n) => plan(n, now));
  const ids = distinctIds(planned.length, idFor);
  const seqs =
    tx.dialect === 'postgres'
      ? await insertManyPg(tx, planned, ids, now)
      : await insertManyMy(tx, planned, ids, now);
  const out: Bead[] = [];
  for (const [i, p] of planned.entries()) {
    const seq = seqs.get(ids[i]!);
    out.push(
      seq === undefined
        ? await insertPlainBead(tx, p.n, now, idFor, 1)
        : built(p, ids[i]!, seq, now),
    );
  }
  return out;
}

/** One statement: the beads whose ids were free, their labels and metadata; their seqs by id. */
async function insertManyPg(
  tx: SqlConn,
  planned: readonly Planned[],
  ids: readonly string[],
  now: number,
): Promise<Map<string, number>> {
  const rows = await tx.query<{ id: string; seq: number }>(
    `${BEADS_CTE}
     SELECT id, seq FROM b`,
    beadsParams(planned, ids, now),
  );
  return new Map(rows.map((r) => [r.id, num(r.seq)]));
}

/**
 * MySQL: the ids already taken, one insert of the rest, their seqs, then
 * all labels and all metadata (five statements for the lot).
 */
async function insertManyMy(
  tx: SqlConn,
  planned: readonly Planned[],
  ids: readonly string[],
  now: number,
): Promise<Map<string, number>> {
  const taken = new Set(
    (
      await tx.query<{ id: string }>(
        `SELECT id FROM beads WHERE id IN (${marks(ids.length)})`,
        ids as string[],
      )
    ).map((r) => r.id),
  );
  const free = planned.flatMap((p, i) => (taken.has(ids[i]!) ? [] : [{ p, id: ids[i]! }]));
  if (!free.length) return new Map();
  await tx.run(
    `INSERT INTO beads (${COLUMNS}) VALUES ${free
      .map(() => "(?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?, ?, ?)")
      .join(', ')}`,
    free.flatMap(({ p, id }) => [id, ...columnValues(p, now)]),
  );
  const rows = await tx.query<{ id: string; seq: number }>(
    `SELECT id, seq FROM beads WHERE id IN (${marks(free.length)})`,
    free.map((f) => f.id),
  );
  const seqs = new Map(rows.map((r) => [r.id, num(r.seq)]));
  const labels = free.flatMap(({ p, id }) => p.labels.map((l) => [seqs.get(id)!, l]));
  if (labels.length) {
    await tx.run(
      `INSERT INTO labels (bead_seq, label) VALUES ${labels.map(() => '(?, ?)').join(', ')}`,
      labels.flat(),
    );
  }
  const meta = free.flatMap(({ p, id }) => p.meta.map(([k, v]) => [seqs.get(id)!, k, v]));
  if (meta.length) {
    await tx.run(
      `INSERT INTO metadata (bead_seq, k, v) VALUES ${meta.map(() => '(?, ?, ?)').join(', ')}`,
      meta.flat(),
    );
  }
  return seqs;
}

/** A bead to create on its own (see createAlone) and the events its creation records. */
export interface AloneCreate {
  n: NormalizedCreate;
  events: (bead: Bead) => EventRowInput[];
}

/**
 * PostgreSQL: beads with no parent and no dependencies, their labels and
 * metadata, and the events recording them, in one statement that commits
 * on its own (outside any transaction): one round trip for the lot. The
 * event counter row is taken in it, so seqs still follow commit order.
 * A bead whose id was taken is not made, and neither are its events: it
 * comes back undefined, to be tried again.
 */
export async function createAlone(
  db: SqlConn,
  items: readonly AloneCreate[],
  now: number,
  idFor: (extra: number) => string,
): Promise<(Bead | undefined)[]> {
  const planned = items.map((c) => plan(c.n, now));
  const ids = distinctIds(planned.length, idFor);
  // The beads as they will be (a bead carries no seq): their events now.
  const beads = planned.map((p, i) => built(p, ids[i]!, 0, now));
  const events = beads.flatMap((b, i) => items[i]!.events(b).map((e) => ({ id: b.id, e })));
  const rows = await db.query<{ id: string }>(
    `${BEADS_CTE},
     ev AS (
       SELECT row_number() OVER (ORDER BY x.ord) AS k, x.* FROM unnest(?::text[], ?::text[],
         ?::text[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[])
         WITH ORDINALITY AS x(bead, type, ts, ts_ms, actor, subject, message, payload, ord)
       WHERE x.bead IN (SELECT id FROM b)),
     s AS (UPDATE event_seq SET next = next + (SELECT count(*) FROM ev) WHERE id = 1
       RETURNING next),
     e AS (INSERT INTO events (seq, type, ts, ts_ms, actor, subject, message, payload)
       SELECT s.next - (SELECT count(*) FROM ev) + ev.k, ev.type, ev.ts, ev.ts_ms, ev.actor,
         ev.subject, ev.message, ev.payload
       FROM s, ev),
     told AS (SELECT pg_notify(?, s.next::text) FROM s WHERE EXISTS (SELECT 1 FROM ev))
     SELECT id, (SELECT count(*) FROM told) AS told FROM b`,
    [
      ...beadsParams(planned, ids, now),
      events.map((x) => x.id),
      ...eventColumns(events.map((x) => x.e)),
      eventChannel(db),
    ],
  );
  const made = new Set(rows.map((r) => r.id));
  return beads.map((b) => (made.has(b.id) ? b : undefined));
}
