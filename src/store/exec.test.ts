import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NotFoundError, UnsupportedError, type Clock } from '../core/index.js';
import { runStoreConformance } from './conformance.js';
import { runRecordConformance } from './conformance-records.js';
import { ExecStore } from './exec.js';

// The suites through examples/beads/file-beads.mjs, a script of our own
// speaking the exec beads protocol; each store gets its own file.
const script = path.resolve('examples/beads/file-beads.mjs');
const dir = mkdtempSync(path.join(tmpdir(), 'gc-exec-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

const open = ({ clock, prefix }: { clock: Clock; prefix: string }) =>
  new ExecStore(script, {
    clock,
    prefix,
    env: { GC_BEADS_FILE: path.join(dir, `beads-${n++}.json`) },
  }).open();

runStoreConformance('exec', open, { burst: 20, batchWholeToReaders: false });
runRecordConformance('exec', open);

describe('exec beads protocol details', () => {
  // A script printing what real trackers print: Gas City's field names,
  // non-string metadata, a status gc does not know, empty output.
  const canned = path.join(dir, 'canned.sh');
  writeFileSync(
    canned,
    `#!/bin/sh
case "$1" in
  list)
    [ -n "$EMPTY" ] && exit 0
    printf '%s' '[{"id":"x-1","title":"t","type":"bug","parent_id":"x-0","status":"blocked","priority":1,"metadata":{"n":3,"b":true,"o":{"a":1}},"dependencies":[{"issue_id":"x-1","depends_on_id":"x-0","type":"parent-child"}]},{"id":"x-0","title":"p","issue_type":"epic","parent":"","status":"open"}]' ;;
  get) echo "Error: no issue found matching $2" >&2; exit 1 ;;
  create) exit 2 ;;
  *) exit 2 ;;
esac
`,
  );
  chmodSync(canned, 0o755);
  const store = (env: Record<string, string> = {}) =>
    new ExecStore(canned, { prefix: 'x', env }).open();

  it('reads type and parent_id, coerces metadata, counts an unknown status as open', async () => {
    const s = await store();
    const page = await s.list({ scan: true });
    expect(page.items.map((b) => [b.id, b.issue_type, b.parent, b.status])).toEqual([
      ['x-1', 'bug', 'x-0', 'open'],
      ['x-0', 'epic', '', 'open'],
    ]);
    expect(page.items[0]!.metadata).toEqual({ n: '3', b: 'true', o: '{"a":1}' });
    expect(page.items[0]!.dependencies).toEqual([
      { issue_id: 'x-1', depends_on_id: 'x-0', type: 'parent-child' },
    ]);
    await s.dispose();
  });

  it('empty output is an empty list; "no issue found" is not found; exit 2 where an answer is needed is unsupported', async () => {
    const s = await store({ EMPTY: '1' });
    expect((await s.list({ scan: true })).items).toEqual([]);
    expect(await s.counts()).toMatchObject({ total: 0 });
    await expect(s.get('x-9')).rejects.toBeInstanceOf(NotFoundError);
    await expect(s.create({ title: 'x' })).rejects.toBeInstanceOf(UnsupportedError);
    await s.dispose();
  });

  it('a script that is not executable is refused at open, saying how to fix it', async () => {
    await expect(new ExecStore(path.join(dir, 'missing.sh')).open()).rejects.toThrow(
      /not executable/,
    );
  });
});
