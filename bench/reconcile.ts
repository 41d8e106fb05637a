/**
 * Controller tick cost in a steady city (every desired session running,
 * nothing to change): fake provider with 10,000 sessions (quick: 2,000) and
 * real tmux with 200 (quick: 100). Reports tick p50 and provider calls per
 * tick (the design says O(1): one snapshot), and the controller's RSS at the
 * largest size. The store is the real SQLite one, with routed and claimed
 * work in it.
 *
 *   npx tsx bench/reconcile.ts [--quick]
 */
import { join } from 'node:path';
import { CityOps } from '../src/city/index.js';
import { parseCityConfig } from '../src/config/index.js';
import { Controller, citySpec } from '../src/controller/index.js';
import { MemoryEventLog } from '../src/events/index.js';
import { FakeProvider, TmuxProvider, type Provider } from '../src/runtime/index.js';
import { SqliteStore } from '../src/store/index.js';
import { note, percentile, quick, result, round, scratchDir } from './lib.js';

const FAKE_SESSIONS = quick ? 2000 : 10_000;
const TMUX_SESSIONS = quick ? 100 : 200;
const TICKS = quick ? 15 : 30;
const dir = scratchDir('reconcile');

interface Run {
  provider: string;
  sessions: number;
  tick_ms_p50: number;
  tick_ms_p95: number;
  provider_calls_per_tick: number;
  rss_mb?: number;
}

async function steadyCity(provider: Provider, sessions: number, label: string): Promise<Run> {
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
  const events = new MemoryEventLog();
  const ops = new CityOps(store, events);
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
  const controller = new Controller({ provider, ops, spec: citySpec(loaded) });
  // Fill the city, then let it settle.
  for (let i = 0; i < 5; i++) {
    const r = await controller.tick();
    if (r.plan.actions.length === 0) break;
  }
  const ms: number[] = [];
  const calls: number[] = [];
  for (let i = 0; i < TICKS; i++) {
    const r = await controller.tick();
    if (r.plan.actions.length !== 0) {
      throw new Error(`${label}: city not steady, tick planned ${r.plan.actions.length} actions`);
    }
    ms.push(r.ms);
    calls.push(r.providerCalls);
  }
  const running = (await provider.snapshot('')).filter((s) => s.alive).length;
  if (running !== sessions)
    throw new Error(`${label}: ${running} sessions running, expected ${sessions}`);
  const run: Run = {
    provider: provider.name,
    sessions,
    tick_ms_p50: round(percentile(ms, 50)),
    tick_ms_p95: round(percentile(ms, 95)),
    provider_calls_per_tick: Math.max(...calls),
  };
  note(
    `${label}: ${sessions} sessions, tick p50 ${run.tick_ms_p50} ms, ${run.provider_calls_per_tick} provider call(s)/tick`,
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
  tmuxRun = await steadyCity(tmux, TMUX_SESSIONS, 'tmux');
} finally {
  await tmux.killServer().catch(() => undefined);
}

result({ bench: 'reconcile', quick, runs: [fake, tmuxRun], controller_rss_mb: fake.rss_mb });
