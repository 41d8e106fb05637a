/** The times `gc costs` takes: `24h` (that long ago), an RFC 3339 time or epoch ms. */
import { ValidationError, parseDuration } from '../core/index.js';
import { sinceMs } from '../events/index.js';

export function usageTime(
  v: string | null | undefined,
  where: string,
  now: number,
): number | undefined {
  if (v === null || v === undefined || v === '') return undefined;
  const bad = () =>
    new ValidationError(`expected a duration (24h), a time or epoch ms, got ${JSON.stringify(v)}`, {
      where,
    });
  if (/^\d+(\.\d+)?(ns|us|µs|ms|s|m|h)/.test(v)) {
    try {
      return now - parseDuration(v);
    } catch {
      throw bad();
    }
  }
  try {
    return sinceMs(v);
  } catch {
    throw bad();
  }
}
