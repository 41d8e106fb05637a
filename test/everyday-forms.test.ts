/**
 * The command forms Gas City users type, through a running server with
 * real subprocess sessions and the built gc: positional names, rig/agent
 * names, mail for hooks, session filters and log tails, and bd's habits.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CityServer } from '../src/server/index.js';
import { CONFIG_HOME, gcBuilt, runCli } from './helpers/cli.js';
import { makeRepo } from './helpers/git.js';
import { until } from './helpers/wait.js';

let root: string;
let server: CityServer;

beforeAll(async () => {
  process.env.GC_CONFIG_HOME = CONFIG_HOME;
  root = await mkdtemp(path.join(os.tmpdir(), 'gc-forms-'));
  makeRepo(path.join(root, 'app'));
  await writeFile(
    path.join(root, 'city.toml'),
    '[workspace]\nname = "forms"\n[session]\nprovider = "subprocess"\n' +
      '[daemon]\npatrol_interval = "1h"\n[[rigs]]\nname = "app"\npath = "app"\n' +
      '[[agent]]\nname = "mayor"\nstart_command = "sleep 600"\n' +
      '[[agent]]\nname = "w"\ndir = "app"\n' +
      'start_command = "for i in 1 2 3 4 5; do echo log-$i; done; sleep 600"\n',
  );
  server = await CityServer.start({ root, sessionProvider: 'subprocess', log: () => undefined });
}, 60_000);
afterAll(async () => {
  await server?.stop('test done');
  await rm(root, { recursive: true, force: true });
});

const gc = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  gcBuilt(['--city', root, ...args], { env });
const bd = (args: string[]) => runCli('bd', args, { cwd: root });
const json = <T>(r: { code: number; stdout: string; stderr: string }): T => {
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as T;
};

describe('sessions: --template and logs --tail', () => {
  it('lists the sessions of one agent, by name or rig/agent; tails the log', async () => {
    await until(
      'both sessions running',
      async () => json<{ name: string; state: string }[]>(await gc(['session', 'list', '--json'])),
      (rows) => rows.filter((r) => r.state === 'running').length === 2,
    );
    for (const t of ['w', 'app/w']) {
      const rows = json<{ name: string }[]>(
        await gc(['session', 'list', '--template', t, '--json']),
      );
      expect(rows.map((r) => r.name)).toEqual(['w']);
    }
    const mayor = await gc(['session', 'list', '--template', 'mayor']);
    expect(mayor.stdout).toMatch(/mayor/);
    expect(mayor.stdout).not.toMatch(/^w\s/m);
    const unknown = await gc(['session', 'list', '--template', 'mayr']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/agent not found: mayr.*did you mean mayor/s);
    const wrongRig = await gc(['session', 'list', '--template', 'web/w']);
    expect(wrongRig.code).not.toBe(0);
    expect(wrongRig.stderr).toMatch(/agent not found: web\/w.*works in rig app/s);

    const log = await until(
      'the log to hold its five lines',
      async () => (await gc(['session', 'logs', 'w'])).stdout,
      (out) => out.includes('log-5'),
    );
    expect(log).toContain('log-1');
    const tail = await gc(['session', 'logs', 'w', '--tail', '2']);
    expect(tail.code, tail.stderr).toBe(0);
    expect(tail.stdout).toBe('log-4\nlog-5\n');
    expect((await gc(['session', 'logs', 'w', '-n', '0'])).stdout).toBe('');
    expect((await gc(['session', 'logs', 'w', '--tail', '99'])).stdout).toBe(log);
    const bad = await gc(['session', 'logs', 'w', '--tail', 'ten']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--tail: expected a number of lines, got "ten"/);
  });
});

describe('gc prime [AGENT]', () => {
  it('takes the agent as an argument or rig/agent, with the default prompt when it has none', async () => {
    const p = json<{ agent: string; prompt: string; default: boolean }>(
      await gc(['prime', 'app/w', '--json']),
    );
    expect(p).toMatchObject({ agent: 'w', default: true });
    expect(p.prompt).toContain('your own git worktree of the rig app');
    const plain = await gc(['prime', 'mayor']);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toContain('You are mayor');
    expect(plain.stderr).toMatch(
      /agent mayor has no prompt of its own: this is the default prompt/,
    );
    const both = await gc(['prime', 'mayor', '--agent', 'w']);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--agent: names "w", and the argument names "mayor": give one/);
    const typo = await gc(['prime', 'wx']);
    expect(typo.code).not.toBe(0);
    expect(typo.stderr).toMatch(/agent not found: wx/);
  });
});

describe('mail: NAME, rig/agent and --inject', () => {
  it('sends to rig/agent, checks a named mailbox, and injects unread mail for hooks', async () => {
    const sent = json<{ to: string }>(
      await gc(['mail', 'send', 'app/w', '-s', 'review', '-m', 'please look at PR 7', '--json']),
    );
    expect(sent.to).toBe('w');
    const check = json<{ subject: string }[]>(await gc(['mail', 'check', 'w', '--json']));
    expect(check.map((m) => m.subject)).toEqual(['review']);
    const inject = await gc(['mail', 'check', 'app/w', '--inject']);
    expect(inject.code, inject.stderr).toBe(0);
    expect(inject.stdout).toMatch(/^<gc-mail unread="1">\n--- \S+ from tester: review\n/);
    expect(inject.stdout).toContain('please look at PR 7');
    expect(inject.stdout.trim().endsWith('</gc-mail>')).toBe(true);
    // Nothing unread: nothing at all, so a hook adds nothing.
    const none = await gc(['mail', 'check', 'mayor', '--inject']);
    expect(none.code, none.stderr).toBe(0);
    expect(none.stdout).toBe('');
    // inbox NAME reads (and marks read); then check has nothing.
    const inbox = json<{ subject: string }[]>(await gc(['mail', 'inbox', 'w', '--json']));
    expect(inbox.map((m) => m.subject)).toEqual(['review']);
    expect((await gc(['mail', 'check', 'w', '--inject'])).stdout).toBe('');
    const both = await gc(['mail', 'check', 'w', '--agent', 'mayor']);
    expect(both.code).toBe(2);
  });
});

describe('sling rig/agent and bd habits', () => {
  it('routes by rig/agent; bd ready filters by metadata, unassigned, limit; dep --blocks; label add/remove', async () => {
    const a = json<{ id: string }>(await bd(['create', 'first', '--json']));
    const b = json<{ id: string }>(await bd(['create', 'second', '--json']));
    const slung = await gc(['sling', 'app/w', a.id]);
    expect(slung.code, slung.stderr).toBe(0);
    expect(slung.stdout).toContain(`${a.id} routed to w`);

    const routed = json<{ id: string }[]>(
      await bd([
        'ready',
        '--metadata-field',
        'gc.routed_to=w',
        '--unassigned',
        '-n',
        '5',
        '--json',
      ]),
    );
    expect(routed.map((x) => x.id)).toEqual([a.id]);
    const limited = json<{ id: string }[]>(await bd(['ready', '--limit', '1', '--json']));
    expect(limited).toHaveLength(1);
    const badField = await bd(['ready', '--metadata-field', 'nokey']);
    expect(badField.code).toBe(2);
    expect(badField.stderr).toMatch(/--metadata-field/);

    // a blocks b: b is not ready until a closes.
    const dep = await bd(['dep', a.id, '--blocks', b.id]);
    expect(dep.code, dep.stderr).toBe(0);
    expect(dep.stdout).toContain(`${b.id} now depends on ${a.id} (blocks)`);
    const ready = json<{ id: string }[]>(await bd(['ready', '--json']));
    expect(ready.map((x) => x.id)).toContain(a.id);
    expect(ready.map((x) => x.id)).not.toContain(b.id);
    const half = await bd(['dep', a.id]);
    expect(half.code).toBe(2);
    expect(half.stderr).toMatch(/bd dep A --blocks B/);
    // The older subcommands still work.
    expect((await bd(['dep', 'list', b.id, '--json'])).code).toBe(0);

    for (const op of ['add', 'add'] as const) {
      expect((await bd(['label', op, a.id, 'urgent'])).code).toBe(0);
    }
    const shown = json<{ labels: string[] }>(await bd(['show', a.id, '--json']));
    expect(shown.labels).toEqual(['urgent']);
    expect((await bd(['label', 'remove', a.id, 'urgent'])).code).toBe(0);
    const after = json<{ labels?: string[] }>(await bd(['show', a.id, '--json']));
    expect(after.labels ?? []).toEqual([]);

    const flat = await bd(['list', '--flat']);
    expect(flat.code, flat.stderr).toBe(0);
    expect(flat.stdout).toContain(a.id);
  });
});
