/**
 * Go-style duration strings ("300ms", "30s", "5m", "1h30m", "1.5h") as used
 * throughout city.toml. Parsed to milliseconds.
 */

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

/**
 * Parse a Go duration. Returns milliseconds, or throws an Error whose message
 * explains the expected form.
 *
 * @example parseDuration('1h30m') // 5400000
 */
export function parseDuration(text: string): number {
  const s = text.trim();
  if (s === '0') return 0;
  let sign = 1;
  let rest = s;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest.startsWith('-')) sign = -1;
    rest = rest.slice(1);
  }
  if (rest === '') throw new Error(durationHint(text));
  let total = 0;
  PART.lastIndex = 0;
  let pos = 0;
  while (pos < rest.length) {
    PART.lastIndex = pos;
    const m = PART.exec(rest);
    if (!m || m.index !== pos) throw new Error(durationHint(text));
    total += Number(m[1]) * (UNIT_MS[m[2] ?? ''] ?? NaN);
    pos = PART.lastIndex;
  }
  if (!Number.isFinite(total)) throw new Error(durationHint(text));
  return sign * total;
}

function durationHint(text: string): string {
  return `invalid duration ${JSON.stringify(text)}: expected a Go-style duration such as "300ms", "30s", "5m", "1h30m"`;
}

/** Format milliseconds as a compact Go-style duration ("1h30m", "250ms"). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const sign = ms < 0 ? '-' : '';
  let rest = Math.abs(ms);
  if (rest < 1000) return `${sign}${rest}ms`;
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  const s = rest / 1000;
  let out = '';
  if (h) out += `${h}h`;
  if (m) out += `${m}m`;
  if (s) out += `${Number(s.toFixed(3))}s`;
  return sign + out;
}
