/**
 * Controller tick cost in a steady city (every desired session running,
 * nothing to change): fake provider with 10,000 sessions (quick: 2,000) and
 * real tmux with 200 (quick: 100). The store is the real SQLite one, with
 * routed and claimed work in it.
 *
 * Provider calls are counted at the provider (a CountingProvider between
 * the controller and the provider), and for tmux also as tmux processes
 * spawned. The baseline, in the same run and on the same sessions, is the
 * per-session probe pattern of the Go original: the same controller, whose
 * snapshot is built from one list plus is-running and process-alive for
 * every session (8 in flight at a time).
 *
 *   npx tsx bench/reconcile.ts [--quick]
 */
import { join } from 'node:path';
import { CityOps } from '../src/city/index.js';
import { parseCityConfig } from '../src/config/index.js';
import { Controller, citySpec } from '../src/controller/index.js';
import { MemoryEventLog } from '../src/events/index.js';
import {
  CountingProvider,
  FakeProvider,
  TmuxProvider,
  type Provider,
  type SessionSnapshot,
} from '../src/runtime/index.js';
import { SqliteStore } from '../src/store/index.js';
import { note, percentile, quick, result, round, scratchDir } from './lib.js';

const FAKE_SESSIONS = quick ? 2000 : 10_000;
const TMUX_SESSIONS = quick ? 100 : 200;
const TICKS = quick ? 15 : 30;
const BASELINE_TICKS = quick ? 2 : 5;
const PROBE_CONCURRENCY = 8;
const dir = scratchDir('reconcile');

/**
 * The baseline's snapshot: list the live sessions, then ask each one
 * whether it runs and whether its agent process is alive. Every other call
 * goes straight through. It sits above the counting provider, so each probe
 * is counted.
 */
class PerSessionProbes extends CountingProvider {
  constructor(private readonly probed: CountingProvider) {
    super(probed);
  }

  override async snapshot(prefix: string): Promise<SessionSnapshot[]> {
    const names = await this.probed.listRunning(prefix);
    const out: SessionSnapshot[] = new Array<SessionSnapshot>(names.length);
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(PROBE_CONCURRENCY, names.length) }, async () => {
        while (next < names.length) {
          const i = next++;
          const name = names[i]!;
          const running = await this.probed.isRunning(name);
          const agentAlive = running && (await this.probed.processAlive(name, ['sleep']));
          out[i] = { name, alive: agentAlive, lastActivity: 0, attached: false };
        }
      }),
    );
    return out;
  }
}

interface Measured {
  tick_ms_p50: number;
  tick_ms_p95: number;
  calls_per_tick: number;
  tmux_spawns_per_tick?: number;
}

interface Run {
  provider: string;
  sessions: number;
  tick_ms_p50: number;
  tick_ms_p95: number;
  provider_calls_per_tick: number;
  tmux_spawns_per_tick?: number;
  baseline_tick_ms_p50: number;
  baseline_calls_per_tick: number;
  baseline_tmux_spawns_per_tick?: number;
  tick_ratio: number;
  rss_mb?: number;
}

/** Steady ticks of a controller over `provider`, counted at `counter`. */
async function measure(
  label: string,
  controller: Controller,
  counter: CountingProvider,
  ticks: number,
  spawns?: () => number,
): Promise<Measured> {
  const ms: number[] = [];
  const calls: number[] = [];
  const spawned: number[] = [];
  for (let i = 0; i < ticks; i++) {
    const c0 = counter.total;
    const s0 = spawns?.() ?? 0;
    const r = await controller.tick();
    if (r.plan.actions.length !== 0) {
      throw new Error(`${label}: city not steady, tick planned ${r.plan.actions.length} actions`);
    }
    ms.push(r.ms);
    calls.push(counter.total - c0);
    if (spawns) spawned.push(spawns() - s0);
  }
  return {
    tick_ms_p50: round(percentile(ms, 50)),
    tick_ms_p95: round(percentile(ms, 95)),
    calls_per_tick: Math.max(...calls),
    ...(spawns ? { tmux_spawns_per_tick: Math.max(...spawned) } : {}),
  };
}

