/**
 * The health patrol wired to a city server's parts: it observes through
 * the (fenced) session provider, the controller's memory, the store and
 * the merge queue, and acts through them; its alert step goes to the alert
 * watch with `[patrol] alert_route`.
 */
import path from 'node:path';
import { parseDuration } from '../core/index.js';
import type { CityOps, CityState } from '../city/index.js';
import { agentOfSession, type Controller } from '../controller/index.js';
import type { LoadedConfig } from '../config/index.js';
import type { AlertWatch } from '../alerts/index.js';
import { ALERT_PREFIX, Patrol, observe, type PassReport } from '../patrol/index.js';
import type { Refinery } from '../refinery/index.js';
import type { Provider } from '../runtime/index.js';

export interface PatrolParts {
  state: CityState;
  config: () => LoadedConfig;
  provider: Provider;
  controller: Controller;
  ops: CityOps;
  refinery: Refinery;
  alerts: AlertWatch;
  mail(from: string, to: string, subject: string, body: string): Promise<void>;
  passed?(r: PassReport): void;
  log(line: string): void;
}

export function cityPatrol(p: PatrolParts): Patrol {
  const cfg = () => p.config().config;
  return new Patrol({
    config: () => {
      const c = cfg().patrol;
      return {
        enabled: c.enabled,
        hotMs: parseDuration(c.hot),
        warmMs: parseDuration(c.warm),
        coldMs: parseDuration(c.cold),
        stallMs: parseDuration(c.stall_timeout),
        crashLoopRestarts: c.crash_loop_restarts,
        mqDepth: c.mq_depth,
        mqMergeMs: parseDuration(c.mq_merge_latency),
        conflictRate: c.conflict_rate,
        diskMinFreeBytes: c.disk_min_free_mb * 2 ** 20,
        ladder: c.ladder,
        escalateAfterMs: parseDuration(c.escalate_after),
      };
    },
    rigs: () => {
      const c = cfg();
      return [
        { name: '', suspended: c.workspace.suspended, owner: c.patrol.owner },
        ...c.rigs.map((r) => ({
          name: r.name,
          suspended: r.suspended || c.workspace.suspended,
          owner: r.owner ?? c.patrol.owner,
        })),
      ];
    },
    observe: () => {
      const spec = p.controller.currentSpec;
      const rigOfAgent = new Map(spec.agents.map((a) => [a.name, a.rig ?? '']));
      return observe({
        provider: p.provider,
        status: () => p.controller.status(),
        rigOf: (agent) => (agent ? (rigOfAgent.get(agent) ?? '') : ''),
        isCitySession: (name) => agentOfSession(spec, name) !== undefined,
        store: p.state.store,
        rigStats: () => p.refinery.stats(),
        dirs: () => [
          { path: p.state.gcDir, rig: '' },
          ...cfg().rigs.map((r) => ({ path: path.resolve(spec.root, r.path), rig: r.name })),
        ],
        now: () => Date.now(),
      });
    },
    nudge: (session, text) => p.provider.nudge(session, text),
    restart: (session) => p.controller.requestRestart(session),
    release: async (bead, attempt) => {
      await p.ops.unclaimBead('patrol', bead, { force: true, attempt });
    },
    mail: (to, subject, body) => p.mail('patrol', to, subject, body),
    raise: (a) => p.alerts.raise({ ...a, route: cfg().patrol.alert_route }),
    settle: (alert, rig, value) => p.alerts.settle(alert, rig, value, cfg().patrol.alert_route),
    firing: () =>
      p.alerts
        .active()
        .filter((a) => a.alert.startsWith(ALERT_PREFIX) && a.state === 'firing')
        .map((a) => ({ alert: a.alert, rig: a.rig, value: a.value })),
    record: (e) => p.state.events.record(e),
    passed: (r) => p.passed?.(r),
    log: (line) => p.log(line),
  });
}
