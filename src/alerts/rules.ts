/**
 * Alert rules: city.toml's `[[alerts]]`, or the seed's defaults when there
 * is none. Each names one of the city figures below; a per-rig figure makes
 * one alert instance per rig.
 */
import { parseDuration } from '../core/index.js';
import type { CityConfig } from '../config/index.js';

export const ALERT_METRICS = {
  mq_depth: 'merge requests waiting in a rig (per rig)',
  mq_conflict_rate: 'conflicts per finished merge attempt in a rig (per rig)',
  mq_wait_seconds_p95: 'submission to first test, 95th percentile (per rig)',
  controller_tick_seconds: 'how long the last controller pass took',
  patrol_seconds: 'how long the last health patrol pass took',
  patrol_findings: 'what the health patrol finds wrong now',
  sessions_quarantined: 'sessions held back after crash loops',
  sessions_dead: 'sessions that died and were not started again yet',
  session_idle_seconds: 'the longest a running session has shown no output',
} as const;
export type AlertMetric = keyof typeof ALERT_METRICS;
export const PER_RIG: ReadonlySet<AlertMetric> = new Set([
  'mq_depth',
  'mq_conflict_rate',
  'mq_wait_seconds_p95',
]);

export interface AlertRule {
  name: string;
  metric: AlertMetric;
  above: number;
  forMs: number;
  clearForMs: number;
  severity: 'warning' | 'critical';
  /**
   * `mail:NAME`: mailed from `alerts` (an agent's webhook gets it as mail);
   * `webhook:https://...`: a JSON POST `{type: "alert", alert}`.
   */
  route: string[];
}

/** The seed's watch list (Gas Town): used when city.toml has no [[alerts]]. */
export const DEFAULT_ALERTS: readonly AlertRule[] = [
  {
    name: 'merge-queue-deep',
    metric: 'mq_depth',
    above: 5,
    forMs: 10 * 60_000,
    clearForMs: 5 * 60_000,
    severity: 'warning',
    route: [],
  },
  {
    name: 'conflict-rate-high',
    metric: 'mq_conflict_rate',
    above: 0.4,
    forMs: 10 * 60_000,
    clearForMs: 10 * 60_000,
    severity: 'warning',
    route: [],
  },
  {
    name: 'patrol-slow',
    metric: 'patrol_seconds',
    above: 300,
    forMs: 0,
    clearForMs: 5 * 60_000,
    severity: 'critical',
    route: [],
  },
  {
    name: 'controller-slow',
    metric: 'controller_tick_seconds',
    above: 300,
    forMs: 0,
    clearForMs: 5 * 60_000,
    severity: 'critical',
    route: [],
  },
  {
    name: 'sessions-quarantined',
    metric: 'sessions_quarantined',
    above: 0,
    forMs: 0,
    clearForMs: 60_000,
    severity: 'warning',
    route: [],
  },
];

/** The city's rules: its [[alerts]], else the defaults. */
export function alertRules(config: Pick<CityConfig, 'alerts'>): AlertRule[] {
  if (config.alerts === undefined) return [...DEFAULT_ALERTS];
  return config.alerts.map((a) => {
    const forMs = parseDuration(a.for);
    return {
      name: a.name,
      metric: a.metric,
      above: a.above,
      forMs,
      clearForMs: a.clear_for !== undefined ? parseDuration(a.clear_for) : Math.max(forMs, 60_000),
      severity: a.severity,
      route: a.route,
    };
  });
}
