/**
 * Commands that must not print success for nothing: a missing session,
 * bead or option value is an error with the right exit code and records no
 * event; an idempotent no-op says nothing changed and records no event; a
 * mail to a name nobody has warns. Through a running server and on the
 * city files alike, with the built gc.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CityServer } from '../src/server/index.js';
import type { GcEvent } from '../src/events/index.js';
import { CONFIG_HOME, gcBuilt, runCli } from './helpers/cli.js';
import { branchWith, makeRepo } from './helpers/git.js';
import { until } from './helpers/wait.js';

const roots: string[] = [];
let server: CityServer | undefined;
afterEach(async () => {
  await server?.stop('test done');
  server = undefined;
  for (const r of roots.splice(0)) await rm(r, { recursive: true, force: true });
});

/** A city (fake sessions unless `provider`), with a rig "app"; started when `serve`. */
async function city(serve: boolean, provider = 'fake'): Promise<string> {
  process.env.GC_CONFIG_HOME = CONFIG_HOME;
  const root = await mkdtemp(path.join(os.tmpdir(), 'gc-first-hour-'));
  roots.push(root);
  makeRepo(path.join(root, 'app'));
  await writeFile(
    path.join(root, 'city.toml'),
    `[workspace]\nname = "fh"\n[session]\nprovider = "${provider === 'fake' ? 'subprocess' : provider}"\n` +
      '[daemon]\npatrol_interval = "1h"\n[[rigs]]\nname = "app"\npath = "app"\n' +
      '[[agent]]\nname = "w"\nstart_command = "sleep 600"\nmax_active_sessions = 2\n',
  );
  if (serve) {
    server = await CityServer.start({
      root,
      sessionProvider: provider === 'fake' ? 'fake' : 'subprocess',
      log: () => undefined,
    });
  }
  return root;
}

const run = (root: string, args: string[], env: NodeJS.ProcessEnv = {}) =>
  gcBuilt(['--city', root, ...args], { env });
const bd = (root: string, args: string[]) => runCli('bd', args, { cwd: root });

async function eventTypes(root: string): Promise<string[]> {
  const r = await run(root, ['events', '--json']);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as GcEvent[]).map((e) => e.type);
}

