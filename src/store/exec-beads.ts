/**
 * Beads as exec beads scripts speak them (REFERENCE.md 2), and back.
 *
 * Scripts print `type` and `parent_id` (gc's own names `issue_type` and
 * `parent` are accepted too), may print metadata values that are not
 * strings (coerced), and know nothing of what gc adds to the contract: the
 * claim lease, the attempt counter (a fencing token), the close reason and
 * gc's own clock. Those travel in one metadata key, `gc.store` (JSON), that
 * gc reads back and hides from `metadata`; a bead a script made without it
 * gets the script's own timestamps and no lease.
 */
import { GcError, ValidationError } from '../core/index.js';
import {
  BEAD_STATUSES,
  PARENT_CHILD,
  type Bead,
  type BeadStatus,
  type Dependency,
} from './types.js';

/** The metadata key holding what gc keeps about a bead beyond the beads fields. */
export const STORE_KEY = 'gc.store';

interface Kept {
  created_at: string;
  updated_at: string;
  closed_at: string | null;
  close_reason: string;
  claimed_at: string | null;
  lease_expires_at: string | null;
  attempt: number;
}

function keptOf(b: Bead): Kept {
  return {
    created_at: b.created_at,
    updated_at: b.updated_at,
    closed_at: b.closed_at,
    close_reason: b.close_reason,
    claimed_at: b.claimed_at,
    lease_expires_at: b.lease_expires_at,
    attempt: b.attempt,
  };
}

/** Refuse the reserved key in metadata a caller gives. */
export function checkNotReserved(metadata: Record<string, string> | undefined, key?: string): void {
  if (key === STORE_KEY || (metadata && STORE_KEY in metadata)) {
    throw new ValidationError(`metadata key "${STORE_KEY}" is kept by gc for the exec store`, {
      where: 'metadata',
    });
  }
}

const str = (v: unknown): string =>
  v === undefined || v === null ? '' : typeof v === 'string' ? v : JSON.stringify(v);

function time(v: unknown): string | null {
  if (typeof v !== 'string' && typeof v !== 'number') return null;
  const t = typeof v === 'number' ? v : Date.parse(v);
  return Number.isFinite(t) ? new Date(t).toISOString() : null;
}

/** What gc kept in `gc.store`; a field of the wrong shape (an edit by hand) is left out. */
function parseKept(text: string | undefined): Partial<Kept> {
  let v: unknown;
  try {
    v = JSON.parse(text ?? '');
  } catch {
    return {};
  }
  if (!v || typeof v !== 'object') return {};
  const o = v as Record<string, unknown>;
  const out: Partial<Kept> = {};
  for (const k of ['created_at', 'updated_at'] as const) {
    const t = time(o[k]);
    if (t) out[k] = t;
  }
  for (const k of ['closed_at', 'claimed_at', 'lease_expires_at'] as const) {
    if (o[k] === null) out[k] = null;
    else if (time(o[k])) out[k] = time(o[k]);
  }
  if (typeof o.close_reason === 'string') out.close_reason = o.close_reason;
  if (Number.isInteger(o.attempt) && (o.attempt as number) >= 0) out.attempt = o.attempt as number;
  return out;
}

/** A bead from a script's JSON. */
export function fromScript(v: unknown, op: string): Bead {
  const o = v as Record<string, unknown> | null;
  if (!o || typeof o !== 'object' || Array.isArray(o) || typeof o.id !== 'string' || !o.id) {
    throw new GcError(
      'internal',
      `beads script ${op}: expected a bead with an id, got ${JSON.stringify(v)?.slice(0, 200)}`,
    );
  }
  const id = o.id;
  const metadata: Record<string, string> = {};
  const rawMeta = o.metadata && typeof o.metadata === 'object' ? o.metadata : {};
  for (const [k, val] of Object.entries(rawMeta as Record<string, unknown>)) {
    metadata[k] = str(val);
  }
  const kept = parseKept(metadata[STORE_KEY]);
  delete metadata[STORE_KEY];
  // Statuses gc does not know (a tracker's own, e.g. "blocked") count as open work.
  const status: BeadStatus = BEAD_STATUSES.includes(o.status as BeadStatus)
    ? (o.status as BeadStatus)
    : 'open';
  const created = kept.created_at ?? time(o.created_at) ?? new Date(0).toISOString();
  const updated = kept.updated_at ?? time(o.updated_at) ?? created;
  const parent = str(o.parent_id ?? o.parent);
  const deps: Dependency[] = parent
    ? [{ issue_id: id, depends_on_id: parent, type: PARENT_CHILD }]
    : [];
  for (const d of Array.isArray(o.dependencies) ? (o.dependencies as unknown[]) : []) {
    const dep = d as Record<string, unknown> | null;
    const on = str(dep?.depends_on_id);
    const type = str(dep?.type) || 'blocks';
    if (!on || type === PARENT_CHILD || deps.some((x) => x.depends_on_id === on)) continue;
    deps.push({ issue_id: id, depends_on_id: on, type });
  }
  const claimed = status === 'in_progress';
  const priority = Number(o.priority ?? 2);
  return {
    id,
    title: str(o.title),
    status,
    issue_type: str(o.type ?? o.issue_type) || 'task',
    priority: Number.isInteger(priority) ? priority : 2,
    created_at: created,
    updated_at: updated,
    closed_at: status === 'closed' ? (kept.closed_at ?? time(o.closed_at) ?? updated) : null,
    close_reason: status === 'closed' ? str(kept.close_reason ?? o.close_reason) : '',
    assignee: str(o.assignee),
    from: str(o.from),
    parent,
    ref: str(o.ref),
    description: str(o.description),
    labels: [...new Set((Array.isArray(o.labels) ? (o.labels as unknown[]) : []).map(str))].sort(),
    metadata,
    dependencies: deps,
    claimed_at: claimed ? (kept.claimed_at ?? null) : null,
    lease_expires_at: claimed ? (kept.lease_expires_at ?? null) : null,
    attempt: kept.attempt ?? 0,
  };
}

