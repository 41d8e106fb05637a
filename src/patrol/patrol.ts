/**
 * The leader's health patrol, apart from the controller's reconcile tick:
 * every pass takes one batched observation of the city (observe.ts), puts
 * each rig in its tier, looks at the rigs whose tier is due, and walks each
 * finding up the escalation ladder (ladder.ts): nudge the session, restart
 * it, mail the rig's owner, raise an alert. Every step is a `patrol.<step>`
 * event. A finding that goes away is `patrol.cleared` (and its alert
 * resolves) only once it has stayed away for a while: a nudge typed into
 * a stalled session shows up as output, so a stall must stay gone for
 * `stall_timeout + escalate_after` before its ladder starts over (else a
 * stuck agent would be nudged forever and never restarted). A new leader
 * takes up the patrol's alerts still firing, so it neither raises them
 * again nor leaves them firing.
 */
import { performance } from 'node:perf_hooks';
import { errorMessage, systemClock, type Clock } from '../core/index.js';
import type { EventInput } from '../events/index.js';
import {
  dueRigs,
  inspect,
  tierRigs,
  type Finding,
  type Observation,
  type PatrolSettings,
  type RigInfo,
  type Tier,
} from './inspect.js';
import { stepLadder, stepsTaken, type Action, type Rung, type Step } from './ladder.js';

export interface PatrolConfig extends PatrolSettings {
  enabled: boolean;
  ladder: Step[];
  escalateAfterMs: number;
}

export interface PatrolAlert {
  alert: string;
  rig: string;
  value: number;
  severity: 'warning' | 'critical';
  metric: string;
  message: string;
}

export interface PatrolHost {
  config(): PatrolConfig;
  /** Every rig, and the city itself as rig "". */
  rigs(): RigInfo[];
  observe(): Promise<Observation>;
  nudge(session: string, text: string): Promise<void>;
  restart(session: string): void;
  /** Release a lapsed claim if its attempt is still `attempt`. */
  release(bead: string, attempt: number): Promise<void>;
  mail(to: string, subject: string, body: string): Promise<void>;
  /** Raise (or settle) an alert the alert watch lists and routes. */
  raise(a: PatrolAlert): Promise<void>;
  settle(alert: string, rig: string, value: number): Promise<void>;
  /** The patrol's alerts firing now (a new leader's take-up). */
  firing(): { alert: string; rig: string; value: number }[];
  record(e: EventInput): Promise<unknown>;
  /** After every pass (metrics). */
  passed?(r: PassReport): void;
  log(line: string): void;
  clock?: Clock;
}

export interface OpenFinding extends Finding {
  since: number;
  /** Not found since then: it clears if it stays away. */
  absent_since?: number;
  /** The last step taken (none yet: ""). */
  step: Step | 'release' | '';
  tier: Tier;
}

export interface PassReport {
  at: number;
  ms: number;
  due: string[];
  tiers: Record<Tier, number>;
  findings: number;
}

export interface PatrolReport {
  enabled: boolean;
  last: PassReport | undefined;
  /** Median pass time over the recent passes. */
  ms_p50: number;
  tiers: { rig: string; tier: Tier; looked_at: number | null }[];
  findings: OpenFinding[];
}

interface Open {
  finding: Finding;
  rung: Rung;
  last: Action | '';
  alerted: boolean;
  /** Not found since then (it clears after `clearAfter`). */
  absentSince?: number;
}

/** How long a finding must stay away before it clears. */
export function clearAfter(
  f: Finding,
  c: Pick<PatrolConfig, 'stallMs' | 'escalateAfterMs'>,
): number {
  return f.kind === 'stalled' ? c.stallMs + c.escalateAfterMs : c.escalateAfterMs;
}

export const ALERT_PREFIX = 'patrol:';

export class Patrol {
  private readonly open = new Map<string, Open>();
  private readonly lastLooked = new Map<string, number>();
  private tiers = new Map<string, Tier>();
  private readonly recent: number[] = [];
  private last: PassReport | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private readonly clock: Clock;

  constructor(private readonly host: PatrolHost) {
    this.clock = host.clock ?? systemClock;
  }

