/**
 * Live event fan-out shared by backends. A subscriber's buffer is bounded:
 * when a slow reader falls too far behind, its buffer is dropped and it is
 * told to catch up from the log itself, so nothing is lost and memory stays
 * bounded.
 */
import type { GcEvent } from './types.js';

/** Events buffered per watcher before it is switched to catch-up reads. */
const MAX_BUFFERED = 10_000;

export class Subscription {
  private buffer: GcEvent[] = [];
  private waiter: (() => void) | undefined;
  overflowed = false;
  closed = false;

  push(events: readonly GcEvent[]): void {
    if (this.closed) return;
    if (this.overflowed || this.buffer.length + events.length > MAX_BUFFERED) {
      this.overflowed = true;
      this.buffer = [];
    } else {
      this.buffer.push(...events);
    }
    this.wake();
  }

  wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /** Take what is buffered, waiting until something arrives, the sub closes, or abort. */
  async take(signal?: AbortSignal): Promise<GcEvent[]> {
    while (this.buffer.length === 0 && !this.overflowed && !this.closed && !signal?.aborted) {
      // One listener per wait, removed afterwards: a long follow must not
      // pile listeners onto the same signal.
      let onAbort: (() => void) | undefined;
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        onAbort = () => resolve();
        signal?.addEventListener('abort', onAbort, { once: true });
      });
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
    const out = this.buffer;
    this.buffer = [];
    return out;
  }

  close(): void {
    this.closed = true;
    this.wake();
  }
}

export class Hub {
  private readonly subs = new Set<Subscription>();

  subscribe(): Subscription {
    const s = new Subscription();
    this.subs.add(s);
    return s;
  }

  unsubscribe(s: Subscription): void {
    s.close();
    this.subs.delete(s);
  }

  publish(events: readonly GcEvent[]): void {
    if (events.length === 0) return;
    for (const s of this.subs) s.push(events);
  }

  /** Wake every subscriber without data (e.g. another process appended). */
  poke(): void {
    for (const s of this.subs) {
      s.overflowed = true;
      s.wake();
    }
  }

  closeAll(): void {
    for (const s of this.subs) s.close();
    this.subs.clear();
  }

  get size(): number {
    return this.subs.size;
  }
}
