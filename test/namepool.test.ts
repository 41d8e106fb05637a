/**
 * namepool: a pool's sessions are also known by the names of its agent's
 * namepool file, in order, on a real city (subprocess sessions): the
 * alias reaches the session ({{.Alias}}, GC_SESSION_ALIAS), shows in
 * `gc session list`, and names the session in `gc session` commands. A
 * bad namepool file is an error that says where.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCityConfig } from '../src/config/index.js';
import { citySpec } from '../src/controller/index.js';
import { cityCli } from './helpers/cli.js';
import { until } from './helpers/wait.js';

let root = '';
const { g, json } = cityCli(() => root);

const CITY = `[workspace]
name = "names"
[session]
provider = "subprocess"
[daemon]
patrol_interval = "300ms"
shutdown_timeout = "2s"
[[agent]]
name = "polecat"
min_active_sessions = 2
max_active_sessions = 3
namepool = "names.txt"
start_command = 'echo "I am {{.Alias}} aka $GC_SESSION_ALIAS"; sleep 600'
`;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'gc-namepool-'));
  await writeFile(path.join(root, 'names.txt'), '# polecat names\nToast\n\nNux  # the second\n');
  await writeFile(path.join(root, 'city.toml'), CITY);
  const r = await g('start');
  expect(r.code, r.stderr).toBe(0);
}, 120_000);
afterAll(async () => {
  await g('stop');
  await rm(root, { recursive: true, force: true });
});

describe('namepool', { timeout: 120_000 }, () => {
  it('gives pool sessions their names: in the session, in gc session list, as a name for gc session commands', async () => {
    const rows = await until(
      'two polecats running',
      () => json<{ name: string; alias?: string; state: string }[]>('session', 'list'),
      (r) => r.filter((x) => x.state === 'running').length === 2,
      60_000,
      250,
    );
    expect(rows.map((r) => [r.name, r.alias])).toEqual([
      ['polecat-1', 'Toast'],
      ['polecat-2', 'Nux'],
    ]);
    const human = await g('session', 'list');
    expect(human.stdout).toMatch(/SESSION\s+ALIAS\s+AGENT/);
    const peek = await until(
      'the alias in the session',
      () => json<{ name: string; output: string }>('session', 'peek', 'Nux'),
      (p) => p.output.includes('I am'),
      30_000,
      250,
    );
    expect(peek.name).toBe('polecat-2');
    expect(peek.output).toContain('I am Nux aka Nux');
  });

  it('a missing file, a repeated or malformed name is an error naming the agent and file', async () => {
    const bad = async (names: string | undefined) => {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'gc-namepool-bad-'));
      try {
        await writeFile(path.join(dir, 'city.toml'), CITY);
        if (names !== undefined) await writeFile(path.join(dir, 'names.txt'), names);
        const loaded = await loadCityConfig(path.join(dir, 'city.toml'), {});
        return (() => citySpec(loaded))();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    };
    await expect(bad(undefined)).rejects.toThrow(
      /agent polecat: namepool: cannot read .*names\.txt/,
    );
    await expect(bad('Toast\nToast\n')).rejects.toThrow(/"Toast" is in .*names\.txt twice/);
    await expect(bad('two words\n')).rejects.toThrow(/"two words" in .*names\.txt is not a name/);
  });
});
