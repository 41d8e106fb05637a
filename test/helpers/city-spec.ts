/** A city spec from a city.toml fragment on a shared base, and workload/snapshot shorthands (controller tests). */
import { parseCityConfig } from '../../src/config/index.js';
import { citySpec } from '../../src/controller/index.js';
import type { SessionSnapshot } from '../../src/runtime/index.js';
import type { Workload } from '../../src/store/index.js';

export const BASE = `
[workspace]
name = "town"
start_command = "sleep 600"
max_active_sessions = 50
[daemon]
patrol_interval = "1h"
max_restarts = 2
restart_window = "10m"
shutdown_timeout = "1s"
`;

export function spec(extra: string) {
  return citySpec(parseCityConfig(BASE + extra, '/city/city.toml'));
}

export const workload = (
  routed: Record<string, [number, number]> = {},
  claims: Record<string, number> = {},
): Workload => ({
  routed: Object.entries(routed).map(([routed_to, [ready, in_progress]]) => ({
    routed_to,
    ready,
    in_progress,
  })),
  claims: Object.entries(claims).map(([assignee, in_progress]) => ({ assignee, in_progress })),
});

export const alive = (...names: string[]): SessionSnapshot[] =>
  names.map((name) => ({ name, alive: true, lastActivity: 1, attached: false }));
