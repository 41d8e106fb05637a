/**
 * The event log on a database server (bench/events.ts --backend postgres|mysql):
 * 64 producers in one process, each awaiting its own durable record before
 * the next, against (a) the SQL log with group commit, (b) a naive baseline
 * that commits every event in its own transaction through the same counter
 * row, on the same server, and (c) the default JSONL log on local disk.
 */
import { join } from 'node:path';
import { Scratch, database } from '../test/helpers/db.js';
import { appendEventRows, openSqlDb } from '../src/db/index.js';
import { JsonlEventLog, SqlEventLog, type EventInput } from '../src/events/index.js';
import { note, nowMs, percentile, quick, result, round, scratchDir } from './lib.js';

const PRODUCERS = 64;

function sampleEvent(i: number): EventInput {
  return {
    type: 'bead.updated',
    actor: `worker-${i % PRODUCERS}`,
    subject: `gc-${i.toString(36)}`,
    payload: { action: 'claim', attempt: 1 },
  };
}

async function produce(
  events: number,
  record: (e: EventInput) => Promise<unknown>,
): Promise<{ eps: number; p50: number; p99: number }> {
  const latencies: number[] = [];
  let issued = 0;
  const t0 = nowMs();
  await Promise.all(
    Array.from({ length: PRODUCERS }, async () => {
      while (issued < events) {
        const i = issued++;
        const s = nowMs();
        await record(sampleEvent(i));
        latencies.push(nowMs() - s);
      }
    }),
  );
  const sec = (nowMs() - t0) / 1000;
  return {
    eps: events / sec,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  };
}

export async function runServerBench(kind: 'postgres' | 'mysql'): Promise<void> {
  const server = await database(kind, { required: true });
  const url = server.url as string;
  const scratch = new Scratch(url);
  const EVENTS = quick ? 50_000 : 100_000;
  const NAIVE = quick ? 3_000 : 6_000;
  try {
    // Warm-up: the first connections and statement plans.
    const warm = await SqlEventLog.open({ url, dbOptions: { schema: await scratch.create() } });
    await produce(2_000, (e) => warm.record(e));
    await warm.close();

    const schema = await scratch.create();
    const log = await SqlEventLog.open({ url, dbOptions: { schema } });
    const sql = await produce(EVENTS, (e) => log.record(e));
    const latest = await log.latestSeq();
    const page = await log.list({ afterSeq: latest - 10, limit: 100 });
    await log.close();
    if (latest !== EVENTS) throw new Error(`expected ${EVENTS} events, the log has ${latest}`);
    if (page.items.length !== 10) throw new Error('the tail of the log does not read back');
    note(`${kind} group commit: ${Math.round(sql.eps)} ev/s, p99 ${round(sql.p99, 2)} ms`);

    // Naive: each event its own transaction (the counter row serializes them).
    const naiveDb = await openSqlDb(url, { schema: await scratch.create() });
    const { migrate } = await import('../src/db/index.js');
    await migrate(naiveDb);
    const naive = await produce(NAIVE, (e) =>
      naiveDb.transaction((tx) =>
        appendEventRows(tx, [{ ...e, actor: e.actor ?? '', ts: new Date().toISOString() }]),
      ),
    );
    await naiveDb.close();
    note(`${kind} one transaction per event: ${Math.round(naive.eps)} ev/s`);

    const jsonl = await JsonlEventLog.open({ path: join(scratchDir('events'), 'events.jsonl') });
    const local = await produce(EVENTS, (e) => jsonl.record(e));
    await jsonl.close();
    note(`jsonl (the default, same run): ${Math.round(local.eps)} ev/s`);

    result({
      bench: 'events',
      backend: kind,
      quick,
      producers: PRODUCERS,
      events: EVENTS,
      durable_eps: Math.round(sql.eps),
      p50_append_ms: round(sql.p50, 3),
      p99_append_ms: round(sql.p99, 3),
      naive_tx_eps: Math.round(naive.eps),
      speedup: round(sql.eps / naive.eps),
      jsonl_durable_eps: Math.round(local.eps),
      jsonl_p99_append_ms: round(local.p99, 3),
    });
  } finally {
    await scratch.dropAll();
  }
}
