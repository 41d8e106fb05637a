/**
 * The inbox bounds of stored mail: a mailbox holds at most `maxUnread`
 * unread messages, and one sender may leave at most `maxPerSender` of them
 * there. A send over a bound is refused (InboxFullError), never dropped.
 *
 * Counting a mailbox for every send would cost a query each, and a count
 * taken while other sends are under way can be passed by them. So each
 * mailbox's unread count is remembered as last counted plus the sends
 * made here since: an upper bound on its unread mail within this process
 * (reads only lower it). Far from every bound (that count plus every send
 * under way stays below them), sends to one mailbox run side by side.
 * Near a bound they go one at a time, after the sends under way, with a
 * fresh count: concurrent senders never overshoot it. Mail other
 * processes send to the same mailbox is seen when the count is taken
 * again: within FRESH_NEAR_MS near a bound, FRESH_FAR_MS while the
 * mailbox is under half of it.
 */
import { InboxFullError } from './errors.js';

/** How long a remembered count is trusted near a bound (at half of it or more). */
const FRESH_NEAR_MS = 1000;
/** How long a remembered count is trusted while the mailbox is under half of every bound. */
const FRESH_FAR_MS = 5000;
/** Mailboxes whose counts are remembered, at most. */
const REMEMBERED = 10_000;

export interface InboxCounts {
  /** Unread mail in `to`'s mailbox (from `from` only, when given). */
  unread(to: string, from?: string): Promise<number>;
}

export class InboxGate {
  /** Tail of the one-at-a-time chain of each mailbox (near a bound). */
  private readonly chains = new Map<string, Promise<void>>();
  /** Sends under way to each mailbox that did not wait in its chain. */
  private readonly flying = new Map<string, Set<Promise<void>>>();
  private readonly seen = new Map<string, { n: number; at: number }>();
  private readonly lowest: number;

  constructor(
    private readonly maxUnread: number,
    private readonly maxPerSender: number,
    private readonly counts: InboxCounts,
  ) {
    this.lowest = Math.min(
      maxUnread > 0 ? maxUnread : Infinity,
      maxPerSender > 0 ? maxPerSender : Infinity,
    );
  }

  get bounded(): boolean {
    return this.lowest !== Infinity;
  }

  /** Run `send` once the bounds allow one more message from `from` in `to`'s mailbox. */
  admit<T>(from: string, to: string, send: () => Promise<T>): Promise<T> {
    if (!this.chains.has(to) && this.roomFor(to, this.known(to))) return this.fly(to, send);
    const prev = this.chains.get(to) ?? Promise.resolve();
    const decided = prev.then(async (): Promise<{ sent: Promise<T> }> => {
      // A count (when the remembered one is stale) decides most sends.
      let unread = this.known(to);
      // Exact when counted with no send under way (none starts while this chain is held).
      let exact = false;
      if (unread === undefined) {
        exact = !this.flying.has(to);
        unread = await this.recount(to);
      }
      if (this.roomFor(to, unread)) return { sent: this.fly(to, send) };
      // Near a bound: after the sends under way, counted again. (A count
      // taken while sends were under way may hold some of them twice.)
      if (!exact) {
        const under = this.flying.get(to);
        if (under) await Promise.all(under);
        unread = await this.recount(to);
      }
      await this.check(from, to, unread);
      const sent = await send();
      this.counted(to);
      return { sent: Promise.resolve(sent) };
    });
    const tail = decided.then(
      () => undefined,
      () => undefined,
    );
    this.chains.set(to, tail);
    tail.then(
      () => {
        if (this.chains.get(to) === tail) this.chains.delete(to);
      },
      () => undefined, // tail never rejects
    );
    return decided.then((d) => d.sent);
  }

  /** The remembered count while it is fresh, else undefined. */
  private known(to: string): number | undefined {
    const s = this.seen.get(to);
    if (!s) return undefined;
    const far = s.n + (this.flying.get(to)?.size ?? 0) < this.lowest / 2;
    return performance.now() - s.at < (far ? FRESH_FAR_MS : FRESH_NEAR_MS) ? s.n : undefined;
  }

  /** Whether `unread` plus every send under way stays below every bound. */
  private roomFor(to: string, unread: number | undefined): boolean {
    return unread !== undefined && unread + (this.flying.get(to)?.size ?? 0) < this.lowest;
  }

  private async recount(to: string): Promise<number> {
    const at = performance.now();
    const n = await this.counts.unread(to);
    if (this.seen.size >= REMEMBERED) this.seen.clear();
    this.seen.set(to, { n, at });
    return n;
  }

  private counted(to: string): void {
    const s = this.seen.get(to);
    if (s) s.n++;
  }

  private async check(from: string, to: string, unread: number): Promise<void> {
    if (this.maxUnread > 0 && unread >= this.maxUnread) {
      throw new InboxFullError(to, unread, this.maxUnread);
    }
    // A sender cannot have more unread here than the mailbox holds in all.
    if (this.maxPerSender > 0 && unread >= this.maxPerSender) {
      const mine = await this.counts.unread(to, from);
      if (mine >= this.maxPerSender) throw new InboxFullError(to, mine, this.maxPerSender, from);
    }
  }

  /** Send without holding the mailbox's chain; counted as under way until it settles. */
  private fly<T>(to: string, send: () => Promise<T>): Promise<T> {
    const sent = send().then((v) => {
      this.counted(to);
      return v;
    });
    const settled = sent.then(
      () => undefined,
      () => undefined,
    );
    const set = this.flying.get(to) ?? new Set<Promise<void>>();
    set.add(settled);
    this.flying.set(to, set);
    settled.then(
      () => {
        set.delete(settled);
        if (!set.size && this.flying.get(to) === set) this.flying.delete(to);
      },
      () => undefined, // settled never rejects
    );
    return sent;
  }
}
