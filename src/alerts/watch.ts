/**
 * The leader's alert watch: every `everyMs` it reads the city's figures
 * (the controller's memory and the merge queue's stats: one look each),
 * steps each rule's instances (state.ts) and records `alert.fired` and
 * `alert.resolved`, mailing each rule's `mail:` routes. A new leader takes
 * up the alerts still firing from the event log, so a failover neither
 * fires them again nor forgets to resolve them.
 */
import { errorMessage, systemClock, type Clock } from '../core/index.js';
import type { ControllerStatus } from '../controller/index.js';
import type { EventLog } from '../events/index.js';
import type { RigStats } from '../refinery/index.js';
import { PER_RIG, type AlertMetric, type AlertRule } from './rules.js';
import { OK, stepAlert, type AlertState } from './state.js';

export interface AlertHost {
  status(): ControllerStatus;
  rigStats(): Promise<RigStats[]>;
  events: EventLog;
  rules(): AlertRule[];
  /** Mail from `alerts` to `to`. */
  mail(to: string, subject: string, body: string): Promise<void>;
  /** Queue a JSON POST of `alert` to an https URL (the mail webhooks' delivery). */
  push(url: string, alert: Record<string, unknown>): void;
  /** The health patrol's figures, when it runs. */
  patrol?(): { last_ms: number; findings: number } | undefined;
  log(line: string): void;
  clock?: Clock;
}

export interface AlertInstance {
  alert: string;
  /** The rig of a per-rig figure ("" for the city). */
  rig: string;
  /** A rule's figure, or what raised it (`patrol:<finding>`). */
  metric: string;
  severity: string;
  above: number;
  state: AlertState['state'];
  since: number;
  value: number;
}

const key = (alert: string, rig: string) => `${alert}\u0000${rig}`;

/** What an alert raised from outside the rules (the patrol) shows. */
export interface RaisedAlert {
  alert: string;
  rig: string;
  value: number;
  severity: 'warning' | 'critical';
  metric: string;
  message: string;
  route: readonly string[];
}

interface Shown {
  metric: string;
  severity: string;
  above: number;
}

export class AlertWatch {
  private readonly states = new Map<string, AlertState>();
  /** How alerts not from a rule show (raised ones, and any taken up from the log). */
  private readonly shown = new Map<string, Shown>();
  private timer: NodeJS.Timeout | undefined;
  private pass: Promise<void> | undefined;
  private readonly clock: Clock;

  constructor(
    private readonly host: AlertHost,
    private readonly everyMs = 15_000,
  ) {
    this.clock = host.clock ?? systemClock;
  }

