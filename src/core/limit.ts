/** Run `fn` over `items`, at most `limit` at once. */
export async function mapLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (t: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * Items handed in one at a time, worked in batches: `fn` gets everything
 * added since its last call, one call at a time. Items that arrive together
 * share a call (one subprocess for many sessions); one that arrives alone
 * does not wait for the rest.
 */
export class SerialBatcher<T> {
  private pending: T[] = [];
  private running: Promise<void> | undefined;
  private error: Error | undefined;

  constructor(private readonly fn: (items: T[]) => Promise<void>) {}

  add(item: T): void {
    this.pending.push(item);
    this.running ??= this.drain();
  }

  /** Resolves when every item added so far has been worked; rejects with fn's first error. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
    if (this.error !== undefined) throw this.error;
  }

  private async drain(): Promise<void> {
    // Let items added in the same turn join the first batch.
    await Promise.resolve();
    try {
      while (this.pending.length) {
        const items = this.pending;
        this.pending = [];
        await this.fn(items);
      }
    } catch (e) {
      this.error ??= e instanceof Error ? e : new Error(String(e));
      this.pending = [];
    } finally {
      this.running = undefined;
    }
  }
}
