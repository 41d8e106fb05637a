/**
 * A city whose event log is a Gas City exec events script (the reference
 * script in examples/): gc's writes land in the script's log, `gc events`
 * reads them back through it, `gc event emit` records through it.
 */
import { copyFileSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIG_HOME, REPO, gc as runGc } from './helpers/cli.js';

let root = '';
const gc = (args: string[]) =>
  runGc(['--city', root, ...args], { env: { GC_CONFIG_HOME: CONFIG_HOME } });

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'gc-exec-events-'));
  copyFileSync(path.join(REPO, 'examples/events/file-events.mjs'), path.join(root, 'events.mjs'));
  await writeFile(
    path.join(root, 'city.toml'),
    '[workspace]\nname = "ex"\n[events]\nprovider = "exec:events.mjs"\n[[agent]]\nname = "mayor"\nstart_command = "sleep 600"\n',
  );
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('[events] provider = "exec:SCRIPT"', () => {
  it('records gc events through the script and reads them back', async () => {
    const created = await gc(['bead', 'create', 'through the script', '--json']);
    expect(created.code, created.stderr).toBe(0);
    const emitted = await gc(['event', 'emit', 'deploy.done', '--subject', 'web', '--json']);
    expect(emitted.code, emitted.stderr).toBe(0);
    const lines = readFileSync(path.join(root, '.gc', 'exec-events.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number; type: string });
    expect(lines.map((e) => e.type)).toEqual(
      expect.arrayContaining(['bead.created', 'deploy.done']),
    );
    expect(lines.map((e) => e.seq)).toEqual(lines.map((_, i) => i + 1));
    const listed = await gc(['events', '--type', 'deploy.done', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([
      expect.objectContaining({ type: 'deploy.done', subject: 'web' }),
    ]);
  });
});
