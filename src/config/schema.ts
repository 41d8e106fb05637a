/**
 * city.toml schema (zod). Keys and defaults follow the Gas City contract;
 * durations are Go-style strings validated here and converted where used.
 * Every key has a description: the configuration reference is generated
 * from them.
 */
import { z } from 'zod';
import { count, duration, envMap, isDuration, name, optDuration, strings } from './schema-parts.js';
import { alertSchema, budgetSchema, costsSchema, patrolSchema } from './schema-watch.js';

const sessionProvider = z
  .string()
  .refine((s) => ['', 'tmux', 'subprocess', 'fake', 'k8s'].includes(s) || /^exec:.+/.test(s), {
    message: 'expected "" (tmux), "tmux", "subprocess", "exec:<script>", "k8s" or "fake"',
  });

const storeProvider = z
  .string()
  .refine(
    (s) => ['sqlite', 'memory', 'postgres', 'mysql', 'bd', ''].includes(s) || /^exec:.+/.test(s),
    {
      message: 'expected "sqlite", "memory", "postgres", "mysql" or "exec:<script>"',
    },
  );

export const workspaceSchema = z.object({
  name: name('workspace').describe('City name (required).'),
  prefix: z
    .string()
    .regex(/^[a-z][a-z0-9]{0,15}$/, {
      message: 'lowercase letters and digits, starting with a letter',
    })
    .optional()
    .describe('Bead id prefix; derived from the name when unset.'),
  provider: z.string().optional().describe('Default agent provider preset (e.g. "claude").'),
  start_command: z.string().optional().describe('Default command for agents with none.'),
  suspended: z.boolean().default(false).describe('When true, the controller starts no sessions.'),
  max_active_sessions: count()
    .optional()
    .describe('Cap on sessions in the whole city; derived from the machine when unset.'),
  session_memory_mb: z
    .number()
    .int()
    .positive()
    .default(512)
    .describe('Memory assumed per session when deriving the default city-wide cap.'),
  session_template: z.string().default('{{.Agent}}').describe('Template for session names.'),
  includes: strings()
    .optional()
    .describe('Packs whose agents join the city (Gas City V1; see docs/gascity.md).'),
  default_rig_includes: strings()
    .optional()
    .describe('Packs `gc rig add` writes as a new rig’s includes when --include is not given.'),
  global_fragments: strings()
    .optional()
    .describe(
      'Template fragments (template-fragments/ of any pack) appended to every agent prompt, in order.',
    ),
});