for (const serve of [true, false]) {
  const how = serve ? 'server' : 'files';
  describe(`nothing happened, so no success (${how})`, () => {
    it('a session that does not exist: kill and peek are "not found", no event', async () => {
      const root = await city(serve);
      const before = await eventTypes(root);
      for (const cmd of [
        ['session', 'kill', 'nosuch'],
        ['session', 'peek', 'nosuch'],
      ]) {
        const r = await run(root, cmd);
        expect(r.code, `${cmd.join(' ')}: ${r.stdout}`).toBe(3);
        expect(r.stderr).toMatch(/session not found: nosuch/);
        expect(r.stderr).toMatch(/gc session list/);
        expect(r.stdout).not.toMatch(/killed/);
      }
      expect(await eventTypes(root)).toEqual(before);
    });

    it('no-ops say nothing changed and record nothing: unclaim, dep remove', async () => {
      const root = await city(serve);
      const a = JSON.parse((await run(root, ['bead', 'create', 'a', '--json'])).stdout) as {
        id: string;
      };
      const b = JSON.parse((await run(root, ['bead', 'create', 'b', '--json'])).stdout) as {
        id: string;
      };
      const before = await eventTypes(root);
      const un = await run(root, ['bead', 'unclaim', a.id]);
      expect(un.code, un.stderr).toBe(0);
      expect(un.stdout).toMatch(/was not claimed \(it is open\); nothing changed/);
      for (let i = 0; i < 2; i++) {
        const rm = await run(root, ['bead', 'dep', 'remove', a.id, b.id]);
        expect(rm.code, rm.stderr).toBe(0);
        expect(rm.stdout).toMatch(/does not depend on .*; nothing changed/);
      }
      const rmJson = await run(root, ['bead', 'dep', 'remove', a.id, b.id, '--json']);
      expect(JSON.parse(rmJson.stdout)).toMatchObject({ removed: false });
      expect(await eventTypes(root)).toEqual(before);
      // And the real thing still works, recorded once.
      expect((await run(root, ['bead', 'dep', 'add', a.id, b.id])).code).toBe(0);
      const gone = await run(root, ['bead', 'dep', 'remove', a.id, b.id]);
      expect(gone.stdout).toMatch(/^removed /);
      const after = await eventTypes(root);
      expect(after.length - before.length).toBe(2);
    });

    it('bad option values and unknown beads are errors: --direction, mq submit --bead', async () => {
      const root = await city(serve);
      const a = JSON.parse((await run(root, ['bead', 'create', 'a', '--json'])).stdout) as {
        id: string;
      };
      const dir = await bd(root, ['dep', 'list', a.id, '--direction', 'sideways']);
      expect(dir.code).toBe(2);
      expect(dir.stderr).toMatch(/--direction: expected down or up, got "sideways"/);
      branchWith(path.join(root, 'app'), 'feat', { 'f.txt': 'x\n' });
      const before = await eventTypes(root);
      const sub = await run(root, [
        'mq',
        'submit',
        '--rig',
        'app',
        '--branch',
        'feat',
        '--bead',
        'fh-nosuch',
      ]);
      expect(sub.code, sub.stdout).toBe(3);
      expect(sub.stderr).toMatch(/bead not found: fh-nosuch/);
      expect(await eventTypes(root)).toEqual(before);
      const list = await run(root, ['mq', 'list', '--all', '--json']);
      expect(JSON.parse(list.stdout)).toEqual([]);
    });

    it('work lists leave out mail unless asked (--type message, --all-types)', async () => {
      const root = await city(serve);
      const work = JSON.parse(
        (await run(root, ['bead', 'create', 'real work', '--json'])).stdout,
      ) as {
        id: string;
      };
      for (let i = 0; i < 3; i++) {
        expect((await run(root, ['mail', 'send', 'w', '-s', `notice ${i}`, '-m', 'x'])).code).toBe(
          0,
        );
      }
      const list = async (args: string[]) => {
        const r = await run(root, ['bead', 'list', ...args, '--json']);
        expect(r.code, r.stderr).toBe(0);
        return (JSON.parse(r.stdout) as { id: string; issue_type: string }[]).map(
          (b) => b.issue_type,
        );
      };
      expect(await list([])).toEqual(['task']);
      expect(await list(['--type', 'message'])).toEqual(['message', 'message', 'message']);
      expect((await list(['--all-types'])).sort()).toEqual([
        'message',
        'message',
        'message',
        'task',
      ]);
      const bdList = await bd(root, ['list', '--json']);
      expect(bdList.code, bdList.stderr).toBe(0);
      expect((JSON.parse(bdList.stdout) as { id: string }[]).map((b) => b.id)).toEqual([work.id]);
    });

    it('mail to a name nobody has is delivered with a warning; to an agent, without', async () => {
      const root = await city(serve);
      const odd = await run(root, ['mail', 'send', 'nobody-here', '-s', 'hi', '-m', 'x']);
      expect(odd.code, odd.stderr).toBe(0);
      expect(odd.stderr).toMatch(
        /warning: no agent, pool, session or registered agent is named nobody-here/,
      );
      for (const to of ['w', 'w-2']) {
        const ok = await run(root, ['mail', 'send', to, '-s', 'hi', '-m', 'x']);
        expect(ok.code, ok.stderr).toBe(0);
        expect(ok.stderr).toBe('');
      }
    });
  });
}

