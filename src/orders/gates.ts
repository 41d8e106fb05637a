/**
 * Whether an order is due: a pure decision over the facts the scheduler
 * gathered (its last run, an open run, the event cursor, the condition's
 * exit). Never two runs of one order at once; after downtime a cooldown or
 * cron order fires once, not once per missed slot; an event order fires
 * once for every event since its cursor.
 */
import { nextFire, parseCron } from './cron.js';
import type { OrderSpec } from './types.js';

export interface GateFacts {
  now: number;
  /** When it last fired (scheduler clock), if ever. */
  lastRun?: number | undefined;
  /** A run still open (its tracking bead or molecule root). */
  running?: string | undefined;
  /** [orders] skip names it. */
  skipped?: boolean;
  /** cron, never run: since when the scheduler has watched it. */
  watchingSince?: number;
  /** event: the seq its last run covered (0: none). */
  cursor?: number;
  /** event: the newest matching event after the cursor (undefined: none). */
  newEvent?: number | undefined;
  /** condition: the check's outcome, when it was run. */
  condition?: { ok: boolean; reason: string };
}

export interface GateDecision {
  due: boolean;
  reason: string;
  /** cooldown and cron: when it is next due (epoch ms). */
  next?: number;
}

const MINUTE = 60_000;

const stamp = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

function span(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}

/** The checks that come before the gate: enabled, not skipped, not running. */
export function blocked(
  o: OrderSpec,
  f: Pick<GateFacts, 'running' | 'skipped'>,
): string | undefined {
  if (!o.enabled) return 'disabled (enabled = false)';
  if (f.skipped) return 'skipped by [orders] skip in city.toml';
  if (f.running) return `still running (${f.running})`;
  return undefined;
}

export function decide(o: OrderSpec, f: GateFacts): GateDecision {
  const no = blocked(o, f);
  if (no) return { due: false, reason: no };
  switch (o.gate) {
    case 'manual':
      return { due: false, reason: `manual: run it with gc order run ${o.name}` };
    case 'cooldown': {
      const interval = o.intervalMs ?? 0;
      if (f.lastRun === undefined) return { due: true, reason: 'never run' };
      const next = f.lastRun + interval;
      if (f.now >= next) {
        return {
          due: true,
          reason: `last run ${span(f.now - f.lastRun)} ago (interval ${o.interval})`,
          next,
        };
      }
      return { due: false, reason: `cooldown: ${span(next - f.now)} left`, next };
    }
    case 'cron': {
      const c = parseCron(o.schedule ?? '', o.tz);
      // At most once a minute: after a run, the next slot is in a later minute.
      const from =
        f.lastRun !== undefined
          ? Math.floor(f.lastRun / MINUTE) * MINUTE + MINUTE
          : Math.floor((f.watchingSince ?? f.now) / MINUTE) * MINUTE;
      const next = nextFire(c, from);
      if (next === undefined) return { due: false, reason: `cron: "${o.schedule}" never fires` };
      if (next > f.now) return { due: false, reason: `cron: next ${stamp(next)}`, next };
      const missed = Math.floor(f.now / MINUTE) * MINUTE > next;
      return {
        due: true,
        reason: missed
          ? `cron: slot ${stamp(next)} missed, run once now`
          : `cron: slot ${stamp(next)}`,
        next,
      };
    }
    case 'event':
      if (f.newEvent === undefined) {
        return { due: false, reason: `event: no ${o.on} since seq ${f.cursor ?? 0}` };
      }
      return { due: true, reason: `event: ${o.on} #${f.newEvent} (cursor ${f.cursor ?? 0})` };
    case 'condition':
      if (!f.condition) return { due: false, reason: 'condition: not checked' };
      return { due: f.condition.ok, reason: `condition: ${f.condition.reason}` };
  }
}
