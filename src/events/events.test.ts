import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TSX } from '../../test/helpers/cli.js';
import { waitFor } from '../../test/helpers/wait.js';
import { runEventLogConformance } from './conformance.js';
import { armFaults } from '../core/index.js';
import { JsonlEventLog } from './jsonl.js';
import { MemoryEventLog } from './memory.js';
import type { GcEvent } from './types.js';

const root = mkdtempSync(join(tmpdir(), 'gc-events-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = (): string => join(root, `d${n++}`);

runEventLogConformance('memory', () => Promise.resolve(new MemoryEventLog()));
runEventLogConformance('jsonl', () =>
  JsonlEventLog.open({ path: join(freshDir(), 'events.jsonl') }),
);
runEventLogConformance('jsonl (tiny segments)', () =>
  JsonlEventLog.open({ path: join(freshDir(), 'events.jsonl'), maxSegmentBytes: 2048 }),
);

describe('jsonl specifics', () => {
  it('reopens with seq continuing and never reads past the tail to find it', async () => {
    const path = join(freshDir(), 'events.jsonl');
    const a = await JsonlEventLog.open({ path });
    for (let i = 0; i < 10; i++) await a.record({ type: 't' });
    await a.close();
    const b = await JsonlEventLog.open({ path });
    expect(await b.latestSeq()).toBe(10);
    expect((await b.record({ type: 't' })).seq).toBe(11);
    await b.close();
  });

  it('truncates a torn last line at open and records a warning event', async () => {
    const path = join(freshDir(), 'events.jsonl');
    const a = await JsonlEventLog.open({ path });
    await a.record({ type: 'one' });
    await a.record({ type: 'two' });
    await a.close();
    const clean = statSync(path).size;
    const torn = '{"seq":3,"type":"thr';
    appendFileSync(path, torn);
    const b = await JsonlEventLog.open({ path });
    expect(b.recoveredBytes).toBe(torn.length);
    const all = (await b.list()).items;
    expect(all.map((e) => e.type)).toEqual(['one', 'two', 'events.recovered']);
    expect(all[2]?.seq).toBe(3);
    expect(all[2]?.payload).toEqual({ truncated_bytes: torn.length, last_seq: 2 });
    expect(statSync(path).size).toBeGreaterThan(clean);
    await b.close();
  });

  it('drops a garbage (zero-filled) final line as well', async () => {
    const path = join(freshDir(), 'events.jsonl');
    const a = await JsonlEventLog.open({ path });
    await a.record({ type: 'one' });
    await a.close();
    appendFileSync(path, Buffer.concat([Buffer.alloc(40), Buffer.from('\n')]));
    const b = await JsonlEventLog.open({ path });
    expect((await b.list()).items.map((e) => e.type)).toEqual(['one', 'events.recovered']);
    await b.close();
  });

  it('rotates by size, finds events across segments by bisection, and prunes by retention', async () => {
    const dir = freshDir();
    const path = join(dir, 'events.jsonl');
    const log = await JsonlEventLog.open({ path, maxSegmentBytes: 4096, retainSegments: 3 });
    for (let i = 0; i < 400; i++)
      await log.record({ type: 'fill', payload: { i, pad: 'x'.repeat(40) } });
    const files = readdirSync(dir).filter((f) => f.startsWith('events-'));
    expect(files.length).toBeLessThanOrEqual(3);
    const pruned = (await log.list({ type: 'events.pruned', limit: 10_000 })).items;
    expect(pruned.length).toBeGreaterThan(0);
    const latest = await log.latestSeq();
    const page = await log.list({ afterSeq: latest - 5 });
    expect(page.items.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5].map((k) => latest - 5 + k));
    await log.close();
    const again = await JsonlEventLog.open({ path, maxSegmentBytes: 4096, retainSegments: 3 });
    expect(await again.latestSeq()).toBe(latest);
    await again.close();
  });

  it('a read-only reader in another handle follows appends via file watch', async () => {
    const path = join(freshDir(), 'events.jsonl');
    const writer = await JsonlEventLog.open({ path });
    await writer.record({ type: 'before' });
    const reader = await JsonlEventLog.open({ path, readonly: true });
    await expect(reader.record({ type: 'x' })).rejects.toThrow(/read-only/);
    expect(await reader.latestSeq()).toBe(1);
    const ac = new AbortController();
    const got: GcEvent[] = [];
    const done = (async () => {
      for await (const e of reader.watch(0, { signal: ac.signal })) {
        got.push(e);
        if (got.length === 3) ac.abort();
      }
    })();
    // Caught up (it has the one event there was): now it waits on the file.
    await waitFor(() => got.length === 1, 'the reader to deliver the first event');
    await writer.record({ type: 'after1' });
    await writer.record({ type: 'after2' });
    await done;
    expect(got.map((e) => e.type)).toEqual(['before', 'after1', 'after2']);
    await reader.close();
    await writer.close();
  });

  it('a failed write whose undo fails too: nothing is appended until the tail is cut; no seq is used twice', async () => {
    const path = join(freshDir(), 'events.jsonl');
    const log = await JsonlEventLog.open({ path });
    try {
      await log.record({ type: 'ok-1' });
      // The batch reaches the file, its fdatasync fails, and so does the
      // truncate that would undo it (twice: the next batch's repair too).
      armFaults('events.sync:EIO:1,events.truncate:EIO:2');
      await expect(log.record({ type: 'lost-1' })).rejects.toThrow(/EIO/);
      expect(readFileSync(path, 'utf8')).toMatch(/"seq":2,"type":"lost-1"/);
      await expect(log.record({ type: 'lost-2' })).rejects.toThrow(
        /failed write left lines past seq 1 that could not be cut/,
      );
      // The repair works now: the failed lines go, seq 2 is free again.
      const ok = await log.record({ type: 'ok-2' });
      expect(ok.seq).toBe(2);
      const lines = readFileSync(path, 'utf8').trim().split('\n');
      expect(lines.map((l) => (JSON.parse(l) as GcEvent).type)).toEqual(['ok-1', 'ok-2']);
      expect(lines.map((l) => (JSON.parse(l) as GcEvent).seq)).toEqual([1, 2]);
      expect((await log.list()).items.map((e) => e.seq)).toEqual([1, 2]);
    } finally {
      armFaults('');
      await log.close();
    }
    // And the file reopens to the same two events.
    const again = await JsonlEventLog.open({ path });
    expect(await again.latestSeq()).toBe(2);
    await again.close();
  });

  it('kill -9 mid-burst: acknowledged events survive, seq continues gap-free', async () => {
    const path = join(freshDir(), 'events.jsonl');
    const script = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'event-burst.ts');
    const child = spawn(process.execPath, ['--import', TSX, script, path], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const acked = new Map<number, number>();
    let buf = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          const [seq, k] = line.split(' ').map(Number);
          if (seq !== undefined && k !== undefined) acked.set(seq, k);
          if (acked.size >= 3000) child.kill('SIGKILL');
        }
      });
      child.on('exit', () => resolve());
      child.on('error', reject);
    });
    expect(acked.size).toBeGreaterThanOrEqual(3000);
    const log = await JsonlEventLog.open({ path });
    const stored = new Map<number, GcEvent>();
    let after = 0;
    for (;;) {
      const page = await log.list({ afterSeq: after, limit: 10_000 });
      for (const e of page.items) stored.set(e.seq, e);
      if (page.next_after_seq === null) break;
      after = page.next_after_seq;
    }
    const seqs = [...stored.keys()];
    // Gap-free 1..N.
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
    // Every acknowledged event is there with its content.
    for (const [seq, k] of acked) {
      const e = stored.get(seq);
      expect(e?.type === 'burst' && (e.payload as { k: number }).k).toBe(k);
    }
    const next = await log.record({ type: 'after-crash' });
    expect(next.seq).toBe(seqs.length + 1);
    await log.close();
    expect(readFileSync(path, 'utf8').endsWith('\n')).toBe(true);
  });
});
