/**
 * `gc convoy` end to end on a real city server and real git: waves held
 * until the work before them has merged through the queue (not merely been
 * closed), the convoy closing itself, the CLI's tables and --json, and who
 * may create convoys.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CityServer } from '../src/server/index.js';
import type { ConvoyStatus, ConvoySummary } from '../src/dispatch/index.js';
import { CONFIG_HOME, gcBuilt } from './helpers/cli.js';
import { branchWith, makeRepo } from './helpers/git.js';
import { apiCall } from './helpers/http.js';
import { until } from './helpers/wait.js';

let root = '';
let server: CityServer;
const gc = (args: string[]) => gcBuilt(['--city', root, '--actor', 'mayor', ...args]);
const json = async <T>(args: string[]): Promise<T> => {
  const r = await gc([...args, '--json']);
  expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout) as T;
};

beforeAll(async () => {
  process.env.GC_CONFIG_HOME = CONFIG_HOME;
  root = await mkdtemp(path.join(os.tmpdir(), 'gc-convoy-'));
  makeRepo(path.join(root, 'app'));
  await writeFile(
    path.join(root, 'city.toml'),
    '[workspace]\nname = "cv"\n[daemon]\npatrol_interval = "1h"\n[[rigs]]\nname = "app"\npath = "app"\n',
  );
  server = await CityServer.start({ root, sessionProvider: 'fake', log: () => undefined });
});
afterAll(async () => {
  await server?.stop('test');
  await rm(root, { recursive: true, force: true });
});

describe('gc convoy', () => {
  it('waves: the next goes only when the work before it has merged', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      ids.push((await json<{ id: string }>(['bead', 'create', `module ${i}`])).id);
    }
    const st = await json<ConvoyStatus>([
      'convoy',
      'create',
      'modules',
      ...ids,
      '--wave-size',
      '2',
    ]);
    expect(st.waves.map((w) => [w.wave, w.released, w.beads.length])).toEqual([
      [1, true, 2],
      [2, false, 2],
    ]);
    const [a, b] = st.waves[0]!.beads.map((x) => x.id);
    const held = st.waves[1]!.beads.map((x) => x.id);
    const ready = await json<{ id: string }[]>(['bead', 'ready']);
    expect(ready.map((r) => r.id)).not.toContain(held[0]);

    // a goes through the merge queue; b is closed by hand.
    branchWith(path.join(root, 'app'), 'work-a', { 'a.txt': 'a' });
    const mr = await json<{ id: string }>(['mq', 'submit', '--branch', 'work-a', '--bead', a!]);
    await json(['bead', 'close', b!]);
    // The queue closes a when it merges; wave 2 follows.
    await until(
      'the request to merge',
      () => json<{ state: string }>(['mq', 'status', mr.id]),
      (m) => m.state === 'merged',
    );
    const after = await until(
      'wave 2 to be released',
      () => json<ConvoyStatus>(['convoy', 'status', st.convoy.id]),
      (s) => s.waves_released === 2,
    );
    expect(after.landed).toBe(2);
    const readyNow = (await json<{ id: string }[]>(['bead', 'ready'])).map((r) => r.id);
    for (const id of held) expect(readyNow).toContain(id);
    const events = await json<{ type: string; payload: { wave: number } }[]>([
      'events',
      '--type',
      'wave.released',
    ]);
    expect(events.map((e) => e.payload.wave)).toEqual([1, 2]);

    const text = await gc(['convoy', 'status', st.convoy.id]);
    expect(text.stdout).toMatch(/wave 2: released/);
    expect(text.stdout).toContain(held[0]);

    // Closing the rest closes the convoy by itself.
    for (const id of held) await json(['bead', 'close', id]);
    await until(
      'the convoy to close',
      () => json<ConvoySummary[]>(['convoy', 'list', '--all']),
      (l) => l.find((c) => c.id === st.convoy.id)?.status === 'closed',
    );
    expect(await json<ConvoySummary[]>(['convoy', 'list'])).toEqual([]);
  });

  it('refuses bad input with a clear error; agents may not create convoys', async () => {
    const bad = await gc(['convoy', 'create', 'x', 'gc-nope']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/gc-nope/);
    const size = await gc(['convoy', 'create', 'x', '--wave-size', 'two']);
    expect(size.stderr).toMatch(/--wave-size/);
    const timeout = await gc(['convoy', 'create', 'x', '--wave-timeout', 'soon']);
    expect(timeout.stderr).toMatch(/wave_timeout/);
    const agent = (await server.keys.create({ kind: 'agent', name: 'polecat' })).token;
    const r = await apiCall({ socketPath: server.socketPath }, 'POST', '/v0/convoys', {
      token: agent,
      body: { title: 'mine', beads: [] },
    });
    expect(r.status).toBe(403);
    const list = await apiCall({ socketPath: server.socketPath }, 'GET', '/v0/convoys', {
      token: agent,
    });
    expect(list.status).toBe(200);
  });
});