describe('messages say what the user typed, on the right stream', () => {
  it('argument errors read the same through a server as on the files', async () => {
    for (const serve of [true, false]) {
      const root = await city(serve);
      const r = await run(root, ['bead', 'create', '']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^gc: title: must not be empty$/m);
      await server?.stop('next');
      server = undefined;
    }
  });

  it('an unreadable --file, a mistyped command, an agent with no work', async () => {
    const root = await city(false);
    const f = await run(root, ['mail', 'send', 'w', '-f', '/nonexistent/body.txt']);
    expect(f.code).toBe(2);
    expect(f.stderr).toMatch(/--file: cannot read \/nonexistent\/body\.txt: no such file/);
    expect(f.stderr).not.toMatch(/ENOENT/);
    const stat = await run(root, ['stat']);
    expect(stat.code).toBe(2);
    expect(stat.stderr).toMatch(/Did you mean status\?/);
    const hook = await run(root, ['hook', '--agent', 'w'], { USER: 'tester' });
    expect(hook.stdout).toMatch(/^No work for w right now/);
  });

  it('gc start with a bad city.toml says why once, first, without old log lines', async () => {
    const root = await city(false, 'subprocess');
    await mkdir(path.join(root, '.gc'), { recursive: true });
    await writeFile(
      path.join(root, '.gc', 'server.log'),
      Array.from({ length: 30 }, (_, i) => `stale line ${i}\n`).join(''),
    );
    await writeFile(
      path.join(root, 'city.toml'),
      '[workspace]\nname = "fh"\n[daemon]\npatrol_interval = "soon"\n',
    );
    const r = await run(root, ['start']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^gc: .*city\.toml:4:1: daemon\.patrol_interval/);
    expect(r.stderr).not.toMatch(/stale line/);
    expect(r.stderr.match(/patrol_interval/g)).toHaveLength(1);
    // Nothing was started.
    expect(existsSync(path.join(root, '.gc', 'gc.sock'))).toBe(false);
  });

  it('restart --json prints only JSON; a refused reload goes to stderr', async () => {
    const root = await city(false, 'subprocess');
    expect((await run(root, ['start'])).code).toBe(0);
    try {
      const r = await run(root, ['restart', '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ started: true });
      await writeFile(path.join(root, 'city.toml'), '[workspace\n');
      const reload = await run(root, ['reload']);
      expect(reload.code).toBe(2);
      expect(reload.stdout).toBe('');
      expect(reload.stderr).toMatch(/reload refused, still running the last good config/);
    } finally {
      await run(root, ['stop']);
    }
  });
});

describe('start failures are visible before and after gc start', () => {
  it('config validate checks rigs are repositories, commands resolve, prompts exist', async () => {
    const root = await city(false, 'subprocess');
    await mkdir(path.join(root, 'plain'));
    const toml =
      '[workspace]\nname = "fh"\n[session]\nprovider = "subprocess"\n' +
      '[[rigs]]\nname = "app"\npath = "app"\n[[rigs]]\nname = "docs"\npath = "plain"\n' +
      '[[agent]]\nname = "ghost"\nstart_command = "gc-no-such-agent-cli --go"\n';
    await writeFile(path.join(root, 'city.toml'), toml);
    const v = await run(root, ['config', 'validate']);
    expect(v.code).toBe(2);
    expect(v.stderr).toMatch(
      /city\.toml:10:1: rigs\[1\]\.path: .*plain is not a git repository \(rig docs\)/,
    );
    expect(v.stderr).toMatch(
      /city\.toml:13:1: agent\[0\]\.start_command: agent ghost: command: gc-no-such-agent-cli: command not found on PATH/,
    );
    expect(v.stdout).not.toMatch(/valid/);
    await writeFile(
      path.join(root, 'city.toml'),
      '[workspace]\nname = "fh"\n[[agent]]\nname = "p"\nstart_command = "cat"\nprompt_template = "nope.md"\n',
    );
    const p = await run(root, ['config', 'validate', '--json']);
    expect(p.code).toBe(2);
    expect(JSON.stringify((JSON.parse(p.stdout) as { errors: unknown[] }).errors)).toMatch(
      /prompt_template: cannot read/,
    );
  });

  it('gc start warns, and gc status names the agent that cannot start, with the fix', async () => {
    const root = await city(false, 'subprocess');
    await writeFile(
      path.join(root, 'city.toml'),
      '[workspace]\nname = "fh"\n[session]\nprovider = "subprocess"\n[daemon]\npatrol_interval = "1h"\n' +
        '[[agent]]\nname = "ghost"\nstart_command = "gc-no-such-agent-cli"\n',
    );
    const s = await run(root, ['start']);
    try {
      expect(s.code, s.stderr).toBe(0);
      expect(s.stderr).toMatch(
        /warning: .*agent ghost: command: gc-no-such-agent-cli: command not found/,
      );
      const st = await until(
        'the failed start in status',
        async () => (await run(root, ['status'])).stdout,
        (out) => /agent ghost cannot start/.test(out),
      );
      expect(st).toMatch(
        /agent ghost cannot start \(ghost\): command: gc-no-such-agent-cli: command not found on PATH/,
      );
      expect(st).toMatch(/fix: install it, fix the agent start_command/);
      const list = await run(root, ['session', 'list']);
      expect(list.stdout).toMatch(
        /ghost\s+ghost\s+waiting.*last start failed: .*command not found/,
      );
      const rows = JSON.parse((await run(root, ['session', 'list', '--json'])).stdout) as {
        name: string;
        start_error?: string;
      }[];
      expect(rows.find((r) => r.name === 'ghost')?.start_error).toMatch(/command not found/);
    } finally {
      await run(root, ['stop']);
    }
  });

  it('a session slow to start is "starting" meanwhile; past its deadline the reason quotes its screen', async () => {
    const root = await city(false, 'subprocess');
    await writeFile(
      path.join(root, 'city.toml'),
      '[workspace]\nname = "fh"\n[session]\nprovider = "subprocess"\nstartup_timeout = "4s"\n' +
        '[daemon]\npatrol_interval = "1h"\n' +
        '[[agent]]\nname = "slow"\nstart_command = "echo loading the model; sleep 600"\n' +
        'ready_prompt_prefix = "READY>"\n',
    );
    const s = await run(root, ['start']);
    try {
      expect(s.code, s.stderr).toBe(0);
      // The server answers while the start is under way.
      const starting = await run(root, ['session', 'list']);
      expect(starting.code, starting.stderr).toBe(0);
      expect(starting.stdout).toMatch(/slow\s+slow\s+starting\s+\d+\s+starting: ready by /);
      const failed = await until(
        'the failed start in session list',
        async () => (await run(root, ['session', 'list'])).stdout,
        (out) => /last start failed/.test(out),
        20_000,
      );
      expect(failed).toMatch(/did not show its ready prompt "READY>" .*loading the model/);
      const st = await run(root, ['status']);
      expect(st.stdout).toMatch(/last start failed: .*loading the model/);
    } finally {
      await run(root, ['stop']);
    }
  });
});

describe('agents wait with one held call instead of polling', () => {
  it('bead claim --wait answers when work appears; mq status --wait when the request leaves the queue', async () => {
    const root = await city(true);
    const routed = ['--routed-to', 'w'];
    // Nothing ready: the claim is held until a bead is routed to w.
    // As a person (not a city session name: the controller would release
    // the claims of a pool session that is not running).
    const claiming = run(root, [
      '--actor',
      'helper',
      'bead',
      'claim',
      ...routed,
      '--wait',
      '20',
      '--json',
    ]);
    // (Whether the bead comes before or after the claim reaches the server,
    // the claim must answer with it.)
    const made = JSON.parse(
      (await run(root, ['bead', 'create', 'late work', '--routed-to', 'w', '--json'])).stdout,
    ) as { id: string };
    const claimed = await claiming;
    expect(claimed.code, claimed.stderr).toBe(0);
    expect(JSON.parse(claimed.stdout)).toMatchObject({ id: made.id, assignee: 'helper' });
    // Still nothing: a short wait answers null, not an error.
    const none = await run(root, ['bead', 'claim', ...routed, '--wait', '1', '--json']);
    expect(none.code, none.stderr).toBe(0);
    expect(JSON.parse(none.stdout)).toBeNull();
    // The merge queue: held until merged.
    branchWith(path.join(root, 'app'), 'feat', { 'f.txt': 'x\n' });
    const sub = JSON.parse(
      (await run(root, ['mq', 'submit', '--rig', 'app', '--branch', 'feat', '--json'])).stdout,
    ) as { id: string };
    const done = await run(root, ['mq', 'status', sub.id, '--wait', '--json']);
    expect(done.code, done.stderr).toBe(0);
    expect(JSON.parse(done.stdout)).toMatchObject({ id: sub.id, state: 'merged' });
    const bad = await run(root, ['bead', 'claim', '--wait', '99']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--wait: expected seconds from 0 to 30/);
  });
});

describe('small truths', () => {
  it('gc init names the scripted worker that exists; --help names $BD_ACTOR', async () => {
    const parent = await mkdtemp(path.join(os.tmpdir(), 'gc-init-'));
    roots.push(parent);
    const r = await gcBuilt(['init', path.join(parent, 'c'), '--name', 'c']);
    expect(r.code, r.stderr).toBe(0);
    const { readFile } = await import('node:fs/promises');
    const toml = await readFile(path.join(parent, 'c', 'city.toml'), 'utf8');
    const m = /# start_command = "([^"]+)"/.exec(toml);
    expect(m?.[1]).toMatch(/examples\/agents\/worker\.sh$/);
    expect(existsSync(m![1]!)).toBe(true);
    const help = await gcBuilt(['--help']);
    expect(help.stdout).toContain('$BD_ACTOR');
  });
});

describe('gc prime: the prompt a session starts with', () => {
  it('names the session and its worktree, and tells a rig agent to submit to the merge queue', async () => {
    const root = await city(false);
    await writeFile(
      path.join(root, 'city.toml'),
      '[workspace]\nname = "fh"\n[[rigs]]\nname = "app"\npath = "app"\n' +
        '[[agent]]\nname = "coder"\ndir = "app"\nprovider = "claude"\nmax_active_sessions = 4\n',
    );
    const wt = path.join(root, '.gc', 'worktrees', 'app', 'coder-3');
    await mkdir(wt, { recursive: true });
    const r = await gcBuilt(['--city', root, 'prime', '--json'], {
      cwd: wt,
      env: { GC_AGENT: 'coder', GC_SESSION_NAME: 'coder-3' },
    });
    expect(r.code, r.stderr).toBe(0);
    const p = JSON.parse(r.stdout) as { session: string; work_dir: string; prompt: string };
    expect(p).toMatchObject({ session: 'coder-3', work_dir: wt });
    expect(p.prompt).toContain(`Your work dir is ${wt}: your own git worktree of the rig app`);
    expect(p.prompt).toContain('gc mq submit --bead <id>');
    expect(p.prompt).not.toContain('gc bead close');
    const outside = await run(root, ['prime', '--agent', 'coder']);
    expect(outside.stdout).toContain('You are coder, a coding agent of coder');
  });
});

describe("an external agent's key", () => {
  it('acts as its agent without --actor; naming someone else is refused', async () => {
    const root = await city(true);
    const reg = await run(root, ['auth', 'agent', 'register', 'ext1', '--json']);
    expect(reg.code, reg.stderr).toBe(0);
    const token = (JSON.parse(reg.stdout) as { token: string }).token;
    const env = { GC_TOKEN: token };
    const made = await run(root, ['bead', 'create', 'from outside', '--json'], env);
    expect(made.code, made.stderr).toBe(0);
    const bead = JSON.parse(made.stdout) as { id: string; from: string };
    expect(bead.from).toBe('ext1');
    const claim = await run(root, ['bead', 'claim', bead.id, '--json'], env);
    expect(claim.code, claim.stderr).toBe(0);
    expect(JSON.parse(claim.stdout)).toMatchObject({ assignee: 'ext1' });
    const other = await run(root, ['--actor', 'mayor', 'bead', 'create', 'x'], env);
    expect(other.code).toBe(6);
    expect(other.stderr).toMatch(/agent ext1 cannot act as mayor/);
    // The admin key still acts as the login name.
    const mine = await run(root, ['bead', 'create', 'mine', '--json'], { USER: 'tester' });
    expect((JSON.parse(mine.stdout) as { from: string }).from).toBe('tester');
  });
});

describe('the runtime calls are for sessions', () => {
  it('request-restart outside a session is a usage error and records nothing', async () => {
    const root = await city(true);
    const before = await eventTypes(root);
    const r = await run(root, ['runtime', 'request-restart']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/for agent sessions of this city.*is not a running session/);
    expect(await eventTypes(root)).toEqual(before);
  });
});

describe('gc session attach on the subprocess provider', () => {
  it('says the provider cannot attach and what to use instead', async () => {
    const root = await city(false, 'subprocess');
    const r = await run(root, ['session', 'attach', 'w-1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/the subprocess provider cannot attach/);
    expect(r.stderr).toMatch(/gc session logs -f w-1/);
  });
});
