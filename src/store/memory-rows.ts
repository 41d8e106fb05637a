/** The memory store's rows: their shape, how a new one is made and how one becomes a Bead. */
import type { Bead, BeadStatus, Dependency } from './types.js';
import { iso, type normalizeCreate } from './validate.js';

export interface Row {
  seq: number;
  id: string;
  title: string;
  status: BeadStatus;
  type: string;
  priority: number;
  createdAt: number;
  updatedAt: number;
  closedAt: number | null;
  closeReason: string;
  assignee: string;
  from: string;
  parent: string;
  ref: string;
  description: string;
  labels: Set<string>;
  metadata: Map<string, string>;
  claimedAt: number | null;
  leaseExpiresAt: number | null;
  attempt: number;
}

/** A fresh row for a validated create. */
export function newRow(
  seq: number,
  id: string,
  n: ReturnType<typeof normalizeCreate>,
  now: number,
): Row {
  return {
    seq,
    id,
    title: n.title,
    status: n.status,
    type: n.type,
    priority: n.priority,
    createdAt: now,
    updatedAt: now,
    closedAt: n.status === 'closed' ? now : null,
    closeReason: '',
    assignee: n.assignee,
    from: n.from,
    parent: n.parent,
    ref: n.ref,
    description: n.description,
    labels: new Set(n.labels),
    metadata: new Map(Object.entries(n.metadata)),
    claimedAt: null,
    leaseExpiresAt: null,
    attempt: 0,
  };
}

export function rowToBead(r: Row, down: Map<string, string> | undefined): Bead {
  const deps: Dependency[] = [];
  for (const [dep, type] of down ?? []) {
    deps.push({ issue_id: r.id, depends_on_id: dep, type });
  }
  return {
    id: r.id,
    title: r.title,
    status: r.status,
    issue_type: r.type,
    priority: r.priority,
    created_at: iso(r.createdAt),
    updated_at: iso(r.updatedAt),
    closed_at: r.closedAt === null ? null : iso(r.closedAt),
    close_reason: r.closeReason,
    assignee: r.assignee,
    from: r.from,
    parent: r.parent,
    ref: r.ref,
    description: r.description,
    labels: [...r.labels].sort(),
    metadata: Object.fromEntries(r.metadata),
    dependencies: deps,
    claimed_at: r.claimedAt === null ? null : iso(r.claimedAt),
    lease_expires_at: r.leaseExpiresAt === null ? null : iso(r.leaseExpiresAt),
    attempt: r.attempt,
  };
}

/** A row holding a bead read from elsewhere (an exec script's store), at `seq` in creation order. */
export function beadToRow(b: Bead, seq: number): Row {
  const ms = (s: string | null): number | null => (s ? Date.parse(s) : null);
  return {
    seq,
    id: b.id,
    title: b.title,
    status: b.status,
    type: b.issue_type,
    priority: b.priority,
    createdAt: ms(b.created_at) ?? 0,
    updatedAt: ms(b.updated_at) ?? 0,
    closedAt: ms(b.closed_at),
    closeReason: b.close_reason,
    assignee: b.assignee,
    from: b.from,
    parent: b.parent,
    ref: b.ref,
    description: b.description,
    labels: new Set(b.labels),
    metadata: new Map(Object.entries(b.metadata)),
    claimedAt: ms(b.claimed_at),
    leaseExpiresAt: ms(b.lease_expires_at),
    attempt: b.attempt,
  };
}
