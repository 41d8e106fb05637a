/**
 * Bead (work item) types. Field names are the beads JSON wire format
 * (snake_case), so `--json` output and exec scripts speak the same shapes.
 */

export type BeadStatus = 'open' | 'in_progress' | 'closed';
export const BEAD_STATUSES: readonly BeadStatus[] = ['open', 'in_progress', 'closed'];

export interface Dependency {
  issue_id: string;
  depends_on_id: string;
  type: string;
}

export interface Bead {
  id: string;
  title: string;
  status: BeadStatus;
  issue_type: string;
  /** 0 = highest .. 4 = lowest. */
  priority: number;
  /** RFC 3339 timestamps. */
  created_at: string;
  updated_at: string;
  closed_at: string | null;
  close_reason: string;
  /** "" when unassigned. */
  assignee: string;
  from: string;
  /** "" when the bead has no parent. */
  parent: string;
  ref: string;
  description: string;
  labels: string[];
  metadata: Record<string, string>;
  /** Dependencies of this bead (this bead is `issue_id`). */
  dependencies: Dependency[];
  /** Claim lease: when the current holder claimed it and when the lease lapses. */
  claimed_at: string | null;
  lease_expires_at: string | null;
  /** Number of times the bead has been claimed: a fencing token for holders. */
  attempt: number;
}

export interface CreateBeadInput {
  title: string;
  /** Defaults to `task`. */
  type?: string;
  /** Defaults to 2. */
  priority?: number;
  description?: string;
  assignee?: string;
  from?: string;
  parent?: string;
  ref?: string;
  labels?: string[];
  metadata?: Record<string, string>;
  /** `"type:id"` or bare `id` (meaning `blocks`). */
  needs?: string[];
  /** Create directly in this status (e.g. importing closed history). */
  status?: BeadStatus;
}

/** Absent fields mean "no change". */
export interface UpdateBeadInput {
  title?: string;
  status?: BeadStatus;
  priority?: number;
  description?: string;
  /** Set the parent; "" removes it. */
  parent?: string;
  assignee?: string;
  type?: string;
  ref?: string;
  /** Appended to the existing labels. */
  labels?: string[];
  remove_labels?: string[];
  /** Merged into the existing metadata. */
  metadata?: Record<string, string>;
}

export interface Page<T> {
  items: T[];
  /** Opaque cursor for the next page; null when this page is the last. */
  next_cursor: string | null;
}

export interface BeadFilter {
  status?: BeadStatus | BeadStatus[];
  assignee?: string;
  /** Only beads with no assignee. */
  unassigned?: boolean;
  type?: string;
  /** Only work beads: no mail, sessions or other infrastructure records. */
  work?: boolean;
  label?: string;
  parent?: string;
  /** Equality on metadata keys, all must match. */
  metadata?: Record<string, string>;
}

export interface ListQuery extends BeadFilter {
  /** Page size; default 100, at most 1000. */
  limit?: number;
  cursor?: string;
  /**
   * A query with no filter is refused unless `scan` is true: walking every
   * bead should be a deliberate choice, never an accident.
   */
  scan?: boolean;
}

export interface ReadyQuery {
  assignee?: string;
  unassigned?: boolean;
  type?: string;
  label?: string;
  metadata?: Record<string, string>;
  limit?: number;
  cursor?: string;
}

export interface ClaimOptions {
  /** Lease length in ms; default is the store's `defaultLeaseMs`. */
  leaseMs?: number;
}

export interface UnclaimOptions {
  /** Only unclaim if held by this actor. */
  actor?: string;
  /** Only unclaim if the claim's attempt (fencing token) still matches. */
  attempt?: number;
}

export interface CloseOptions {
  reason?: string;
}

export interface CloseResult {
  bead: Bead;
  /** False when the bead was already closed (close is idempotent). */
  changed: boolean;
}

/**
 * Work beads by status. Infrastructure beads (INFRA_TYPES: mail messages,
 * merge requests, ...) are not work: they are counted apart, in `other`.
 */
export interface BeadCounts {
  open: number;
  in_progress: number;
  closed: number;
  ready: number;
  /** open + in_progress + closed. */
  total: number;
  /** Beads of infrastructure types, any status. */
  other: number;
}

/** Dependency types that block readiness. `parent-child` blocks transitively. */
export const BLOCKING_DEP_TYPES: ReadonlySet<string> = new Set([
  'blocks',
  'waits-for',
  'conditional-blocks',
]);
export const PARENT_CHILD = 'parent-child';

/** Bead types that are never "ready work". */
export const INFRA_TYPES: ReadonlySet<string> = new Set([
  'merge-request',
  'gate',
  'molecule',
  'message',
  'session',
  'agent',
  'role',
  'rig',
  'convoy',
  'order',
]);

/** Documented size limits (bytes of UTF-8). */
export const LIMITS = {
  title: 4 * 1024,
  description: 1024 * 1024,
  label: 256,
  labelsPerBead: 100,
  metadataKey: 256,
  metadataValue: 64 * 1024,
  metadataPerBead: 200,
  type: 64,
  actor: 256,
  ref: 1024,
} as const;

/** Metadata key that routes a bead to an agent template or pool. */
export const ROUTED_TO = 'gc.routed_to';

/**
 * What the controller needs each tick to size pools and find orphaned
 * claims, in one query: per `gc.routed_to` value, the ready (open,
 * unblocked, unassigned) and in-progress beads; per assignee, the
 * in-progress beads. Closed beads are not counted.
 */
export interface Workload {
  routed: { routed_to: string; ready: number; in_progress: number }[];
  claims: { assignee: string; in_progress: number }[];
}

/**
 * An event as a write records it. It commits with the write, in the store's
 * outbox, and reaches the event log after (in outbox order), so a change and
 * its record are never apart: see "One commit per change" in
 * docs/architecture.md.
 */
export interface OutboxEvent {
  type: string;
  actor: string;
  subject?: string;
  message?: string;
  payload?: unknown;
  /** RFC 3339; the commit time when absent. */
  ts?: string;
}

export interface OutboxRow {
  id: number;
  event: OutboxEvent & { ts: string };
}

/**
 * The API request a write belongs to (its idempotency key), and which of the
 * request's writes this is. The write's result is kept under it in the same
 * transaction; the same write of a retried request returns that result
 * instead of acting again.
 */
export interface RequestRef {
  scope: string;
  key: string;
  /** Fingerprint of the request; a different request under the same key is refused. */
  fp: string;
  /** 0 for the request's first write, 1 for its second, ... */
  n: number;
}

/** What commits together with a write. */
export interface WriteRecord<T> {
  /** The events recording the change, given its result. */
  events?: (result: T) => OutboxEvent[];
  request?: RequestRef | undefined;
  /** Keep the result under `request` only when this says so (default: always). */
  keep?: (result: T) => boolean;
}

/** How long a request's results are kept for retries. */
export const REQUEST_TTL_MS = 24 * 3600 * 1000;
