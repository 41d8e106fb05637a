/** Building blocks of the city.toml schema: durations, counts, names. */
import { z } from 'zod';
import { parseDuration } from '../core/index.js';

export function isDuration(s: string): boolean {
  try {
    return parseDuration(s) >= 0;
  } catch {
    return false;
  }
}

export const durationString = () =>
  z.string().refine(isDuration, {
    message: 'expected a Go-style duration such as "300ms", "30s", "5m" or "1h30m"',
  });

export const duration = (def: string, description: string) =>
  durationString().default(def).describe(description);

export const optDuration = (description: string) =>
  durationString().optional().describe(description);

export const count = () => z.number().int().min(0);
export const strings = () => z.array(z.string());
export const envMap = () => z.record(z.string(), z.string());
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
export const name = (what: string) =>
  z.string().regex(NAME_RE, {
    message: `${what} names use letters, digits, '-' and '_' (at most 63, starting with a letter or digit)`,
  });
