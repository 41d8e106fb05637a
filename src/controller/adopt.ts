/**
 * Adoption: sessions that run but that this controller has no memory of
 * (the server restarted while they ran) are taken over, never restarted.
 */
import { errorMessage, mapLimit } from '../core/index.js';
import type { Provider, SessionSnapshot } from '../runtime/index.js';
import { META } from './options.js';
import type { SessionTracker } from './plan.js';

/** Sessions looked at in parallel. */
const ADOPT_CONCURRENCY = 8;

export interface AdoptContext {
  provider: Provider;
  trackers: Map<string, SessionTracker>;
  isCitySession: (name: string) => boolean;
  record: (type: string, subject: string, message: string) => Promise<unknown>;
  revokeToken: (session: string) => void;
  /** Drop a session from the controller's live view. */
  forget: (session: string) => void;
  log: (line: string) => void;
}

/**
 * Live sessions the controller has no memory of (it restarted): adopt,
 * never restart. Only a session that finished starting is adopted: its
 * fingerprint is written after setup and readiness, so one without it was
 * cut off mid-start (its setup never ran to the end). That one is stopped
 * and left out of `snapshot`, so this tick starts it again from scratch.
 */
export async function adoptStrangers(
  c: AdoptContext,
  snapshot: SessionSnapshot[],
  now: number,
): Promise<SessionSnapshot[]> {
  const strangers = snapshot.filter(
    (s) => s.alive && !c.trackers.has(s.name) && c.isCitySession(s.name),
  );
  const unfinished = new Set<string>();
  await mapLimit(strangers, ADOPT_CONCURRENCY, async (s) => {
    const [fingerprint, drain] = await Promise.all([
      c.provider.getMeta(s.name, META.fingerprint),
      c.provider.getMeta(s.name, META.drain),
    ]);
    if (!fingerprint) {
      unfinished.add(s.name);
      await c.provider.stop(s.name).catch((e: unknown) => {
        c.log(`stopping half-started ${s.name}: ${errorMessage(e)}`);
      });
      c.revokeToken(s.name);
      await c.record(
        'session.start_interrupted',
        s.name,
        `session ${s.name} was cut off mid-start (no fingerprint); stopped, to be started again`,
      );
      c.forget(s.name);
      return;
    }
    const t: SessionTracker = { startedAt: now, deaths: [] };
    if (fingerprint) t.fingerprint = fingerprint;
    if (drain) {
      t.drainingSince = Number(drain) * 1000 || now;
      t.drainReason = 'drain in progress before restart';
    }
    c.trackers.set(s.name, t);
    await c.record('session.adopted', s.name, `adopted running session ${s.name}`);
  });
  return unfinished.size ? snapshot.filter((s) => !unfinished.has(s.name)) : snapshot;
}
