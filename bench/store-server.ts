/**
 * The work store on a database server (`bench/store.ts --backend
 * postgres|mysql`), with the SQLite store measured in the same run on the
 * same workload:
 *
 * - ready_p50_ms: `ready` (a page of 100, hydrated) at BEADS beads, a third
 *   of them blocked, a tenth closed;
 * - claims_per_s: CLAIMERS concurrent claimers draining CLAIM_BEADS ready
 *   beads with claim-next as the city claims (each claim with its
 *   `bead.updated` event, committed with it), double_claims counted (and
 *   cross-checked with the store's own count);
 * - bare_claims_per_s: the same with no event recorded (each claim its own
 *   transaction on a server: what a caller of the bare store gets).
 *
 * The server is the machine's own (GC_TEST_POSTGRES_URL / GC_TEST_MYSQL_URL
 * override it); each run works in a fresh database, dropped at the end.
 */
import { join } from 'node:path';
import { Scratch, database } from '../test/helpers/db.js';
import { mapLimit } from '../src/core/index.js';
import { openSqlDb } from '../src/db/index.js';
import {
  SqlStore,
  SqliteStore,
  type Bead,
  type Store,
  type WriteRecord,
} from '../src/store/index.js';
import { note, nowMs, percentile, quick, result, round, scratchDir } from './lib.js';

const BEADS = quick ? 20_000 : 100_000;
const CLAIMERS = 500;
const CLAIM_BEADS = quick ? 3_000 : 10_000;

async function fill(store: Store, count: number, blockers: boolean): Promise<void> {
  const ids: string[] = new Array<string>(count);
  await mapLimit(
    Array.from({ length: count }, (_, i) => i),
    64,
    async (i) => {
      const b = await store.create({
        title: `bead ${i}`,
        priority: i % 5,
        ...(blockers && i % 17 === 0 ? { type: 'message' } : {}),
        metadata: { 'gc.routed_to': `pool-${i % 8}` },
      });
      ids[i] = b.id;
    },
  );
  if (!blockers) return;
  // A third blocked by the bead before it; a tenth closed.
  await mapLimit(
    Array.from({ length: Math.floor(count / 3) }, (_, k) => k * 3).filter((i) => i > 0),
    64,
    (i) => store.addDependency(ids[i]!, ids[i - 1]!),
  );
  await mapLimit(
    ids.filter((_, i) => i % 10 === 0),
    64,
    async (id) => {
      await store.close(id);
    },
  );
}

async function readyP50(store: Store): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 50; i++) {
    const s = nowMs();
    await store.ready({ limit: 100 });
    times.push(nowMs() - s);
  }
  return percentile(times, 50);
}

/** The record the city gives a claim (CityOps.claimNext): its event, committed with it. */
function claimRecord(actor: string): WriteRecord<Bead | null> {
  return {
    events: (b) =>
      b
        ? [
            {
              type: 'bead.updated',
              actor,
              subject: b.id,
              payload: { action: 'claim', assignee: actor, attempt: b.attempt },
              message: `claimed by ${actor} (attempt ${b.attempt})`,
            },
          ]
        : [],
    keep: (b) => b !== null,
  };
}

