/**
 * The memory store's write records: outbox events and the results of API
 * requests' writes, kept beside the beads (no durability, like the rest of
 * the memory store), with the same semantics as the SQLite tables.
 */
import { ValidationError } from '../core/index.js';
import type { OutboxRow, WriteRecord } from './types.js';

export class MemoryRecords {
  private readonly rows: OutboxRow[] = [];
  private nextId = 1;
  private readonly results = new Map<string, { fp: string; result: string }>();

  constructor(private readonly now: () => number) {}

  /** Run `fn` with its record; a request's write already made returns its kept result. */
  apply<T>(fn: () => T, rec: WriteRecord<T> | undefined): T {
    const kept = this.kept(rec);
    if (kept) return kept.value;
    return this.commit(fn(), rec);
  }

  /** `apply` for a write that takes time (an exec store's); the caller runs one at a time. */
  async applyAsync<T>(fn: () => Promise<T>, rec: WriteRecord<T> | undefined): Promise<T> {
    const kept = this.kept(rec);
    if (kept) return kept.value;
    return this.commit(await fn(), rec);
  }

  private kept<T>(rec: WriteRecord<T> | undefined): { value: T } | undefined {
    const req = rec?.request;
    if (!req) return undefined;
    const kept = this.results.get(JSON.stringify([req.scope, req.key, req.n]));
    if (!kept) return undefined;
    if (kept.fp !== req.fp) {
      throw new ValidationError(
        'was already used for a different request (method, path or body differ)',
        { where: 'Idempotency-Key' },
      );
    }
    return { value: JSON.parse(kept.result) as T };
  }

  private commit<T>(value: T, rec: WriteRecord<T> | undefined): T {
    if (!rec) return value;
    const req = rec.request;
    const ts = new Date(this.now()).toISOString();
    for (const e of rec.events?.(value) ?? []) {
      this.rows.push({ id: this.nextId++, event: { ...e, ts: e.ts ?? ts } });
    }
    if (req && (rec.keep?.(value) ?? true)) {
      this.results.set(JSON.stringify([req.scope, req.key, req.n]), {
        fp: req.fp,
        result: JSON.stringify(value ?? null),
      });
    }
    return value;
  }

  outbox(limit: number, afterId = 0): OutboxRow[] {
    return this.rows.filter((r) => r.id > afterId).slice(0, limit);
  }

  ack(throughId: number): void {
    while (this.rows.length && this.rows[0]!.id <= throughId) this.rows.shift();
  }
}
