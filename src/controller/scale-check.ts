/**
 * Pool scale checks: each pool's `scale_check` shell command prints the
 * number of sessions it wants. All checks of a tick run in parallel (bounded
 * by probe_concurrency), each with a time limit. A failing, slow or garbage
 * check means "no change" for that pool and is reported, never a crash.
 */
import { runFile } from '../core/index.js';
import type { CitySpec } from './spec.js';

/** Time limit of one scale check. */
export const SCALE_CHECK_TIMEOUT_MS = 10_000;

export interface ScaleCheckOptions {
  timeoutMs?: number;
  onFailure?: (agent: string, why: string) => void;
}

async function runCheck(
  command: string,
  cwd: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<number> {
  // The command is operator-written config, so it runs through the shell.
  const r = await runFile('/bin/sh', ['-c', command], { cwd, env, timeoutMs });
  if (r.timedOut) throw new Error(`timed out after ${timeoutMs} ms`);
  if (r.code !== 0) {
    const err = r.stderr.trim();
    throw new Error(`exit ${r.code}${err ? `: ${err.slice(0, 200)}` : ''}`);
  }
  const text = r.stdout.trim();
  if (!/^\d+$/.test(text))
    throw new Error(`printed ${JSON.stringify(text.slice(0, 80))}, not a count`);
  return Number(text);
}

export async function runScaleChecks(
  spec: CitySpec,
  options: ScaleCheckOptions = {},
): Promise<Map<string, number | undefined>> {
  const checks = spec.agents.filter((a) => a.pool && a.scaleCheck !== undefined && !a.suspended);
  const out = new Map<string, number | undefined>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < checks.length) {
      const a = checks[next++]!;
      try {
        out.set(
          a.name,
          await runCheck(
            a.scaleCheck!,
            spec.root,
            { ...process.env, GC_CITY: spec.name, GC_CITY_ROOT: spec.root, GC_AGENT: a.name },
            options.timeoutMs ?? SCALE_CHECK_TIMEOUT_MS,
          ),
        );
      } catch (e) {
        out.set(a.name, undefined);
        options.onFailure?.(a.name, (e as Error).message);
      }
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(spec.daemon.probeConcurrency, checks.length) }, worker),
  );
  return out;
}
