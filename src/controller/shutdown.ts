/**
 * The city's graceful shutdown of its sessions, as waves: interrupt them
 * all, one grace window (shutdown_timeout) for all, stop the survivors
 * together. Its progress is reported as it goes (gc stop shows it).
 */
import { interruptSessions, stopSessions, type Provider } from '../runtime/index.js';

export interface ShutdownProgress {
  phase: 'interrupting' | 'waiting' | 'stopping' | 'done';
  /** The city's sessions when the shutdown began. */
  sessions_total: number;
  /** Those still alive (the ones being stopped, in phase stopping). */
  sessions_left: number;
  /** When the grace window ends (epoch ms). */
  deadline_at: number;
}

export interface ShutdownDeps {
  provider: Provider;
  isCitySession: (name: string) => boolean;
  graceMs: number;
  log: (line: string) => void;
  progress: (p: ShutdownProgress) => void;
  /** Called for each session stopped here (not for those that exited in the grace). */
  stopped: (name: string) => Promise<unknown>;
}

const POLL_MS = 100;

export async function shutdownSessions(d: ShutdownDeps): Promise<void> {
  const ours = (await d.provider.snapshot('')).filter((s) => d.isCitySession(s.name));
  const names = new Set(ours.map((s) => s.name));
  const alive = ours.filter((s) => s.alive).map((s) => s.name);
  // Real time throughout: the grace is wall-clock time whatever clock the controller ticks by.
  const deadline = Date.now() + d.graceMs;
  const report = (phase: ShutdownProgress['phase'], left: number) =>
    d.progress({
      phase,
      sessions_total: ours.length,
      sessions_left: left,
      deadline_at: deadline,
    });
  report('interrupting', alive.length);
  await interruptSessions(d.provider, alive, d.log);
  let left = ours;
  report('waiting', alive.length);
  while (left.some((s) => s.alive) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, POLL_MS));
    left = (await d.provider.snapshot('')).filter((s) => names.has(s.name));
    report('waiting', left.filter((s) => s.alive).length);
  }
  report('stopping', left.filter((s) => s.alive).length);
  await stopSessions(
    d.provider,
    left.map((s) => s.name),
    d.log,
  );
  await Promise.all(left.map((s) => d.stopped(s.name)));
  report('done', 0);
}
