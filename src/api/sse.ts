/** Server-sent event helpers: frames, and a log file followed as a stream. */
import { open } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';

export function sseHeaders(res: ServerResponse): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    'x-accel-buffering': 'no',
  });
  res.write(': gc stream\n\n');
}

/** One frame. `data` is JSON-encoded, so it is always a single line. */
export function sseFrame(id: string | number, event: string, data: unknown): string {
  return `id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
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
export async function followFile(
  file: string,
  res: ServerResponse,
  o: FollowOptions,
): Promise<void> {
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
          res.write(sseFrame(offset, 'output', buf.subarray(0, len).toString('utf8')));
          if (o.signal.aborted) return;
        }
      } finally {
        await fh.close();
      }
    }
    if (progressed) continue;
    if (finalPass) {
      res.write(sseFrame(offset, 'end', { offset }));
      return;
    }
    // Not live any more: read once more (it may have written just before
    // exiting), then end.
    if (!(await o.live())) finalPass = true;
    else await sleep(o.pollMs ?? 200);
  }
}
