/**
 * Server-sent event helpers: frames, a writer that respects back-pressure,
 * and a log file followed as a stream.
 *
 * Every SSE route writes through `SseWriter`: it waits for the socket to
 * drain before producing more, so a client that reads slowly holds at most
 * one socket buffer of its stream in memory, and one that stops reading for
 * SSE_STALL_MS is disconnected. It resumes later from the last id it
 * received (`Last-Event-ID`), with nothing lost.
 */
import { open } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';

/** A reader that takes nothing for this long is disconnected (it resumes with Last-Event-ID). */
export const SSE_STALL_MS = 30_000;

export function sseHeaders(res: ServerResponse): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    'x-accel-buffering': 'no',
  });
  res.write(': gc stream\n\n');
}

/**
 * One frame. `data` is JSON-encoded, so it is always a single line. An
 * empty `event` leaves the name out (the client sees a plain `message`).
 */
export function sseFrame(id: string | number, event: string, data: unknown): string {
  const name = event ? `event: ${event}\n` : '';
  return `id: ${id}\n${name}data: ${JSON.stringify(data)}\n\n`;
}

export interface SseWriterOptions {
  stallMs?: number | undefined;
  /** Called once when a stalled reader is cut off, with the last id written. */
  onStalled?: (lastId: string) => void;
}

/** Streams open now, and the most any of them has held in memory (for tests and metrics). */
const live = new Set<ServerResponse>();
let peakBuffered = 0;

export function sseStats(): {
  streams: number;
  buffered_bytes: number;
  peak_buffered_bytes: number;
} {
  let buffered = 0;
  for (const r of live) buffered += r.writableLength;
  return { streams: live.size, buffered_bytes: buffered, peak_buffered_bytes: peakBuffered };
}

export class SseWriter {
  private lastId = '';
  private cut = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly options: SseWriterOptions = {},
  ) {
    live.add(res);
    res.once('close', () => live.delete(res));
  }

  /** The id of the last frame handed to the socket. */
  get last(): string {
    return this.lastId;
  }

  /** True once the client is gone or was cut off: stop producing. */
  get closed(): boolean {
    return this.cut || this.res.destroyed || this.res.writableEnded;
  }

  /**
   * Write one frame; resolves when the stream may take more. Resolves false
   * (and writes nothing) when the client is gone or stalled.
   */
  async send(id: string | number, event: string, data: unknown): Promise<boolean> {
    if (this.closed) return false;
    this.lastId = String(id);
    const more = this.res.write(sseFrame(id, event, data));
    peakBuffered = Math.max(peakBuffered, this.res.writableLength);
    if (more) return true;
    return this.drained();
  }

  private drained(): Promise<boolean> {
    const res = this.res;
    return new Promise<boolean>((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        res.off('drain', onDrain);
        res.off('close', onClose);
        resolve(ok);
      };
      const onDrain = () => done(true);
      const onClose = () => done(false);
      const timer = setTimeout(() => {
        this.cut = true;
        this.options.onStalled?.(this.lastId);
        // The socket is full, so nothing more can be said to the client:
        // drop the connection and what is buffered for it.
        res.destroy();
        done(false);
      }, this.options.stallMs ?? SSE_STALL_MS);
      res.on('drain', onDrain);
      res.on('close', onClose);
    });
  }
}

/** Length of the longest prefix of `buf` that ends on a UTF-8 character boundary. */
export function utf8CompleteLength(buf: Buffer): number {
  const n = buf.length;
  for (let back = 1; back <= Math.min(3, n); back++) {
    const b = buf[n - back]!;
    if ((b & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? n - back : n;
  }
  return n;
}

export interface FollowOptions {
  /** Byte offset to start at (the last `id` the client saw). */
  from: number;
  signal: AbortSignal;
  /** Still producing output? When false and the file is read to its end, the stream ends. */
  live: () => Promise<boolean>;
  pollMs?: number;
}

/**
 * Follow a growing file: `output` frames whose id is the byte offset after
 * the chunk, so a client resumes exactly with Last-Event-ID. Ends with an
 * `end` frame once `live()` is false and everything was sent.
 */
export async function followFile(file: string, out: SseWriter, o: FollowOptions): Promise<void> {
  let offset = o.from;
  const buf = Buffer.alloc(64 * 1024);
  const sleep = (ms: number) =>
    new Promise<void>((r) => {
      const t = setTimeout(r, ms);
      o.signal.addEventListener(
        'abort',
        () => {
          clearTimeout(t);
          r();
        },
        { once: true },
      );
    });
  let finalPass = false;
  while (!o.signal.aborted) {
    const fh = await open(file, 'r').catch(() => undefined);
    let progressed = false;
    if (fh) {
      try {
        for (;;) {
          const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
          if (bytesRead === 0) break;
          const len = utf8CompleteLength(buf.subarray(0, bytesRead));
          if (len === 0) break;
          offset += len;
          progressed = true;
          const text = buf.subarray(0, len).toString('utf8');
          if (!(await out.send(offset, 'output', text))) return;
          if (o.signal.aborted) return;
        }
      } finally {
        await fh.close();
      }
    }
    if (progressed) continue;
    if (finalPass) {
      await out.send(offset, 'end', { offset });
      return;
    }
    // Not live any more: read once more (it may have written just before
    // exiting), then end.
    if (!(await o.live())) finalPass = true;
    else await sleep(o.pollMs ?? 200);
  }
}