export const agentSchema = z.object({
  name: name('agent').describe('Agent (or pool template) name (required).'),
  description: z.string().optional().describe('What the agent is for.'),
  dir: z.string().optional().describe('Rig this agent is scoped to.'),
  work_dir: z.string().optional().describe('Working directory of its sessions.'),
  provider: z.string().optional().describe('Provider preset (claude, codex, gemini, ...).'),
  start_command: z.string().optional().describe('Command that starts the agent.'),
  args: strings().optional().describe('Extra arguments.'),
  prompt_template: z.string().optional().describe('Prompt template file.'),
  prompt_mode: z.enum(['arg', 'flag', 'none']).optional().describe('How the prompt is passed.'),
  nudge: z.string().optional().describe('Text typed into the session after start.'),
  env: envMap().optional().describe('Extra environment variables.'),
  run_env: strings()
    .optional()
    .describe(
      'Environment variables a run of this agent (POST /v0/runs) may set; anything else is refused (default: none).',
    ),
  process_names: strings().optional().describe('Process names that mean the agent is alive.'),
  ready_prompt_prefix: z
    .string()
    .optional()
    .describe('Output prefix that means the agent is ready.'),
  ready_delay_ms: count().optional().describe('Fixed wait after start before it counts as ready.'),
  pre_start: strings().optional().describe('Shell commands run before the session starts.'),
  session_setup: strings().optional().describe('Shell commands run after the session starts.'),
  session_setup_script: z.string().optional().describe('Script run after the session starts.'),
  overlay_dir: z
    .string()
    .optional()
    .describe(
      "Folder copied into each session's work dir before it starts, never overwriting a file already there (an agent folder's overlay/ by default).",
    ),
  session_live: strings()
    .optional()
    .describe('Commands re-applied to a live session when they change (no restart).'),
  suspended: z.boolean().default(false).describe('When true, no sessions of this agent run.'),
  min_active_sessions: count().default(0).describe('Pool floor.'),
  max_active_sessions: count().optional().describe('Pool ceiling (1 when unset and not a pool).'),
  scale_check: z.string().optional().describe('Shell command printing the desired session count.'),
  drain_timeout: duration('5m', 'How long a draining session may take before it is stopped.'),
  on_death: z.string().optional().describe('Shell command run when a session dies.'),
  work_query: z.string().optional().describe('Command that prints the agent’s work.'),
  sling_query: z.string().optional().describe('Command used to route work to the agent.'),
  idle_timeout: optDuration('Stop a session idle this long.'),
  sleep_after_idle: z
    .string()
    .refine((s) => s === 'off' || isDuration(s), {
      message: 'expected "off" or a Go-style duration such as "30m"',
    })
    .optional()
    .describe(
      'Gas City spelling of idle_timeout: stop a session idle this long ("off": never); idle_timeout wins when both are set.',
    ),
  wake_mode: z
    .enum(['resume', 'fresh'])
    .default('resume')
    .describe(
      'resume (with a resume_command): a session keeps its session key ({{.SessionKey}}, GC_SESSION_KEY) across restarts, and a session that ran before restarts with resume_command; fresh: a new key and start_command at every start.',
    ),
  resume_command: z
    .string()
    .optional()
    .describe(
      'Command that restarts a session which ran before (wake_mode = "resume"), e.g. an agent CLI resuming conversation {{.SessionKey}}; no prompt is sent to it.',
    ),
  namepool: z
    .string()
    .optional()
    .describe(
      "File of session alias names, one per line (# comments): session n of the agent is also known by the n-th name ({{.Alias}}, GC_SESSION_ALIAS, gc session commands). An agent folder's namepool.txt by default.",
    ),
  default_sling_formula: z
    .string()
    .optional()
    .describe(
      'A formula poured on every bead slung to this agent (as `gc sling AGENT BEAD --on FORMULA`); `gc sling --no-formula` routes the bead alone.',
    ),
  install_agent_hooks: strings()
    .optional()
    .describe(
      'Agent CLIs whose hooks gc installs in each session’s work dir ("claude": .claude/settings.local.json runs gc hook, gc mail check --inject and, after a compaction, gc prime).',
    ),
  attach: z
    .boolean()
    .default(true)
    .describe(
      'false: `gc session attach` refuses this agent’s sessions (watch them with gc session peek).',
    ),
  mode: z
    .enum(['always', 'on_demand'])
    .optional()
    .describe(
      'always (default): the session runs whenever the city does; on_demand: it starts when work is routed to it (a [[named_session]] mode).',
    ),
  scope: z
    .enum(['city', 'rig'])
    .optional()
    .describe(
      'In a pack: "city" agents join the city that includes the pack, "rig" agents are stamped into each rig that includes it; unset means both.',
    ),
  fallback: z
    .boolean()
    .default(false)
    .describe('In a pack: yield to another pack’s agent of the same name instead of clashing.'),
  depends_on: strings().optional().describe('Agents that must be started first.'),
});

const gateSchema = z.object({
  command: z.string().min(1).describe('Shell command, run in the candidate’s worktree.'),
  timeout: duration('10m', 'Longest the gate may run.'),
});

