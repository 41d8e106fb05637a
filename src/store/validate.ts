/**
 * Pure input validation and normalisation shared by every store backend, so
 * that all of them reject the same inputs with the same messages.
 */
import {
  AlreadyClaimedError,
  ConflictError,
  TooLargeError,
  ValidationError,
} from '../core/index.js';
import {
  BEAD_STATUSES,
  BLOCKING_DEP_TYPES,
  INFRA_TYPES,
  LIMITS,
  PARENT_CHILD,
  type BeadCounts,
  type BeadFilter,
  type BeadStatus,
  type ListQuery,
  type CreateBeadInput,
  type UpdateBeadInput,
} from './types.js';

const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

function checkSize(what: string, value: string, limit: number): void {
  const size = bytes(value);
  if (size > limit) throw new TooLargeError(what, size, limit);
}

export function checkTitle(title: unknown): string {
  if (typeof title !== 'string') throw new ValidationError('must be a string', { where: 'title' });
  if (title.trim() === '') throw new ValidationError('must not be empty', { where: 'title' });
  checkSize('title', title, LIMITS.title);
  return title;
}

export function checkPriority(priority: unknown): number {
  if (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 0 || priority > 4) {
    throw new ValidationError(`must be an integer from 0 (highest) to 4, got ${String(priority)}`, {
      where: 'priority',
    });
  }
  return priority;
}

export function checkStatus(status: unknown): BeadStatus {
  if (!BEAD_STATUSES.includes(status as BeadStatus)) {
    throw new ValidationError(
      `must be one of ${BEAD_STATUSES.join(', ')}, got ${JSON.stringify(status)}`,
      { where: 'status' },
    );
  }
  return status as BeadStatus;
}

export function checkType(type: unknown, where = 'type'): string {
  if (typeof type !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.:-]*$/.test(type)) {
    throw new ValidationError(
      `must be a word of letters, digits, '-', '_', '.', ':', got ${JSON.stringify(type)}`,
      { where },
    );
  }
  checkSize(where, type, LIMITS.type);
  return type;
}

export function checkActor(actor: unknown, where: string): string {
  if (typeof actor !== 'string') throw new ValidationError('must be a string', { where });
  if (/[\n\r\0]/.test(actor)) throw new ValidationError('must be a single line', { where });
  checkSize(where, actor, LIMITS.actor);
  return actor;
}

export function checkLabels(labels: unknown, where = 'labels'): string[] {
  if (!Array.isArray(labels)) throw new ValidationError('must be an array of strings', { where });
  if (labels.length > LIMITS.labelsPerBead) {
    throw new ValidationError(`at most ${LIMITS.labelsPerBead} labels`, { where });
  }
  for (const l of labels) {
    if (typeof l !== 'string' || l === '' || /[\n\r\0]/.test(l)) {
      throw new ValidationError(`each label must be a non-empty single-line string`, { where });
    }
    checkSize('label', l, LIMITS.label);
  }
  return [...new Set(labels as string[])];
}

export function checkMetadata(metadata: unknown, where = 'metadata'): Record<string, string> {
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw new ValidationError('must be an object of string values', { where });
  }
  const out: Record<string, string> = {};
  const entries = Object.entries(metadata);
  if (entries.length > LIMITS.metadataPerBead) {
    throw new ValidationError(`at most ${LIMITS.metadataPerBead} keys`, { where });
  }
  for (const [k, v] of entries) {
    checkMetadataKey(k, where);
    // Metadata values from scripts may be numbers or booleans: coerce.
    const value =
      typeof v === 'string' ? v : v === null || v === undefined ? '' : JSON.stringify(v);
    checkSize(`${where}.${k}`, value, LIMITS.metadataValue);
    out[k] = value;
  }
  return out;
}

export function checkMetadataKey(key: string, where = 'metadata'): string {
  if (key === '' || /[\n\r\0]/.test(key)) {
    throw new ValidationError(`key ${JSON.stringify(key)} must be a non-empty single line`, {
      where,
    });
  }
  checkSize(`${where} key`, key, LIMITS.metadataKey);
  return key;
}

export function checkDescription(description: unknown): string {
  if (typeof description !== 'string') {
    throw new ValidationError('must be a string', { where: 'description' });
  }
  checkSize('description', description, LIMITS.description);
  return description;
}

export function checkRef(ref: unknown): string {
  if (typeof ref !== 'string') throw new ValidationError('must be a string', { where: 'ref' });
  checkSize('ref', ref, LIMITS.ref);
  return ref;
}

/** `"type:id"` -> {type, id}; a bare id means `blocks`. */
export function parseNeed(need: string): { type: string; id: string } {
  const trimmed = need.trim();
  const colon = trimmed.indexOf(':');
  if (colon > 0) {
    const type = trimmed.slice(0, colon);
    const id = trimmed.slice(colon + 1);
    if (id === '')
      throw new ValidationError(`empty id in ${JSON.stringify(need)}`, { where: 'needs' });
    return { type: checkType(type, 'needs'), id };
  }
  if (trimmed === '') throw new ValidationError('empty entry', { where: 'needs' });
  return { type: 'blocks', id: trimmed };
}

