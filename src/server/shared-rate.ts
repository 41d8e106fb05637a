/**
 * The city's rate budget ([api] rate_per_s, rate_burst) split among its
 * live servers: each admits its share (rate / servers, burst / servers) per
 * key, so the city as a whole admits about the budget whichever servers
 * its clients reach (evenly spread clients; a client pinned to one server
 * gets that server's share). The share follows the number of live servers
 * as it changes.
 */
import { RateLimiter } from '../api/index.js';
import type { Principal } from '../city/index.js';

export class SharedRateLimiter {
  private limiter: RateLimiter;
  private n = 1;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    /** How many servers share the budget now (default 1). */
    private readonly share: () => number = () => 1,
    private readonly now?: () => number,
  ) {
    this.limiter = this.make(1);
  }

  private make(n: number): RateLimiter {
    return new RateLimiter(this.rate / n, Math.max(1, this.burst / n), this.now);
  }

  /** Spend one of `principal`'s tokens here, or throw RateLimitedError. */
  admit(principal: Principal): void {
    const n = Math.max(1, Math.floor(this.share()));
    if (n !== this.n) {
      // A new share starts with full buckets: at most one burst more, once.
      this.n = n;
      this.limiter = this.make(n);
    }
    this.limiter.admit(principal);
  }
}