/** A list a script printed (empty output: none). */
export function listFromScript(text: string, op: string): Bead[] {
  if (!text) return [];
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new GcError('internal', `beads script ${op}: output is not JSON: ${text.slice(0, 200)}`);
  }
  if (v === null) return [];
  if (!Array.isArray(v)) throw new GcError('internal', `beads script ${op}: expected a JSON array`);
  return v.map((b) => fromScript(b, op));
}

/** The `create` request for a bead gc has checked and filled (its id is the script's to make). */
export function createRequest(b: Bead): Record<string, unknown> {
  return {
    title: b.title,
    type: b.issue_type,
    priority: b.priority,
    labels: b.labels,
    parent_id: b.parent,
    ref: b.ref,
    needs: b.dependencies
      .filter((d) => d.type !== PARENT_CHILD)
      .map((d) => (d.type === 'blocks' ? d.depends_on_id : `${d.type}:${d.depends_on_id}`)),
    description: b.description,
    assignee: b.assignee,
    from: b.from,
    metadata: { ...b.metadata, [STORE_KEY]: JSON.stringify(keptOf(b)) },
  };
}

/**
 * The `update` request taking a bead from `before` to `after` (undefined when
 * nothing changed). `type` and `ref` are sent too when they change; a
 * script that ignores them keeps the old values.
 */
export function updateRequest(before: Bead, after: Bead): Record<string, unknown> | undefined {
  const p: Record<string, unknown> = {};
  for (const k of ['title', 'status', 'priority', 'description', 'assignee', 'ref'] as const) {
    if (before[k] !== after[k]) p[k] = after[k];
  }
  if (before.issue_type !== after.issue_type) p.type = after.issue_type;
  if (before.parent !== after.parent) p.parent_id = after.parent;
  const added = after.labels.filter((l) => !before.labels.includes(l));
  const removed = before.labels.filter((l) => !after.labels.includes(l));
  if (added.length) p.labels = added;
  if (removed.length) p.remove_labels = removed;
  const meta: Record<string, string> = {};
  for (const [k, v] of Object.entries(after.metadata)) if (before.metadata[k] !== v) meta[k] = v;
  const kept = JSON.stringify(keptOf(after));
  if (kept !== JSON.stringify(keptOf(before))) meta[STORE_KEY] = kept;
  if (Object.keys(meta).length) p.metadata = meta;
  return Object.keys(p).length ? p : undefined;
}

/** Dependencies (not parent links) to add and remove to take `before` to `after`. */
export function dependencyChanges(
  before: Bead,
  after: Bead,
): { add: Dependency[]; remove: Dependency[] } {
  const plain = (b: Bead) => b.dependencies.filter((d) => d.type !== PARENT_CHILD);
  const key = (d: Dependency) => `${d.depends_on_id}\n${d.type}`;
  const was = new Set(plain(before).map(key));
  const now = new Set(plain(after).map(key));
  const targets = new Set(plain(after).map((d) => d.depends_on_id));
  return {
    add: plain(after).filter((d) => !was.has(key(d))),
    // A re-added dependency with a new type is an add (dep-add changes the type).
    remove: plain(before).filter((d) => !now.has(key(d)) && !targets.has(d.depends_on_id)),
  };
}
