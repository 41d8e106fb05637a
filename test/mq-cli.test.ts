/**
 * `gc rig` and `gc mq` end to end on a real city and real git: a request
 * submitted on the city files waits, the server merges it when it starts;
 * requests submitted through the server merge, conflict, and show up in
 * list, status and stats; an agent submits as itself and cannot reject.
 * Each test makes its own city and repository, so any one runs alone.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { existsSync } from 'node:fs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CityServer } from '../src/server/index.js';
import { CONFIG_HOME, gcBuilt } from './helpers/cli.js';
import { Scratch, database } from './helpers/db.js';
import { branchWith, git, makeRepo } from './helpers/git.js';
import { apiCall } from './helpers/http.js';
import { until } from './helpers/wait.js';

interface Mr {
  id: string;
  state: string;
  author: string;
  branch: string;
  merged_sha: string;
  created: boolean;
}

describe('gc rig and gc mq', () => {
  let root = '';
  let repo = '';
  let server: CityServer | undefined;
  const gc = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    gcBuilt(['--city', root, '--actor', 'mayor', ...args], { env });
  const json = async <T>(args: string[]): Promise<T> => {
    const r = await gc([...args, '--json']);
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    return JSON.parse(r.stdout) as T;
  };
  const reach = (id: string, states: string[]): Promise<Mr> =>
    until(
      `${id} to reach ${states.join('/')}`,
      () => json<Mr>(['mq', 'status', id]),
      (m) => states.includes(m.state),
    );

  /** A city with a git repository beside it; `rig` adds it as rig "app" in city.toml. */
  async function city(rig: string | undefined): Promise<void> {
    process.env.GC_CONFIG_HOME = CONFIG_HOME;
    root = await mkdtemp(path.join(os.tmpdir(), 'gc-mqcli-'));
    repo = path.join(root, 'app');
    makeRepo(repo);
    await writeFile(
      path.join(root, 'city.toml'),
      '# the city\n[workspace]\nname = "mqcity"\n[daemon]\npatrol_interval = "1h"\n' + (rig ?? ''),
    );
  }
  const APP = '[[rigs]]\nname = "app"\npath = "app"\nmerge_workers = 2\n';
  const startServer = async (): Promise<CityServer> =>
    (server = await CityServer.start({ root, sessionProvider: 'fake', log: () => undefined }));

  afterEach(async () => {
    await server?.stop('test done');
    server = undefined;
    await rm(root, { recursive: true, force: true });
  });

  it('rig add validates, edits city.toml and keeps its comments; list and remove', async () => {
    await city(undefined);
    const notRepo = await gc(['rig', 'add', 'x', root + '/nope']);
    expect(notRepo.code).toBe(2);
    expect(notRepo.stderr).toMatch(/does not exist/);
    const bad = await gc(['rig', 'add', 'bad name', repo]);
    expect(bad.code).toBe(2);
    const added = await json<{ name: string; path: string; target_exists: boolean }>([
      'rig',
      'add',
      'app',
      repo,
      '--workers',
      '2',
    ]);
    expect(added).toEqual({
      name: 'app',
      path: 'app',
      target: 'main',
      target_exists: true,
      includes: [],
      gates: {},
    });
    expect((await gc(['rig', 'add', 'app', repo])).code).toBe(4);
    const gated = await json<{ gates: Record<string, string> }>([
      'rig',
      'add',
      'spare',
      repo,
      '--test',
      'npm test',
      '--gate',
      'lint=npm run lint',
    ]);
    expect(gated.gates).toEqual({ lint: 'npm run lint', test: 'npm test' });
    const badGate = await gc(['rig', 'add', 'other', repo, '--gate', 'deploy=make']);
    expect(badGate.code).toBe(2);
    expect(badGate.stderr).toMatch(
      /--gate: expected NAME=COMMAND with NAME one of setup, typecheck, lint, test/,
    );
    const spareCfg = await json<{
      config: { rigs: { name: string; gates: Record<string, { command: string }> }[] };
    }>(['config', 'show']);
    expect(spareCfg.config.rigs.find((r) => r.name === 'spare')?.gates).toMatchObject({
      test: { command: 'npm test' },
      lint: { command: 'npm run lint' },
    });
    const rigs = await json<{ name: string; merge_workers: number }[]>(['rig', 'list']);
    expect(rigs.map((r) => [r.name, r.merge_workers])).toEqual([
      ['app', 2],
      ['spare', 1],
    ]);
    await json(['rig', 'remove', 'spare']);
    expect((await json<{ name: string }[]>(['rig', 'list'])).map((r) => r.name)).toEqual(['app']);
    const { readFile } = await import('node:fs/promises');
    expect(await readFile(path.join(root, 'city.toml'), 'utf8')).toMatch(/^# the city\n/);
  });

  it('a request submitted with no server waits; the server merges it when it starts', async () => {
    await city(APP);
    branchWith(repo, 'early', { 'early.txt': 'e' });
    const mr = await json<Mr>(['mq', 'submit', '--branch', 'early']);
    expect(mr).toMatchObject({ state: 'queued', author: 'mayor', created: true });
    expect((await json<Mr[]>(['mq', 'list'])).map((m) => m.id)).toEqual([mr.id]);
    await startServer();
    const done = await reach(mr.id, ['merged']);
    expect(done.merged_sha).toBe(git(repo, 'rev-parse', 'main'));
  });

  it('through the server: merges, a conflict routed back, list, stats, rig status', async () => {
    await city(APP);
    await startServer();
    // Submitted from inside a worktree on the branch: branch and head come from there.
    const wt = path.join(root, 'wt-a');
    git(repo, 'worktree', 'add', '-q', '-b', 'feat-a', wt, 'main');
    await writeFile(path.join(wt, 'README.md'), 'from a\n');
    git(wt, 'commit', '-qam', 'a edits README');
    const fromWt = await gcBuilt(['--city', root, '--actor', 'mayor', 'mq', 'submit', '--json'], {
      cwd: wt,
    });
    expect(fromWt.code, fromWt.stderr).toBe(0);
    const a = JSON.parse(fromWt.stdout) as Mr;
    expect(a.branch).toBe('feat-a');
    await reach(a.id, ['merged']);
    branchWith(repo, 'feat-b', { 'README.md': 'from b\n' }, 'main~1');
    const b = await json<Mr>(['mq', 'submit', '--branch', 'feat-b']);
    const failed = await reach(b.id, ['needs-rebase']);
    const status = await gc(['mq', 'status', failed.id]);
    expect(status.stdout).toContain('README.md');
    expect(status.stdout).toMatch(/conflict bead/);
    const again = await json<Mr>(['mq', 'submit', '--branch', 'feat-b']);
    expect(again).toMatchObject({ id: b.id, created: false });
    const all = await json<Mr[]>(['mq', 'list', '--all']);
    expect(all.map((m) => [m.id, m.state])).toEqual([
      [b.id, 'needs-rebase'],
      [a.id, 'merged'],
    ]);
    const stats = await json<{ rig: string; merged_total: number; conflict_rate: number }[]>([
      'mq',
      'stats',
    ]);
    expect(stats[0]).toMatchObject({ rig: 'app', merged_total: 1 });
    expect(stats[0]!.conflict_rate).toBeCloseTo(1 / 2);
    const rs = await json<{ name: string; target_head: string; mq: { depth: number } }[]>([
      'rig',
      'status',
    ]);
    expect(rs[0]).toMatchObject({ name: 'app', target_head: git(repo, 'rev-parse', 'main') });
    const text = await gc(['mq', 'stats']);
    expect(text.stdout).toMatch(/^RIG\s+DEPTH/);
  });

  it("an agent submits as itself; it may not reject, nor retry another agent's request", async () => {
    await city(APP);
    const srv = await startServer();
    // Someone else's request that failed: branched from main, and main then
    // changed the same file, so it conflicts.
    branchWith(repo, 'clash', { 'README.md': 'clash\n' });
    git(
      repo,
      'update-ref',
      'refs/heads/main',
      branchWith(repo, 'moved', { 'README.md': 'moved\n' }),
    );
    const others = await json<Mr>(['mq', 'submit', '--branch', 'clash']);
    await reach(others.id, ['needs-rebase']);

    const token = (await srv.keys.create({ kind: 'agent', name: 'polecat-7' })).token;
    branchWith(repo, 'agent-work', { 'agent.txt': 'x' });
    const sock = { socketPath: srv.socketPath };
    const sub = await apiCall(sock, 'POST', '/v0/mq', { token, body: { branch: 'agent-work' } });
    expect(sub.status).toBe(200);
    const mr = sub.body as unknown as Mr;
    expect(mr.author).toBe('polecat-7');
    const rej = await apiCall(sock, 'POST', `/v0/mq/${mr.id}/reject`, { token, body: {} });
    expect(rej.status).toBe(403);
    const bad = await apiCall(sock, 'POST', '/v0/mq', {
      token,
      body: { branch: 'x', head: 'nope' },
    });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('body.head');
    await reach(mr.id, ['merged']);
    // Someone else's failed request: not the agent's to retry.
    const retry = await apiCall(sock, 'POST', `/v0/mq/${others.id}/retry`, { token, body: {} });
    expect(retry.status).toBe(403);
    // Its own, merged: nothing to retry.
    const own = await apiCall(sock, 'POST', `/v0/mq/${mr.id}/retry`, { token, body: {} });
    expect(own.status).toBe(409);
    // The author may retry its own failed request.
    const mine = await gc(['mq', 'retry', others.id, '--json']);
    expect(mine.code, mine.stderr).toBe(0);
  });
});

