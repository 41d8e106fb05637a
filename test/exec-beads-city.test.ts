/**
 * A city whose work store is a Gas City exec beads script (the reference
 * script in examples/), named without a slash and found on PATH as Gas
 * City finds it: gc's beads, claims and mail land in the script's file,
 * and a bead the script makes on its own (as a tracker's CLI would) is
 * work gc sees.
 */
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFile } from '../src/core/index.js';
import { CONFIG_HOME, REPO, gc as runGc } from './helpers/cli.js';

let root = '';
let bin = '';
const env = () => ({
  GC_CONFIG_HOME: CONFIG_HOME,
  PATH: `${bin}:${process.env.PATH ?? ''}`,
});
const gc = (args: string[]) => runGc(['--city', root, ...args], { env: env() });
const json = <T>(r: { code: number | null; stdout: string; stderr: string }): T => {
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as T;
};

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'gc-exec-beads-'));
  bin = path.join(root, 'bin');
  mkdirSync(bin);
  copyFileSync(path.join(REPO, 'examples/beads/file-beads.mjs'), path.join(bin, 'city-beads'));
  await writeFile(
    path.join(root, 'city.toml'),
    '[workspace]\nname = "ex"\nprefix = "ex"\n[beads]\nprovider = "exec:city-beads"\n[[agent]]\nname = "mayor"\nstart_command = "sleep 600"\n',
  );
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

interface Bead {
  id: string;
  title: string;
  status: string;
  assignee: string;
  attempt: number;
  labels: string[];
  metadata: Record<string, string>;
}

describe('[beads] provider = "exec:SCRIPT"', () => {
  it('creates, lists, claims and closes beads through the script, and sees the script’s own', async () => {
    const made = json<Bead>(await gc(['bead', 'create', 'through the script', '--json']));
    expect(made.id).toMatch(/^ex-/);
    const stored = JSON.parse(readFileSync(path.join(root, '.gc', 'exec-beads.json'), 'utf8')) as {
      id: string;
      type: string;
      metadata: Record<string, string>;
    }[];
    expect(stored.map((b) => [b.id, b.type])).toEqual([[made.id, 'task']]);
    // gc's own bookkeeping (lease, attempt, its clock) rides in one metadata key.
    expect(JSON.parse(stored[0]!.metadata['gc.store']!)).toMatchObject({ attempt: 0 });
    // A bead the tracker made on its own (no gc bookkeeping in it).
    const own = await runFile('city-beads', ['create'], {
      input: JSON.stringify({ title: 'from the tracker', priority: 0, labels: ['ui'] }),
      env: { ...process.env, ...env(), GC_STORE_ROOT: root, GC_BEADS_PREFIX: 'ex' },
    });
    expect(own.code, own.stderr).toBe(0);
    const ownId = (JSON.parse(own.stdout) as { id: string }).id;
    const ready = json<Bead[]>(await gc(['bead', 'ready', '--json']));
    expect(ready.map((b) => b.id)).toEqual([ownId, made.id]);
    const claimed = json<Bead>(await gc(['--actor', 'worker-1', 'bead', 'claim', '--json']));
    expect(claimed).toMatchObject({ id: ownId, status: 'in_progress', assignee: 'worker-1' });
    expect(claimed.attempt).toBe(1);
    const again = await gc(['--actor', 'worker-2', 'bead', 'claim', ownId, '--json']);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/already claimed by worker-1/);
    const closed = await gc(['bead', 'close', ownId, '--json']);
    expect(closed.code, closed.stderr).toBe(0);
    const shown = json<Bead>(await gc(['bead', 'show', ownId, '--json']));
    expect(shown).toMatchObject({ status: 'closed', labels: ['ui'] });
    expect(shown.metadata).toEqual({});
    const missing = await gc(['bead', 'show', 'ex-nope']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/not found: ex-nope/);
  });

  it('mail kept in the work store goes through the script too', async () => {
    const sent = await gc(['mail', 'send', 'mayor', '-s', 'hello', '-m', 'body', '--json']);
    expect(sent.code, sent.stderr).toBe(0);
    const inbox = json<{ subject: string }[]>(await gc(['mail', 'inbox', 'mayor', '--json']));
    expect(inbox.map((m) => m.subject)).toEqual(['hello']);
    const stored = readFileSync(path.join(root, '.gc', 'exec-beads.json'), 'utf8');
    expect(stored).toContain('"type":"message"');
  });
});
