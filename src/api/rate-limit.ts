/**
 * Per-principal token buckets: each key may spend `burst` requests at once
 * and earns `ratePerS` back per second. Over the limit is a 429 with
 * Retry-After, never a silent drop or a queue that grows.
 */
import { RateLimitedError } from '../core/index.js';
import type { Principal } from '../city/index.js';

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly ratePerS: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Spend one token of `principal`, or throw RateLimitedError. */
  admit(principal: Principal): void {
    if (this.ratePerS <= 0) return;
    const t = this.now();
    let b = this.buckets.get(principal.key_id);
    if (!b) {
      b = { tokens: this.burst, at: t };
      this.buckets.set(principal.key_id, b);
    }
    b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.ratePerS);
    b.at = t;
    if (b.tokens < 1) {
      throw new RateLimitedError(
        `${principal.kind} ${principal.name}`,
        ((1 - b.tokens) / this.ratePerS) * 1000,
      );
    }
    b.tokens -= 1;
  }
}
