/**
 * Request schemas of the API. The router validates every body and query
 * against these, and `/v0/openapi.json` is generated from the same objects,
 * so the document cannot drift from what the server accepts.
 */
import { z } from 'zod';
import { MAX_MAIL_BODY } from '../mail/index.js';
import { LIMITS } from '../store/index.js';

/**
 * A string of at most `limit` UTF-8 bytes, the store's own rule and words,
 * so an API client sees the same limit and message as the local CLI.
 */
const sized = (what: string, limit: number) =>
  z
    .string()
    .superRefine((s, ctx) => {
      // Cheap exit: no string of `limit` UTF-16 units or fewer can pass 3x that in bytes.
      if (s.length * 3 <= limit) return;
      const n = Buffer.byteLength(s);
      if (n > limit)
        ctx.addIssue({ code: 'custom', message: `${what} is ${n} bytes; the limit is ${limit}` });
    })
    .describe(`at most ${limit} bytes of UTF-8`);

const name = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[^\s,]+$/, 'must be a name without spaces or commas');
const label = sized('label', LIMITS.label).min(1);
const metadata = z.record(
  sized('metadata key', LIMITS.metadataKey),
  sized('metadata value', LIMITS.metadataValue),
);
const status = z.enum(['open', 'in_progress', 'closed']);
const priority = z.number().int().min(0).max(4);
const leaseMs = z
  .number()
  .int()
  .positive()
  .max(7 * 24 * 3600 * 1000);
const mailBody = z.string().refine((s) => Buffer.byteLength(s) <= MAX_MAIL_BODY, {
  message: `must be at most ${MAX_MAIL_BODY} bytes`,
});

export const createBeadBody = z.strictObject({
  title: sized('title', LIMITS.title).min(1),
  type: sized('type', LIMITS.type).min(1).optional(),
  priority: priority.optional(),
  description: sized('description', LIMITS.description).optional(),
  assignee: sized('assignee', LIMITS.actor).optional(),
  from: sized('from', LIMITS.actor).optional(),
  parent: z.string().max(128).optional(),
  ref: sized('ref', LIMITS.ref).optional(),
  labels: z.array(label).max(100).optional(),
  metadata: metadata.optional(),
  needs: z.array(z.string().min(1).max(200)).max(100).optional(),
  status: status.optional(),
});

export const updateBeadBody = z.strictObject({
  title: sized('title', LIMITS.title).min(1).optional(),
  status: status.optional(),
  priority: priority.optional(),
  description: sized('description', LIMITS.description).optional(),
  parent: z.string().max(128).optional(),
  assignee: sized('assignee', LIMITS.actor).optional(),
  type: sized('type', LIMITS.type).min(1).optional(),
  ref: sized('ref', LIMITS.ref).optional(),
  labels: z.array(label).max(100).optional(),
  remove_labels: z.array(label).max(100).optional(),
  metadata: metadata.optional(),
});

export const readyQueryBody = z.strictObject({
  assignee: z.string().max(256).optional(),
  unassigned: z.boolean().optional(),
  type: z.string().max(64).optional(),
  label: z.string().max(256).optional(),
  metadata: metadata.optional(),
  limit: z.number().int().min(1).max(1000).optional(),
  cursor: z.string().max(512).optional(),
});

export const claimNextBody = z.strictObject({
  query: readyQueryBody.optional(),
  lease_ms: leaseMs.optional(),
  /** With nothing ready: wait this long (at most 30 s) for work before answering null. */
  wait_ms: z.number().int().min(0).max(30_000).optional(),
});

export const mqGetQuery = z.object({
  /** Seconds to wait (at most 30) while the request is queued, testing or merging. */
  wait: z
    .string()
    .regex(/^\d{1,2}$/, 'seconds, 0..30')
    .optional(),
});