for (const kind of ['postgres', 'mysql'] as const) {
  const server = await database(kind);
  describe.skipIf(!server.url)(`gc mq with the city on ${kind}${server.note}`, () => {
    const scratch = new Scratch(server.url ?? '');
    const dirs: string[] = [];
    let srv: CityServer | undefined;
    afterAll(async () => {
      await srv?.stop('test done');
      for (const d of dirs) await rm(d, { recursive: true, force: true });
      await scratch.dropAll();
    });

    it('a request the CLI queues in the database waits; the server merges it; stats and rows agree', async () => {
      process.env.GC_CONFIG_HOME = CONFIG_HOME;
      const root = await mkdtemp(path.join(os.tmpdir(), `gc-mqdb-${kind}-`));
      dirs.push(root);
      const repo = path.join(root, 'app');
      makeRepo(repo);
      const url = await scratch.createDatabase();
      await writeFile(
        path.join(root, 'city.toml'),
        `[workspace]\nname = "mqdb"\n[daemon]\npatrol_interval = "1h"\n[database]\nurl = "${url}"\n[[rigs]]\nname = "app"\npath = "app"\n`,
      );
      const gc = async <T>(args: string[]): Promise<T> => {
        const r = await gcBuilt(['--city', root, '--actor', 'mayor', ...args, '--json']);
        expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
        return JSON.parse(r.stdout) as T;
      };
      branchWith(repo, 'early', { 'early.txt': 'e' });
      const mr = await gc<Mr>(['mq', 'submit', '--branch', 'early']);
      expect(mr).toMatchObject({ state: 'queued', created: true });
      expect((await gc<Mr[]>(['mq', 'list'])).map((m) => m.id)).toEqual([mr.id]);
      srv = await CityServer.start({ root, sessionProvider: 'fake', log: () => undefined });
      const done = await until(
        `${mr.id} merged`,
        () => gc<Mr>(['mq', 'status', mr.id]),
        (m) => m.state === 'merged',
      );
      expect(done.merged_sha).toBe(git(repo, 'rev-parse', 'main'));
      const stats = await gc<{ rig: string; merged_total: number }[]>(['mq', 'stats']);
      expect(stats).toMatchObject([{ rig: 'app', merged_total: 1 }]);
      // The queue lives in the database only.
      expect(existsSync(path.join(root, '.gc', 'mq.db'))).toBe(false);
    });
  });
}
