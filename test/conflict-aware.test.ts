/**
 * Conflict-aware claiming through a real city server: a ready bead whose
 * paths overlap a bead in flight waits while other work is ready, its hold
 * shows in bead show and hook, and the merge queue records what each
 * attempt changed (gc.touched) so later attempts and their neighbours are
 * judged by it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CityServer } from '../src/server/index.js';
import { CONFIG_HOME, gcBuilt } from './helpers/cli.js';
import { branchWith, makeRepo } from './helpers/git.js';
import { apiCall } from './helpers/http.js';

let root = '';
let server: CityServer | undefined;

async function start(hold: 'prefer' | 'strict' | 'off'): Promise<CityServer> {
  process.env.GC_CONFIG_HOME = CONFIG_HOME;
  root = await mkdtemp(path.join(os.tmpdir(), 'gc-aware-'));
  makeRepo(path.join(root, 'app'));
  await writeFile(
    path.join(root, 'city.toml'),
    `[workspace]\nname = "aw"\n[daemon]\npatrol_interval = "1h"\n[beads]\nhold_overlapping = "${hold}"\n` +
      '[[rigs]]\nname = "app"\npath = "app"\n',
  );
  server = await CityServer.start({ root, sessionProvider: 'fake', log: () => undefined });
  return server;
}
afterEach(async () => {
  await server?.stop('test');
  server = undefined;
  await rm(root, { recursive: true, force: true });
});

const api = async (method: string, url: string, body?: unknown, actor = 'mayor') =>
  apiCall({ socketPath: server!.socketPath }, method, url, {
    token: (await server!.keys.create({ kind: 'agent', name: actor })).token,
    ...(body !== undefined ? { body } : {}),
  });
const admin = async (method: string, url: string, body?: unknown) =>
  apiCall({ socketPath: server!.socketPath }, method, url, {
    token: (await server!.keys.create({ kind: 'operator', name: `op-${Math.random()}` })).token,
    ...(body !== undefined ? { body } : {}),
  });
async function bead(title: string, priority: number, paths?: string): Promise<string> {
  const r = await admin('POST', '/v0/beads', {
    title,
    priority,
    metadata: { 'gc.routed_to': 'coder', ...(paths ? { 'gc.paths': paths } : {}) },
  });
  expect(r.status, r.text).toBe(200);
  return r.body.id as string;
}
const claimNext = async (actor: string) => {
  const r = await api('POST', '/v0/beads/claim-next', {}, actor);
  expect(r.status, r.text).toBe(200);
  return (r.body.bead as { id: string } | null)?.id;
};

describe('conflict-aware claiming', () => {
  it('overlapping work waits while other work is ready, and says why', async () => {
    await start('prefer');
    const a = await bead('edit the index', 0, 'src/index.js');
    const b = await bead('also edit the index', 1, 'src/*.js');
    const c = await bead('write docs', 2, 'docs/**');
    const d = await bead('no paths', 3);
    expect(await claimNext('coder-1')).toBe(a);
    // b is next by priority but overlaps a (in flight): c and d go first.
    const shown = await admin('GET', `/v0/beads/${b}`);
    expect(shown.body.held).toBe(`held back: overlaps ${a} (src/*.js ~ src/index.js)`);
    const hook = await api('GET', '/v0/hook?agent=coder', undefined, 'coder-9');
    const ready = hook.body.ready as { id: string }[];
    expect(ready.map((x) => x.id)).toEqual([c, d, b]);
    expect((hook.body.held as Record<string, string>)[b]).toMatch(/overlaps/);
    const text = await gcBuilt(['--city', root, 'hook', '--agent', 'coder'], {
      env: { GC_SESSION: '' },
    });
    expect(text.stdout).toContain(`held back: overlaps ${a}`);
    expect(await claimNext('coder-2')).toBe(c);
    expect(await claimNext('coder-3')).toBe(d);
    // Nothing else ready: the held bead goes anyway.
    expect(await claimNext('coder-4')).toBe(b);
    expect((await admin('GET', `/v0/beads/${c}`)).body.held).toBeUndefined();
  });

  it('strict: overlapping work waits even when nothing else is ready, until the work in flight lands', async () => {
    await start('strict');
    const a = await bead('edit the index', 0, 'src/index.js');
    const b = await bead('also edit the index', 1, 'src/index.js');
    expect(await claimNext('coder-1')).toBe(a);
    expect(await claimNext('coder-2')).toBeUndefined();
    expect((await admin('GET', `/v0/beads/${b}`)).body.held).toMatch(new RegExp(`overlaps ${a}`));
    expect((await api('POST', `/v0/beads/${a}/close`, {}, 'coder-1')).status).toBe(200);
    expect(await claimNext('coder-2')).toBe(b);
  });

  it('with hold_overlapping = "off" the order is plain priority', async () => {
    await start('off');
    const a = await bead('edit the index', 0, 'src/index.js');
    const b = await bead('also edit the index', 1, 'src/index.js');
    await bead('docs', 2, 'docs/a.md');
    expect(await claimNext('coder-1')).toBe(a);
    expect(await claimNext('coder-2')).toBe(b);
  });

  it('the merge queue records what an attempt changed; a request waiting keeps its bead in flight', async () => {
    await start('prefer');
    const a = await bead('first', 0);
    const b = await bead('second', 1, 'lib/util.js');
    const c = await bead('third', 2);
    expect(await claimNext('coder-1')).toBe(a);
    branchWith(path.join(root, 'app'), 'work-a', { 'lib/util.js': 'x', 'README.md': 'changed\n' });
    // Stop the queue from merging: the request waits, so a stays in flight after it is closed.
    await server!.refinery.stop();
    const mr = await api('POST', '/v0/mq', { branch: 'work-a', bead: a }, 'coder-1');
    expect(mr.status, mr.text).toBe(200);
    const meta = (await admin('GET', `/v0/beads/${a}`)).body.metadata as Record<string, string>;
    expect(meta['gc.touched']!.split(',').sort()).toEqual(['README.md', 'lib/util.js']);
    expect((await api('POST', `/v0/beads/${a}/close`, {}, 'coder-1')).status).toBe(200);
    expect((await admin('GET', `/v0/beads/${b}`)).body.held).toMatch(new RegExp(`overlaps ${a}`));
    expect(await claimNext('coder-2')).toBe(c);
  });
});
