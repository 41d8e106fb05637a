/**
 * Work store at scale (SQLite): ready-query latency over a large store, and
 * 500 concurrent async claimers draining ready work with no double claim.
 *
 *   npx tsx bench/store.ts [--quick]
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { SqliteStore, type Bead } from '../src/store/index.js';
import { note, nowMs, percentile, quick, result, round, scratchDir } from './lib.js';

const BEADS = quick ? 20_000 : 100_000;
const CLAIMERS = 500;
const CLAIM_BEADS = 10_000;
const dir = scratchDir('store');

async function fill(
  store: SqliteStore,
  count: number,
  shape: (i: number) => Parameters<SqliteStore['create']>[0],
): Promise<Bead[]> {
  const made: Bead[] = [];
  for (let start = 0; start < count; start += 2000) {
    const chunk = await Promise.all(
      Array.from({ length: Math.min(2000, count - start) }, (_, k) =>
        store.create(shape(start + k)),
      ),
    );
    made.push(...chunk);
  }
  return made;
}

// 1. Ready latency on a realistic store: mixed priorities, a third of the
// beads blocked by an earlier one, a tenth closed, some infrastructure beads.
const big = new SqliteStore({ path: join(dir, 'big.db'), prefix: 'bb' });
const t0 = nowMs();
const created = await fill(big, BEADS, (i) => ({
  title: `bead ${i}`,
  priority: i % 5,
  ...(i % 17 === 0 ? { type: 'message' } : {}),
  metadata: { 'gc.routed_to': `pool-${i % 8}` },
}));
for (let i = 0; i < created.length; i += 3) {
  const b = created[i];
  const blocker = created[Math.max(0, i - 1)];
  if (b && blocker && b !== blocker) await big.addDependency(b.id, blocker.id);
}
await Promise.all(created.filter((_, i) => i % 10 === 0).map((b) => big.close(b.id)));
note(`filled ${BEADS} beads in ${round((nowMs() - t0) / 1000, 1)}s`);

const readyTimes: number[] = [];
let readyCount = 0;
for (let i = 0; i < 50; i++) {
  const s = nowMs();
  const page = await big.ready({ limit: 100 });
  readyTimes.push(nowMs() - s);
  readyCount = page.items.length;
}
const routedTimes: number[] = [];
for (let i = 0; i < 50; i++) {
  const s = nowMs();
  await big.ready({ limit: 100, unassigned: true, metadata: { 'gc.routed_to': `pool-${i % 8}` } });
  routedTimes.push(nowMs() - s);
}
const counts = await big.counts();
await big.dispose();

// Baseline in the same run: the same ready page computed the naive way,
// checking every open bead's dependencies at query time (no blocked flag,
// no partial index). Parent-child propagation is left out, which only
// flatters the baseline.
const raw = new Database(join(dir, 'big.db'), { readonly: true });
const naive = raw.prepare(`
  SELECT b.* FROM beads b NOT INDEXED
  WHERE b.status = 'open'
    AND b.issue_type NOT IN ('merge-request','gate','molecule','message','session','agent','role','rig','convoy')
    AND NOT EXISTS (
      SELECT 1 FROM deps d JOIN beads t ON t.id = d.depends_on_id
      WHERE d.issue_id = b.id AND d.type IN ('blocks','waits-for','conditional-blocks') AND t.status != 'closed')
  ORDER BY b.priority, b.seq LIMIT 100`);
const naiveTimes: number[] = [];
for (let i = 0; i < (quick ? 10 : 20); i++) {
  const s = nowMs();
  naive.all();
  naiveTimes.push(nowMs() - s);
}
raw.close();
note(
  `ready: ${readyCount} of ${counts.ready} ready beads per page; p50 ${round(percentile(readyTimes, 50), 3)} ms`,
);

// 2. 500 concurrent claimers draining 10,000 ready beads.
const claimStore = new SqliteStore({ path: join(dir, 'claims.db'), prefix: 'cl' });
await fill(claimStore, CLAIM_BEADS, (i) => ({ title: `work ${i}`, priority: i % 5 }));
const claimedBy = new Map<string, string>();
let doubleClaims = 0;
let claims = 0;
const c0 = nowMs();
await Promise.all(
  Array.from({ length: CLAIMERS }, async (_, w) => {
    const actor = `worker-${w}`;
    for (;;) {
      const bead = await claimStore.claimNextReady(actor);
      if (!bead) return;
      claims++;
      if (claimedBy.has(bead.id)) doubleClaims++;
      claimedBy.set(bead.id, actor);
    }
  }),
);
const claimSec = (nowMs() - c0) / 1000;
// Cross-check against the store itself: every bead in progress, each once.
const inProgress = await claimStore.count({ status: 'in_progress' });
await claimStore.dispose();
if (inProgress !== CLAIM_BEADS || claims !== CLAIM_BEADS) {
  throw new Error(`claimed ${claims}, in progress ${inProgress}, expected ${CLAIM_BEADS}`);
}
note(`claims: ${claims} in ${round(claimSec, 2)}s by ${CLAIMERS} claimers`);

result({
  bench: 'store',
  quick,
  backend: 'sqlite',
  beads: BEADS,
  ready_beads: counts.ready,
  ready_p50_ms: round(percentile(readyTimes, 50), 3),
  ready_p99_ms: round(percentile(readyTimes, 99), 3),
  ready_naive_p50_ms: round(percentile(naiveTimes, 50), 3),
  ready_speedup: round(percentile(naiveTimes, 50) / percentile(readyTimes, 50), 1),
  routed_ready_p50_ms: round(percentile(routedTimes, 50), 3),
  claimers: CLAIMERS,
  claims,
  claims_per_s: Math.round(claims / claimSec),
  double_claims: doubleClaims,
});