export const claimBody = z.strictObject({ lease_ms: leaseMs.optional() });
export const unclaimBody = z.strictObject({
  attempt: z.number().int().min(0).optional(),
  force: z.boolean().optional(),
});
export const closeBody = z.strictObject({ reason: z.string().max(4096).optional() });
export const depBody = z.strictObject({
  depends_on_id: z.string().min(1).max(128),
  type: z.string().min(1).max(64).optional(),
});
export const stopBody = z.strictObject({ reason: z.string().max(1024).optional() });
export const dashboardLinkBody = z.strictObject({
  /** viewer: looks only; operator: may act too (within the caller's own scopes). */
  role: z.enum(['viewer', 'operator']).optional(),
  /** How long the browser session lasts, in hours (default 12, at most 168). */
  hours: z.number().int().min(1).max(168).optional(),
});
export const eventEmitBody = z.strictObject({
  type: z.string().min(1).max(128),
  subject: z.string().max(256).optional(),
  message: z.string().max(4096).optional(),
  payload: z.unknown().optional(),
});
export const slingBody = z.strictObject({
  target: name,
  bead: z.string().min(1).max(128),
  nudge: z.boolean().optional(),
  convoy: z.boolean().optional(),
  owned: z.boolean().optional(),
  /** false: route the bead alone, without the target's default_sling_formula. */
  formula: z.boolean().optional(),
});
export const moleculeBody = z.strictObject({
  formula: z.string().min(1).max(256),
  /** Absent: cook (poured, nothing routed). */
  target: name.optional(),
  vars: z.record(z.string().max(256), z.string().max(64 * 1024)).optional(),
  on: z.string().min(1).max(128).optional(),
  title: z.string().min(1).max(4096).optional(),
  wisp: z.string().min(1).max(32).optional(),
  nudge: z.boolean().optional(),
  convoy: z.boolean().optional(),
  owned: z.boolean().optional(),
});
export const nudgeBody = z.strictObject({
  text: z
    .string()
    .min(1)
    .max(64 * 1024),
});
export const keyCreateBody = z.strictObject({
  kind: z.enum(['admin', 'operator', 'metrics']),
  name,
  max_sessions: z.number().int().min(0).max(100_000).optional(),
});
export const agentRegisterBody = z.strictObject({
  name: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be letters, digits, . _ - (a session name)'),
  webhook_url: z.string().max(2048).optional(),
});

export const mailSendBody = z.strictObject({
  to: name,
  subject: z.string().max(1024).optional(),
  body: mailBody,
  priority: priority.optional(),
  cc: z.array(name).max(50).optional(),
  notify: z.boolean().optional(),
});
export const mailReplyBody = z.strictObject({
  subject: z.string().max(1024).optional(),
  body: mailBody,
  priority: priority.optional(),
  notify: z.boolean().optional(),
});

export const runBody = z.strictObject({
  template: name,
  prompt: z
    .string()
    .min(1)
    .max(64 * 1024),
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string().max(4096)).optional(),
});

// ---- query strings (all values arrive as strings) ----

const qInt = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .refine((s) => Number(s) >= min && Number(s) <= max, `must be ${min}..${max}`);
const qBool = z.enum(['true', 'false']);

export const pageQuery = z.object({
  limit: qInt(1, 1000).optional(),
  cursor: z.string().max(512).optional(),
});

export const beadListQuery = pageQuery.extend({
  status: z
    .string()
    .regex(/^(open|in_progress|closed)(,(open|in_progress|closed))*$/, 'open|in_progress|closed')
    .optional(),
  assignee: z.string().max(256).optional(),
  unassigned: qBool.optional(),
  type: z.string().max(64).optional(),
  work: qBool.optional().describe('only work beads: no mail or other infrastructure records'),
  label: z.string().max(256).optional(),
  parent: z.string().max(128).optional(),
  metadata: z.string().max(8192).optional().describe('JSON object of string values'),
  scan: qBool.optional(),
});

export const eventListQuery = z.object({
  after_seq: qInt(0, Number.MAX_SAFE_INTEGER).optional(),
  limit: qInt(1, 10_000).optional(),
  type: z.string().max(256).optional(),
  actor: z.string().max(256).optional(),
  subject: z.string().max(256).optional(),
  since: z
    .string()
    .max(64)
    .refine((v) => /^\d{1,16}$/.test(v) || !Number.isNaN(Date.parse(v)), {
      message: 'expected an RFC 3339 time or epoch milliseconds',
    })
    .optional(),
});

export const streamQuery = z.object({
  after_seq: qInt(0, Number.MAX_SAFE_INTEGER).optional(),
  /** Frames without an event name (a browser's EventSource hears only names it listens for). */
  plain: qBool.optional(),
});

