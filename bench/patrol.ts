/**
 * The health patrol at 20 rigs and 500 sessions (`npx tsx bench/patrol.ts
 * [--quick]`): each pass is one batched observation (one session snapshot,
 * one paged claims read, one merge-queue read per rig, a statfs per rig)
 * and the pure checks. The baseline, in the same run, is the seed's
 * patrol shape: rigs one by one, a probe per session (is it running, when
 * did it last print) and a claims query per session. Sessions live on the
 * fake provider with a simulated round trip per call (`provider_call_ms`,
 * what a tmux or kubectl call costs at least); the store is SQLite with
 * one claim per session, the merge queue SQLite too. Both shapes must find
 * the same things (`same_findings`).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { FakeClock } from '../src/core/index.js';
import { MemoryEventLog } from '../src/events/index.js';
import { MergeQueue } from '../src/refinery/index.js';
import { FakeProvider, type Provider } from '../src/runtime/index.js';
import { SqliteStore } from '../src/store/index.js';
import {
  Patrol,
  inspect,
  observe,
  type Observation,
  type PatrolConfig,
  type PatrolSession,
} from '../src/patrol/index.js';
import { fatal, note, nowMs, percentile, quick, result, round, scratchDir } from './lib.js';

const RIGS = 20;
const SESSIONS = 500;
const CALL_MS = 1;
const PASSES = quick ? 15 : 60;
const WALKS = quick ? 3 : 8;
const MIN = 60_000;

const config: PatrolConfig = {
  enabled: true,
  hotMs: 0,
  warmMs: 0,
  coldMs: 0,
  stallMs: 15 * MIN,
  crashLoopRestarts: 3,
  mqDepth: 5,
  mqMergeMs: 30 * MIN,
  conflictRate: 0.3,
  diskMinFreeBytes: 0,
  ladder: ['nudge', 'restart', 'mail', 'alert'],
  escalateAfterMs: 60 * MIN,
};

/** Every provider call costs a round trip and is counted. */
function slow(p: Provider, calls: { n: number }): Provider {
  return new Proxy(p, {
    get(target, prop, receiver) {
      const v: unknown = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function' || prop === 'name') return v;
      return async (...args: unknown[]) => {
        calls.n++;
        await new Promise((r) => setTimeout(r, CALL_MS));
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

async function main(): Promise<void> {
  const root = scratchDir('patrol');
  mkdirSync(path.join(root, '.gc'), { recursive: true });
  const clock = new FakeClock(Date.now());
  const fake = new FakeProvider({ clock });
  const rigOf = new Map<string, string>();
  const names: string[] = [];
  for (let i = 0; i < SESSIONS; i++) {
    const rig = `rig${String(i % RIGS).padStart(2, '0')}`;
    const name = `${rig}--w-${i}`;
    rigOf.set(name, rig);
    names.push(name);
    await fake.start(name, { command: 'sleep 600' });
  }
  const store = new SqliteStore({ path: path.join(root, '.gc', 'beads.db'), durability: 'normal' });
  for (const [i, name] of names.entries()) {
    const b = await store.create({ title: `task ${i}` });
    await store.claim(b.id, name, { leaseMs: 60 * MIN });
    await store.create({ title: `waiting ${i}` });
  }
  const queue = MergeQueue.forCity(path.join(root, '.gc'));
  const rigs = [...new Set(rigOf.values())].sort();
  // Something to find: 10 sessions quiet for 20 minutes while holding a claim.
  clock.advance(20 * MIN);
  for (const [i, name] of names.entries()) if (i % 50 !== 0) fake.emit(name, 'working');
  const calls = { n: 0 };
  const provider = slow(fake, calls);
  // The controller's memory (no provider call): each session's agent is itself here.
  const known = names.map((n) => ({
    name: n,
    agent: n,
    state: 'running' as const,
    last_activity: 0,
    attached: false,
    restarts_in_window: 0,
  }));
  const view = {
    provider,
    status: () => ({ sessions: known }),
    rigOf: (agent: string | undefined) => (agent ? (rigOf.get(agent) ?? '') : ''),
    isCitySession: (n: string) => rigOf.has(n),
    store,
    rigStats: () => Promise.all(rigs.map((r) => queue.stats(r))),
    dirs: () => rigs.map((r) => ({ path: root, rig: r })),
    now: () => clock.now(),
  };
  const events = new MemoryEventLog();
  const patrol = new Patrol({
    config: () => config,
    rigs: () => [
      { name: '', suspended: false, owner: 'human' },
      ...rigs.map((name) => ({ name, suspended: false, owner: 'human' })),
    ],
    observe: () => observe(view),
    nudge: () => Promise.resolve(),
    restart: () => undefined,
    release: () => Promise.resolve(),
    mail: () => Promise.resolve(),
    raise: () => Promise.resolve(),
    settle: () => Promise.resolve(),
    firing: () => [],
    record: (e) => events.record(e),
    log: () => undefined,
    clock,
  });
  // The first pass acts on what it finds (nudges); passes after it only look.
  await patrol.pass();
  const passMs: number[] = [];
  const perPass: number[] = [];
  for (let i = 0; i < PASSES; i++) {
    const before = calls.n;
    const s = nowMs();
    await patrol.pass();
    passMs.push(nowMs() - s);
    perPass.push(calls.n - before);
  }
  const batched = await observe(view);
  const findings = patrol
    .report()
    .findings.map((f) => f.key)
    .sort();
  note(`batched: ${findings.length} findings, ${perPass[0]} provider call(s) a pass`);

  // The baseline: rig by rig, a probe per session and a claims query per session.
  const walkMs: number[] = [];
  let walkCalls = 0;
  let walked: string[] = [];
  for (let w = 0; w < WALKS; w++) {
    const before = calls.n;
    const s = nowMs();
    const sessions: PatrolSession[] = [];
    const claims: Observation['claims'] = [];
    const queues: Observation['queues'] = [];
    for (const rig of rigs) {
      for (const name of names.filter((n) => rigOf.get(n) === rig)) {
        const alive = await provider.isRunning(name);
        const lastActivity = await provider.getLastActivity(name);
        sessions.push({ name, rig, alive, lastActivity, restarts: 0, quarantined: false });
        const held = await store.list({ status: 'in_progress', assignee: name });
        for (const b of held.items) {
          claims.push({
            bead: b.id,
            assignee: name,
            attempt: b.attempt,
            leaseExpiresAt: b.lease_expires_at ? Date.parse(b.lease_expires_at) : null,
          });
        }
      }
      const q = await queue.stats(rig);
      queues.push({ ...q });
    }
    walkMs.push(nowMs() - s);
    walkCalls = calls.n - before;
    const o: Observation = { at: clock.now(), sessions, claims, queues, disks: [], faults: [] };
    walked = inspect(o, new Set(['', ...rigs]), config)
      .map((f) => f.key)
      .sort();
  }
  const sameFindings =
    JSON.stringify(walked) === JSON.stringify(findings) &&
    batched.sessions.length === SESSIONS &&
    batched.claims.length === SESSIONS;
  note(`per-rig walk: ${walked.length} findings, ${walkCalls} provider calls`);
  const p50 = percentile(passMs, 50);
  const walkP50 = percentile(walkMs, 50);
  result({
    bench: 'patrol',
    rigs: RIGS,
    sessions: SESSIONS,
    provider_call_ms: CALL_MS,
    patrol_ms_p50: round(p50),
    patrol_ms_p95: round(percentile(passMs, 95)),
    provider_calls_per_patrol: Math.max(...perPass),
    per_rig_walk_ms_p50: round(walkP50),
    per_rig_walk_provider_calls: walkCalls,
    speedup: round(walkP50 / p50, 1),
    findings: findings.length,
    same_findings: sameFindings,
    passes: PASSES,
    walks: WALKS,
  });
  await store.dispose();
  await queue.close();
}

main().catch(fatal);
