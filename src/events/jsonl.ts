/**
 * JSONL event log: `.gc/events.jsonl`, one JSON event per line.
 *
 * - One writer, group commit: records queued while a write is in flight
 *   share the next write + fdatasync; each resolves only once durable.
 *   Seqs are assigned at flush, so a failed write leaves no gap.
 * - Open never reads the whole file: the last seq comes from the tail; a
 *   torn last line (crash mid-write) is truncated and an `events.recovered`
 *   warning event is recorded.
 * - `after_seq` lookups bisect the (seq-sorted) file instead of scanning.
 * - Segments rotate by size (`events-<firstSeq>.jsonl`), keeping
 *   `retainSegments` rotated files (0 = keep all); pruning is itself recorded.
 * - Watchers are pushed by the writer; a read-only log in another process
 *   is woken by a file watch.
 */
import { fdatasync, fdatasyncSync, watch as fsWatch, writeSync, type FSWatcher } from 'node:fs';
import { mkdir, open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import {
  ConflictError,
  GcError,
  TooLargeError,
  errorMessage,
  fault,
  systemClock,
  type Clock,
} from '../core/index.js';
import type { EventLog } from './event-log.js';
import {
  checkAfterSeq,
  checkEventInput,
  eventBody,
  eventMatcher,
  eventPageSize,
} from './filter.js';
import { forEachLine, inspectTail, lineSeq, seekSeq } from './jsonl-file.js';
import { Hub } from './subscription.js';
import {
  MAX_EVENT_BYTES,
  type EventInput,
  type EventListQuery,
  type EventPage,
  type GcEvent,
  type WatchOptions,
  type CorruptLine,
} from './types.js';
import { watchLog } from './watch.js';

export interface JsonlEventLogOptions {
  /** The active file, e.g. `<city>/.gc/events.jsonl`. */
  path: string;
  clock?: Clock;
  /** Rotate the active file once it reaches this size. Default 64 MiB. */
  maxSegmentBytes?: number;
  /** Rotated segments to keep; 0 keeps all. Default 0. */
  retainSegments?: number;
  /** Open for reading only (no lock needed; never writes or repairs). */
  readonly?: boolean;
}

interface Pending {
  /** The event JSON without seq, e.g. `"type":"x",...}` after the leading `{`. */
  body: string;
  event: Omit<GcEvent, 'seq'>;
  resolve: (e: GcEvent) => void;
  reject: (err: Error) => void;
}

interface Segment {
  path: string;
  firstSeq: number;
}

/** fdatasync via the callback API: measurably cheaper per call than FileHandle.datasync(). */
function fdatasyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

/** An inline fdatasync slower than this moves syncing off the event loop. */
const INLINE_SYNC_MAX_MS = 2;

const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
/** Records per write: bounds one batch's memory and latency. */
const MAX_BATCH = 8192;

export class JsonlEventLog implements EventLog {
  readonly backend = 'jsonl';
  private readonly hub = new Hub();
  private readonly dir: string;
  private readonly stem: string;
  private pending: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private fh: FileHandle | undefined;
  private activeSize = 0;
  private activeFirstSeq = 1;
  private rotated: Segment[] = [];
  private durableSeq = 0;
  private closed = false;
  private fileWatcher: FSWatcher | undefined;
  /** Serializes rotation against readers choosing and opening segment files. */
  private segmentLock: Promise<unknown> = Promise.resolve();
  private batches = 0;
  private records = 0;
  /** Whether fdatasync currently runs inline (see `sync`). */
  private inlineSync = false;
  /** Bytes dropped from a torn tail at open (0 when the file was clean). */
  recoveredBytes = 0;
  /** Set (to the failure) while a failed write may have left lines past the durable prefix. */
  private dirtyTail: string | undefined;

  private constructor(
    private readonly options: JsonlEventLogOptions,
    private readonly clock: Clock,
  ) {
    this.dir = dirname(options.path);
    this.stem = basename(options.path).replace(/\.jsonl$/, '');
  }

  static async open(options: JsonlEventLogOptions): Promise<JsonlEventLog> {
    const log = new JsonlEventLog(options, options.clock ?? systemClock);
    await log.init();
    return log;
  }

  private get readonly(): boolean {
    return this.options.readonly ?? false;
  }

  private segmentName(firstSeq: number): string {
    return join(this.dir, `${this.stem}-${String(firstSeq).padStart(12, '0')}.jsonl`);
  }

  private async listRotated(): Promise<Segment[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return [];
    }
    const re = new RegExp(
      `^${this.stem.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-(\\d{12})\\.jsonl$`,
    );
    return names
      .flatMap((n) => {
        const m = re.exec(n);
        return m ? [{ path: join(this.dir, n), firstSeq: Number(m[1]) }] : [];
      })
      .sort((a, b) => a.firstSeq - b.firstSeq);
  }

  private async init(): Promise<void> {
    if (!this.readonly) await mkdir(this.dir, { recursive: true });
    this.rotated = await this.listRotated();
    if (this.readonly) return;
    this.fh = await open(this.options.path, 'a+');
    const size = (await this.fh.stat()).size;
    const tail = await inspectTail(this.fh, size);
    if (tail.validSize < size) {
      await this.fh.truncate(tail.validSize);
      await this.fh.datasync();
      this.recoveredBytes = size - tail.validSize;
    }
    this.activeSize = tail.validSize;
    let last = tail.lastSeq;
    if (last === undefined) last = await this.lastSeqOfRotated();
    this.durableSeq = last;
    this.activeFirstSeq = this.activeSize > 0 ? await this.firstSeqOf(this.fh) : last + 1;
    if (this.recoveredBytes > 0) {
      await this.record({
        type: 'events.recovered',
        actor: 'gc',
        message: `dropped a torn tail of ${this.recoveredBytes} bytes from ${this.options.path}`,
        payload: { truncated_bytes: this.recoveredBytes, last_seq: last },
      });
    }
  }

  private async firstSeqOf(fh: FileHandle): Promise<number> {
    let first: number | undefined;
    await forEachLine(fh, 0, (line) => {
      first = lineSeq(line);
      return false;
    });
    return first ?? this.durableSeq + 1;
  }

  private async lastSeqOfRotated(): Promise<number> {
    return lastSeqOf(this.rotated.map((seg) => seg.path));
  }

  record(input: EventInput): Promise<GcEvent> {
    if (this.closed) return Promise.reject(new ConflictError('event log is closed'));
    if (this.readonly) {
      return Promise.reject(
        new ConflictError('event log is open read-only; writes go through the city server'),
      );
    }
    try {
      checkEventInput(input);
      // Serialize once, without seq; the seq is spliced in front at flush.
      const event = eventBody(input, this.clock.now());
      const body = JSON.stringify(event).slice(1);
      if (body.length > MAX_EVENT_BYTES / 4 && Buffer.byteLength(body) > MAX_EVENT_BYTES) {
        throw new TooLargeError('event', Buffer.byteLength(body), MAX_EVENT_BYTES);
      }
      return new Promise<GcEvent>((resolve, reject) => {
        this.pending.push({ body, event, resolve, reject });
        this.flushing ??= this.flushLoop();
      });
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private async flushLoop(): Promise<void> {
    // Yield once so records issued in the same tick join the first batch.
    await new Promise<void>((r) => setImmediate(r));
    try {
      while (this.pending.length > 0) {
        const batch = this.pending.splice(0, MAX_BATCH);
        await this.writeBatch(batch);
        if (this.activeSize >= (this.options.maxSegmentBytes ?? DEFAULT_SEGMENT_BYTES)) {
          await this.rotate();
        }
      }
    } finally {
      this.flushing = undefined;
      if (this.pending.length > 0 && !this.closed) this.flushing = this.flushLoop();
    }
  }

  /**
   * Cut the file back to `activeSize` (the durable prefix) and make the cut
   * durable. Until this succeeds, nothing more is appended: lines of a
   * failed batch may still be in the file, holding the seqs the next batch
   * would use.
   */
  private async cutToDurable(fh: FileHandle): Promise<void> {
    fault('events.truncate');
    await fh.truncate(this.activeSize);
    await fh.datasync();
    this.dirtyTail = undefined;
  }

  private async writeBatch(batch: Pending[]): Promise<void> {
    const fh = this.fh;
    if (!fh) throw new GcError('internal', 'event log has no open file');
    if (this.dirtyTail) {
      try {
        await this.cutToDurable(fh);
      } catch (err) {
        const e = new GcError(
          'internal',
          `event log not written: a failed write left lines past seq ${this.durableSeq} that could not be cut (${errorMessage(err)}; first: ${this.dirtyTail}); retried at the next write, and repaired at the next open`,
        );
        for (const p of batch) p.reject(e);
        return;
      }
    }
    let seq = this.durableSeq;
    let text = '';
    for (const p of batch) text += `{"seq":${++seq},${p.body}\n`;
    const buf = Buffer.from(text, 'utf8');
    try {
      // The append itself only copies into the page cache: do it inline.
      // The fdatasync is the slow part and runs off the event loop, so
      // records keep queueing for the next batch meanwhile.
      fault('events.append');
      let off = 0;
      while (off < buf.length) off += writeSync(fh.fd, buf, off, buf.length - off);
      fault('events.sync');
      await this.sync(fh.fd);
    } catch (err) {
      // Undo the write so the file stays a clean prefix; no seq was used.
      this.dirtyTail = errorMessage(err);
      try {
        await this.cutToDurable(fh);
      } catch {
        // Retried before the next batch is appended (see above).
      }
      const e = err instanceof Error ? err : new Error(String(err));
      for (const p of batch) p.reject(e);
      return;
    }
    this.activeSize += buf.length;
    this.batches++;
    this.records += batch.length;
    const events: GcEvent[] = new Array<GcEvent>(batch.length);
    let s = this.durableSeq;
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i] as Pending;
      // The pending body object becomes the stored event: no copy on the hot path.
      const ev = p.event as GcEvent;
      ev.seq = ++s;
      events[i] = ev;
      p.resolve(ev);
    }
    this.durableSeq = s;
    this.hub.publish(events);
  }

  /**
   * fdatasync, inline or off the event loop. A thread-pool hop costs about as
   * much as a fast device's fsync, so while fsyncs finish well under a
   * millisecond they run inline (every producer is waiting on this batch
   * anyway); once one is slow, they move to the thread pool so a slow disk
   * never stalls the event loop.
   */
  private async sync(fd: number): Promise<void> {
    const start = performance.now();
    if (this.inlineSync) {
      fdatasyncSync(fd);
      if (performance.now() - start > INLINE_SYNC_MAX_MS) this.inlineSync = false;
      return;
    }
    await fdatasyncAsync(fd);
    // The measurement includes the hop, so it over-estimates the device.
    if (performance.now() - start < INLINE_SYNC_MAX_MS / 4) this.inlineSync = true;
  }

  private withSegmentLock<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.segmentLock.then(fn, fn);
    this.segmentLock = run.catch(() => undefined);
    return run;
  }

  private rotate(): Promise<void> {
    return this.withSegmentLock(() => this.rotateLocked());
  }

  private async rotateLocked(): Promise<void> {
    const fh = this.fh;
    if (!fh || this.activeSize === 0) return;
    await fh.close();
    const target = this.segmentName(this.activeFirstSeq);
    await rename(this.options.path, target);
    await this.syncDir();
    this.rotated.push({ path: target, firstSeq: this.activeFirstSeq });
    this.fh = await open(this.options.path, 'a+');
    this.activeSize = 0;
    this.activeFirstSeq = this.durableSeq + 1;
    const retain = this.options.retainSegments ?? 0;
    while (retain > 0 && this.rotated.length > retain) {
      const old = this.rotated.shift() as Segment;
      const next = this.rotated[0]?.firstSeq ?? this.activeFirstSeq;
      await unlink(old.path);
      // Pruning is deliberate, never silent: it is itself an event.
      const event = eventBody(
        {
          type: 'events.pruned',
          actor: 'gc',
          message: `retention removed events ${old.firstSeq}..${next - 1}`,
          payload: { first_seq: old.firstSeq, last_seq: next - 1, file: basename(old.path) },
        },
        this.clock.now(),
      );
      this.pending.push({
        body: JSON.stringify(event).slice(1),
        event,
        resolve: () => undefined,
        reject: () => undefined,
      });
    }
  }

  private async syncDir(): Promise<void> {
    const d = await open(this.dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }

  /** All segments in seq order, the active one last. */
  private async segments(): Promise<Segment[]> {
    if (this.readonly) {
      // Another process may have rotated since we looked.
      this.rotated = await this.listRotated();
      return [...this.rotated, { path: this.options.path, firstSeq: -1 }];
    }
    return [...this.rotated, { path: this.options.path, firstSeq: this.activeFirstSeq }];
  }

  /**
   * Open the segments that may hold seqs > after, atomically with respect to
   * rotation (an open handle keeps reading a file even if it is renamed).
   */
  private openSegments(after: number): Promise<{ seg: Segment; fh: FileHandle }[]> {
    return this.withSegmentLock(async () => {
      for (let attempt = 0; ; attempt++) {
        const segs = await this.segments();
        let startIdx = 0;
        for (let i = 0; i < segs.length; i++) {
          const f = (segs[i] as Segment).firstSeq;
          if (f !== -1 && f <= after + 1) startIdx = i;
        }
        const opened: { seg: Segment; fh: FileHandle }[] = [];
        for (const seg of segs.slice(startIdx)) {
          try {
            opened.push({ seg, fh: await open(seg.path, 'r') });
          } catch {
            // pruned or not yet created
          }
        }
        // A writer in another process may have rotated while we opened: retry.
        if (this.readonly && attempt < 5) {
          const now = await this.listRotated();
          if (
            now.length !== this.rotated.length ||
            now.some((r, i) => r.path !== this.rotated[i]?.path)
          ) {
            await Promise.all(opened.map((o) => o.fh.close()));
            continue;
          }
        }
        return opened;
      }
    });
  }

  async list(query: EventListQuery = {}): Promise<EventPage> {
    const limit = eventPageSize(query.limit);
    const after = checkAfterSeq(query.afterSeq);
    const matches = eventMatcher(query);
    const cap = this.readonly ? Infinity : this.durableSeq;
    const opened = await this.openSegments(after);
    const items: GcEvent[] = [];
    let scanned = after;
    let full = false;
    // A damaged line in the middle of a segment (a disk error, a hand edit)
    // is reported and skipped: the valid events around it are served.
    const corrupt: CorruptLine[] = [];
    try {
      for (const { seg, fh } of opened) {
        if (full) break;
        const size = (await fh.stat()).size;
        const from =
          seg.firstSeq !== -1 && seg.firstSeq > after ? 0 : await seekSeq(fh, size, after + 1);
        await forEachLine(fh, from, (line, offset) => {
          const seq = lineSeq(line);
          let ev: GcEvent | undefined;
          if (seq !== undefined) {
            try {
              ev = JSON.parse(line) as GcEvent;
            } catch {
              ev = undefined;
            }
          }
          if (seq === undefined || !ev) {
            if (corrupt.length < 100) {
              corrupt.push({
                file: seg.path,
                offset,
                after_seq: scanned,
                error: seq === undefined ? 'no sequence number' : 'not valid JSON',
              });
            }
            return true;
          }
          if (seq <= after) return true;
          if (seq > cap) return false;
          scanned = seq;
          if (matches(ev)) items.push(ev);
          if (items.length >= limit) {
            full = true;
            return false;
          }
          return true;
        });
      }
    } finally {
      await Promise.all(opened.map((o) => o.fh.close()));
    }
    if (corrupt.length) {
      const latest = this.readonly ? Infinity : this.durableSeq;
      return {
        items,
        next_after_seq: full && scanned < latest ? scanned : null,
        corrupt: corrupt.map((c) => ({ ...c, before_seq: nextSeqAfter(items, c.after_seq) })),
      };
    }
    const latest = this.readonly ? Infinity : this.durableSeq;
    return { items, next_after_seq: full && scanned < latest ? scanned : null };
  }

  async latestSeq(): Promise<number> {
    if (!this.readonly) return this.durableSeq;
    return lastSeqOf((await this.segments()).map((seg) => seg.path));
  }

  watch(afterSeq: number, options: WatchOptions = {}): AsyncIterable<GcEvent> {
    if (this.readonly) this.ensureFileWatch();
    return watchLog(this.hub, (q) => this.list(q), afterSeq, options);
  }

  /** A reader in another process learns of appends from the file system (inotify), not by polling. */
  private ensureFileWatch(): void {
    if (this.fileWatcher) return;
    try {
      this.fileWatcher = fsWatch(this.dir, { persistent: true }, () => this.hub.poke());
      this.fileWatcher.on('error', () => this.hub.poke());
    } catch {
      // Directory missing: nothing to watch until a writer creates it.
    }
  }

  /** Group-commit counters: how many writes carried how many records. */
  stats(): { batches: number; records: number; avg_batch: number; inline_sync: boolean } {
    return {
      batches: this.batches,
      records: this.records,
      avg_batch: this.batches ? this.records / this.batches : 0,
      inline_sync: this.inlineSync,
    };
  }

  /** Files backing this log, oldest first (for backup and tests). */
  async files(): Promise<string[]> {
    return (await this.segments()).map((s) => s.path);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    while (this.flushing) await this.flushing;
    this.closed = true;
    this.fileWatcher?.close();
    this.hub.closeAll();
    await this.fh?.close();
    this.fh = undefined;
  }
}

/** Seq of the last complete line across files (newest last), or 0. */
async function lastSeqOf(paths: string[]): Promise<number> {
  for (let i = paths.length - 1; i >= 0; i--) {
    let fh: FileHandle;
    try {
      fh = await open(paths[i] as string, 'r');
    } catch {
      continue;
    }
    try {
      const tail = await inspectTail(fh, (await fh.stat()).size);
      if (tail.lastSeq !== undefined) return tail.lastSeq;
    } finally {
      await fh.close();
    }
  }
  return 0;
}

/** The first seq in `items` after `seq`, if any. */
function nextSeqAfter(items: readonly GcEvent[], seq: number): number | undefined {
  return items.find((e) => e.seq > seq)?.seq;
}