export const keysQuery = z.object({
  after: qInt(0, Number.MAX_SAFE_INTEGER).optional(),
  limit: qInt(1, 1000).optional(),
  kind: z.enum(['admin', 'operator', 'agent', 'metrics']).optional(),
  revoked: qBool.optional(),
});

export const mailboxQuery = pageQuery.extend({
  agent: name.optional().describe('mailbox to read (admin/operator only; agents read their own)'),
});

export const peekQuery = z.object({ lines: qInt(1, 10_000).optional() });
export const hookQuery = z.object({
  agent: z.string().max(256).optional(),
  limit: qInt(1, 1000).optional(),
});
export const depsQuery = z.object({ direction: z.enum(['down', 'up']).optional() });

const branchName = z
  .string()
  .min(1)
  .max(255)
  .regex(/^(?!-)[^\s~^:?*[\\]+$/, 'must be a git branch name');
export const mqSubmitBody = z.strictObject({
  rig: name.optional().describe('default: the only rig of the city'),
  branch: branchName,
  head: z
    .string()
    .regex(/^[0-9a-f]{40}$/, 'must be a full commit sha')
    .optional()
    .describe("default: the branch's head in the rig repository"),
  bead: z.string().min(1).max(128).optional(),
  priority: priority.optional(),
});
export const mqListQuery = z.object({
  rig: name.optional(),
  state: z.string().max(200).optional().describe('comma-separated states'),
  limit: qInt(1, 1000).optional(),
  cursor: z.string().max(32).optional().describe('next_cursor of the previous page'),
});
export const mqStatsQuery = z.object({ rig: name.optional() });
export const mqRejectBody = z.strictObject({ reason: z.string().max(4096).optional() });

const beadIds = z.array(z.string().min(1).max(128)).min(1).max(10_000);
export const convoyBody = z.strictObject({
  title: z.string().min(1).max(4096),
  beads: z.array(z.string().min(1).max(128)).max(10_000),
  wave_size: z.number().int().min(1).max(10_000).optional(),
  wave_timeout: z.string().min(1).max(32).optional(),
  owned: z.boolean().optional(),
  owner: z.string().min(1).max(256).optional(),
  notify: z.string().min(1).max(256).optional(),
  merge: z.enum(['direct', 'mr', 'local']).optional(),
  target: z.string().min(1).max(256).optional(),
});
export const convoyAddBody = z.strictObject({ beads: beadIds });
export const convoyCloseBody = z.strictObject({
  reason: z.string().max(4096).optional(),
  force: z.boolean().optional(),
  land: z.boolean().optional(),
});
export const convoyTargetBody = z.strictObject({ target: z.string().max(256) });
export const convoyDeleteQuery = z.object({ beads: qBool.optional(), force: qBool.optional() });
export const convoyListQuery = z.object({
  all: qBool.optional(),
  limit: qInt(1, 1000).optional(),
  cursor: z.string().max(512).optional(),
});
export const orderHistoryQuery = z.object({
  order: z.string().max(256).optional(),
  limit: qInt(1, 1000).optional(),
});
export const orderShowQuery = z.object({ check: qBool.optional() });

// ---- costs ----
const tokens = z.number().int().min(0).max(1e12);
export const costRecordBody = z.object({
  session: z.string().min(1).max(128).optional(),
  agent: z.string().min(1).max(128).optional(),
  rig: z.string().max(128).optional(),
  bead: z.string().max(64).optional(),
  provider: z.string().max(64).optional(),
  model: z.string().min(1).max(128),
  input_tokens: tokens.default(0),
  cached_input_tokens: tokens.default(0),
  cache_write_tokens: tokens.default(0),
  output_tokens: tokens.default(0),
  cost_usd: z.number().min(0).max(1e9).optional(),
  /** The caller's id for this record: the same id twice is one record. */
  id: z.string().min(1).max(128).optional(),
  /** When it was spent (epoch ms or RFC 3339); default now. */
  at: z.union([z.number().int().min(0), z.string().max(64)]).optional(),
});
export type CostsBy = 'agent' | 'rig' | 'bead' | 'model' | 'session' | 'provider';
export const costsQuery = z.object({
  by: z.enum(['agent', 'rig', 'bead', 'model', 'session', 'provider']).optional(),
  since: z.string().max(64).optional(),
  until: z.string().max(64).optional(),
  agent: z.string().max(128).optional(),
  rig: z.string().max(128).optional(),
});