export interface NormalizedCreate {
  title: string;
  type: string;
  priority: number;
  status: BeadStatus;
  description: string;
  assignee: string;
  from: string;
  parent: string;
  ref: string;
  labels: string[];
  metadata: Record<string, string>;
  needs: { type: string; id: string }[];
}

export function normalizeCreate(input: CreateBeadInput): NormalizedCreate {
  if (typeof input !== 'object' || input === null) {
    throw new ValidationError('bead input must be an object');
  }
  return {
    title: checkTitle(input.title),
    type: input.type === undefined ? 'task' : checkType(input.type),
    priority: input.priority === undefined ? 2 : checkPriority(input.priority),
    status: input.status === undefined ? 'open' : checkStatus(input.status),
    description: input.description === undefined ? '' : checkDescription(input.description),
    assignee: input.assignee === undefined ? '' : checkActor(input.assignee, 'assignee'),
    from: input.from === undefined ? '' : checkActor(input.from, 'from'),
    parent: input.parent === undefined ? '' : checkActor(input.parent, 'parent'),
    ref: input.ref === undefined ? '' : checkRef(input.ref),
    labels: input.labels === undefined ? [] : checkLabels(input.labels),
    metadata: input.metadata === undefined ? {} : checkMetadata(input.metadata),
    needs: (input.needs ?? []).map(parseNeed),
  };
}

/** Most beads one `createMany` makes (a molecule of a large formula fits). */
export const MAX_CREATE_BATCH = 5000;

/** How a bead of a `createMany` batch names an earlier one of the same batch. */
export function batchRef(index: number): string {
  return `#${index}`;
}

/**
 * Every input of a batch checked, with `#N` references in `parent` and
 * `needs` replaced by the ids the batch gives (`ids[N]`, known once the
 * earlier beads are made): returns, per input, the normalized create and
 * the ids it names that exist outside the batch.
 */
export function normalizeBatch(
  inputs: readonly CreateBeadInput[],
): { n: NormalizedCreate; outside: string[] }[] {
  if (inputs.length > MAX_CREATE_BATCH) {
    throw new ValidationError(
      `at most ${MAX_CREATE_BATCH} beads in one batch, got ${inputs.length}`,
    );
  }
  return inputs.map((input, i) => {
    let n: NormalizedCreate;
    try {
      n = normalizeCreate(input);
    } catch (e) {
      if (e instanceof ValidationError) {
        throw new ValidationError(e.message, { where: `bead [${i}]` });
      }
      throw e;
    }
    const outside: string[] = [];
    const check = (id: string, field: string) => {
      const m = /^#(\d+)$/.exec(id);
      if (!m) {
        outside.push(id);
        return;
      }
      if (Number(m[1]) >= i) {
        throw new ValidationError(`${id} is not an earlier bead of the batch`, {
          where: `[${i}].${field}`,
        });
      }
    };
    if (n.parent) check(n.parent, 'parent');
    for (const need of n.needs) check(need.id, 'needs');
    return { n, outside };
  });
}

/** A normalized create with its `#N` references replaced by the batch's ids. */
export function resolveBatch(n: NormalizedCreate, ids: readonly string[]): NormalizedCreate {
  const real = (id: string) => (/^#\d+$/.test(id) ? ids[Number(id.slice(1))]! : id);
  return {
    ...n,
    parent: n.parent ? real(n.parent) : '',
    needs: n.needs.map((x) => ({ ...x, id: real(x.id) })),
  };
}

export function normalizeUpdate(patch: UpdateBeadInput): UpdateBeadInput {
  if (typeof patch !== 'object' || patch === null) {
    throw new ValidationError('update must be an object');
  }
  const out: UpdateBeadInput = {};
  if (patch.title !== undefined) out.title = checkTitle(patch.title);
  if (patch.status !== undefined) out.status = checkStatus(patch.status);
  if (patch.priority !== undefined) out.priority = checkPriority(patch.priority);
  if (patch.description !== undefined) out.description = checkDescription(patch.description);
  if (patch.parent !== undefined) out.parent = checkActor(patch.parent, 'parent');
  if (patch.assignee !== undefined) out.assignee = checkActor(patch.assignee, 'assignee');
  if (patch.type !== undefined) out.type = checkType(patch.type);
  if (patch.ref !== undefined) out.ref = checkRef(patch.ref);
  if (patch.labels !== undefined) out.labels = checkLabels(patch.labels);
  if (patch.remove_labels !== undefined) {
    out.remove_labels = checkLabels(patch.remove_labels, 'remove_labels');
  }
  if (patch.metadata !== undefined) out.metadata = checkMetadata(patch.metadata);
  return out;
}

export function isBlockingType(type: string): boolean {
  return BLOCKING_DEP_TYPES.has(type) || type === PARENT_CHILD;
}

export function zeroCounts(): BeadCounts {
  return { open: 0, in_progress: 0, closed: 0, ready: 0, total: 0, other: 0 };
}

export function isInfraType(type: string): boolean {
  return INFRA_TYPES.has(type);
}

export const DEFAULT_PAGE = 100;
export const MAX_PAGE = 1000;

export function pageSize(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_PAGE;
  if (!Number.isInteger(limit) || limit < 1) {
    throw new ValidationError(`must be a positive integer, got ${String(limit)}`, {
      where: 'limit',
    });
  }
  return Math.min(limit, MAX_PAGE);
}

/** Cursors are opaque base64url JSON arrays of numbers. */
export function encodeCursor(parts: number[]): string {
  return Buffer.from(JSON.stringify(parts)).toString('base64url');
}

export function decodeCursor(cursor: string | undefined, arity: number): number[] | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  try {
    const parts: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(parts) &&
      parts.length === arity &&
      parts.every((p) => typeof p === 'number' && Number.isFinite(p))
    ) {
      return parts as number[];
    }
  } catch {
    // fall through to the error below
  }
  throw new ValidationError('invalid cursor; pass next_cursor from a previous page unchanged', {
    where: 'cursor',
  });
}

