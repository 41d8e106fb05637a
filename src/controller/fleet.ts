/**
 * The tick's waves: its stops and starts through the provider's batch
 * calls (one wave, a constant number of provider subprocesses, one grace
 * window) when it has them, else the single calls, bounded-parallel. A
 * failed batch falls back to the single calls, so every session still
 * gets its stop. (Fan-outs outside the tick: runtime/fanout.ts.)
 */
import { errorMessage, killPoint, mapLimit } from '../core/index.js';
import type { CityOps } from '../city/index.js';
import type { Provider, StartRequest, StartedEach } from '../runtime/index.js';
import type { Action, Plan, SessionTracker } from './plan.js';
import { META } from './options.js';

/**
 * The tick's stops as one batch call: true when the provider has one and
 * it succeeded (then every session is stopped); false to stop them one by one.
 */
export async function stopWave(
  provider: Provider,
  stops: readonly { session: string }[],
  log: (line: string) => void,
): Promise<boolean> {
  if (!provider.stopMany) return false;
  try {
    await provider.stopMany(stops.map((a) => a.session));
    return true;
  } catch (e) {
    log(`stopping ${stops.length} session(s) at once: ${errorMessage(e)}; one by one`);
    return false;
  }
}

/**
 * A wave of starts: one batch call when the provider has one, else `start`
 * then `setMeta` per session, `concurrency` at once. One entry per request,
 * in order: undefined when it started, its error otherwise. A batch call
 * that fails as a whole fails every request (sessions it made anyway are
 * adopted by the next tick).
 */
export async function startSessions(
  provider: Provider,
  requests: readonly StartRequest[],
  concurrency: number,
  onEach: StartedEach = () => undefined,
): Promise<(Error | undefined)[]> {
  if (provider.startMany && requests.length > 1) {
    const told = new Set<number>();
    const tell = (i: number, err: Error | undefined) => {
      if (told.has(i)) return;
      told.add(i);
      onEach(i, err);
    };
    let out: (Error | undefined)[];
    try {
      out = await provider.startMany(requests, tell);
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      out = requests.map(() => err);
    }
    // Whatever the provider did not tell (or could not, failing as a whole).
    for (const [i, err] of out.entries()) tell(i, err);
    return out;
  }
  const out: (Error | undefined)[] = requests.map(() => undefined);
  await mapLimit(requests, concurrency, async (r, i) => {
    try {
      await provider.start(r.name, r.config, r.options);
      killPoint('session.started');
      for (const [k, v] of Object.entries(r.meta ?? {})) await provider.setMeta(r.name, k, v);
    } catch (e) {
      out[i] = e instanceof Error ? e : new Error(String(e));
    }
    onEach(i, out[i]);
  });
  return out;
}

/**
 * The act-time check of stops planned for idle sessions: new claims by
 * them are refused (claims already under way settle first), then one read
 * of the claims decides. Those still idle stay stops (fenced until
 * stopped); those holding work now become drains.
 */
export async function recheckIdleStops(
  ops: Pick<CityOps, 'fenceClaims' | 'unfenceClaims' | 'store'>,
  planned: Extract<Action, { kind: 'stop' }>[],
  log: (line: string) => void,
): Promise<{
  stops: Extract<Action, { kind: 'stop' }>[];
  drains: Extract<Action, { kind: 'drain' }>[];
}> {
  const idle = planned.filter((a) => a.ifIdle).map((a) => a.session);
  if (idle.length === 0) return { stops: planned, drains: [] };
  await ops.fenceClaims(idle);
  let held: Map<string, number>;
  try {
    held = new Map((await ops.store.workload()).claims.map((c) => [c.assignee, c.in_progress]));
  } catch (e) {
    // Cannot tell: drain rather than risk killing a session with work.
    log(`checking claims before stopping ${idle.join(', ')}: ${errorMessage(e)}`);
    held = new Map(idle.map((s) => [s, 1]));
  }
  const busy = planned.filter((a) => a.ifIdle && (held.get(a.session) ?? 0) > 0);
  ops.unfenceClaims(busy.map((a) => a.session));
  for (const a of busy.filter((b) => b.ifIdle === 'keep')) {
    log(`not stopping ${a.session} (${a.reason}): it claimed work meanwhile`);
  }
  return {
    stops: planned.filter((a) => !busy.includes(a)),
    drains: busy
      .filter((a) => a.ifIdle === 'drain')
      .map((a) => ({
        kind: 'drain' as const,
        session: a.session,
        reason: `${a.reason}; claimed work meanwhile`,
      })),
  };
}

/**
 * The scale-down grace counts from when a session became unwanted and
 * idle: note that moment in its tracker (and forget it once it is wanted
 * or busy again). Returns when the earliest grace ends (the next tick comes
 * no later), or undefined.
 */
export function noteIdle(
  trackers: ReadonlyMap<string, SessionTracker>,
  plan: Plan,
  now: number,
): number | undefined {
  const graceful = new Map(
    plan.waiting.flatMap((w) => (w.graceEndsAt !== undefined ? [[w.session, w.graceEndsAt]] : [])),
  );
  for (const [name, t] of trackers) {
    if (graceful.has(name)) t.idleSince ??= now;
    else delete t.idleSince;
  }
  return graceful.size ? Math.min(...graceful.values()) : undefined;
}

/**
 * Draining sessions: has the agent acknowledged (session meta)? One call
 * per draining session; true when one has (tick again).
 */
export async function pollDrainAcks(
  provider: Provider,
  trackers: ReadonlyMap<string, SessionTracker>,
  concurrency: number,
): Promise<boolean> {
  const draining = [...trackers].filter(([, t]) => t.drainingSince !== undefined && !t.drainAcked);
  let acked = false;
  await mapLimit(draining, concurrency, async ([name, t]) => {
    if ((await provider.getMeta(name, META.drainAck).catch(() => '')) === '1') {
      t.drainAcked = true;
      acked = true;
    }
  });
  return acked;
}