async function steadyCity(
  provider: Provider,
  sessions: number,
  label: string,
  spawns?: () => number,
): Promise<Run> {
  const loaded = parseCityConfig(
    `[workspace]
name = "bench"
max_active_sessions = ${sessions + 10}
[daemon]
patrol_interval = "1h"
max_wakes_per_tick = ${sessions}
[[agent]]
name = "w"
start_command = "sleep 3600"
min_active_sessions = ${sessions}
max_active_sessions = ${sessions}
`,
    join(dir, `${label}.toml`),
  );
  const store = new SqliteStore({ path: join(dir, `${label}.db`), prefix: 'bn' });
  const ops = new CityOps(store, new MemoryEventLog());
  // Routed work, some of it claimed by pool sessions: what the tick's one
  // workload query has to count.
  for (let i = 0; i < 2000; i += 500) {
    await Promise.all(
      Array.from({ length: 500 }, (_, k) =>
        store.create({ title: `t${i + k}`, metadata: { 'gc.routed_to': 'w' } }),
      ),
    );
  }
  const ready = await store.ready({ limit: 200 });
  await Promise.all(ready.items.map((b, i) => store.claim(b.id, `w-${i + 1}`)));
  const spec = citySpec(loaded);
  const counted = new CountingProvider(provider);
  const controller = new Controller({ provider: counted, ops, spec });
  // Fill the city, then let it settle.
  for (let i = 0; i < 5; i++) {
    const r = await controller.tick();
    if (r.plan.actions.length === 0) break;
  }
  const running = (await provider.snapshot('')).filter((s) => s.alive).length;
  if (running !== sessions) {
    throw new Error(`${label}: ${running} sessions running, expected ${sessions}`);
  }
  const ours = await measure(label, controller, counted, TICKS, spawns);
  // The baseline: a second controller adopts the same running sessions and
  // observes them one by one.
  const baseCounted = new CountingProvider(provider);
  const baseController = new Controller({
    provider: new PerSessionProbes(baseCounted),
    ops,
    spec,
  });
  await baseController.tick(); // adoption
  const base = await measure(
    `${label} baseline`,
    baseController,
    baseCounted,
    BASELINE_TICKS,
    spawns,
  );
  const run: Run = {
    provider: provider.name,
    sessions,
    tick_ms_p50: ours.tick_ms_p50,
    tick_ms_p95: ours.tick_ms_p95,
    provider_calls_per_tick: ours.calls_per_tick,
    ...(ours.tmux_spawns_per_tick !== undefined
      ? { tmux_spawns_per_tick: ours.tmux_spawns_per_tick }
      : {}),
    baseline_tick_ms_p50: base.tick_ms_p50,
    baseline_calls_per_tick: base.calls_per_tick,
    ...(base.tmux_spawns_per_tick !== undefined
      ? { baseline_tmux_spawns_per_tick: base.tmux_spawns_per_tick }
      : {}),
    tick_ratio: round(base.tick_ms_p50 / ours.tick_ms_p50, 1),
  };
  note(
    `${label}: ${sessions} sessions, tick p50 ${run.tick_ms_p50} ms with ${run.provider_calls_per_tick} provider call(s)` +
      `${spawns ? ` (${run.tmux_spawns_per_tick} tmux processes)` : ''}; per-session probes: ${run.baseline_tick_ms_p50} ms with ${run.baseline_calls_per_tick} calls` +
      `${spawns ? ` (${run.baseline_tmux_spawns_per_tick} tmux processes)` : ''}`,
  );
  await store.dispose();
  return run;
}

const fake = await steadyCity(new FakeProvider(), FAKE_SESSIONS, 'fake');
fake.rss_mb = round(process.memoryUsage().rss / 1024 / 1024, 1);

const tmux = new TmuxProvider({
  socket: `gc-bench-rc-${process.pid}`,
  stateDir: dir,
  stopGraceMs: 200,
});
let tmuxRun: Run;
try {
  tmuxRun = await steadyCity(tmux, TMUX_SESSIONS, 'tmux', () => tmux.subprocesses);
} finally {
  await tmux.killServer().catch(() => undefined);
}

result({
  bench: 'reconcile',
  quick,
  // The headline figures are the real provider's (tmux); both runs follow.
  sessions: tmuxRun.sessions,
  tick_ms_p50: tmuxRun.tick_ms_p50,
  provider_calls_per_tick: tmuxRun.provider_calls_per_tick,
  baseline_tick_ms_p50: tmuxRun.baseline_tick_ms_p50,
  baseline_calls_per_tick: tmuxRun.baseline_calls_per_tick,
  tick_ratio: tmuxRun.tick_ratio,
  runs: [fake, tmuxRun],
  controller_rss_mb: fake.rss_mb,
});
