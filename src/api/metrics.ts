/**
 * The city's figures in Prometheus text format (`GET /metrics`). Gauges are
 * read when scraped (sessions by state from the controller's memory, beads
 * by status, the merge queue per rig, runs, the event log's head); counters
 * follow the event log as it grows (session starts and deaths, beads made
 * and closed, merges, conflicts, gate failures, mail, order runs) and the
 * API's own requests (by route pattern, method and status, with latency).
 * Labels never hold bead ids or session names: only states, rigs, route
 * patterns, event kinds and outcomes, so the series stay few at any scale.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { errorMessage } from '../core/index.js';
import type { CityOps } from '../city/index.js';
import type { Controller } from '../controller/index.js';
import type { GcEvent } from '../events/index.js';
import type { Refinery } from '../refinery/index.js';
import type { Provider } from '../runtime/index.js';
import type { PassReport } from '../patrol/index.js';
import type { BudgetView } from '../alerts/index.js';
import type { UsageRecord } from '../costs/index.js';
import type { RunService } from './runs.js';

/** Every gc event type family counted by `gc_events_total`; anything else is "other". */
const FAMILIES = new Set([
  'alert',
  'bead',
  'budget',
  'controller',
  'convoy',
  'mail',
  'molecule',
  'mq',
  'order',
  'patrol',
  'rig',
  'run',
  'session',
  'wave',
  'webhook',
]);

/** Distinct agent or model label values on the usage metrics; past it, "other". */
const LABEL_CAP = 100;

const SESSION_STATES = [
  'starting',
  'running',
  'draining',
  'dead',
  'waiting',
  'quarantined',
  'stopped',
] as const;

interface Host {
  controller: Controller;
  ops: CityOps;
  refinery: Refinery;
  runs: Pick<RunService, 'active'>;
  provider: Pick<Provider, 'name'>;
  /** The budgets as of their last check (gc_budget_remaining). */
  budgets?: () => BudgetView[];
}

