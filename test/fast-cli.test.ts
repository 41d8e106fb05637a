/**
 * The agent's hot commands (src/cli/fast.ts) skip the command-line parser:
 * they must answer exactly as the full program does, and only an exact
 * hot command line may take that path. Runs the built gc against a real
 * city server, also through the gc shim the city puts on its agents' PATH.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fastCommand } from '../src/cli/fast.js';
import { CONFIG_HOME, gcBuilt, type CliResult } from './helpers/cli.js';

describe('which command lines are fast', () => {
  it('takes exactly the hot commands with their own switches', () => {
    for (const args of [
      ['hook'],
      ['hook', '--json'],
      ['hook', '--inject', '--json'],
      ['runtime', 'drain-check'],
      ['runtime', 'drain-ack', '--json'],
      ['runtime', 'request-restart'],
    ]) {
      expect(fastCommand(args), args.join(' ')).toBeDefined();
    }
    for (const args of [
      [],
      ['hook', '--agent', 'w'],
      ['hook', '--help'],
      ['hook', '-h'],
      ['hook', 'extra'],
      ['--json', 'hook'],
      ['--city', '.', 'hook'],
      ['runtime'],
      ['runtime', 'drain-check', '--inject'],
      ['runtime', 'drain'],
      ['hooks'],
      ['bead', 'list'],
    ]) {
      expect(fastCommand(args), args.join(' ')).toBeUndefined();
    }
  });
});

describe('hot commands answer as the full program does', () => {
  let root = '';
  let agentEnv: NodeJS.ProcessEnv = {};
  const full = (args: string[], env = agentEnv) =>
    gcBuilt(['--city', root, ...args], { env, cwd: root });
  const fast = (args: string[], env = agentEnv) => gcBuilt(args, { env, cwd: root });
  /** The city's gc shim, as an agent's PATH finds it. */
  const shim = (args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> =>
    new Promise((resolve) => {
      execFile(
        path.join(root, '.gc', 'bin', 'gc'),
        args,
        { cwd: root, env: { ...process.env, GC_CONFIG_HOME: CONFIG_HOME, ...env } },
        (err, stdout, stderr) =>
          resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });

  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'gc-fast-'));
    expect((await gcBuilt(['init', root, '--name', 'fc'])).code).toBe(0);
    const started = await gcBuilt(['--city', root, 'start'], { env: { GC_SESSION: 'fake' } });
    expect(started.code, started.stderr).toBe(0);
    const reg = await gcBuilt(['--city', root, 'auth', 'agent', 'register', 'fc-agent', '--json']);
    expect(reg.code, reg.stderr).toBe(0);
    for (const t of ['first task', 'second task']) {
      const b = await gcBuilt(['--city', root, 'bead', 'create', t, '--routed-to', 'fc-agent']);
      expect(b.code, b.stderr).toBe(0);
    }
    agentEnv = {
      GC_API: `unix:${path.join(root, '.gc', 'gc.sock')}`,
      GC_TOKEN: (JSON.parse(reg.stdout) as { token: string }).token,
      GC_AGENT: 'fc-agent',
      GC_SESSION_NAME: 'fc-agent',
    };
  }, 60_000);
  afterAll(async () => {
    await gcBuilt(['--city', root, 'stop']);
    await rm(root, { recursive: true, force: true });
  });

  it.each([
    [['hook', '--json']],
    [['hook']],
    [['hook', '--inject']],
    [['runtime', 'drain-check']],
    [['runtime', 'drain-check', '--json']],
  ])('gc %j', async (args) => {
    const [a, b] = await Promise.all([fast(args), full(args)]);
    expect(a).toEqual(b);
    if (args[0] === 'hook') expect(a.stdout).toContain('second task');
    // A registered agent is no session of this city: refused, the same way on both paths.
    if (args[0] === 'runtime') expect(a.stderr).toMatch(/session/);
  });

  it('a refused call fails the same way, with the same JSON error', async () => {
    const bad = { ...agentEnv, GC_TOKEN: 'gck_000000000000_nope' };
    const [a, b] = await Promise.all([
      fast(['hook', '--json'], bad),
      full(['hook', '--json'], bad),
    ]);
    expect(a.code).not.toBe(0);
    expect(a).toEqual(b);
    expect((JSON.parse(a.stderr) as { error: { code: string } }).error.code).toBe(
      'unauthenticated',
    );
  });

  it('the shim answers a hook call without Node reading NODE_EXTRA_CA_CERTS', async () => {
    const env = { ...agentEnv, NODE_EXTRA_CA_CERTS: path.join(root, 'no-such-ca.pem') };
    const viaShim = await shim(['hook', '--json'], env);
    expect(viaShim.code, viaShim.stderr).toBe(0);
    expect(viaShim.stderr).toBe('');
    expect(viaShim.stdout).toBe((await fast(['hook', '--json'])).stdout);
    // Any other command keeps the variable (Node warns it cannot load the file).
    const other = await shim(['--version'], env);
    expect(other.stderr).toMatch(/extra certs/i);
  });
});