  /** Take up the firing alerts, then pass every `every` ms (default: the hot interval). */
  start(everyMs?: number): void {
    this.takeUp();
    const every = everyMs ?? Math.max(100, this.host.config().hotMs);
    this.timer = setInterval(() => {
      if (!this.host.config().enabled) return;
      this.running ??= this.pass()
        .catch((e: unknown) => this.host.log(`patrol: ${errorMessage(e)}`))
        .finally(() => (this.running = undefined));
    }, every);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  /** Alerts this patrol raised before a failover: their findings are at the top of the ladder. */
  takeUp(): void {
    for (const a of this.host.firing()) {
      if (!a.alert.startsWith(ALERT_PREFIX)) continue;
      const key = a.alert.slice(ALERT_PREFIX.length);
      const kind = key.slice(0, key.indexOf(':')) as Finding['kind'];
      const now = this.clock.now();
      this.open.set(key, {
        finding: { key, kind, rig: a.rig, value: a.value, detail: '' },
        rung: { since: now, step: Number.MAX_SAFE_INTEGER - 1, at: now },
        last: 'alert',
        alerted: true,
      });
    }
  }

  /** One pass: observe once, look at the due rigs, step their findings. */
  async pass(): Promise<PassReport> {
    const t0 = performance.now();
    const cfg = this.host.config();
    const o = await this.host.observe();
    const now = o.at;
    const rigs = this.host.rigs();
    this.tiers = tierRigs(rigs, o);
    const due = dueRigs(this.tiers, this.lastLooked, now, cfg);
    const dueSet = new Set(due);
    for (const r of due) this.lastLooked.set(r, now);
    const found = inspect(o, dueSet, cfg);
    const owners = new Map(rigs.map((r) => [r.name, r.owner]));
    const seen = new Set<string>();
    for (const f of found) {
      seen.add(f.key);
      const prev = this.open.get(f.key);
      const step = stepLadder(prev?.rung, f, now, cfg.ladder, cfg.escalateAfterMs);
      const entry: Open = {
        finding: f,
        rung: step.next,
        last: step.act ?? prev?.last ?? '',
        alerted: prev?.alerted ?? false,
      };
      this.open.set(f.key, entry);
      if (step.act) await this.act(entry, step.act, owners.get(f.rig) ?? 'human');
    }
    for (const [key, entry] of this.open) {
      if (seen.has(key) || !dueSet.has(entry.finding.rig)) continue;
      entry.absentSince ??= now;
      if (now - entry.absentSince < clearAfter(entry.finding, cfg)) continue;
      this.open.delete(key);
      await this.clear(entry);
    }
    const ms = performance.now() - t0;
    const tiers: Record<Tier, number> = { hot: 0, warm: 0, cold: 0 };
    for (const t of this.tiers.values()) tiers[t]++;
    this.last = { at: now, ms, due, tiers, findings: this.open.size };
    this.recent.push(ms);
    if (this.recent.length > 50) this.recent.shift();
    this.host.passed?.(this.last);
    return this.last;
  }

  private payload(f: Finding, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      finding: f.kind,
      key: f.key,
      rig: f.rig,
      ...(f.session !== undefined ? { session: f.session } : {}),
      ...(f.bead !== undefined ? { bead: f.bead } : {}),
      value: f.value,
      tier: this.tiers.get(f.rig) ?? 'hot',
      ...extra,
    };
  }

  private async act(entry: Open, action: Action, owner: string): Promise<void> {
    const f = entry.finding;
    const where = f.rig ? `rig ${f.rig}` : 'the city';
    let error: string | undefined;
    try {
      switch (action) {
        case 'nudge':
          await this.host.nudge(
            f.session!,
            `gc patrol: ${f.detail}. Carry on, say what blocks you (gc mail send), or release the bead (gc bead unclaim).`,
          );
          break;
        case 'restart':
          this.host.restart(f.session!);
          break;
        case 'release':
          await this.host.release(f.bead!, f.attempt ?? 0);
          break;
        case 'mail':
          await this.host.mail(
            owner,
            `[patrol] ${f.kind} in ${where}`,
            `${f.detail}.\n\nThe patrol found it at ${new Date(entry.rung.since).toISOString()}; ` +
              `gc patrol shows what it has done so far.`,
          );
          break;
        case 'alert':
          await this.host.raise({
            alert: ALERT_PREFIX + f.key,
            rig: f.rig,
            value: f.value,
            severity: 'critical',
            metric: `patrol:${f.kind}`,
            message: `patrol: ${f.detail}`,
          });
          entry.alerted = true;
          break;
      }
    } catch (e) {
      error = errorMessage(e);
      this.host.log(`patrol: ${action} for ${f.key}: ${error}`);
    }
    const past: Record<Action, string> = {
      nudge: 'nudged',
      restart: 'restarted',
      mail: 'mailed',
      alert: 'alerted',
      release: 'released',
    };
    await this.host.record({
      type: `patrol.${past[action]}`,
      actor: 'patrol',
      subject: f.session ?? f.bead ?? (f.rig || 'city'),
      payload: this.payload(f, {
        step: action,
        ...(action === 'mail' ? { to: owner } : {}),
        ...(error !== undefined ? { error } : {}),
      }),
      message: `patrol ${past[action]}${action === 'mail' ? ` ${owner}` : ''}: ${f.detail}${error ? ` (failed: ${error})` : ''}`,
    });
  }

  private async clear(entry: Open): Promise<void> {
    const f = entry.finding;
    if (entry.alerted) {
      await this.host
        .settle(ALERT_PREFIX + f.key, f.rig, 0)
        .catch((e: unknown) => this.host.log(`patrol: resolving ${f.key}: ${errorMessage(e)}`));
    }
    const taken = entry.alerted ? ['alert'] : stepsTaken(f, entry.rung, this.host.config().ladder);
    if (!taken.length) return;
    await this.host.record({
      type: 'patrol.cleared',
      actor: 'patrol',
      subject: f.session ?? f.bead ?? (f.rig || 'city'),
      payload: this.payload(f, { steps: taken }),
      message: `patrol: ${f.key} cleared after ${taken.join(', ')}`,
    });
  }

  report(): PatrolReport {
    const sorted = [...this.recent].sort((a, b) => a - b);
    return {
      enabled: this.host.config().enabled,
      last: this.last,
      ms_p50: sorted.length ? sorted[Math.floor((sorted.length - 1) / 2)]! : 0,
      tiers: [...this.tiers].map(([rig, tier]) => ({
        rig,
        tier,
        looked_at: this.lastLooked.get(rig) ?? null,
      })),
      findings: [...this.open.values()].map((e) => ({
        ...e.finding,
        since: e.rung.since,
        ...(e.absentSince !== undefined ? { absent_since: e.absentSince } : {}),
        step: e.last,
        tier: this.tiers.get(e.finding.rig) ?? 'hot',
      })),
    };
  }
}
