/**
 * What a hostile agent or operator tried, refused: touching another agent's
 * merge requests, reading or forging mail through the beads API, acting as
 * someone else, registering the city's own names, running code through run
 * env, and reading tokens from other processes' argv.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CityServer } from '../../src/server/index.js';
import { readAdminKey } from '../../src/city/index.js';
import { CONFIG_HOME } from '../helpers/cli.js';
import { branchWith, makeRepo } from '../helpers/git.js';
import { apiCall } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

let root: string;
let repo: string;
let server: CityServer;
let admin: string;
let op: string;
let alice: string;
let bob: string;

beforeAll(async () => {
  process.env.GC_CONFIG_HOME = CONFIG_HOME;
  root = await mkdtemp(path.join(os.tmpdir(), 'gc-authz-'));
  repo = path.join(root, 'app');
  makeRepo(repo);
  await writeFile(
    path.join(root, 'city.toml'),
    `[workspace]
name = "authz"
[daemon]
patrol_interval = "1h"
[[rigs]]
name = "app"
path = "app"
[rigs.gates.test]
command = "sleep 60"
[[agent]]
name = "worker"
command = "sleep 600"
max_active_sessions = 2
[[agent]]
name = "runner"
command = "sleep 600"
run_env = ["TASK_ID"]
suspended = true
`,
  );
  server = await CityServer.start({ root, sessionProvider: 'fake', log: () => undefined });
  admin = readAdminKey(root)!;
  op = (await server.keys.create({ kind: 'operator', name: 'ops' })).token;
  alice = (await server.keys.create({ kind: 'agent', name: 'alice' })).token;
  bob = (await server.keys.create({ kind: 'agent', name: 'bob' })).token;
}, 60_000);

afterAll(async () => {
  await server?.stop('test');
  await rm(root, { recursive: true, force: true });
});

const call = (method: string, url: string, token: string, body?: unknown, actor?: string) =>
  apiCall({ socketPath: server.socketPath }, method, url, {
    token,
    ...(body !== undefined ? { body } : {}),
    ...(actor ? { actor } : {}),
  });

describe('merge requests', () => {
  it("an agent cannot submit for a bead it does not hold, nor replace another's request", async () => {
    const bead = await call('POST', '/v0/beads', admin, { title: 'bob works on this' });
    const id = String(bead.body.id);
    expect((await call('POST', `/v0/beads/${id}/claim`, bob, {})).status).toBe(200);
    const bobHead = branchWith(repo, 'bob/work', { 'b.txt': 'bob\n' });
    const sub = await call('POST', '/v0/mq', bob, { branch: 'bob/work', bead: id, head: bobHead });
    expect(sub.status, sub.text).toBe(200);

    const aliceHead = branchWith(repo, 'alice/ok', { 'a.txt': 'alice\n' });
    const steal = await call('POST', '/v0/mq', alice, {
      branch: 'alice/ok',
      bead: id,
      head: aliceHead,
    });
    expect(steal.status).toBe(403);
    expect(steal.body.error?.message).toMatch(/held by bob/);
    const sameBranch = await call('POST', '/v0/mq', alice, { branch: 'bob/work', head: aliceHead });
    expect(sameBranch.status).toBe(403);
    expect(sameBranch.body.error?.message).toMatch(/only its author's own/);
    const sessionBranch = await call('POST', '/v0/mq', alice, {
      branch: 'gc/worker-1/abc',
      head: aliceHead,
    });
    expect(sessionBranch.status).toBe(403);
    const mr = await call('GET', `/v0/mq/${String(sub.body.id)}`, admin);
    expect(mr.body.state).not.toBe('superseded');
  });
});

describe('mail through the beads API', () => {
  it('is neither readable nor forgeable by agents', async () => {
    const sent = await call(
      'POST',
      '/v0/mail',
      admin,
      { to: 'bob', subject: 'secret', body: 'x' },
      'mayor',
    );
    expect(sent.status, sent.text).toBe(200);
    const msg = String(sent.body.id);
    expect((await call('GET', `/v0/beads/${msg}`, alice)).status).toBe(404);
    expect((await call('GET', '/v0/beads?type=message&assignee=bob', alice)).status).toBe(403);
    const list = await call('GET', '/v0/beads?scan=true&limit=1000', alice);
    expect(
      (list.body.items as { issue_type: string }[]).some((b) => b.issue_type === 'message'),
    ).toBe(false);
    const forged = await call('POST', '/v0/beads', alice, {
      title: 'hi',
      type: 'message',
      assignee: 'bob',
    });
    expect(forged.status).toBe(403);
    expect((await call('POST', `/v0/beads/${msg}/close`, alice, {})).status).toBe(404);
    // Operators read mail through the mail routes; they may not forge it either.
    expect((await call('POST', '/v0/beads', op, { title: 'x', type: 'message' })).status).toBe(403);
  });
});

describe('acting as someone else', () => {
  it('only the admin key may set the actor', async () => {
    for (const [method, url, body] of [
      ['POST', '/v0/mail', { to: 'bob', subject: 's', body: 'b' }],
      ['POST', '/v0/beads', { title: 't' }],
    ] as const) {
      const r = await call(method, url, op, body, 'refinery');
      expect(r.status, `${method} ${url}`).toBe(403);
    }
    const asSelf = await call('POST', '/v0/beads', op, { title: 'mine', from: 'admin' });
    expect(asSelf.status).toBe(200);
    expect(asSelf.body.from).toBe('ops');
    const asAdmin = await call('POST', '/v0/beads', admin, { title: 'theirs' }, 'mayor');
    expect(asAdmin.body.from).toBe('mayor');
  });

  it('reserved and city-owned names cannot be registered', async () => {
    for (const name of ['admin', 'refinery', 'controller', 'worker', 'worker-7', 'runner']) {
      const r = await call('POST', '/v0/agents', op, { name });
      expect(r.status, name).toBe(400);
    }
    expect((await call('POST', '/v0/agents', op, { name: 'worker-x' })).status).toBe(200);
  });
});

describe('run env', () => {
  it('is an allowlist per agent', async () => {
    for (const k of ['NODE_OPTIONS', 'LD_PRELOAD', 'BASH_ENV', 'GIT_SSH_COMMAND']) {
      const r = await call('POST', '/v0/runs', op, {
        template: 'runner',
        prompt: 'p',
        env: { [k]: 'x' },
      });
      expect(r.status, k).toBe(400);
      expect(r.body.error?.message).toContain(k);
    }
  });
});

/** Every file under `dir` (recursively) whose contents hold `text`; none when it is missing. */
function filesHolding(dir: string, text: string): string[] {
  const out: string[] = [];
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesHolding(p, text));
    else if (e.isFile() && readFileSync(p, 'utf8').includes(text)) out.push(p);
  }
  return out;
}

