/** Shared helpers for benchmarks: flags, percentiles, timing, the final JSON line. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const quick = process.argv.includes('--quick');

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx] ?? 0;
}

/** Monotonic milliseconds; cheap enough to call per operation. */
export const nowMs = (): number => performance.now();

export const round = (n: number, digits = 2): number => Number(n.toFixed(digits));

/** A scratch directory on the same disk as the system temp dir, removed at exit. */
export function scratchDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `gc-bench-${name}-`));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Human notes go to stderr; the last stdout line is the one JSON result. */
export function note(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

export function result(obj: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

/** For a benchmark's top-level promise: print the failure and exit non-zero. */
export function fatal(e: unknown): never {
  process.stderr.write(
    `bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
  );
  process.exit(1);
}
