/**
 * The work store seam. Backend-neutral: no connection, statement or
 * transaction type appears here; each backend owns its connections.
 *
 * Every write takes an optional `WriteRecord`: the events that record it and
 * the API request it answers commit in the same transaction as the change
 * (see `outbox`).
 *
 * Semantics follow the beads contract (see docs/beads.md). Every method is
 * async. "Not found" is always a `NotFoundError`; bad input is a
 * `ValidationError` naming the field; a lost claim is `AlreadyClaimedError`.
 */
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
  Page,
  ReadyQuery,
  UnclaimOptions,
  UpdateBeadInput,
  Workload,
  OutboxRow,
  WriteRecord,
} from './types.js';

export interface Store {
  /** Backend name, e.g. `memory` or `sqlite`. */
  readonly backend: string;

  /**
   * Create a bead. Fills `id`, `status` (open), `issue_type` (task),
   * `priority` (2) and timestamps. `needs` and `parent` become dependencies.
   * Must succeed or throw; not idempotent (each call creates a new bead).
   */
  create(input: CreateBeadInput, rec?: WriteRecord<Bead>): Promise<Bead>;

  /**
   * Create several beads in one transaction: all of them or none, and no
   * reader sees some without the others (a molecule is never half made).
   * `parent` and `needs` may name an earlier bead of the batch as `#N` (its
   * index: `batchRef(N)`). Returns the beads in input order.
   */
  createMany(inputs: readonly CreateBeadInput[], rec?: WriteRecord<Bead[]>): Promise<Bead[]>;

  /** The bead, or `NotFoundError`. */
  get(id: string): Promise<Bead>;

  /** Beads for the ids that exist, in the order given; missing ids are skipped. */
  getMany(ids: readonly string[]): Promise<Bead[]>;

  /**
   * Apply a partial update (absent = no change; labels appended; metadata
   * merged). Setting status `closed` is a close; moving out of `closed` reopens.
   */
  update(id: string, patch: UpdateBeadInput, rec?: WriteRecord<Bead>): Promise<Bead>;

  /** Close. Idempotent: closing a closed bead succeeds with `changed: false`. */
  close(id: string, options?: CloseOptions, rec?: WriteRecord<CloseResult>): Promise<CloseResult>;

  /** Permanently remove a bead with its labels, metadata and dependencies. */
  delete(id: string, rec?: WriteRecord<void>): Promise<void>;

  /**
   * One page of beads in creation order. Refused (`ValidationError`) when no
   * filter is given and `scan` is not set.
   */
  list(query: ListQuery): Promise<Page<Bead>>;

  /**
   * Ready work: open, not an infrastructure type, no blocking dependency on
   * an unclosed bead (and no blocked parent). Ordered by priority, then
   * creation. Served from an index, never a scan of all beads.
   */
  ready(query?: ReadyQuery): Promise<Page<Bead>>;

  /** Direct children of `parentId` in creation order. */
  children(parentId: string, query?: { limit?: number; cursor?: string }): Promise<Page<Bead>>;

  /** Number of beads matching a filter (no filter: all beads). */
  count(filter?: BeadFilter): Promise<number>;

  /** Number of ready beads matching a ready filter. */
  countReady(query?: ReadyQuery): Promise<number>;

  /** Totals by status plus the ready count. */
  counts(): Promise<BeadCounts>;

  /** Per-route and per-assignee open work, for the controller's tick (see `Workload`). */
  workload(): Promise<Workload>;

  /** Set one metadata key. */
  setMetadata(id: string, key: string, value: string, rec?: WriteRecord<Bead>): Promise<Bead>;

  /**
   * Add `issueId` depends-on `dependsOnId`. Idempotent; re-adding with a
   * different type changes the type. Refuses self-dependencies and cycles
   * among blocking types (`ConflictError`). Both beads must exist.
   */
  addDependency(
    issueId: string,
    dependsOnId: string,
    type?: string,
    rec?: WriteRecord<void>,
  ): Promise<void>;

  /** Remove a dependency. Idempotent: removing an absent one succeeds. */
  removeDependency(issueId: string, dependsOnId: string, rec?: WriteRecord<void>): Promise<void>;

  /**
   * `down`: what `id` depends on. `up`: what depends on `id`.
   * `NotFoundError` if `id` does not exist.
   */
  listDependencies(id: string, direction: 'down' | 'up'): Promise<Dependency[]>;

  /**
   * Atomic compare-and-set claim: succeeds when the bead is open and
   * unassigned (or assigned to `actor`), when `actor` already holds it
   * (idempotent; renews the lease), or when another holder's lease has
   * lapsed (the attempt counter then increases: a fencing token). Otherwise
   * `AlreadyClaimedError`; a closed bead is a `ConflictError`.
   */
  claim(id: string, actor: string, options?: ClaimOptions, rec?: WriteRecord<Bead>): Promise<Bead>;

  /**
   * Pick the first ready bead matching `query` and claim it for `actor`, in
   * one atomic step. Null when nothing is ready. Concurrent callers never
   * receive the same bead.
   */
  claimNextReady(
    actor: string,
    query?: ReadyQuery & ClaimOptions,
    rec?: WriteRecord<Bead | null>,
  ): Promise<Bead | null>;

  /** Extend the lease of a claim `actor` holds; `ConflictError` if it does not. */
  renewClaim(id: string, actor: string, options?: ClaimOptions): Promise<Bead>;

  /**
   * Return an in-progress bead to `open` with no assignee. Idempotent for an
   * open bead. With `actor`/`attempt`, only if they still match
   * (`ConflictError` otherwise).
   */
  unclaim(id: string, options?: UnclaimOptions, rec?: WriteRecord<Bead>): Promise<Bead>;

  /** Unclaim every in-progress bead held by `actor`; returns those released. */
  releaseClaims(actor: string, rec?: WriteRecord<Bead[]>): Promise<Bead[]>;

  /** Unclaim in-progress beads whose lease lapsed before `now` (ms). */
  releaseExpiredClaims(now?: number, rec?: WriteRecord<Bead[]>): Promise<Bead[]>;

  /**
   * Events committed with writes (`WriteRecord.events`) and not yet
   * acknowledged as appended to the event log, oldest first (only those
   * with an id above `afterId` when given).
   */
  outbox(limit?: number, afterId?: number): Promise<OutboxRow[]>;

  /**
   * A write's events go straight into the event log table in its own
   * transaction (a store on a database server): the outbox then only holds
   * what an older gc left there, which `recover` appends at open, so there
   * is nothing to move after each write.
   */
  readonly eventsInline?: boolean;

  /** Forget outbox rows up to and including `throughId` (they are in the log). */
  ackOutbox(throughId: number): Promise<void>;

  /** Release connections and files. Further calls fail. */
  dispose(): Promise<void>;
}
