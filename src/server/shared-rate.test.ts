import { describe, expect, it } from 'vitest';
import type { Principal } from '../city/index.js';
import { RateLimitedError } from '../core/index.js';
import { SharedRateLimiter } from './shared-rate.js';

const key: Principal = {
  key_id: 'k1',
  kind: 'agent',
  name: 'a',
  owner: '',
  max_sessions: 0,
  webhook_url: '',
  created_at: '',
  revoked_at: null,
  seq: 1,
};

/** How many of `n` requests one server admits at once. */
function admitted(l: SharedRateLimiter, n: number): number {
  let ok = 0;
  for (let i = 0; i < n; i++) {
    try {
      l.admit(key);
      ok++;
    } catch (e) {
      expect(e).toBeInstanceOf(RateLimitedError);
    }
  }
  return ok;
}

describe('the rate budget across servers', () => {
  it('three servers admit one budget between them; the share follows the live count', () => {
    let t = 0;
    let servers = 3;
    const now = () => t;
    const all = [1, 2, 3].map(() => new SharedRateLimiter(10, 30, () => servers, now));
    // A burst spread over the three: each admits a third of the burst.
    expect(all.map((l) => admitted(l, 20))).toEqual([10, 10, 10]);
    // One second on: a third of the rate each.
    t += 1000;
    expect(all.map((l) => admitted(l, 20)).reduce((a, b) => a + b)).toBeLessThanOrEqual(12);
    // One server is left: it has the whole budget.
    servers = 1;
    t += 10_000;
    expect(admitted(all[0]!, 100)).toBe(30);
  });

  it('rate 0 is no limit, however many servers', () => {
    const l = new SharedRateLimiter(0, 0, () => 4);
    expect(admitted(l, 1000)).toBe(1000);
  });
});
