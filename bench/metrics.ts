/**
 * What a Prometheus scrape costs the server at 1,000 sessions
 * (`npx tsx bench/metrics.ts [--quick]`): a city on the fake provider with
 * 1,000 running sessions and 2,000 beads, scraped over its socket. The
 * baseline in the same run is GET /v0/ping on the same connection path, so
 * `scrape_overhead_ms_p50` is what the scrape adds; `render_ms_p50` is the
 * registry's own time in process.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readAdminKey } from '../src/city/index.js';
import { CityServer } from '../src/server/index.js';
import { apiCall } from '../test/helpers/http.js';
import { note, nowMs, percentile, quick, result, round, scratchDir, fatal } from './lib.js';

const SESSIONS = 1000;
const BEADS = quick ? 500 : 2000;
const SCRAPES = quick ? 100 : 400;

async function main(): Promise<void> {
  const root = scratchDir('metrics');
  process.env.GC_CONFIG_HOME = path.join(root, '.config');
  await writeFile(
    path.join(root, 'city.toml'),
    [
      '[workspace]',
      'name = "scrape"',
      `max_active_sessions = ${SESSIONS + 10}`,
      '[daemon]',
      'patrol_interval = "1s"',
      `max_wakes_per_tick = ${SESSIONS}`,
      '[api]',
      'rate_per_s = 1000000',
      'rate_burst = 1000000',
      '[[agent]]',
      'name = "worker"',
      'start_command = "sleep 600"',
      `min_active_sessions = ${SESSIONS}`,
      `max_active_sessions = ${SESSIONS}`,
      '',
    ].join('\n'),
  );
  const server = await CityServer.start({ root, sessionProvider: 'fake', log: () => undefined });
  try {
    const admin = readAdminKey(root)!;
    const sock = { socketPath: path.join(root, '.gc', 'gc.sock') };
    const t0 = nowMs();
    for (;;) {
      const running = server.controller.status().sessions.filter((s) => s.state === 'running');
      if (running.length >= SESSIONS) break;
      if (nowMs() - t0 > 120_000) throw new Error(`only ${running.length} sessions running`);
      await new Promise((r) => setTimeout(r, 100));
    }
    note(`${SESSIONS} sessions running after ${round((nowMs() - t0) / 1000, 1)} s`);
    for (let i = 0; i < BEADS; i++) {
      const b = await server.ops.createBead('bench', { title: `task ${i}` });
      if (i % 3 === 0) await server.ops.closeBead('bench', b.id, 'done');
    }
    const time = async (url: string) => {
      const s = nowMs();
      const r = await apiCall(sock, 'GET', url, { token: admin });
      if (r.status !== 200) throw new Error(`${url}: ${r.status} ${r.text.slice(0, 200)}`);
      return { ms: nowMs() - s, bytes: r.text.length };
    };
    // Warm both paths.
    for (let i = 0; i < 20; i++) {
      await time('/metrics');
      await time('/v0/ping');
    }
    const scrape: number[] = [];
    const ping: number[] = [];
    const render: number[] = [];
    let bytes = 0;
    for (let i = 0; i < SCRAPES; i++) {
      const a = await time('/metrics');
      scrape.push(a.ms);
      bytes = a.bytes;
      ping.push((await time('/v0/ping')).ms);
      const s = nowMs();
      await server.metrics.render();
      render.push(nowMs() - s);
    }
    const text = (await apiCall(sock, 'GET', '/metrics', { token: admin })).text;
    const series = text.split('\n').filter((l) => l && !l.startsWith('#')).length;
    const p50 = percentile(scrape, 50);
    const ping50 = percentile(ping, 50);
    note(
      `scrape p50 ${round(p50)} ms (ping ${round(ping50)} ms), ${series} series, ${bytes} bytes`,
    );
    result({
      bench: 'metrics',
      quick,
      sessions: SESSIONS,
      beads: BEADS,
      scrapes: SCRAPES,
      series,
      scrape_bytes: bytes,
      scrape_ms_p50: round(p50, 3),
      scrape_ms_p99: round(percentile(scrape, 99), 3),
      render_ms_p50: round(percentile(render, 50), 3),
      ping_ms_p50: round(ping50, 3),
      scrape_overhead_ms_p50: round(p50 - ping50, 3),
      scrape_vs_ping: round(p50 / ping50, 2),
    });
  } finally {
    await server.stop('bench');
  }
}

main().catch(fatal);
