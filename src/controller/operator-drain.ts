/**
 * An operator's drain of one session (`gc runtime drain|undrain NAME`,
 * Gas City's commands): drain sets the session's GC_DRAIN (what the agent's
 * `gc runtime drain-check` sees) and the controller's drain clock, so the
 * session is stopped once it acks (`drain-ack`) or its agent's
 * drain_timeout passes, and started again if it is still wanted; undrain
 * cancels a drain not yet done.
 */
import { NotFoundError } from '../core/index.js';
import type { Provider } from '../runtime/index.js';
import { META } from './options.js';
import type { SessionTracker } from './plan.js';

export interface DrainContext {
  provider: Provider;
  trackers: Map<string, SessionTracker>;
  now: number;
  record: (type: string, subject: string, message: string) => Promise<unknown>;
  poke: () => void;
}

/** Drain (`on`) or undrain one running city session; whether anything changed. */
export async function operatorDrain(
  c: DrainContext,
  session: string,
  on: boolean,
  actor: string,
): Promise<{ session: string; draining: boolean; changed: boolean }> {
  const t = c.trackers.get(session);
  if (t?.startedAt === undefined || !(await c.provider.isRunning(session))) {
    throw new NotFoundError('session', session, {
      fix: 'gc session list shows the running sessions',
    });
  }
  const draining = t.drainingSince !== undefined;
  if (on === draining) return { session, draining, changed: false };
  if (on) {
    await c.provider.setMeta(session, META.drain, String(Math.floor(c.now / 1000)));
    t.drainingSince = c.now;
    t.drainReason = `drain by ${actor}`;
    await c.record('session.draining', session, `draining ${session}: asked by ${actor}`);
  } else {
    await c.provider.removeMeta(session, META.drain);
    await c.provider.removeMeta(session, META.drainAck);
    delete t.drainingSince;
    delete t.drainAcked;
    delete t.drainReason;
    await c.record('session.undrained', session, `drain of ${session} cancelled by ${actor}`);
  }
  c.poke();
  return { session, draining: on, changed: true };
}
