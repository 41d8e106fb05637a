/**
 * Low-level helpers for sequenced JSONL segment files: tail repair, reading
 * the last line, bisecting by seq, and streaming complete lines.
 */
import type { FileHandle } from 'node:fs/promises';

const CHUNK = 64 * 1024;
const NEWLINE = 0x0a;

/** Seq of a line written by this log (`{"seq":N,...`), or undefined if unparseable. */
export function lineSeq(line: string): number | undefined {
  const m = /^\{"seq":(\d+)[,}]/.exec(line);
  if (m) return Number(m[1]);
  try {
    const v = JSON.parse(line) as { seq?: unknown };
    return typeof v.seq === 'number' ? v.seq : undefined;
  } catch {
    return undefined;
  }
}

async function readAt(fh: FileHandle, pos: number, len: number): Promise<Buffer> {
  const buf = Buffer.alloc(len);
  const { bytesRead } = await fh.read(buf, 0, len, pos);
  return buf.subarray(0, bytesRead);
}

/** Offset just past the last newline before `end`, or 0 when there is none. */
export async function lastNewlineBefore(fh: FileHandle, end: number): Promise<number> {
  let pos = end;
  while (pos > 0) {
    const start = Math.max(0, pos - CHUNK);
    const buf = await readAt(fh, start, pos - start);
    const i = buf.lastIndexOf(NEWLINE);
    if (i >= 0) return start + i + 1;
    pos = start;
  }
  return 0;
}

export interface TailInfo {
  /** Size after dropping any torn or unparseable trailing lines. */
  validSize: number;
  lastSeq: number | undefined;
}

/**
 * Find the last complete, parseable line. Bytes after it (a torn write, or
 * garbage left by a crash) are reported via `validSize` < file size.
 */
export async function inspectTail(fh: FileHandle, size: number): Promise<TailInfo> {
  let end = await lastNewlineBefore(fh, size); // drop a trailing partial line
  while (end > 0) {
    const start = await lastNewlineBefore(fh, end - 1);
    const line = (await readAt(fh, start, end - 1 - start)).toString('utf8');
    const seq = lineSeq(line);
    if (seq !== undefined) return { validSize: end, lastSeq: seq };
    end = start; // unparseable last line: drop it too
  }
  return { validSize: 0, lastSeq: undefined };
}

/** First line starting at or after `pos`: its start offset and seq. */
async function lineAtOrAfter(
  fh: FileHandle,
  pos: number,
  size: number,
): Promise<{ start: number; seq: number | undefined }> {
  let start = pos;
  if (pos > 0) {
    // Find the newline at or after pos-1.
    let scan = pos - 1;
    for (;;) {
      if (scan >= size) return { start: size, seq: undefined };
      const buf = await readAt(fh, scan, Math.min(CHUNK, size - scan));
      const i = buf.indexOf(NEWLINE);
      if (i >= 0) {
        start = scan + i + 1;
        break;
      }
      scan += buf.length;
    }
  }
  if (start >= size) return { start: size, seq: undefined };
  const head = (await readAt(fh, start, Math.min(64, size - start))).toString('utf8');
  const m = /^\{"seq":(\d+)[,}]/.exec(head);
  return { start, seq: m ? Number(m[1]) : undefined };
}

/** Byte offset from which to scan for the first line with seq >= target (bisection). */
export async function seekSeq(fh: FileHandle, size: number, target: number): Promise<number> {
  let lo = 0;
  let hi = size;
  while (hi - lo > CHUNK) {
    const mid = Math.floor((lo + hi) / 2);
    const { start, seq } = await lineAtOrAfter(fh, mid, size);
    if (start >= hi || seq === undefined) {
      hi = mid;
    } else if (seq < target) {
      lo = start;
    } else {
      hi = start;
    }
  }
  return lo;
}

/**
 * Stream complete lines from `offset`; `onLine` returns false to stop.
 * A trailing partial line (a write in progress) is not delivered.
 */
export async function forEachLine(
  fh: FileHandle,
  offset: number,
  onLine: (line: string, offset: number) => boolean,
): Promise<void> {
  let pos = offset;
  let carry: Buffer = Buffer.alloc(0);
  for (;;) {
    const chunk = await readAt(fh, pos, 256 * 1024);
    if (chunk.length === 0) return;
    const buf = carry.length ? Buffer.concat([carry, chunk]) : chunk;
    const base = pos - carry.length;
    pos += chunk.length;
    let from = 0;
    for (;;) {
      const i = buf.indexOf(NEWLINE, from);
      if (i < 0) break;
      if (!onLine(buf.toString('utf8', from, i), base + from)) return;
      from = i + 1;
    }
    carry = buf.subarray(from);
  }
}
