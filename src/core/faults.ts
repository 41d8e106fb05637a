/**
 * Fault injection for tests: named points in I/O paths (`events.sync`,
 * `events.truncate`, ...) that throw an errno error when armed, so full-disk
 * and I/O-error paths run in CI without mounting anything.
 *
 * Disarmed (the default, and always in production) a point costs one map
 * lookup on an empty map. Points are armed in-process with `armFaults`, or
 * for a child process through `GC_FAULTS` (e.g.
 * `GC_FAULTS=events.sync:EIO:1,store.write:ENOSPC`), which is read only when
 * `GC_FAULTS_ENABLED=1` is set too: a stray variable cannot break a city.
 */

interface Armed {
  code: string;
  /** Failures left; Infinity for "every time". */
  left: number;
}

const armed = new Map<string, Armed>();

/**
 * Arm points from a spec `point:CODE[:count],...` (count: how many calls
 * fail, default every one). Replaces what was armed before; "" disarms all.
 */
export function armFaults(spec: string): void {
  armed.clear();
  for (const part of spec
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const [point, code, count] = part.split(':');
    if (!point || !code || !/^E[A-Z0-9]+$/.test(code)) {
      throw new Error(`GC_FAULTS: expected point:ECODE[:count], got ${JSON.stringify(part)}`);
    }
    const left = count === undefined ? Infinity : Number(count);
    if (!Number.isInteger(left) && left !== Infinity) {
      throw new Error(`GC_FAULTS: count must be an integer in ${JSON.stringify(part)}`);
    }
    armed.set(point, { code, left });
  }
}

/** Throw the armed error at `point`, if any (and count it down). */
export function fault(point: string): void {
  if (armed.size === 0) return;
  const a = armed.get(point);
  if (!a || a.left <= 0) return;
  a.left--;
  const err = new Error(`${a.code}: injected fault at ${point}`) as NodeJS.ErrnoException;
  err.code = a.code;
  throw err;
}

/** The kill point armed for this process (`GC_KILL_AT`, read only with GC_FAULTS_ENABLED=1). */
const killAt = process.env.GC_FAULTS_ENABLED === '1' ? process.env.GC_KILL_AT : undefined;

/**
 * Test-only: end this process with SIGKILL at `point` when it is the armed
 * kill point, so crash tests hit a named moment (mid-start, mid-landing)
 * instead of a random one. Disarmed: one comparison.
 */
export function killPoint(point: string): void {
  if (killAt === point) process.kill(process.pid, 'SIGKILL');
}

if (process.env.GC_FAULTS_ENABLED === '1' && process.env.GC_FAULTS) {
  armFaults(process.env.GC_FAULTS);
}