export function hasFilter(q: ListQuery | BeadFilter): boolean {
  return (
    q.status !== undefined ||
    q.assignee !== undefined ||
    q.unassigned !== undefined ||
    q.type !== undefined ||
    q.label !== undefined ||
    q.parent !== undefined ||
    (q.metadata !== undefined && Object.keys(q.metadata).length > 0)
  );
}

export function statusList(
  status: BeadStatus | BeadStatus[] | undefined,
): BeadStatus[] | undefined {
  if (status === undefined) return undefined;
  const list = Array.isArray(status) ? status : [status];
  return list.map(checkStatus);
}

export const DEFAULT_LEASE_MS = 60 * 60 * 1000;

export function checkLease(ms: number | undefined, fallback: number): number {
  if (ms === undefined) return fallback;
  if (!Number.isFinite(ms) || ms <= 0) {
    throw new ValidationError(`must be a positive number of milliseconds`, { where: 'lease' });
  }
  return ms;
}

export const iso = (ms: number): string => new Date(ms).toISOString();

export interface ClaimState {
  id: string;
  status: BeadStatus;
  assignee: string;
  leaseExpiresAt: number | null;
}

/**
 * The claim compare-and-set decision, shared by every backend. Throws when
 * `actor` may not claim; otherwise says whether this is a renewal of the
 * actor's own claim (same attempt) or a new claim (attempt + 1).
 */
export function decideClaim(b: ClaimState, actor: string, now: number): { renew: boolean } {
  if (b.status === 'closed') {
    throw new ConflictError(`bead ${b.id} is closed and cannot be claimed`, {
      details: { id: b.id, status: b.status },
    });
  }
  const mine = b.assignee === actor;
  if (b.status === 'in_progress' && !mine) {
    const lapsed = b.leaseExpiresAt !== null && b.leaseExpiresAt <= now;
    if (!lapsed) throw new AlreadyClaimedError(b.id, b.assignee, b.status);
  } else if (b.status === 'open' && b.assignee !== '' && !mine) {
    throw new AlreadyClaimedError(b.id, b.assignee, b.status);
  }
  return { renew: b.status === 'in_progress' && mine };
}

/**
 * The unclaim decision, shared by every backend: throws when the bead is
 * closed, held by someone other than `options.actor`, or was claimed again
 * since `options.attempt`; otherwise whether there is a claim to release
 * (false: already open with no holder).
 */
export function decideUnclaim(
  b: { id: string; status: BeadStatus; assignee: string; attempt: number },
  options: { actor?: string; attempt?: number },
): boolean {
  if (b.status === 'closed') {
    throw new ConflictError(`bead ${b.id} is closed; reopen it with update status=open`, {
      details: { id: b.id },
    });
  }
  // Only the holder (or a forced unclaim, which passes no actor) may release.
  if (options.actor !== undefined && b.assignee !== '' && b.assignee !== options.actor) {
    throw new ConflictError(`bead ${b.id} is held by ${b.assignee}, not ${options.actor}`, {
      details: { id: b.id, holder: b.assignee },
    });
  }
  if (options.attempt !== undefined && b.attempt !== options.attempt) {
    throw new ConflictError(
      `bead ${b.id} was re-claimed (attempt ${b.attempt}, not ${options.attempt})`,
      { details: { id: b.id, attempt: b.attempt } },
    );
  }
  return !(b.status === 'open' && b.assignee === '');
}
