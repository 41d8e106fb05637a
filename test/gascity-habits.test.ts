/**
 * Gas City's command habits, with the gc CLI on a city without a server:
 * `gc version`, `gc rig add PATH [--name N]` beside `gc rig add NAME PATH`,
 * and `gc sling TARGET TEXT` filing the text as a new bead.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIG_HOME, REPO, gc as runGc } from './helpers/cli.js';
import { makeRepo } from './helpers/git.js';

let root = '';
const gc = (args: string[]) =>
  runGc(['--city', root, ...args], { env: { GC_CONFIG_HOME: CONFIG_HOME } });
const json = <T>(r: { code: number; stdout: string; stderr: string }): T => {
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as T;
};

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'gc-habits-'));
  await writeFile(
    path.join(root, 'city.toml'),
    '[workspace]\nname = "habits"\n[[agent]]\nname = "mayor"\nstart_command = "sleep 600"\n',
  );
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('Gas City command habits', () => {
  it('gc version, --json and --version agree with package.json', async () => {
    const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as {
      version: string;
    };
    expect((await gc(['version'])).stdout.trim()).toBe(`gc ${pkg.version}`);
    expect(json<{ version: string }>(await gc(['version', '--json']))).toEqual({
      version: pkg.version,
    });
    expect((await gc(['--version'])).stdout.trim()).toBe(pkg.version);
  });

  it('gc rig add PATH names the rig after its directory; --name and NAME PATH still work', async () => {
    makeRepo(path.join(root, 'web-app'));
    makeRepo(path.join(root, 'api'));
    makeRepo(path.join(root, 'tools'));
    expect((await gc(['rig', 'add', path.join(root, 'web-app')])).code).toBe(0);
    expect((await gc(['rig', 'add', path.join(root, 'api'), '--name', 'backend'])).code).toBe(0);
    expect((await gc(['rig', 'add', 'tooling', path.join(root, 'tools')])).code).toBe(0);
    const rigs = json<{ name: string; path: string }[]>(await gc(['rig', 'list', '--json']));
    expect(rigs.map((r) => r.name)).toEqual(['web-app', 'backend', 'tooling']);
    const clash = await gc(['rig', 'add', 'x', path.join(root, 'tools'), '--name', 'y']);
    expect(clash.code).not.toBe(0);
    expect(clash.stderr).toMatch(/--name y and NAME x disagree/);
    const again = await gc(['rig', 'add', path.join(root, 'web-app')]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/web-app/);
    const missing = await gc(['rig', 'add', path.join(root, 'nowhere')]);
    expect(missing.stderr).toMatch(/does not exist/);
  });

  it('gc rig suspend|resume NAME sets the rig suspended in city.toml, idempotently', async () => {
    const state = async () =>
      Object.fromEntries(
        json<{ name: string; suspended: boolean }[]>(await gc(['rig', 'list', '--json'])).map(
          (r) => [r.name, r.suspended],
        ),
      );
    expect(json<{ suspended: boolean }>(await gc(['rig', 'suspend', 'backend', '--json']))).toEqual(
      {
        rig: 'backend',
        suspended: true,
      },
    );
    expect((await gc(['rig', 'suspend', 'backend'])).code).toBe(0);
    expect(await state()).toEqual({ 'web-app': false, backend: true, tooling: false });
    const text = readFileSync(path.join(root, 'city.toml'), 'utf8');
    expect(text.match(/suspended = true/g)).toHaveLength(1);
    const resumed = await gc(['rig', 'resume', 'backend']);
    expect(resumed.stdout.trim()).toBe('rig backend resumed');
    expect(await state()).toEqual({ 'web-app': false, backend: false, tooling: false });
    const unknown = await gc(['rig', 'suspend', 'nope']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/nope/);
    expect((await gc(['config', 'validate'])).code).toBe(0);
  });

  it('gc sling TARGET TEXT files the text as a bead routed to the target; an id-shaped word must exist', async () => {
    const r = json<{ created: { id: string; title: string } }>(
      await gc(['sling', 'mayor', 'fix the login page', '--json']),
    );
    expect(r.created.title).toBe('fix the login page');
    const shown = json<unknown>(await gc(['bead', 'show', r.created.id, '--json']));
    const bead = (Array.isArray(shown) ? shown[0] : shown) as { metadata: Record<string, string> };
    expect(bead.metadata['gc.routed_to']).toBe('mayor');
    const human = await gc(['sling', 'mayor', 'write the docs']);
    expect(human.stdout).toMatch(/^created \S+ \("write the docs"\), routed to mayor/);
    // An existing bead is routed, not copied.
    const plain = await gc(['sling', 'mayor', r.created.id]);
    expect(plain.stdout.trim()).toBe(`${r.created.id} routed to mayor`);
    // A word shaped like an id that names no bead is a mistake, not a title...
    const typo = await gc(['sling', 'mayor', 'hb-999']);
    expect(typo.code).not.toBe(0);
    expect(typo.stderr).toMatch(/hb-999/);
    // ... unless asked for.
    const forced = json<{ created: { title: string } }>(
      await gc(['sling', 'mayor', 'hb-999', '--text', '--json']),
    );
    expect(forced.created.title).toBe('hb-999');
    const nobody = await gc(['sling', 'nobody', 'some work']);
    expect(nobody.code).not.toBe(0);
    expect(nobody.stderr).toMatch(/nobody/);
  });
});

describe('gc event emit and gc mail peek', () => {
  it('records an event of your own as yourself; gc types, bad JSON and forged actors are refused', async () => {
    const e = json<{ seq: number; type: string; actor: string; subject: string; payload: unknown }>(
      await gc([
        'event',
        'emit',
        'deploy.finished',
        '--subject',
        'web',
        '-m',
        'v2 is out',
        '--payload',
        '{"v":2}',
        '--json',
      ]),
    );
    expect(e).toMatchObject({ type: 'deploy.finished', subject: 'web', payload: { v: 2 } });
    const listed = json<{ seq: number }[]>(await gc(['events', '--type', 'deploy.*', '--json']));
    expect(listed.map((x) => x.seq)).toEqual([e.seq]);
    const human = await gc(['event', 'emit', 'note.added']);
    expect(human.stdout).toMatch(/^recorded note\.added as event \d+/);
    const forged = await gc(['event', 'emit', 'bead.closed', '--subject', 'hb-1']);
    expect(forged.code).not.toBe(0);
    expect(forged.stderr).toMatch(/"bead\." events are gc's own/);
    const badJson = await gc(['event', 'emit', 'x.y', '--payload', '{nope']);
    expect(badJson.stderr).toMatch(/--payload: not JSON/);
    const after = json<{ type: string }[]>(await gc(['events', '--json']));
    expect(after.filter((x) => x.type === 'bead.closed' || x.type === 'x.y')).toEqual([]);
  });

  it('gc mail peek shows a message and leaves it unread', async () => {
    const sent = json<{ id: string }>(
      await gc(['mail', 'send', 'mayor', '-s', 'look', '-m', 'at this', '--json']),
    );
    const peeked = json<{ id: string; body: string; read: boolean }>(
      await gc(['mail', 'peek', sent.id, '--json']),
    );
    expect(peeked).toMatchObject({ id: sent.id, body: 'at this', read: false });
    const count = json<{ unread: number }>(
      await gc(['mail', 'count', '--json', '--agent', 'mayor']),
    );
    expect(count.unread).toBe(1);
    const missing = await gc(['mail', 'peek', 'hb-nope']);
    expect(missing.code).not.toBe(0);
  });
});

describe('gc bd', () => {
  it('is bd: the same commands, the same output, gc --city and --actor passed on', async () => {
    const made = json<{ id: string; title: string }>(
      await gc(['bd', 'create', 'through gc bd', '-t', 'bug', '--json']),
    );
    expect(made.title).toBe('through gc bd');
    const listed = json<{ id: string }[]>(await gc(['bd', 'list', '--json']));
    expect(listed.map((b) => b.id)).toContain(made.id);
    const asSomeone = await runGc(
      ['--actor', 'reviewer', '--city', root, 'bd', 'show', made.id, '--json'],
      {
        env: { GC_CONFIG_HOME: CONFIG_HOME },
      },
    );
    expect(asSomeone.code, asSomeone.stderr).toBe(0);
    const help = await gc(['bd', '--help']);
    expect(help.stdout).toMatch(/^Usage: bd /);
    expect(help.stdout).toMatch(/create \[options\] <title>/);
    const wrong = await gc(['bd', 'frobnicate']);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/unknown command 'frobnicate'/);
    const listedInGcHelp = await gc(['--help']);
    expect(listedInGcHelp.stdout).toMatch(/\n {2}bd \[args\.\.\.\] +the bd beads commands/);
  });
});