  async start(): Promise<void> {
    await this.takeUp().catch((e: unknown) =>
      this.host.log(`alerts: reading the firing alerts: ${errorMessage(e)}`),
    );
    this.timer = setInterval(() => {
      this.pass ??= this.check()
        .then(
          () => undefined,
          (e: unknown) => this.host.log(`alerts: ${errorMessage(e)}`),
        )
        .finally(() => (this.pass = undefined));
    }, this.everyMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.pass;
  }

  /** Alerts fired and not resolved in the log are firing here too. */
  private async takeUp(): Promise<void> {
    let after = 0;
    for (;;) {
      const p = await this.host.events.list({
        type: ['alert.fired', 'alert.resolved'],
        afterSeq: after,
        limit: 1000,
      });
      for (const e of p.items) {
        const x = e.payload as
          | { alert?: string; rig?: string; value?: number; metric?: string; severity?: string }
          | undefined;
        if (!x?.alert) continue;
        const k = key(x.alert, x.rig ?? '');
        if (e.type === 'alert.fired') {
          this.states.set(k, {
            state: 'firing',
            since: Date.parse(e.ts),
            value: Number(x.value ?? 0),
          });
          this.shown.set(k, {
            metric: x.metric ?? '',
            severity: x.severity ?? 'warning',
            above: Number((x as { above?: number }).above ?? 0),
          });
        } else {
          this.states.delete(k);
          this.shown.delete(k);
        }
      }
      if (p.next_after_seq === null || !p.items.length) return;
      after = p.next_after_seq;
    }
  }

  /** The city's figures now: per rig where the figure is per rig. */
  private async figures(
    rules: readonly AlertRule[],
  ): Promise<Map<AlertMetric, { rig: string; value: number }[]>> {
    const out = new Map<AlertMetric, { rig: string; value: number }[]>();
    const wanted = new Set(rules.map((r) => r.metric));
    const status = this.host.status();
    const now = this.clock.now();
    const count = (state: string) => status.sessions.filter((s) => s.state === state).length;
    if (wanted.has('controller_tick_seconds')) {
      out.set('controller_tick_seconds', [{ rig: '', value: status.last_tick_ms / 1000 }]);
    }
    if (wanted.has('sessions_quarantined')) {
      out.set('sessions_quarantined', [{ rig: '', value: count('quarantined') }]);
    }
    const patrol = this.host.patrol?.();
    if (wanted.has('patrol_seconds') && patrol) {
      out.set('patrol_seconds', [{ rig: '', value: patrol.last_ms / 1000 }]);
    }
    if (wanted.has('patrol_findings') && patrol) {
      out.set('patrol_findings', [{ rig: '', value: patrol.findings }]);
    }
    if (wanted.has('sessions_dead')) out.set('sessions_dead', [{ rig: '', value: count('dead') }]);
    if (wanted.has('session_idle_seconds')) {
      const idle = status.sessions
        .filter((s) => s.state === 'running' && s.last_activity > 0)
        .map((s) => (now - s.last_activity) / 1000);
      out.set('session_idle_seconds', [{ rig: '', value: idle.length ? Math.max(...idle) : 0 }]);
    }
    if ([...wanted].some((m) => PER_RIG.has(m))) {
      const stats = await this.host.rigStats();
      out.set(
        'mq_depth',
        stats.map((s) => ({ rig: s.rig, value: s.depth })),
      );
      out.set(
        'mq_conflict_rate',
        stats.map((s) => ({ rig: s.rig, value: s.conflict_rate })),
      );
      out.set(
        'mq_wait_seconds_p95',
        stats.map((s) => ({ rig: s.rig, value: s.wait_ms_p95 / 1000 })),
      );
    }
    return out;
  }

  /** One pass over every rule. */
  async check(): Promise<void> {
    const rules = this.host.rules();
    const figures = await this.figures(rules);
    const now = this.clock.now();
    for (const rule of rules) {
      for (const { rig, value } of figures.get(rule.metric) ?? []) {
        const k = key(rule.name, rig);
        const step = stepAlert(this.states.get(k) ?? OK, value, now, {
          above: rule.above,
          forMs: rule.forMs,
          clearForMs: rule.clearForMs,
        });
        this.states.set(k, step.next);
        if (step.transition) await this.announce(rule, rig, value, step.transition, now);
      }
    }
  }

  private announce(
    rule: AlertRule,
    rig: string,
    value: number,
    what: 'fired' | 'resolved',
    now: number,
  ): Promise<void> {
    const where = rig ? ` in rig ${rig}` : '';
    const message =
      what === 'fired'
        ? `alert ${rule.name} (${rule.severity}) fired${where}: ${rule.metric} is ${value}, above ${rule.above}`
        : `alert ${rule.name} resolved${where}: ${rule.metric} is ${value}`;
    return this.tell(
      {
        alert: rule.name,
        rig,
        metric: rule.metric,
        value,
        above: rule.above,
        severity: rule.severity,
      },
      what,
      message,
      rule.route,
      now,
    );
  }

  /** Record the transition, then send it along each route (a failed route is logged). */
  private async tell(
    payload: { alert: string; rig: string; severity: string } & Record<string, unknown>,
    what: 'fired' | 'resolved',
    message: string,
    routes: readonly string[],
    now: number,
  ): Promise<void> {
    await this.host.events.record({
      type: `alert.${what}`,
      actor: 'alerts',
      subject: payload.alert,
      payload,
      message,
    });
    this.host.log(message);
    const at = new Date(now).toISOString();
    for (const r of routes) {
      try {
        if (r.startsWith('webhook:')) {
          this.host.push(r.slice('webhook:'.length), { ...payload, state: what, message, at });
          continue;
        }
        await this.host.mail(
          r.slice('mail:'.length),
          `[${payload.severity}] ${message}`,
          `${message}\nat ${at}`,
        );
      } catch (e) {
        this.host.log(`alerts: route ${r.split('?')[0]}: ${errorMessage(e)}`);
      }
    }
  }

  /** Raise an alert from outside the rules (the patrol's alert step); once while it fires. */
  async raise(a: RaisedAlert): Promise<void> {
    const k = key(a.alert, a.rig);
    if (this.states.get(k)?.state === 'firing') return;
    const now = this.clock.now();
    this.states.set(k, { state: 'firing', since: now, value: a.value });
    this.shown.set(k, { metric: a.metric, severity: a.severity, above: 0 });
    await this.tell(
      { alert: a.alert, rig: a.rig, metric: a.metric, value: a.value, severity: a.severity },
      'fired',
      a.message,
      a.route,
      now,
    );
  }

  /** Resolve a raised alert (nothing when it is not firing). */
  async settle(alert: string, rig: string, value: number, route: readonly string[]): Promise<void> {
    const k = key(alert, rig);
    if (this.states.get(k)?.state !== 'firing') return;
    const shown = this.shown.get(k);
    this.states.delete(k);
    this.shown.delete(k);
    await this.tell(
      { alert, rig, metric: shown?.metric ?? '', value, severity: shown?.severity ?? 'warning' },
      'resolved',
      `alert ${alert} resolved${rig ? ` in rig ${rig}` : ''}`,
      route,
      this.clock.now(),
    );
  }

  /** The instances not ok, and what each rule watches. */
  active(): AlertInstance[] {
    const rules = new Map(this.host.rules().map((r) => [r.name, r]));
    const out: AlertInstance[] = [];
    for (const [k, s] of this.states) {
      if (s.state === 'ok') continue;
      const [alert, rig] = k.split('\u0000') as [string, string];
      const r = rules.get(alert);
      const shown = this.shown.get(k);
      out.push({
        alert,
        rig,
        metric: r?.metric ?? shown?.metric ?? '',
        severity: r?.severity ?? shown?.severity ?? 'warning',
        above: r?.above ?? shown?.above ?? 0,
        state: s.state,
        since: s.since,
        value: s.value,
      });
    }
    return out.sort((a, b) => a.alert.localeCompare(b.alert) || a.rig.localeCompare(b.rig));
  }
}