describe('tokens in argv', () => {
  it.each(['tmux', 'subprocess'] as const)(
    '%s: no process holds a session token in its command line, and no file under .gc/sessions does',
    async (provider) => {
      const tmuxRoot = await mkdtemp(path.join(os.tmpdir(), 'gc-argv-'));
      await writeFile(
        path.join(tmuxRoot, 'city.toml'),
        '[workspace]\nname = "argv"\n[daemon]\npatrol_interval = "200ms"\n[[agent]]\nname = "sleeper"\nstart_command = "sleep 600"\n',
      );
      const city = await CityServer.start({
        root: tmuxRoot,
        sessionProvider: provider,
        log: () => undefined,
      });
      try {
        // This city's sessions only: other tests' cities run beside it.
        const tokens = new Set<string>();
        await waitFor(() => {
          for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
            try {
              const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
              if (!env.includes(`GC_CITY_ROOT=${tmuxRoot}`)) continue;
              for (const e of env)
                if (e.startsWith('GC_TOKEN=') && e.length > 12) tokens.add(e.slice(9));
            } catch {
              // gone, or not ours
            }
          }
          return tokens.size > 0;
        }, 'a session with its token runs');
        for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
          let cmdline = '';
          try {
            cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
          } catch {
            continue;
          }
          for (const t of tokens)
            expect(cmdline.includes(t), `pid ${pid}: ${cmdline.slice(0, 80)}`).toBe(false);
        }
        // The env file that carried it is emptied (or deleted) once the session read it.
        for (const t of tokens) {
          await waitFor(
            () => filesHolding(path.join(tmuxRoot, '.gc', 'sessions'), t).length === 0,
            'no file left holding the token',
          );
        }
      } finally {
        await city.stop('test');
        await rm(tmuxRoot, { recursive: true, force: true });
      }
    },
    60_000,
  );
});
