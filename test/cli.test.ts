/** End-to-end tests of the gc and bd command lines against a real city on disk. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CityServer } from '../src/server/index.js';
import { CityLock } from '../src/city/index.js';
import type { Bead } from '../src/store/index.js';
import type { GcEvent } from '../src/events/index.js';
import { waitFor } from './helpers/wait.js';
import { CONFIG_HOME, bd, gc, killSpawned, spawnBuilt, stdoutLines } from './helpers/cli.js';

const root = mkdtempSync(join(tmpdir(), 'gc-cli-'));
const city = join(root, 'town');
const at = { cwd: city };
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(() => killSpawned());

beforeAll(async () => {
  const r = await gc(['init', city, '--name', 'town']);
  expect(r.code).toBe(0);
  expect(r.stdout).toContain('created city "town"');
});

const json = <T>(s: string): T => JSON.parse(s) as T;

describe('gc init', () => {
  it('refuses to overwrite an existing city without --force', async () => {
    const r = await gc(['init', city]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/already exists/);
    expect(r.stderr).toMatch(/--force/);
  });

  it('commands outside a city say how to fix it', async () => {
    const r = await gc(['bead', 'list'], { cwd: root });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/not in a city/);
    expect(r.stderr).toMatch(/gc init/);
  });
});

/**
 * The bead commands run twice: on the city files (no server) and through a
 * running city server, where the CLI talks to the API. Same script, same
 * expectations: the CLI must behave the same either way.
 */
