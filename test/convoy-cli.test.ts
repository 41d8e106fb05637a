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

  it('close, land, target, delete, check, stranded: human and --json, with the mistakes', async () => {
    const mk = async (t: string) => (await json<{ id: string }>(['bead', 'create', t])).id;
    const a = await mk('close me a');
    const b = await mk('close me b');
    const cv = await json<ConvoyStatus>([
      'convoy',
      'create',
      'to close',
      a,
      b,
      '--notify',
      'deacon',
      '--merge',
      'mr',
      '--target',
      'release/1',
    ]);
    const id = cv.convoy.id;
    expect(cv.convoy.metadata).toMatchObject({
      'convoy.owner': 'mayor',
      'convoy.notify': 'deacon',
      'convoy.merge': 'mr',
      target: 'release/1',
    });
    // Stranded: open beads nobody holds.
    const stranded = await json<{ id: string; beads: { id: string; ready: boolean }[] }[]>([
      'convoy',
      'stranded',
    ]);
    expect(stranded.find((c) => c.id === id)?.beads.map((x) => [x.id, x.ready])).toEqual([
      [a, true],
      [b, true],
    ]);
    expect((await gc(['convoy', 'stranded'])).stdout).toMatch(
      new RegExp(`${id}\\s+${a}\\s+yes\\s+-\\s+close me a`),
    );
    // Open beads: refused without --force; land is for owned convoys only.
    const early = await gc(['convoy', 'close', id]);
    expect(early.code).not.toBe(0);
    expect(early.stderr).toMatch(/has 2 open bead\(s\)[\s\S]*--force/);
    const notOwned = await gc(['convoy', 'land', id]);
    expect(notOwned.stderr).toMatch(/is not owned/);
    expect((await gc(['convoy', 'create', 'x', '--merge', 'squash'])).stderr).toMatch(/merge/);
    expect((await gc(['convoy', 'target', id, 'bad branch'])).stderr).toMatch(/not a branch name/);
    expect(
      (await json<{ metadata: Record<string, string> }>(['convoy', 'target', id, 'main'])).metadata
        .target,
    ).toBe('main');

    const forced = await json<{
      changed: boolean;
      forced: boolean;
      open: number;
      notified: string[];
    }>(['convoy', 'close', id, '--force', '--reason', 'abandoned']);
    expect(forced).toMatchObject({ changed: true, forced: true, open: 2, notified: ['deacon'] });
    const again = await gc(['convoy', 'close', id]);
    expect(again.stdout.trim()).toBe(`${id} was closed already`);
    const inbox = await gcBuilt(['--city', root, '--actor', 'deacon', 'mail', 'check', '--json']);
    expect(inbox.stdout).toContain(`convoy ${id} closed: to close`);
    const closedEvents = await json<{ subject: string; payload: { reason: string } }[]>([
      'events',
      '--type',
      'convoy.closed',
    ]);
    expect(closedEvents.find((e) => e.subject === id)?.payload.reason).toBe('abandoned');

    // An owned convoy lands once its beads are closed; check leaves it alone.
    const c = await mk('owned work');
    const owned = await json<ConvoyStatus>(['convoy', 'create', 'mine', c, '--owned']);
    await json(['bead', 'close', c]);
    const checked = await json<{ closed: string[] }>(['convoy', 'check']);
    expect(checked.closed).not.toContain(owned.convoy.id);
    const landed = await gc(['convoy', 'land', owned.convoy.id]);
    expect(landed.stdout.trim()).toBe(`${owned.convoy.id} landed: 1/1 bead(s) closed`);

    // Delete: the beads stay, out of any convoy; with --beads they go too.
    const d = await mk('kept');
    const gone = await json<ConvoyStatus>(['convoy', 'create', 'to delete', d]);
    const del = await gc(['convoy', 'delete', gone.convoy.id]);
    expect(del.stdout.trim()).toBe(
      `${gone.convoy.id} deleted; 1 bead(s) kept, no longer in a convoy`,
    );
    expect((await json<{ parent: string }>(['bead', 'show', d])).parent).toBe('');
    expect((await gc(['bead', 'show', gone.convoy.id])).code).not.toBe(0);
    const e = await mk('doomed');
    const both = await json<ConvoyStatus>(['convoy', 'create', 'with beads', e]);
    await gcBuilt(['--city', root, '--actor', 'w-1', 'bead', 'claim', e]);
    const busy = await gc(['convoy', 'delete', both.convoy.id, '--beads']);
    expect(busy.stderr).toMatch(/in progress[\s\S]*--force/);
    expect(
      (
        await json<{ deleted: string[] }>([
          'convoy',
          'delete',
          both.convoy.id,
          '--beads',
          '--force',
        ])
      ).deleted,
    ).toEqual([e]);
    expect((await gc(['bead', 'show', e])).code).not.toBe(0);
  });
});
