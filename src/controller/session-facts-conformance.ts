/**
 * Session facts conformance suite, run against every backend (the JSON file
 * in `.gc/`, PostgreSQL, MariaDB). The factory gives a fresh, empty place;
 * `open` opens facts on it, as a (re)started server does.
 */
import { describe, expect, it } from 'vitest';
import type { SessionFacts } from './session-facts.js';

export type SessionFactsPlace = () => Promise<{ open(): SessionFacts }>;

export function runSessionFactsConformance(name: string, factory: SessionFactsPlace): void {
  describe(`Session facts conformance: ${name}`, () => {
    it('facts survive a reopen; a session with nothing left to keep is forgotten', async () => {
      const place = await factory();
      const a = place.open();
      expect(await a.load()).toEqual([]);
      await a.save({ session: 'w-1', deaths: [1000, 2000], quarantined: false });
      await a.save({ session: 'w-2', deaths: [1, 2, 3], quarantined: true });
      await a.save({ session: 'w-3', deaths: [5], quarantined: false });
      await a.save({ session: 'w-1', deaths: [1000, 2000, 3000], quarantined: true });
      await a.save({ session: 'w-3', deaths: [], quarantined: false });
      await a.close();
      const b = place.open();
      const got = (await b.load()).sort((x, y) => x.session.localeCompare(y.session));
      expect(got).toEqual([
        { session: 'w-1', deaths: [1000, 2000, 3000], quarantined: true },
        { session: 'w-2', deaths: [1, 2, 3], quarantined: true },
      ]);
      await b.close();
    });

    it('concurrent saves of many sessions all land', async () => {
      const place = await factory();
      const f = place.open();
      await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          f.save({ session: `s-${i}`, deaths: [i], quarantined: i % 2 === 0 }),
        ),
      );
      await f.close();
      const again = place.open();
      expect((await again.load()).length).toBe(40);
      await again.close();
    });
  });
}
