/**
 * Throughput for the overview: beads closed per hour over the last day,
 * counted as `bead.closed` events arrive (one watch), after one read of the
 * last day's events at start. A page reads the counts in O(1).
 */
import type { EventLog } from '../events/index.js';
import { errorMessage } from '../core/index.js';

const HOUR = 3_600_000;
const HOURS = 24;
/** The most events the start-up read looks at (older hours stay partly counted). */
const SEED_MAX = 200_000;

export class Activity {
  private readonly hours = new Map<number, number>();
  private readonly ac = new AbortController();
  private started = false;

  constructor(
    private readonly events: EventLog,
    private readonly log: (line: string) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** Start counting (once); the start-up read and the watch run in the background. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.run().catch((e: unknown) => {
      if (!this.ac.signal.aborted) this.log(`dashboard: throughput: ${errorMessage(e)}`);
    });
  }

  private count(ts: string): void {
    const t = Date.parse(ts);
    if (!Number.isFinite(t)) return;
    const h = Math.floor(t / HOUR) * HOUR;
    this.hours.set(h, (this.hours.get(h) ?? 0) + 1);
    const oldest = Math.floor(this.now() / HOUR) * HOUR - HOURS * HOUR;
    for (const k of this.hours.keys()) if (k < oldest) this.hours.delete(k);
  }

  private async run(): Promise<void> {
    const latest = await this.events.latestSeq();
    const since = this.now() - HOURS * HOUR;
    let after = 0;
    let seen = 0;
    for (;;) {
      const p = await this.events.list({
        type: 'bead.closed',
        since,
        afterSeq: after,
        limit: 5000,
      });
      for (const e of p.items) if (e.seq <= latest) this.count(e.ts);
      seen += p.items.length;
      if (p.next_after_seq === null || p.next_after_seq >= latest || seen >= SEED_MAX) break;
      after = p.next_after_seq;
    }
    for await (const e of this.events.watch(latest, { signal: this.ac.signal })) {
      if (e.type === 'bead.closed') this.count(e.ts);
    }
  }

  /** Closed beads per hour, oldest first, the current hour last. */
  perHour(): { hour: number; closed: number }[] {
    const now = Math.floor(this.now() / HOUR) * HOUR;
    const out: { hour: number; closed: number }[] = [];
    for (let i = HOURS - 1; i >= 0; i--) {
      const h = now - i * HOUR;
      out.push({ hour: h, closed: this.hours.get(h) ?? 0 });
    }
    return out;
  }

  close(): void {
    this.ac.abort();
  }
}
