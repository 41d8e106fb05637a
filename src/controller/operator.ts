/**
 * An operator's controls over one session. `gc session reset` clears its
 * crash-loop record and quarantine. `gc runtime drain|undrain NAME` (Gas
 * City's commands): drain sets the session's GC_DRAIN (what the agent's
 * `gc runtime drain-check` sees) and the controller's drain clock, so the
 * session is stopped once it acks (`drain-ack`) or its agent's
 * drain_timeout passes, and started again if it is still wanted; undrain
 * cancels a drain not yet done.
 */
import type { SessionKeys } from './session-keys.js';
import { NotFoundError, type Clock } from '../core/index.js';
import type { Provider } from '../runtime/index.js';
import { META } from './options.js';
import type { SessionTracker } from './plan.js';

export interface OperatorContext {
  provider: Provider;
  trackers: Map<string, SessionTracker>;
  clock: Clock;
  record: (
    type: string,
    subject: string,
    payload: Record<string, unknown>,
    message: string,
  ) => Promise<unknown>;
  poke: () => void;
  saveFacts: (session: string) => Promise<void>;
  sessionKeys: SessionKeys;
}

/** Drain (`on`) or undrain one running city session; whether anything changed. */
export async function operatorDrain(
  c: OperatorContext,
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
  const now = c.clock.now();
  if (on === draining) return { session, draining, changed: false };
  if (on) {
    await c.provider.setMeta(session, META.drain, String(Math.floor(now / 1000)));
    t.drainingSince = now;
    t.drainReason = `drain by ${actor}`;
    await c.record(
      'session.draining',
      session,
      { actor },
      `draining ${session}: asked by ${actor}`,
    );
  } else {
    await c.provider.removeMeta(session, META.drain);
    await c.provider.removeMeta(session, META.drainAck);
    delete t.drainingSince;
    delete t.drainAcked;
    delete t.drainReason;
    await c.record(
      'session.undrained',
      session,
      { actor },
      `drain of ${session} cancelled by ${actor}`,
    );
  }
  c.poke();
  return { session, draining: on, changed: true };
}

/** Clear a session's crash-loop record and quarantine; whether it had one. */
export async function resetSession(c: OperatorContext, session: string): Promise<boolean> {
  const t = c.trackers.get(session);
  const had = !!t && (t.quarantined === true || t.deaths.length > 0);
  if (t) {
    t.deaths = [];
    delete t.quarantined;
  }
  await c.saveFacts(session);
  // A reset session starts fresh: a resume that keeps failing is not repeated.
  await c.sessionKeys.forget(session);
  await c.record('session.reset', session, {}, `crash-loop record of ${session} cleared`);
  c.poke();
  return had;
}
