/** Cron schedules: parsing mistakes, matching, and the next firing time (UTC and a zone with DST). */
import { describe, expect, it } from 'vitest';
import { cronMatches, nextFire, parseCron, wallClock } from './index.js';

const utc = (s: string) => Date.parse(`${s}Z`);
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

describe('cron schedules', () => {
  it.each([
    ['* * * * *', '2026-03-04T10:17:30', '2026-03-04T10:18:00.000Z'],
    ['* * * * *', '2026-03-04T10:17:00', '2026-03-04T10:17:00.000Z'],
    ['0 3 * * *', '2026-03-04T10:17:00', '2026-03-05T03:00:00.000Z'],
    ['*/15 * * * *', '2026-03-04T10:17:00', '2026-03-04T10:30:00.000Z'],
    ['5,35 */6 * * *', '2026-03-04T10:36:00', '2026-03-04T12:05:00.000Z'],
    ['0 9 * * 1', '2026-03-04T10:00:00', '2026-03-09T09:00:00.000Z'], // Wednesday -> Monday
    ['0 0 1 * *', '2026-12-15T00:00:00', '2027-01-01T00:00:00.000Z'],
    ['30 12 29 2 *', '2026-03-01T00:00:00', '2028-02-29T12:30:00.000Z'],
    ['0 8-10/2 * * *', '2026-03-04T08:01:00', '2026-03-04T10:00:00.000Z'],
    ['0 0 * * 7', '2026-03-04T00:00:00', '2026-03-08T00:00:00.000Z'], // 7 is Sunday
    // All fields must match (as in Gas City): the 13th that is a Friday.
    ['0 0 13 * 5', '2026-01-01T00:00:00', '2026-02-13T00:00:00.000Z'],
  ])('%s after %s fires at %s', (schedule, from, want) => {
    expect(iso(nextFire(parseCron(schedule, 'UTC'), utc(from)))).toBe(want);
  });

  it('a schedule that never fires has no next time', () => {
    expect(nextFire(parseCron('0 0 31 2 *', 'UTC'), utc('2026-01-01T00:00:00'))).toBeUndefined();
  });

  it('reads the fields on the wall clock of its zone, across a DST change', () => {
    const ny = parseCron('0 9 * * *', 'America/New_York');
    // EST (UTC-5) before 2026-03-08, EDT (UTC-4) after.
    expect(iso(nextFire(ny, utc('2026-03-07T15:00:00')))).toBe('2026-03-08T13:00:00.000Z');
    expect(iso(nextFire(ny, utc('2026-03-06T15:00:00')))).toBe('2026-03-07T14:00:00.000Z');
    // Midnight the night after the change is not skipped.
    const midnight = parseCron('30 0 * * *', 'America/New_York');
    expect(iso(nextFire(midnight, utc('2026-03-08T06:00:00')))).toBe('2026-03-09T04:30:00.000Z');
    expect(wallClock(utc('2026-03-08T13:00:00'), 'America/New_York')).toEqual({
      minute: 0,
      hour: 9,
      day: 8,
      month: 3,
      weekday: 0,
    });
    expect(cronMatches(ny, wallClock(utc('2026-03-08T13:00:00'), 'America/New_York'))).toBe(true);
  });

  it.each([
    ['* * * *', /5 fields/],
    ['61 * * * *', /minute: 61 is outside 0-59/],
    ['* 24 * * *', /hour: 24 is outside 0-23/],
    ['* * 0 * *', /day of month: 0 is outside 1-31/],
    ['* * * 13 *', /month: 13 is outside 1-12/],
    ['* * * * 8', /day of week: 8 is outside 0-7/],
    ['*/0 * * * *', /minute: 0 is outside 1-59/],
    ['10-5 * * * *', /runs backwards/],
    ['a * * * *', /minute: "a" is not/],
    ['1,,2 * * * *', /minute: "" is not/],
  ])('%s is refused: %s', (schedule, message) => {
    expect(() => parseCron(schedule)).toThrow(message);
  });

  it('an unknown time zone is refused', () => {
    expect(() => parseCron('* * * * *', 'Mars/Olympus')).toThrow(
      /unknown time zone "Mars\/Olympus"/,
    );
  });
});