for (const mode of ['local', 'server'] as const) {
  const town = mode === 'local' ? city : join(root, 'town-server');
  const at = { cwd: town };
  let server: CityServer | undefined;
  beforeAll(async () => {
    if (mode === 'local') return;
    expect((await gc(['init', town, '--name', 'townsrv'])).code).toBe(0);
    process.env.GC_CONFIG_HOME = CONFIG_HOME;
    server = await CityServer.start({ root: town, sessionProvider: 'fake', log: () => undefined });
  });
  afterAll(async () => {
    await server?.stop('test done');
  });

  describe(`gc bead (${mode})`, () => {
    it('create, show, list, ready, claim, close, with --json data only on stdout', async () => {
      const title = 'Fix "quotes"; $(rm -rf /) `x` ✓ 漢字';
      const c = await gc(
        [
          'bead',
          'create',
          title,
          '-p',
          '1',
          '-t',
          'bug',
          '--label',
          'ui,backend',
          '--meta',
          'k=v=w',
          '--json',
        ],
        at,
      );
      expect(c.code).toBe(0);
      expect(c.stderr).toBe('');
      const a = json<Bead>(c.stdout);
      expect(a).toMatchObject({
        title,
        priority: 1,
        issue_type: 'bug',
        labels: ['backend', 'ui'],
        metadata: { k: 'v=w' },
        from: 'tester',
      });

      const b = json<Bead>(
        (await gc(['bead', 'create', 'second', '--needs', a.id, '--json'], at)).stdout,
      );
      expect(b.dependencies).toEqual([{ issue_id: b.id, depends_on_id: a.id, type: 'blocks' }]);

      const ready = json<Bead[]>((await gc(['bead', 'ready', '--json'], at)).stdout);
      expect(ready.map((x) => x.id)).toEqual([a.id]);

      const claimed = await gc(['bead', 'claim', '--actor', 'worker-1', '--json'], at);
      expect(json<Bead>(claimed.stdout)).toMatchObject({
        id: a.id,
        assignee: 'worker-1',
        status: 'in_progress',
        attempt: 1,
      });

      const stolen = await gc(['bead', 'claim', a.id, '--actor', 'worker-2'], at);
      expect(stolen.code).toBe(4);
      expect(stolen.stderr).toMatch(/already claimed by worker-1/);

      const closed = await gc(['bead', 'close', a.id, '-r', 'fixed', '--json'], at);
      expect(json<Bead>(closed.stdout)).toMatchObject({ status: 'closed', close_reason: 'fixed' });
      expect((await gc(['bead', 'close', a.id], at)).stdout).toMatch(/already closed/);

      expect(
        json<Bead[]>((await gc(['bead', 'ready', '--json'], at)).stdout).map((x) => x.id),
      ).toEqual([b.id]);
      const shown = json<Bead>((await gc(['bead', 'show', a.id, '--json'], at)).stdout);
      expect(shown.title).toBe(title);

      const table = (await gc(['bead', 'list', '--all'], at)).stdout;
      expect(table.split('\n')[0]).toMatch(/^ID\s+P\s+STATUS\s+TYPE\s+ASSIGNEE\s+TITLE$/);
      expect(table).toContain(b.id);
    });

    it('update: absent options change nothing; labels, metadata, status', async () => {
      const x = json<Bead>(
        (await gc(['bead', 'create', 'upd', '-d', 'keep me', '--json'], at)).stdout,
      );
      const u = json<Bead>(
        (
          await gc(
            [
              'bead',
              'update',
              x.id,
              '--add-label',
              'a',
              '--set-metadata',
              'gc.routed_to=coder',
              '--priority',
              'P0',
              '--json',
            ],
            at,
          )
        ).stdout,
      );
      expect(u).toMatchObject({
        description: 'keep me',
        labels: ['a'],
        priority: 0,
        metadata: { 'gc.routed_to': 'coder' },
      });
      const nothing = await gc(['bead', 'update', x.id], at);
      expect(nothing.code).toBe(2);
      expect(nothing.stderr).toMatch(/nothing to update/);
      const unclaimed = await gc(['bead', 'unclaim', x.id, '--json'], at);
      expect(json<Bead>(unclaimed.stdout).status).toBe('open');
    });

    it('deps: add, list down and up, remove', async () => {
      const p = json<Bead>((await gc(['bead', 'create', 'p', '--json'], at)).stdout);
      const q = json<Bead>((await gc(['bead', 'create', 'q', '--json'], at)).stdout);
      expect((await gc(['bead', 'dep', 'add', q.id, p.id, '-t', 'waits-for'], at)).code).toBe(0);
      expect(
        json<unknown[]>((await gc(['bead', 'dep', 'list', p.id, '--up', '--json'], at)).stdout),
      ).toEqual([{ issue_id: q.id, depends_on_id: p.id, type: 'waits-for' }]);
      const cycle = await gc(['bead', 'dep', 'add', p.id, q.id], at);
      expect(cycle.code).toBe(4);
      expect(cycle.stderr).toMatch(/cycle/);
      expect((await gc(['bead', 'dep', 'remove', q.id, p.id], at)).code).toBe(0);
      expect(
        json<unknown[]>((await gc(['bead', 'dep', 'list', q.id, '--json'], at)).stdout),
      ).toEqual([]);
    });

    it('bad input: clear message, usage exit code, JSON errors on stderr', async () => {
      const r = await gc(['bead', 'create', 'x', '-p', '9'], at);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/--priority: expected 0-4/);
      const missing = await gc(['bead', 'show', 'tw-nope', '--json'], at);
      expect(missing.code).toBe(3);
      expect(missing.stdout).toBe('');
      expect(json<{ error: { code: string } }>(missing.stderr).error.code).toBe('not_found');
      const big = await gc(['bead', 'create', 't'.repeat(5000)], at);
      expect(big.code).toBe(2);
      expect(big.stderr).toMatch(/title is 5000 bytes; the limit is 4096/);
      expect((await gc(['bead', 'frobnicate'], at)).code).toBe(2);
    });
  });

  describe(`bd (${mode})`, () => {
    it('accepts the forms agent prompts use', async () => {
      const parent = json<Bead>(
        (await bd(['create', 'epic', '-t', 'epic', '-p', '1', '--json'], at)).stdout,
      );
      const dep = json<Bead>((await bd(['create', 'first', '--json'], at)).stdout);
      const child = json<Bead>(
        (
          await bd(
            [
              'create',
              'child "q"',
              '-t',
              'task',
              '-p',
              '0',
              '--parent',
              parent.id,
              '--deps',
              dep.id,
              '-d',
              'line1\nline2',
              '--json',
            ],
            at,
          )
        ).stdout,
      );
      expect(child).toMatchObject({ parent: parent.id, priority: 0, description: 'line1\nline2' });
      expect(json<Bead>((await bd(['show', child.id, '--json'], at)).stdout).id).toBe(child.id);
      const claimed = json<Bead>(
        (
          await bd(['update', dep.id, '--claim', '--json'], {
            ...at,
            env: { GC_SESSION_NAME: 'polecat-1' },
          })
        ).stdout,
      );
      expect(claimed).toMatchObject({ assignee: 'polecat-1', status: 'in_progress' });
      const mine = json<Bead[]>(
        (await bd(['list', '--assignee', 'polecat-1', '--json'], at)).stdout,
      );
      expect(mine.map((b) => b.id)).toEqual([dep.id]);
      expect((await bd(['close', dep.id, '-r', 'done'], at)).code).toBe(0);
      const ready = json<Bead[]>((await bd(['ready', '--json', '-n', '50'], at)).stdout);
      expect(ready.map((b) => b.id)).toContain(child.id);
      await bd(
        [
          'update',
          child.id,
          '--status',
          'in_progress',
          '--assignee',
          'x',
          '--set-metadata',
          'a=1',
          '--add-label',
          'l',
        ],
        at,
      );
      expect(json<Bead>((await bd(['show', child.id, '--json'], at)).stdout)).toMatchObject({
        status: 'in_progress',
        metadata: { a: '1' },
        labels: ['l'],
      });
      expect((await bd(['dep', 'add', parent.id, dep.id, '-t', 'related'], at)).code).toBe(0);
    });
  });
}