export class CityMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'route' | 'method' | 'code'>;
  private readonly latency: Histogram<'route' | 'method'>;
  private readonly events: Counter<'family'>;
  private readonly sessionEvents: Counter<'event'>;
  private readonly beadEvents: Counter<'event'>;
  private readonly mq: Counter<'rig' | 'outcome'>;
  private readonly mail: Counter;
  private readonly orders: Counter<'outcome'>;
  private readonly patrolPasses: Histogram;
  private readonly patrolFindings: Gauge;
  private readonly patrolSteps: Counter<'step'>;
  private readonly tokens: Counter<'agent' | 'model' | 'kind'>;
  private readonly ticks: Histogram;
  private readonly mqMerge: Histogram<'rig'>;
  private readonly webhooks: Counter<'kind' | 'outcome'>;
  private readonly dollars: Counter<'agent' | 'model'>;

  constructor(private readonly host: Host) {
    const r = this.registry;
    collectDefaultMetrics({ register: r, prefix: 'gc_' });
    this.requests = new Counter({
      name: 'gc_api_requests_total',
      help: 'API requests answered, by route pattern, method and status code.',
      labelNames: ['route', 'method', 'code'],
      registers: [r],
    });
    this.latency = new Histogram({
      name: 'gc_api_request_seconds',
      help: 'API request latency, by route pattern and method.',
      labelNames: ['route', 'method'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers: [r],
    });
    this.events = new Counter({
      name: 'gc_events_total',
      help: 'Events appended to the log since this server started, by type family (bead, session, mq, ...).',
      labelNames: ['family'],
      registers: [r],
    });
    this.sessionEvents = new Counter({
      name: 'gc_session_events_total',
      help: 'Session lifecycle events: started, died, quarantined, start_failed, stopped.',
      labelNames: ['event'],
      registers: [r],
    });
    this.beadEvents = new Counter({
      name: 'gc_bead_events_total',
      help: 'Beads created and closed (closed = completions).',
      labelNames: ['event'],
      registers: [r],
    });
    this.mq = new Counter({
      name: 'gc_mq_outcomes_total',
      help: 'Merge-queue outcomes by rig: merged, conflicted, failed (a gate), rejected.',
      labelNames: ['rig', 'outcome'],
      registers: [r],
    });
    this.mail = new Counter({
      name: 'gc_mail_sent_total',
      help: 'Mail messages sent.',
      registers: [r],
    });
    this.orders = new Counter({
      name: 'gc_order_runs_total',
      help: 'Order runs by outcome: fired, completed, failed.',
      labelNames: ['outcome'],
      registers: [r],
    });
    this.patrolPasses = new Histogram({
      name: 'gc_patrol_seconds',
      help: 'Health patrol passes (one batched look at the city each), by duration.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300],
      registers: [r],
    });
    this.patrolFindings = new Gauge({
      name: 'gc_patrol_findings',
      help: 'What the health patrol finds wrong after its last pass.',
      registers: [r],
    });
    this.patrolSteps = new Counter({
      name: 'gc_patrol_steps_total',
      help: 'Escalation steps the patrol took (nudge, restart, mail, alert, release) and findings cleared.',
      labelNames: ['step'],
      registers: [r],
    });
    this.ticks = new Histogram({
      name: 'gc_controller_tick_seconds',
      help: 'Controller reconcile passes, by duration.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60, 300],
      registers: [r],
    });
    this.mqMerge = new Histogram({
      name: 'gc_mq_enqueue_to_merge_seconds',
      help: 'Submission to merge of each merged request, by rig.',
      labelNames: ['rig'],
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200],
      registers: [r],
    });
    this.webhooks = new Counter({
      name: 'gc_webhook_deliveries_total',
      help: 'Webhook pushes by kind (mail, alert) and outcome (delivered, or why not).',
      labelNames: ['kind', 'outcome'],
      registers: [r],
    });
    this.tokens = new Counter({
      name: 'gc_usage_tokens_total',
      help: 'Tokens used, by agent template, model and kind (input, cached_input, cache_write, output), as recorded on this server.',
      labelNames: ['agent', 'model', 'kind'],
      registers: [r],
    });
    this.dollars = new Counter({
      name: 'gc_usage_cost_usd_total',
      help: 'Dollars spent, by agent template and model (given, or from the price table), as recorded on this server.',
      labelNames: ['agent', 'model'],
      registers: [r],
    });
    const budgets = host.budgets;
    if (budgets) {
      new Gauge({
        name: 'gc_budget_remaining',
        help: 'What is left of each budget in its window (dollars or tokens, per unit), as of its last check.',
        labelNames: ['budget', 'unit'],
        registers: [r],
        collect() {
          for (const b of budgets()) this.set({ budget: b.name, unit: b.unit }, b.remaining);
        },
      });
    }
    this.gauges();
  }

  private gauges(): void {
    const { host } = this;
    const r = this.registry;
    // One look at the controller per scrape, shared by its gauges.
    let seen: ReturnType<Host['controller']['status']> | undefined;
    const status = () => {
      if (!seen) {
        seen = host.controller.status();
        setImmediate(() => (seen = undefined));
      }
      return seen;
    };
    new Gauge({
      name: 'gc_sessions',
      help: 'Sessions the controller knows, by state, with the provider that runs them.',
      labelNames: ['state', 'provider'],
      registers: [r],
      collect() {
        const counts = new Map<string, number>(SESSION_STATES.map((s) => [s, 0]));
        for (const s of status().sessions) {
          counts.set(s.state, (counts.get(s.state) ?? 0) + 1);
        }
        for (const [state, n] of counts) this.set({ state, provider: host.provider.name }, n);
      },
    });
    new Gauge({
      name: 'gc_controller_ticks',
      help: 'Controller reconcile passes since this server started.',
      registers: [r],
      collect() {
        this.set(status().ticks);
      },
    });
    new Gauge({
      name: 'gc_controller_last_tick_seconds',
      help: 'How long the last controller pass took.',
      registers: [r],
      collect() {
        this.set(status().last_tick_ms / 1000);
      },
    });
    new Gauge({
      name: 'gc_beads',
      help: 'Work beads by status (ready: open, unblocked and unclaimed); other: infrastructure beads.',
      labelNames: ['status'],
      registers: [r],
      async collect() {
        const c = await host.ops.store.counts();
        for (const status of ['open', 'in_progress', 'closed', 'ready', 'other'] as const) {
          this.set({ status }, c[status]);
        }
      },
    });
    const rigs = async () => host.refinery.stats();
    let last: ReturnType<typeof rigs> | undefined;
    // One read of the queue per scrape, shared by the merge-queue gauges.
    const stats = () => (last ??= rigs().finally(() => setImmediate(() => (last = undefined))));
    new Gauge({
      name: 'gc_mq_depth',
      help: 'Merge requests waiting, by rig.',
      labelNames: ['rig'],
      registers: [r],
      async collect() {
        for (const s of await stats()) this.set({ rig: s.rig }, s.depth);
      },
    });
    new Gauge({
      name: 'gc_mq_in_flight',
      help: 'Merge requests being tested or merged, by rig.',
      labelNames: ['rig'],
      registers: [r],
      async collect() {
        for (const s of await stats()) this.set({ rig: s.rig }, s.in_flight);
      },
    });
    new Gauge({
      name: 'gc_mq_merged',
      help: 'Merges recorded in the queue, by rig (all time).',
      labelNames: ['rig'],
      registers: [r],
      async collect() {
        for (const s of await stats()) this.set({ rig: s.rig }, s.merged_total);
      },
    });
    new Gauge({
      name: 'gc_mq_conflict_rate',
      help: 'Conflicts per finished merge attempt, by rig.',
      labelNames: ['rig'],
      registers: [r],
      async collect() {
        for (const s of await stats()) this.set({ rig: s.rig }, s.conflict_rate);
      },
    });
    new Gauge({
      name: 'gc_mq_merge_seconds_p50',
      help: 'Enqueue to merge, median, by rig.',
      labelNames: ['rig'],
      registers: [r],
      async collect() {
        for (const s of await stats()) this.set({ rig: s.rig }, s.merge_ms_p50 / 1000);
      },
    });
    new Gauge({
      name: 'gc_runs_active',
      help: 'Agent runs (POST /v0/runs) in progress.',
      registers: [r],
      collect() {
        this.set(host.runs.active);
      },
    });
    new Gauge({
      name: 'gc_event_log_seq',
      help: 'The newest event sequence number of the log.',
      registers: [r],
      async collect() {
        this.set(await host.ops.events.latestSeq());
      },
    });
  }

  /** An API request was answered. */
  observeRequest(route: string, method: string, code: number, seconds: number): void {
    this.requests.inc({ route, method, code: String(code) });
    this.latency.observe({ route, method }, seconds);
  }

  /** Label values seen per label: past LABEL_CAP distinct ones, the rest count as "other". */
  private readonly seen = new Map<string, Set<string>>();
  private capped(label: string, value: string): string {
    const set = this.seen.get(label) ?? new Set<string>();
    this.seen.set(label, set);
    if (set.has(value)) return value;
    if (set.size >= LABEL_CAP) return 'other';
    set.add(value);
    return value;
  }

  /** Usage records were added (model and agent names are callers' text: their labels are capped). */
  observeUsage(records: readonly UsageRecord[]): void {
    for (const u of records) {
      const agent = this.capped('agent', u.agent || 'unknown');
      const model = this.capped('model', u.model || 'unknown');
      for (const kind of ['input', 'cached_input', 'cache_write', 'output'] as const) {
        const n = u[`${kind}_tokens`];
        if (n) this.tokens.inc({ agent, model, kind }, n);
      }
      if (u.cost_usd) this.dollars.inc({ agent, model }, u.cost_usd);
    }
  }

  /** A controller tick ended. */
  observeTick(ms: number): void {
    this.ticks.observe(ms / 1000);
  }

  /** A patrol pass ended. */
  observePatrol(r: PassReport): void {
    this.patrolPasses.observe(r.ms / 1000);
    this.patrolFindings.set(r.findings);
  }

  /** An event was appended (counted by its family and, for the figures above, its type). */
  observeEvent(e: GcEvent): void {
    const dot = e.type.indexOf('.');
    const family = dot > 0 ? e.type.slice(0, dot) : e.type;
    this.events.inc({ family: FAMILIES.has(family) ? family : 'other' });
    const rest = e.type.slice(dot + 1);
    switch (family) {
      case 'session':
        if (['started', 'died', 'quarantined', 'start_failed', 'stopped'].includes(rest)) {
          this.sessionEvents.inc({ event: rest });
        }
        return;
      case 'bead':
        if (rest === 'created' || rest === 'closed') this.beadEvents.inc({ event: rest });
        return;
      case 'mq': {
        if (!['merged', 'conflicted', 'failed', 'rejected'].includes(rest)) return;
        const p = e.payload as { rig?: unknown; wait_ms?: unknown } | undefined;
        const rig = typeof p?.rig === 'string' ? p.rig : '';
        this.mq.inc({ rig, outcome: rest });
        if (rest === 'merged' && typeof p?.wait_ms === 'number') {
          this.mqMerge.observe({ rig }, p.wait_ms / 1000);
        }
        return;
      }
      case 'mail':
        if (rest === 'sent') this.mail.inc();
        if (rest === 'pushed' || rest === 'push_failed') this.webhook('mail', e);
        return;
      case 'alert':
        if (rest === 'pushed' || rest === 'push_failed') this.webhook('alert', e);
        return;
      case 'order':
        if (['fired', 'completed', 'failed'].includes(rest)) this.orders.inc({ outcome: rest });
        return;
      case 'patrol':
        if (['nudged', 'restarted', 'mailed', 'alerted', 'released', 'cleared'].includes(rest)) {
          this.patrolSteps.inc({ step: rest });
        }
        return;
    }
  }

  private webhook(kind: string, e: GcEvent): void {
    const outcome = (e.payload as { outcome?: unknown } | undefined)?.outcome;
    this.webhooks.inc({ kind, outcome: typeof outcome === 'string' ? outcome : 'unknown' });
  }

  /** Count the log's events from `from` on until `signal` aborts. */
  async follow(from: number, signal: AbortSignal, log: (line: string) => void): Promise<void> {
    try {
      for await (const e of this.host.ops.events.watch(from, { signal })) this.observeEvent(e);
    } catch (e) {
      if (!signal.aborted) log(`metrics: following the event log: ${errorMessage(e)}`);
    }
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}
