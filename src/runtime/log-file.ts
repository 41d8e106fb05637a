/** Reading the tail of a session log without loading all of it. */
import { open } from 'node:fs/promises';

const CHUNK = 64 * 1024;

/** The last `lines` lines of `file` (`lines <= 0`: all); "" when missing. */
export async function tailLines(file: string, lines: number): Promise<string> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch {
    return '';
  }
  try {
    const { size } = await fh.stat();
    if (lines <= 0) {
      const buf = Buffer.alloc(size);
      await fh.read(buf, 0, size, 0);
      return trimOne(buf.toString('utf8'));
    }
    const parts: Buffer[] = [];
    let pos = size;
    let newlines = 0;
    // One extra newline: the text usually ends with one.
    while (pos > 0 && newlines <= lines) {
      const len = Math.min(CHUNK, pos);
      pos -= len;
      const buf = Buffer.alloc(len);
      await fh.read(buf, 0, len, pos);
      for (const b of buf) if (b === 10) newlines++;
      parts.unshift(buf);
    }
    const all = trimOne(Buffer.concat(parts).toString('utf8')).split('\n');
    return all.slice(-lines).join('\n');
  } finally {
    await fh.close();
  }
}

function trimOne(text: string): string {
  return text.endsWith('\n') ? text.slice(0, -1) : text;
}
