import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runEventLogConformance } from './conformance.js';
import { ExecEventLog } from './exec.js';
import type { GcEvent } from './types.js';

const SCRIPT = resolve(import.meta.dirname, '../../examples/events/file-events.mjs');
const root = mkdtempSync(join(tmpdir(), 'gc-exec-events-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const open = (script = SCRIPT) =>
  new ExecEventLog(script, {
    env: { GC_EVENTS_FILE: join(root, `d${n++}`, 'events.jsonl') },
    pollMs: 50,
  }).open();

// One program run per record: a smaller burst keeps the suite quick.
runEventLogConformance('exec (examples/events/file-events.mjs)', () => open(), { burst: 100 });

describe('exec events specifics', () => {
  it('sees records made by another process through the script', async () => {
    const env = { GC_EVENTS_FILE: join(root, 'shared', 'events.jsonl') };
    const a = await new ExecEventLog(SCRIPT, { env }).open();
    const b = await new ExecEventLog(SCRIPT, { env }).open();
    await a.record({ type: 'first' });
    const ac = new AbortController();
    const seen: GcEvent[] = [];
    const done = (async () => {
      for await (const e of b.watch(0, { signal: ac.signal })) {
        seen.push(e);
        if (seen.length === 2) ac.abort();
      }
    })();
    await a.record({ type: 'second', actor: 'x' });
    await done;
    expect(seen.map((e) => [e.seq, e.type])).toEqual([
      [1, 'first'],
      [2, 'second'],
    ]);
    await a.close();
    await b.close();
  });

  it('a script that prints nothing, lacks ops or fails is handled as the protocol says', async () => {
    const quiet = join(root, 'quiet.sh');
    // record prints nothing (gc asks latest-seq), list prints nothing (= no events),
    // watch is unsupported (exit 2: gc polls), anything else fails loudly.
    writeFileSync(
      quiet,
      [
        '#!/bin/sh',
        'case "$1" in',
        '  ensure-running) exit 2 ;;',
        '  record) cat > /dev/null; echo 1 > "$GC_SEQ"; exit 0 ;;',
        '  latest-seq) cat "$GC_SEQ" 2>/dev/null; exit 0 ;;',
        '  list) exit 0 ;;',
        '  watch) exit 2 ;;',
        '  *) echo "boom" >&2; exit 1 ;;',
        'esac',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    const log = await new ExecEventLog(quiet, { env: { GC_SEQ: join(root, 'q.seq') } }).open();
    expect(await log.latestSeq()).toBe(0);
    expect((await log.record({ type: 't' })).seq).toBe(1);
    expect(await log.list()).toEqual({ items: [], next_after_seq: null });
    await log.close();
    const missing = new ExecEventLog(join(root, 'nope.sh'));
    await expect(missing.open()).rejects.toThrow(/not executable/);
    const failing = join(root, 'failing.sh');
    writeFileSync(failing, '#!/bin/sh\necho "disk on fire" >&2\nexit 1\n', { mode: 0o755 });
    await expect(new ExecEventLog(failing).latestSeq()).rejects.toThrow(
      /events script latest-seq failed: disk on fire/,
    );
  });
});
