/** city.toml schema for watching a fleet: alerts and the health patrol. */
import { z } from 'zod';
import { count, duration, optDuration } from './schema-parts.js';

/** `mail:NAME` or `webhook:https://...` (no credentials in the URL's user part). */
function routeProblem(r: string): string | undefined {
  if (/^mail:[^\s,]+$/.test(r)) return undefined;
  if (!r.startsWith('webhook:')) return 'expected "mail:NAME" or "webhook:https://..."';
  let u: URL;
  try {
    u = new URL(r.slice('webhook:'.length));
  } catch {
    return 'the webhook is not a URL';
  }
  if (u.protocol !== 'https:') return 'the webhook must be an https:// URL';
  if (u.username || u.password) return 'the webhook must not carry credentials in its user part';
  return undefined;
}

const routes = () =>
  z
    .array(
      z.string().superRefine((r, ctx) => {
        const problem = routeProblem(r);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      }),
    )
    .default([]);

export const alertSchema = z.object({
  name: z.string().min(1).describe('The alert’s name (unique).'),
  metric: z
    .enum([
      'mq_depth',
      'mq_conflict_rate',
      'mq_wait_seconds_p95',
      'controller_tick_seconds',
      'patrol_seconds',
      'patrol_findings',
      'sessions_quarantined',
      'sessions_dead',
      'session_idle_seconds',
    ])
    .describe('The city figure it watches (docs/operations.md).'),
  above: z.number().describe('It fires when the figure is above this.'),
  for: duration('0s', 'How long the figure must stay above before it fires.'),
  clear_for: optDuration(
    'How long it must stay at or under before it resolves (default: for, at least 1m): damps flapping.',
  ),
  severity: z.enum(['warning', 'critical']).default('warning').describe('warning or critical.'),
  route: routes().describe(
    'Where it goes besides events and gc alerts: "mail:NAME" (an agent’s webhook gets its mail) or "webhook:https://..." (a JSON POST, delivered like mail webhooks).',
  ),
});

export const PATROL_STEPS = ['nudge', 'restart', 'mail', 'alert'] as const;

export const patrolSchema = z.object({
  enabled: z.boolean().default(true).describe('When false, the leader runs no health patrol.'),
  hot: duration('30s', 'How often rigs with running sessions or queued merges are looked at.'),
  warm: duration('2m', 'How often active rigs with no session running are looked at.'),
  cold: duration('10m', 'How often suspended (parked) rigs are looked at.'),
  stall_timeout: duration(
    '15m',
    'A session holding a claim that shows no output for this long is stalled.',
  ),
  crash_loop_restarts: z
    .number()
    .int()
    .positive()
    .default(3)
    .describe(
      'Restarts within daemon.restart_window that make a crash loop (quarantine always does).',
    ),
  mq_depth: count()
    .default(5)
    .describe('A rig with more merge requests waiting than this is backed up.'),
  mq_merge_latency: duration(
    '30m',
    'A rig whose submission-to-merge p95 (gates included) is over this is slow.',
  ),
  conflict_rate: z
    .number()
    .min(0)
    .max(1)
    .default(0.3)
    .describe('A rig whose conflicts per finished attempt are over this (0..1) is conflicting.'),
  disk_min_free_mb: count()
    .default(1024)
    .describe('Free space under this (MiB) on the disk of .gc/ or a rig is low.'),
  ladder: z
    .array(z.enum(PATROL_STEPS))
    .min(1)
    .default([...PATROL_STEPS])
    .describe(
      'Steps a finding escalates through, in order: nudge (the session), restart (it), mail (the rig’s owner), alert.',
    ),
  escalate_after: duration('5m', 'How long a finding stays before its next step.'),
  owner: z
    .string()
    .regex(/^[^\s,]+$/, { message: 'a mailbox name: no spaces or commas' })
    .default('human')
    .describe('Who the mail step writes to, for rigs without an owner (and the city).'),
  alert_route: routes().describe(
    'Where the alert step’s alerts go besides events and gc alerts ("mail:NAME" or "webhook:https://...").',
  ),
});

const price = z.object({
  input: z.number().min(0).describe('Dollars per million input tokens.'),
  output: z.number().min(0).describe('Dollars per million output tokens.'),
  cached_input: z
    .number()
    .min(0)
    .optional()
    .describe('Dollars per million cached input tokens read (default: a tenth of input).'),
  cache_write: z
    .number()
    .min(0)
    .optional()
    .describe('Dollars per million tokens written to a prompt cache (default: input × 1.25).'),
});

export const costsSchema = z.object({
  ingest: z
    .boolean()
    .default(true)
    .describe(
      'Read the usage of the sessions gc started from Claude Code transcripts and Codex rollouts.',
    ),
  interval: duration('30s', 'How often the leader reads new usage and checks the budgets.'),
  claude_dir: z
    .string()
    .default('')
    .describe(
      'Claude Code’s config folder (default: an agent’s CLAUDE_CONFIG_DIR, else ~/.claude).',
    ),
  codex_dir: z
    .string()
    .default('')
    .describe('Codex’s home (default: an agent’s CODEX_HOME, else ~/.codex).'),
  prices: z
    .record(z.string(), price)
    .default({})
    .describe(
      'Prices by model name prefix, over the built-in table (docs/operations.md); the longest prefix wins.',
    ),
});

export const budgetSchema = z
  .object({
    name: z.string().min(1).describe('The budget’s name (unique).'),
    scope: z
      .string()
      .regex(/^(city|rig:.+|agent:.+)$/, { message: 'expected "city", "rig:NAME" or "agent:NAME"' })
      .default('city')
      .describe('What it covers: "city", "rig:NAME" or "agent:NAME" (an agent template).'),
    window: z.enum(['day', 'week', 'month']).default('day').describe('day, week or month (UTC).'),
    usd: z.number().positive().optional().describe('The amount in dollars.'),
    tokens: z.number().int().positive().optional().describe('The amount in tokens (all kinds).'),
    warn: z
      .array(z.number().gt(0).lt(100))
      .default([50, 80])
      .describe('Percentages of the amount that warn (budget.warned), once each per window.'),
    action: z
      .enum(['warn', 'suspend', 'stop'])
      .default('warn')
      .describe(
        'At the amount: warn (an event only), suspend (its agents are suspended as if city.toml said so, their sessions drained, until the window rolls or the amount is raised), stop (suspended, and their sessions stopped at once).',
      ),
  })
  .superRefine((b, ctx) => {
    if ((b.usd === undefined) === (b.tokens === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['usd'],
        message: 'give exactly one of usd and tokens',
      });
    }
  });
