/**
 * One depends_on wave of starts: tokens issued together, work dirs
 * prepared, then one provider batch call for the wave (startSessions),
 * then each outcome handed back. The controller keeps the bookkeeping
 * (trackers, failures, events); this is the order of the steps.
 */
import { mapLimit } from '../core/index.js';
import type { Provider, StartRequest } from '../runtime/index.js';
import type { DesiredSession } from './desired.js';
import { startSessions } from './fleet.js';
import type { ControllerOptions } from './options.js';

export interface WaveSteps<A extends { session: DesiredSession }> {
  provider: Provider;
  tokens: ControllerOptions['tokens'];
  concurrency: number;
  /** The session's start request (its work dir prepared), given its token. */
  request(a: A, token: string | undefined): Promise<StartRequest>;
  failed(a: A, e: unknown): Promise<void>;
  started(a: A): Promise<void>;
}

/** Tokens for a wave's sessions, in one write when the issuer can. */
async function issue(
  tokens: NonNullable<ControllerOptions['tokens']>,
  names: string[],
): Promise<Map<string, string>> {
  if (tokens.issueMany) return tokens.issueMany(names);
  return new Map(await Promise.all(names.map(async (n) => [n, await tokens.issue(n)] as const)));
}

export async function startWave<A extends { session: DesiredSession }>(
  wave: A[],
  steps: WaveSteps<A>,
): Promise<void> {
  let tokens: Map<string, string> | undefined;
  try {
    tokens = steps.tokens
      ? await issue(
          steps.tokens,
          wave.map((a) => a.session.name),
        )
      : undefined;
  } catch (e) {
    // No session of the wave may start without its token: each start fails (and is retried).
    for (const a of wave) await steps.failed(a, e);
    return;
  }
  const ready: { a: A; request: StartRequest }[] = [];
  await mapLimit(wave, steps.concurrency, async (a) => {
    try {
      ready.push({ a, request: await steps.request(a, tokens?.get(a.session.name)) });
    } catch (e) {
      await steps.failed(a, e);
    }
  });
  // Each outcome recorded as it comes: one ready early is not held back
  // by a slow one of its wave. Outcomes that come together are recorded
  // together (the event log commits a burst of events at once).
  const recording: Promise<void>[] = [];
  await startSessions(
    steps.provider,
    ready.map((r) => r.request),
    steps.concurrency,
    (i, err) => {
      const { a } = ready[i]!;
      recording.push(err ? steps.failed(a, err) : steps.started(a));
    },
  );
  await Promise.all(recording);
}
