/**
 * Event log throughput: 64 concurrent producers against the JSONL log with
 * group commit, versus a naive baseline that writes and fdatasyncs each
 * event alone, measured in the same run on the same disk.
 *
 *   npx tsx bench/events.ts [--quick] [--backend jsonl|postgres|mysql]
 *
 * With --backend postgres or mysql, the log on the database server is
 * measured (bench/events-server.ts), beside the JSONL figure and a naive
 * one-transaction-per-event baseline on the same server, in the same run.
 */
import { closeSync, fdatasyncSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { JsonlEventLog } from '../src/events/index.js';
import { note, nowMs, percentile, quick, result, round, scratchDir } from './lib.js';

const backendArg = process.argv[process.argv.indexOf('--backend') + 1];
if (process.argv.includes('--backend') && backendArg !== 'jsonl') {
  if (backendArg !== 'postgres' && backendArg !== 'mysql') {
    throw new Error(`--backend: expected jsonl, postgres or mysql, got ${String(backendArg)}`);
  }
  const { runServerBench } = await import('./events-server.js');
  await runServerBench(backendArg);
  process.exit(0);
}

const PRODUCERS = 64;
const EVENTS = quick ? 50_000 : 100_000;
const NAIVE_EVENTS = quick ? 2_000 : 5_000;
const dir = scratchDir('events');

function sampleEvent(i: number): {
  type: string;
  actor: string;
  subject: string;
  payload: unknown;
} {
  return {
    type: 'bead.updated',
    actor: `worker-${i % PRODUCERS}`,
    subject: `gc-${i.toString(36)}`,
    payload: { action: 'claim', attempt: 1 },
  };
}

// Naive baseline: one write + fdatasync per event.
const naivePath = join(dir, 'naive.jsonl');
const fd = openSync(naivePath, 'a');
const n0 = nowMs();
for (let i = 0; i < NAIVE_EVENTS; i++) {
  writeSync(
    fd,
    JSON.stringify({ seq: i + 1, ts: new Date().toISOString(), ...sampleEvent(i) }) + '\n',
  );
  fdatasyncSync(fd);
}
const naiveSec = (nowMs() - n0) / 1000;
closeSync(fd);
const naiveEps = NAIVE_EVENTS / naiveSec;
note(`naive: ${NAIVE_EVENTS} events in ${round(naiveSec, 3)}s = ${Math.round(naiveEps)} ev/s`);

// Group commit: 64 producers, each awaiting its own durable append before the next.
const log = await JsonlEventLog.open({ path: join(dir, 'events.jsonl') });
const latencies: number[] = [];
let issued = 0;
const t0 = nowMs();
await Promise.all(
  Array.from({ length: PRODUCERS }, async () => {
    while (issued < EVENTS) {
      const i = issued++;
      const s = nowMs();
      await log.record(sampleEvent(i));
      latencies.push(nowMs() - s);
    }
  }),
);
const durableSec = (nowMs() - t0) / 1000;
const durableEps = EVENTS / durableSec;
const latest = await log.latestSeq();
const stats = log.stats();
note(
  `batches: ${stats.batches}, avg ${stats.avg_batch.toFixed(1)} records/write, inline sync: ${stats.inline_sync}`,
);
await log.close();
if (latest !== EVENTS) throw new Error(`expected ${EVENTS} events, log has ${latest}`);
note(`group commit: ${EVENTS} events in ${round(durableSec, 3)}s = ${Math.round(durableEps)} ev/s`);

result({
  bench: 'events',
  backend: 'jsonl',
  quick,
  producers: PRODUCERS,
  events: EVENTS,
  durable_eps: Math.round(durableEps),
  naive_fsync_eps: Math.round(naiveEps),
  speedup: round(durableEps / naiveEps),
  p50_append_ms: round(percentile(latencies, 50), 3),
  p99_append_ms: round(percentile(latencies, 99), 3),
  avg_batch: round(stats.avg_batch, 1),
});