async function claimRun(
  store: Store,
  recorded: boolean,
): Promise<{ perS: number; doubles: number }> {
  await fill(store, CLAIM_BEADS, false);
  const seen = new Set<string>();
  let doubles = 0;
  let claims = 0;
  const t0 = nowMs();
  const cpu0 = process.cpuUsage();
  await Promise.all(
    Array.from({ length: CLAIMERS }, async (_, w) => {
      for (;;) {
        const actor = `worker-${w}`;
        const b = recorded
          ? await store.claimNextReady(actor, {}, claimRecord(actor))
          : await store.claimNextReady(actor);
        if (!b) return;
        claims++;
        if (seen.has(b.id)) doubles++;
        seen.add(b.id);
      }
    }),
  );
  const secs = (nowMs() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  note(
    `  this process's CPU: ${round((cpu.user + cpu.system) / 1000 / claims, 3)} ms a claim (${round((cpu.user + cpu.system) / 1e4 / secs, 0)}% of a core)`,
  );
  const inProgress = await store.count({ status: 'in_progress' });
  if (claims !== CLAIM_BEADS || inProgress !== CLAIM_BEADS) {
    throw new Error(`claimed ${claims}, in progress ${inProgress}, expected ${CLAIM_BEADS}`);
  }
  return { perS: claims / secs, doubles };
}

async function analyze(url: string): Promise<void> {
  const db = await openSqlDb(url, { poolSize: 1 });
  try {
    await db.run(
      db.dialect === 'postgres' ? 'ANALYZE' : 'ANALYZE TABLE beads, labels, metadata, deps',
    );
  } finally {
    await db.close();
  }
}

export async function runServerBench(backend: 'postgres' | 'mysql'): Promise<void> {
  const server = await database(backend, { required: true });
  const scratch = new Scratch(server.url!);
  const dir = scratchDir('store-server');
  try {
    const open = async (url?: string): Promise<Store> =>
      SqlStore.open({ url: url ?? (await scratch.createDatabase()), prefix: 'sv' });
    // Ready at BEADS beads.
    const t0 = nowMs();
    const bigUrl = await scratch.createDatabase();
    const big = await open(bigUrl);
    await fill(big, BEADS, true);
    note(`${backend}: filled ${BEADS} beads in ${round((nowMs() - t0) / 1000, 1)} s`);
    // Fresh statistics, as the server's auto-analyze gives a table some
    // time after a bulk load (without them PostgreSQL planned the
    // hydration queries as scans: 12-15 ms a page instead of 2).
    await analyze(bigUrl);
    const readyServer = await readyP50(big);
    const counts = await big.counts();
    await big.dispose();
    const lite = new SqliteStore({ path: join(dir, 'big.db'), prefix: 'sq' });
    await fill(lite, BEADS, true);
    const readySqlite = await readyP50(lite);
    await lite.dispose();
    note(`ready p50: ${backend} ${round(readyServer, 2)} ms, sqlite ${round(readySqlite, 2)} ms`);
    // Claims: as the city makes them (with their event), and bare.
    const claims = async (recorded: boolean) => {
      const onServer = await open();
      const srv = await claimRun(onServer, recorded);
      await onServer.dispose();
      const file = join(dir, `claims-${recorded ? 'rec' : 'bare'}.db`);
      const onLite = new SqliteStore({ path: file, prefix: 'sc' });
      const lite = await claimRun(onLite, recorded);
      await onLite.dispose();
      note(
        `claims/s with ${CLAIMERS} claimers${recorded ? ', with their events' : ', bare'}: ${backend} ${Math.round(srv.perS)}, sqlite ${Math.round(lite.perS)}`,
      );
      return { srv, lite };
    };
    const { srv: server_, lite: lite_ } = await claims(true);
    const bare = await claims(false);
    result({
      bench: 'store',
      quick,
      backend,
      beads: BEADS,
      ready_beads: counts.ready,
      ready_p50_ms: round(readyServer, 3),
      analyzed_after_fill: true,
      sqlite_ready_p50_ms: round(readySqlite, 3),
      claimers: CLAIMERS,
      claim_beads: CLAIM_BEADS,
      claims_per_s: Math.round(server_.perS),
      sqlite_claims_per_s: Math.round(lite_.perS),
      claims_ratio_vs_sqlite: round(server_.perS / lite_.perS, 2),
      bare_claims_per_s: Math.round(bare.srv.perS),
      sqlite_bare_claims_per_s: Math.round(bare.lite.perS),
      double_claims: server_.doubles + lite_.doubles + bare.srv.doubles + bare.lite.doubles,
    });
  } finally {
    await scratch.dropAll();
  }
}