describe('gc events', () => {
  /** A city of its own with `n` beads created and the first closed. */
  async function eventsCity(name: string, n: number): Promise<{ cwd: string }> {
    const dir = join(root, name);
    expect((await gc(['init', dir, '--name', name])).code).toBe(0);
    const where = { cwd: dir };
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      ids.push(json<Bead>((await gc(['bead', 'create', `ev-${i}`, '--json'], where)).stdout).id);
    }
    if (ids[0]) expect((await gc(['bead', 'close', ids[0]], where)).code).toBe(0);
    return where;
  }

  it('lists transitions with filters', async () => {
    const where = await eventsCity('evlist', 4);
    const all = json<GcEvent[]>((await gc(['events', '--json'], where)).stdout);
    expect(all.map((e) => e.type)).toEqual([
      'bead.created',
      'bead.created',
      'bead.created',
      'bead.created',
      'bead.closed',
    ]);
    expect(all.map((e) => e.seq)).toEqual(all.map((_, i) => i + 1));
    const closed = json<GcEvent[]>(
      (await gc(['events', '--type', 'bead.closed', '--json'], where)).stdout,
    );
    expect(closed.map((e) => e.seq)).toEqual([5]);
    const last2 = json<GcEvent[]>((await gc(['events', '--last', '2', '--json'], where)).stdout);
    expect(last2.map((e) => e.seq)).toEqual([4, 5]);
    // --last with a filter: the last n that match, not the matches among the last n.
    const lastCreated = json<GcEvent[]>(
      (await gc(['events', '--type', 'bead.created', '--last', '2', '--json'], where)).stdout,
    );
    expect(lastCreated.map((e) => e.seq)).toEqual([3, 4]);
  });

  it('--since takes a duration or an RFC 3339 time, with or without a server', async () => {
    const where = await eventsCity('evsince', 2);
    const since = async (value: string): Promise<number[]> => {
      const r = await gc(['events', '--since', value, '--json'], where);
      expect(r.code, r.stderr).toBe(0);
      return json<GcEvent[]>(r.stdout).map((e) => e.seq);
    };
    const future = new Date(Date.now() + 3_600_000).toISOString();
    const past = new Date(Date.now() - 3_600_000).toISOString();
    const local = [await since('2m'), await since(past), await since(future)];
    expect(local).toEqual([[1, 2, 3], [1, 2, 3], []]);
    process.env.GC_CONFIG_HOME = CONFIG_HOME;
    const server = await CityServer.start({
      root: where.cwd,
      sessionProvider: 'fake',
      log: () => undefined,
    });
    try {
      // The server records its own start; the bead events are the same.
      const remote = [await since('2m'), await since(past), await since(future)];
      expect(remote.map((seqs) => seqs.filter((s) => s <= 3))).toEqual(local);
      const bad = await gc(['events', '--since', 'yesterday-ish'], where);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/--since: expected an RFC 3339 time or a duration/);
    } finally {
      await server.stop('test done');
    }
    // Eight CLI runs and a server start: more than the default limit on a loaded machine.
  }, 90_000);

  it('--follow --json streams NDJSON of new events from other processes', async () => {
    const where = await eventsCity('evfollow', 1);
    const latest = json<GcEvent[]>((await gc(['events', '--last', '1', '--json'], where)).stdout);
    const after = latest[0]!.seq;
    // From a known seq: what the follower prints does not depend on when it
    // starts, only on what is written after that seq.
    const child = spawnBuilt(['events', '--follow', '--json', '--after', String(after)], where);
    try {
      const lines = stdoutLines(child, 2);
      // The follower takes no lock: writers keep working while it runs.
      expect((await gc(['bead', 'create', 'followed-1'], where)).code).toBe(0);
      expect((await gc(['bead', 'create', 'followed-2'], where)).code).toBe(0);
      const events = (await lines).map((l) => json<GcEvent>(l));
      expect(events.map((e) => [e.type, e.seq])).toEqual([
        ['bead.created', after + 1],
        ['bead.created', after + 2],
      ]);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('gc events --follow across a server restart', () => {
  it('says the stream was lost, waits, and resumes after the last seq; --no-reconnect exits', async () => {
    const dir = join(root, 'evrestart');
    expect((await gc(['init', dir, '--name', 'evrestart'])).code).toBe(0);
    const where = { cwd: dir };
    process.env.GC_CONFIG_HOME = CONFIG_HOME;
    const start = () =>
      CityServer.start({ root: dir, sessionProvider: 'fake', log: () => undefined });
    let server = await start();
    try {
      const first = json<Bead>((await gc(['bead', 'create', 'before', '--json'], where)).stdout);
      const beads = ['--type', 'bead.*', '--json', '--after', '0'];
      const follower = spawnBuilt(['events', '--follow', ...beads], where);
      const quitter = spawnBuilt(['events', '--follow', '--no-reconnect', ...beads], where);
      let stderr = '';
      let out = '';
      follower.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      follower.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const quit = new Promise<{ code: number | null; err: string }>((resolve) => {
        let err = '';
        quitter.stderr.on('data', (d: Buffer) => (err += d.toString()));
        quitter.on('exit', (code) => resolve({ code, err }));
      });
      // Both are streaming from the server (they printed the first bead)
      // before it stops.
      await waitFor(() => out.includes(first.id), 'the follower to stream');
      await stdoutLines(quitter, 1);
      await server.stop('restart');
      await waitFor(
        () => /event stream lost after seq \d+/.test(stderr),
        'the lost-stream message',
      );
      const q = await quit;
      expect(q.code).toBe(1);
      expect(q.err).toMatch(/the event stream ended after seq \d+/);
      server = await start();
      const second = json<Bead>((await gc(['bead', 'create', 'after', '--json'], where)).stdout);
      await waitFor(() => out.includes(second.id), 'the follower to resume');
      const got = out
        .trim()
        .split('\n')
        .map((l) => json<GcEvent>(l));
      expect(got.map((e) => e.subject)).toEqual([first.id, second.id]);
      await waitFor(
        () => /reconnected; resuming after seq \d+/.test(stderr),
        'the resumed message',
      );
    } finally {
      await server.stop('test done');
    }
  });
});

describe('config commands and the lock', () => {
  it('config validate exits 2 with positions; show --json gives sources', async () => {
    const bad = join(root, 'bad');
    expect((await gc(['init', bad], {})).code).toBe(0);
    writeFileSync(
      join(bad, 'city.toml'),
      '[workspace]\nname = "bad"\n[daemon]\npatrol_interval = "soon"\nmax_restart = 3\n',
    );
    const v = await gc(['config', 'validate'], { cwd: bad });
    expect(v.code).toBe(2);
    expect(v.stderr).toContain(
      `error: ${join(bad, 'city.toml')}:4:1: daemon.patrol_interval: expected a Go-style duration`,
    );
    writeFileSync(join(bad, 'city.toml'), '[workspace]\nname = "bad"\n[daemon]\nmax_restart = 3\n');
    const w = await gc(['config', 'validate'], { cwd: bad });
    expect(w.code).toBe(0);
    expect(w.stderr).toMatch(
      /4:1: daemon\.max_restart: unknown key \(did you mean "max_restarts"\?\)/,
    );
    const s = json<{ sources: Record<string, unknown> }>(
      (await gc(['config', 'show', '--json'], { cwd: bad, env: { GC_SESSION: 'subprocess' } }))
        .stdout,
    );
    expect(s.sources['session.provider']).toEqual({ kind: 'env', name: 'GC_SESSION' });
    // A database password never reaches the output, in either form.
    const env = { GC_DATABASE_URL: 'postgres://gc:hunter2@db.example:5432/city' };
    const shown = await gc(['config', 'show', '--json'], { cwd: bad, env });
    expect(shown.stdout).not.toContain('hunter2');
    expect(json<{ config: { database: { url: string } } }>(shown.stdout).config.database.url).toBe(
      'postgres://gc:***@db.example:5432/city',
    );
    const text = await gc(['config', 'show'], { cwd: bad, env });
    expect(text.stdout).toContain('database.url');
    expect(text.stdout + text.stderr).not.toContain('hunter2');
  });

  it('a running city server holding the lock is reported, not waited on', async () => {
    const lock = await CityLock.acquire(join(city, '.gc', 'city.lock'), { role: 'server' });
    try {
      const r = await gc(['bead', 'list'], at);
      expect(r.code).toBe(5);
      expect(r.stderr).toMatch(/city server \(pid \d+\) is running/);
    } finally {
      await lock.release();
    }
    expect((await gc(['bead', 'list'], at)).code).toBe(0);
  });

  it('a stale lock from a dead process is taken over', async () => {
    writeFileSync(
      join(city, '.gc', 'city.lock'),
      JSON.stringify({
        pid: 999_999,
        role: 'cli',
        host: (await import('node:os')).hostname(),
        started_at: 'x',
      }),
    );
    expect((await gc(['bead', 'list'], at)).code).toBe(0);
  });
});