export const rigSchema = z.object({
  name: name('rig').describe('Rig name (required).'),
  path: z.string().min(1).describe('Path of the rig’s git repository (required).'),
  prefix: z
    .string()
    .regex(/^[a-z][a-z0-9]{0,15}$/, {
      message: 'lowercase letters and digits, starting with a letter',
    })
    .optional()
    .describe('Bead id prefix for the rig.'),
  suspended: z.boolean().default(false).describe('When true, no sessions of this rig run.'),
  owner: z
    .string()
    .regex(/^[^\s,]+$/, { message: 'a mailbox name: no spaces or commas' })
    .optional()
    .describe('Who the health patrol mails about this rig (default: [patrol] owner).'),
  max_active_sessions: count().optional().describe('Cap on sessions in this rig.'),
  target: z
    .string()
    .min(1)
    .regex(/^[^\s~^:?*[\\]+$/, { message: 'must be a git branch name' })
    .default('main')
    .describe('Branch the merge queue merges into.'),
  merge_style: z
    .enum(['rebase', 'squash'])
    .default('rebase')
    .describe(
      'How a request lands: rebase (its commits, rebased, fast-forwarded) or squash (one commit).',
    ),
  merge_workers: z
    .number()
    .int()
    .min(1)
    .max(32)
    .default(1)
    .describe('Candidates tested at once (speculatively, each on top of the ones before it).'),
  merge_batch: z
    .number()
    .int()
    .min(1)
    .max(64)
    .default(1)
    .describe(
      'Largest batch of waiting requests tested as one candidate with one gate run (1: no batching). Batches adapt to the recent failure rate; a red batch is bisected to find the failing request.',
    ),
  merge_auto_resolve: z
    .boolean()
    .default(true)
    .describe(
      'Resolve a conflict where both sides only added lines (e.g. two entries appended to one list) by keeping both, then gate it as usual; false sends every conflict back.',
    ),
  worktrees: z
    .boolean()
    .default(true)
    .describe('Give each session of an agent in this rig its own git worktree.'),
  copy_files: strings()
    .default([])
    .describe('Untracked files (e.g. .env) copied from the rig into each new worktree.'),
  gates: z
    .object({
      setup: gateSchema.optional().describe('Prepare the worktree (install dependencies).'),
      typecheck: gateSchema.optional().describe('Type check.'),
      lint: gateSchema.optional().describe('Lint.'),
      test: gateSchema.optional().describe('Tests.'),
    })
    .default({})
    .describe('Commands a merge request must pass, in this order; each optional.'),
});

export const providerSchema = z.object({
  command: z.string().optional().describe('Executable.'),
  args: strings().optional().describe('Arguments.'),
  prompt_mode: z.enum(['arg', 'flag', 'none']).optional().describe('How the prompt is passed.'),
  prompt_flag: z
    .string()
    .optional()
    .describe('Flag that carries the prompt (prompt_mode = "flag").'),
  ready_prompt_prefix: z.string().optional().describe('Output prefix that means ready.'),
  ready_delay_ms: count().optional().describe('Fixed wait after start.'),
  process_names: strings().optional().describe('Process names that mean alive.'),
  env: envMap().optional().describe('Environment.'),
});

export const k8sSchema = z.object({
  namespace: z.string().default('gc').describe('Namespace for agent pods.'),
  image: z.string().optional().describe('Agent container image.'),
  context: z.string().optional().describe('kubeconfig context.'),
  cpu_request: z.string().default('500m').describe('Pod CPU request.'),
  mem_request: z.string().default('1Gi').describe('Pod memory request.'),
  cpu_limit: z.string().default('2').describe('Pod CPU limit.'),
  mem_limit: z.string().default('4Gi').describe('Pod memory limit.'),
  prebaked: z.boolean().default(false).describe('The city is baked into the image.'),
  dolt_host: z.string().optional().describe('Database service host seen from pods.'),
  dolt_port: z.number().int().min(1).max(65535).optional().describe('Database service port.'),
  service_account: z.string().optional().describe('Service account of agent pods.'),
  node_selector: z
    .record(z.string(), z.string())
    .optional()
    .describe('Node selector of agent pods (label = value).'),
  labels: z
    .record(z.string(), z.string())
    .optional()
    .describe('Extra labels on agent pods (not app, gc-session, gc-agent).'),
  api_url: z
    .string()
    .optional()
    .describe('GC_API as agent pods must reach it (the API Service), when not the local one.'),
  kubeconfig: z
    .string()
    .optional()
    .describe('kubeconfig file (default $KUBECONFIG, then ~/.kube/config; in a pod, its own).'),
});

export const sessionSchema = z.object({
  provider: sessionProvider
    .default('')
    .describe('Session runtime: "" (tmux), subprocess, exec:<script>, k8s, fake.'),
  startup_timeout: duration('60s', 'How long a session may take to start.'),
  k8s: k8sSchema.prefault({}).describe('Kubernetes provider settings.'),
});

export const beadsSchema = z.object({
  provider: storeProvider
    .default('sqlite')
    .describe(
      'Work store: sqlite, memory, postgres or mysql (with [database] url), exec:<script>.',
    ),
  claim_lease: duration('1h', 'Lease of a claim; a lapsed claim may be taken by another agent.'),
  hold_overlapping: z
    .enum(['prefer', 'strict', 'off'])
    .default('prefer')
    .describe(
      'Conflict-aware claims: a ready bead whose paths (gc.paths, or files its earlier merge requests changed) overlap a bead in flight is held back. prefer: it goes when no other ready bead is free; strict: it waits until that work has landed; off: plain priority order.',
    ),
  durability: z
    .enum(['full', 'normal'])
    .default('full')
    .describe('"full": fsync every commit; "normal": survive process crashes only.'),
});

export const mailSchema = z.object({
  provider: z
    .string()
    .default('')
    .describe('Mail: "" (stored in the work store) or exec:<script>.'),
  max_unread: z
    .number()
    .int()
    .min(0)
    .default(1000)
    .describe(
      'Unread messages a mailbox may hold; a send to a full one is refused (0 = no bound).',
    ),
  max_unread_per_sender: z
    .number()
    .int()
    .min(0)
    .default(100)
    .describe(
      'Unread messages one sender may leave in one mailbox (0 = no bound); mail from the city itself is never refused.',
    ),
  webhook_allow_private: z
    .boolean()
    .default(false)
    .describe('Allow webhook pushes to private, loopback and link-local addresses.'),
  webhook_workers: z
    .number()
    .int()
    .min(1)
    .max(256)
    .default(8)
    .describe('Concurrent webhook deliveries.'),
  webhook_timeout_ms: z
    .number()
    .int()
    .positive()
    .default(5000)
    .describe('Time limit of one webhook delivery attempt.'),
});

export const eventsSchema = z.object({
  provider: z
    .string()
    .refine((s) => ['jsonl', 'memory', 'postgres', 'mysql', ''].includes(s) || /^exec:.+/.test(s), {
      message: 'expected "jsonl", "memory", "postgres", "mysql" or "exec:<script>"',
    })
    .default('jsonl')
    .describe(
      'Event log: jsonl, memory, postgres or mysql, exec:<script>. With [database] url the log is in the database (jsonl then means the default: the database).',
    ),
  max_segment_mb: z
    .number()
    .int()
    .positive()
    .default(64)
    .describe('Rotate the event file at this size.'),
  retain_segments: count().default(0).describe('Rotated event files kept (0 = all).'),
  retain_max_events: count()
    .default(0)
    .describe('On a database: keep at most this many of the newest events (0 = all).'),
  retain_max_age: optDuration('On a database: drop events older than this (unset = keep all).'),
});

export const daemonSchema = z.object({
  patrol_interval: duration('30s', 'Controller tick interval.'),
  max_restarts: count().default(5).describe('Restarts within restart_window before quarantine.'),
  restart_window: duration('1h', 'Window for counting restarts.'),
  shutdown_timeout: duration('5s', 'Grace period between interrupt and stop at shutdown.'),
  probe_concurrency: z.number().int().positive().default(8).describe('Parallel scale checks.'),
  max_wakes_per_tick: z.number().int().positive().default(5).describe('Session starts per tick.'),
  drift_drain_timeout: duration('2m', 'Drain timeout for config-drift restarts.'),
  alert_interval: duration('15s', 'How often the leader looks at the alert rules (a gc key).'),
});

export const databaseSchema = z.object({
  url: z
    .string()
    .default('')
    .describe(
      'postgres://user@host:5432/db or mysql://user@host:3306/db: the work store (beads, mail) on a database server (env GC_DATABASE_URL). Empty: SQLite in .gc/. A password here is never shown; prefer url_file or the env var.',
    ),
  url_file: z
    .string()
    .default('')
    .describe('A file holding the URL (mode 0600, relative to the city), instead of url.'),
  pool_size: z
    .number()
    .int()
    .min(0)
    .max(500)
    .default(0)
    .describe(
      'Database connections this process holds at most (0 = 2 per CPU core plus 4, at most 20).',
    ),
  connect_retry: duration(
    '60s',
    'How long `gc start` keeps trying a database server that is down (backing off from 0.5 s to 5 s) before it gives up.',
  ),
  leader_lease: duration(
    '10s',
    "How long the leader's lease lasts unless renewed (every third of it). When the leader dies, another server leads within this plus one renewal; a leader that cannot renew steps down before it lapses.",
  ),
});

export const apiSchema = z.object({
  port: z
    .number()
    .int()
    .min(0)
    .max(65535)
    .default(0)
    .describe('TCP port for the API (0 = Unix socket only).'),
  bind: z.string().default('127.0.0.1').describe('Address the TCP API binds to.'),
  rate_per_s: z
    .number()
    .nonnegative()
    .default(200)
    .describe('Requests per second each API key earns (0 = no limit).'),
  rate_burst: z
    .number()
    .int()
    .positive()
    .default(400)
    .describe('Requests an API key may make at once before the rate applies.'),
  max_runs: z
    .number()
    .int()
    .min(0)
    .default(32)
    .describe('Agent runs (POST /v0/runs) at once, city-wide (0 = runs disabled).'),
  agent_creates_per_s: z
    .number()
    .nonnegative()
    .default(20)
    .describe('Beads and messages each agent key may create per second (0 = no quota).'),
  agent_creates_burst: z
    .number()
    .int()
    .positive()
    .default(200)
    .describe('Creates an agent key may make at once before its per-second quota applies.'),
  max_connections: z
    .number()
    .int()
    .min(0)
    .default(0)
    .describe(
      'Open connections each API listener accepts (0 = derived from the fd limit, keeping a reserve for sessions and gates).',
    ),
});

const orderOverrideSchema = z.object({
  name: z.string().min(1).describe('The order it changes (its file name).'),
  rig: z
    .string()
    .optional()
    .describe('The rig whose copy it changes (`NAME:rig:RIG`); absent: the city’s order.'),
  enabled: z.boolean().optional().describe('Turn the order on or off.'),
  gate: z
    .enum(['cooldown', 'cron', 'condition', 'event', 'manual'])
    .optional()
    .describe('Its gate.'),
  trigger: z
    .enum(['cooldown', 'cron', 'condition', 'event', 'manual'])
    .optional()
    .describe('Its gate (the newer Gas City name).'),
  interval: optDuration('cooldown: time between runs.'),
  schedule: z.string().optional().describe('cron: five fields.'),
  tz: z.string().optional().describe('cron: the time zone the schedule is read in.'),
  check: z.string().optional().describe('condition: shell command, exit 0 = due.'),
  check_timeout: optDuration('condition: the check’s time limit.'),
  on: z.string().optional().describe('event: the event type.'),
  pool: z.string().optional().describe('formula: the agent or pool its steps go to.'),
  timeout: optDuration('The run’s time limit.'),
});

export const ordersSchema = z.object({
  skip: strings().default([]).describe('Orders never run (their names).'),
  max_timeout: optDuration('Caps every order’s timeout.'),
  overrides: z
    .array(orderOverrideSchema)
    .default([])
    .describe('Changes to pack orders without editing them; one naming no order is an error.'),
  tick: duration('30s', 'How often the leader looks at the orders’ gates (a gc key).'),
});

export const citySchema = z.object({
  include: strings()
    .optional()
    .describe(
      'Fragments: TOML files (paths from the city root) holding more of the city’s own [[agent]] tables.',
    ),
  workspace: workspaceSchema.describe('The city itself.'),
  agent: z.array(agentSchema).default([]).describe('Agents and pools.'),
  rigs: z.array(rigSchema).default([]).describe('Projects (git repositories).'),
  providers: z.record(z.string(), providerSchema).default({}).describe('Agent provider presets.'),
  session: sessionSchema.prefault({}).describe('Session runtime.'),
  beads: beadsSchema.prefault({}).describe('Work store.'),
  mail: mailSchema.prefault({}).describe('Mail.'),
  events: eventsSchema.prefault({}).describe('Event log.'),
  daemon: daemonSchema.prefault({}).describe('Controller.'),
  api: apiSchema.prefault({}).describe('HTTP API.'),
  database: databaseSchema.prefault({}).describe('Database server (PostgreSQL, MariaDB/MySQL).'),
  patrol: patrolSchema.prefault({}).describe('The health patrol (docs/operations.md).'),
  costs: costsSchema.prefault({}).describe('Usage and costs (docs/operations.md).'),
  budgets: z
    .array(budgetSchema)
    .default([])
    .superRefine((list, ctx) => {
      const seen = new Set<string>();
      for (const [i, b] of list.entries()) {
        if (seen.has(b.name)) {
          ctx.addIssue({
            code: 'custom',
            path: [i, 'name'],
            message: `budget "${b.name}" is defined twice`,
          });
        }
        seen.add(b.name);
      }
    })
    .describe('Spending limits per city, rig or agent template, with warn/suspend/stop.'),
  orders: ordersSchema.prefault({}).describe('Orders (orders/<name>.toml): skips and overrides.'),
  alerts: z
    .array(alertSchema)
    .optional()
    .superRefine((list, ctx) => {
      const seen = new Set<string>();
      for (const [i, a] of (list ?? []).entries()) {
        if (seen.has(a.name)) {
          ctx.addIssue({
            code: 'custom',
            path: [i, 'name'],
            message: `alert "${a.name}" is defined twice`,
          });
        }
        seen.add(a.name);
      }
    })
    .describe('Alert rules; absent: the defaults (docs/operations.md); [] for none.'),
});

export type CityConfig = z.output<typeof citySchema>;
export type AgentConfig = z.output<typeof agentSchema>;
export type RigConfig = z.output<typeof rigSchema>;
export type PatrolConfig = z.output<typeof patrolSchema>;
