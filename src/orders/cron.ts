/**
 * Cron schedules of `gate = "cron"` orders: five fields (minute, hour,
 * day of month, month, day of week), each `*`, a number, a range `a-b`, a
 * step `*\/n` or `a-b/n`, or a comma list of those. As in Gas City, all five
 * fields must match (day of month and day of week are not OR-ed), and a
 * schedule fires at most once per minute. Fields are read on the wall
 * clock of `tz` (an IANA zone), else of the server's own zone.
 */
import { ValidationError } from '../core/index.js';

const FIELDS = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12 },
  // 7 is Sunday too.
  { name: 'day of week', min: 0, max: 7 },
] as const;

export interface Cron {
  text: string;
  /** For each field, the values it allows. */
  allowed: [Set<number>, Set<number>, Set<number>, Set<number>, Set<number>];
  tz: string;
}

/** Wall-clock fields of an instant. */
export interface Wall {
  minute: number;
  hour: number;
  day: number;
  month: number;
  /** 0 = Sunday. */
  weekday: number;
}

function whole(s: string, what: string, min: number, max: number): number {
  if (!/^\d+$/.test(s)) throw new ValidationError(`${what}: "${s}" is not a number`);
  const n = Number(s);
  if (n < min || n > max) throw new ValidationError(`${what}: ${n} is outside ${min}-${max}`);
  return n;
}

function field(text: string, i: number): Set<number> {
  const f = FIELDS[i]!;
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^(\*|\d+(?:-\d+)?)(?:\/(\d+))?$/.exec(part.trim());
    if (!m) {
      throw new ValidationError(
        `${f.name}: "${part}" is not *, a number, a range a-b or a step */n`,
      );
    }
    const [, base, stepText] = m;
    const step = stepText === undefined ? 1 : whole(stepText, f.name, 1, f.max);
    let lo: number = f.min;
    let hi: number = f.max;
    if (base !== '*') {
      const [a, b] = base!.split('-');
      lo = whole(a!, f.name, f.min, f.max);
      hi = b === undefined ? (stepText === undefined ? lo : f.max) : whole(b, f.name, f.min, f.max);
      if (hi < lo) throw new ValidationError(`${f.name}: range ${base} runs backwards`);
    }
    for (let v = lo; v <= hi; v += step) out.add(i === 4 && v === 7 ? 0 : v);
  }
  return out;
}

/** Whether `tz` is a time zone this runtime knows. */
export function knownZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** Parse a schedule; a ValidationError says which field is wrong and why. */
export function parseCron(text: string, tz = ''): Cron {
  const parts = text.trim().split(/\s+/).filter(Boolean);
  if (parts.length !== 5) {
    throw new ValidationError(
      `a cron schedule has 5 fields (minute hour day month weekday), got ${parts.length}: "${text}"`,
    );
  }
  if (tz && !knownZone(tz)) throw new ValidationError(`unknown time zone "${tz}"`);
  return {
    text,
    allowed: parts.map((p, i) => field(p, i)) as Cron['allowed'],
    tz,
  };
}

const formats = new Map<string, Intl.DateTimeFormat>();

/** The wall clock at `ms` in `tz` ("" = this process's zone). */
export function wallClock(ms: number, tz = ''): Wall {
  if (!tz) {
    const d = new Date(ms);
    return {
      minute: d.getMinutes(),
      hour: d.getHours(),
      day: d.getDate(),
      month: d.getMonth() + 1,
      weekday: d.getDay(),
    };
  }
  let f = formats.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      minute: 'numeric',
      hour: 'numeric',
      day: 'numeric',
      month: 'numeric',
      weekday: 'short',
    });
    formats.set(tz, f);
  }
  const p: Record<string, string> = {};
  for (const x of f.formatToParts(new Date(ms))) p[x.type] = x.value;
  return {
    minute: Number(p.minute),
    hour: Number(p.hour),
    day: Number(p.day),
    month: Number(p.month),
    weekday: ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'].indexOf(p.weekday ?? ''),
  };
}

export function cronMatches(c: Cron, w: Wall): boolean {
  const [mi, h, d, mo, wd] = c.allowed;
  return mi.has(w.minute) && h.has(w.hour) && d.has(w.day) && mo.has(w.month) && wd.has(w.weekday);
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
/** How far ahead a schedule is searched (Feb 29 on a Monday can be years away). */
const HORIZON = 8 * 366 * 24 * HOUR;

/**
 * The first minute at or after `fromMs` (rounded up to a whole minute) the
 * schedule fires; undefined when none comes within eight years (e.g. 31 February).
 */
export function nextFire(c: Cron, fromMs: number): number | undefined {
  let t = Math.ceil(fromMs / MINUTE) * MINUTE;
  const end = t + HORIZON;
  const [mi, h, d, mo, wd] = c.allowed;
  while (t <= end) {
    const w = wallClock(t, c.tz);
    if ((!mo.has(w.month) || !d.has(w.day) || !wd.has(w.weekday)) && w.hour < 23) {
      // Nothing today: go to 23:00, an hour short of midnight so a DST
      // change tonight cannot carry the search past tomorrow's first hour.
      t += (23 - w.hour) * HOUR - w.minute * MINUTE;
      continue;
    }
    if (!mo.has(w.month) || !d.has(w.day) || !wd.has(w.weekday) || !h.has(w.hour)) {
      // Nothing in this wall-clock hour can match: go to the next hour.
      t += HOUR - w.minute * MINUTE;
      continue;
    }
    if (mi.has(w.minute)) return t;
    t += MINUTE;
  }
  return undefined;
}
