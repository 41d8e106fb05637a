/**
 * `gc order` on the metro fixture (no server: in this process) and on a
 * running city server: orders from the city's folder and from packs beside
 * their formulas (legacy names too, the city's shadowing a pack's), gates
 * firing on the leader's tick and on events, runs by hand with --wait, a
 * run not started twice, what a restart leaves, and the mistakes users
 * make, human and --json.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CityServer } from '../src/server/index.js';
import type { Bead } from '../src/store/index.js';
import type { OrderList, OrderDetail } from '../src/client/index.js';
import type { OrderState } from '../src/orders/index.js';
import { CONFIG_HOME, REPO, gcBuilt } from './helpers/cli.js';
import { until } from './helpers/wait.js';

let tmp = '';
beforeAll(async () => {
  process.env.GC_CONFIG_HOME = CONFIG_HOME;
  tmp = await mkdtemp(path.join(os.tmpdir(), 'gc-order-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function cli(root: string) {
  const gc = (...args: string[]) => gcBuilt(['--city', root, '--actor', 'mayor', ...args]);
  const json = async <T>(...args: string[]): Promise<T> => {
    const r = await gc(...args, '--json');
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    return JSON.parse(r.stdout) as T;
  };
  return { gc, json };
}

describe('gc order on the metro fixture (no server)', () => {
  let root = '';
  let gc: ReturnType<typeof cli>['gc'];
  let json: ReturnType<typeof cli>['json'];
  beforeAll(() => {
    root = path.join(tmp, 'metro');
    cpSync(path.join(REPO, 'test/fixtures/metro'), root, { recursive: true });
    ({ gc, json } = cli(root));
  });

  it('list: the city’s and the packs’ orders (not a pack without formulas/), human and --json', async () => {
    const r = await json<OrderList>('order', 'list');
    expect(r.issues).toEqual([]);
    expect(r.orders.map((o) => [o.name, o.gate, o.kind, o.pack])).toEqual([
      ['digest', 'cooldown', 'exec', ''],
      ['nightly', 'cron', 'exec', 'ops'],
      ['on-close', 'event', 'exec', 'base'],
      ['patrol', 'cooldown', 'formula', 'ops'],
    ]);
    const digest = r.orders[0]!;
    expect(digest.shadows).toEqual([path.join(root, 'packs/base/orders/digest.toml')]);
    expect(digest.env_keys).toEqual(['DEPTH']);
    expect(JSON.stringify(r)).not.toContain('"3"');
    const human = await gc('order', 'list');
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^ORDER\s+GATE\s+WHEN\s+RUNS\s+STATE\s+DESCRIPTION/);
    expect(human.stdout).toMatch(/nightly\s+cron\s+0 3 \* \* \* \(UTC\)\s+exec true\s+on/);
    expect(human.stdout).toMatch(/patrol\s+cooldown\s+every 4h\s+formula patrol -> ops.watcher/);
    expect(human.stdout).not.toContain('unseen');
  });

  it('check and show: each gate’s decision and why', async () => {
    const states = await json<OrderState[]>('order', 'check');
    expect(states.map((s) => [s.order.name, s.decision.due])).toEqual([
      ['digest', true],
      ['nightly', false],
      ['on-close', false],
      ['patrol', true],
    ]);
    expect(states[1]!.decision.reason).toMatch(/^cron: next \d{4}-\d\d-\d\dT03:00:00Z$/);
    const human = await gc('order', 'check');
    expect(human.stdout).toMatch(/digest\s+cooldown\s+yes\s+never run/);
    const show = await gc('order', 'show', 'nightly');
    expect(show.code).toBe(0);
    expect(show.stdout).toContain('gate:     cron: 0 3 * * * (UTC)');
    expect(show.stdout).toContain(
      `file:     ${path.join(root, 'packs/ops/orders/nightly.order.toml')} (pack ops)`,
    );
    expect(show.stdout).toMatch(/now: +not due: cron: next/);
    expect(show.stdout).toContain('never run');
  });

  it('run: an exec order with its env, a formula order poured to its pool; history', async () => {
    const r = await json<{ order: string; run: Bead }>('order', 'run', 'digest');
    expect(r.run.status).toBe('closed');
    expect(r.run.close_reason).toBe('exit 0');
    expect(readFileSync(path.join(root, 'digest.out'), 'utf8')).toBe('digest 3\n');
    const human = await gc('order', 'run', 'patrol');
    expect(human.code, human.stderr).toBe(0);
    const poured = /order patrol completed: run (\S+): poured (\S+)/.exec(human.stdout);
    expect(poured).not.toBeNull();
    const mol = await json<Bead>('bead', 'show', poured![2]!);
    expect(mol.labels).toEqual(expect.arrayContaining(['order-run:patrol', 'wisp']));
    expect(mol.metadata['gc.routed_to']).toBe('ops-watcher');
    // Its molecule is open: the order is running, and is not run again.
    const again = await gc('order', 'run', 'patrol');
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain(`order patrol is still running (${poured![2]})`);
    const runs = await json<Bead[]>('order', 'history');
    expect(runs.map((b) => b.metadata['order.name'])).toEqual(['patrol', 'digest']);
    const table = await gc('order', 'history', 'digest');
    expect(table.stdout).toMatch(/^RUN\s+ORDER\s+FIRED\s+STATUS\s+OUTCOME/);
    expect(table.stdout).toMatch(/digest\s+\S+Z\s+completed\s+exit 0/);
    const detail = await json<OrderDetail>('order', 'show', 'digest');
    expect(detail.decision.reason).toMatch(/^cooldown: \d+m left$/);
    expect(detail.runs.map((b) => b.id)).toEqual([r.run.id]);
  });

  it('mistakes: an unknown order, a broken file, a bad limit; nothing changes', async () => {
    const before = await json<Bead[]>('order', 'history');
    const typo = await gc('order', 'run', 'digets');
    expect(typo.code).not.toBe(0);
    expect(typo.stderr).toContain('order not found: digets');
    expect(typo.stderr).toContain('did you mean digest?');
    writeFileSync(
      path.join(root, 'orders', 'broken.toml'),
      '[order]\nexec = "true"\ngate = "cron"\nschedule = "0 3 * *"\n',
    );
    const list = await gc('order', 'list');
    expect(list.code).toBe(0);
    expect(list.stderr).toContain(
      `warning: ${path.join(root, 'orders/broken.toml')}:4:1: order.schedule: a cron schedule has 5 fields`,
    );
    const show = await gc('order', 'show', 'broken');
    expect(show.code).not.toBe(0);
    expect(show.stderr).toContain('orders/broken.toml:4:1');
    const bad = await gc('order', 'history', '--limit', '0');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--limit: expected a whole number from 1 to 1000, got "0"');
    expect(await json<Bead[]>('order', 'history')).toEqual(before);
  });
});

describe('gc order on a city server', () => {
  let root = '';
  let server: CityServer | undefined;
  let gc: ReturnType<typeof cli>['gc'];
  let json: ReturnType<typeof cli>['json'];
  const start = async () => {
    server = await CityServer.start({ root, sessionProvider: 'fake', log: () => undefined });
  };
  beforeAll(async () => {
    root = path.join(tmp, 'live');
    mkdirSync(path.join(root, 'orders'), { recursive: true });
    writeFileSync(
      path.join(root, 'city.toml'),
      '[workspace]\nname = "live"\n[daemon]\npatrol_interval = "1h"\n[orders]\ntick = "200ms"\n',
    );
    const order = (name: string, body: string) =>
      writeFileSync(path.join(root, 'orders', `${name}.toml`), `[order]\n${body}\n`);
    order('hourly', 'exec = "echo tick >> hourly.out"\ngate = "cooldown"\ninterval = "1h"');
    order(
      'closes',
      'exec = "echo $GC_EVENT_SEQ >> closes.out"\ngate = "event"\non = "bead.closed"',
    );
    order('when', 'exec = "echo ran >> when.out"\ngate = "condition"\ncheck = "test -f go"');
    order(
      'slow',
      'exec = "echo started > slow.out; while [ ! -f release ]; do sleep 0.05; done"\ngate = "manual"',
    );
    ({ gc, json } = cli(root));
    await start();
  });
  afterAll(async () => {
    await server?.stop('test');
  });
  const lines = (f: string) =>
    existsSync(path.join(root, f))
      ? readFileSync(path.join(root, f), 'utf8').trim().split('\n')
      : [];

  it('the leader fires due orders: cooldown once, events as they come, a condition once true', async () => {
    await until(
      'the cooldown order ran',
      () => Promise.resolve(lines('hourly.out')),
      (l) => l.length === 1,
      10_000,
      50,
    );
    const b = await json<Bead>('bead', 'create', 'some work');
    await gc('bead', 'close', b.id);
    await until(
      'the event order ran',
      () => Promise.resolve(lines('closes.out')),
      (l) => l.length === 1,
      10_000,
      50,
    );
    writeFileSync(path.join(root, 'go'), '');
    await until(
      'the condition order ran',
      () => Promise.resolve(lines('when.out')),
      (l) => l.length >= 1,
      10_000,
      50,
    );
    await new Promise((r) => setTimeout(r, 600));
    expect(lines('hourly.out')).toEqual(['tick']);
    expect(lines('closes.out')).toHaveLength(1);
    const fired = (
      await json<{ type: string; payload: { order: string } }[]>('events', '--type', 'order.fired')
    ).map((e) => e.payload.order);
    expect(fired.filter((o) => o === 'hourly')).toHaveLength(1);
  });

  it('run --wait, and a long run is not started twice; a restart closes what it left', async () => {
    const waited = await json<{ run: Bead }>('order', 'run', 'hourly', '--wait');
    expect(waited.run.status).toBe('closed');
    expect(lines('hourly.out')).toEqual(['tick', 'tick']);
    const started = await json<{ run: Bead }>('order', 'run', 'slow');
    expect(started.run.status).toBe('open');
    const twice = await gc('order', 'run', 'slow');
    expect(twice.code).not.toBe(0);
    expect(twice.stderr).toContain(`order slow is still running (${started.run.id})`);
    await server!.stop('test');
    server = undefined;
    await start();
    const runs = await json<Bead[]>('order', 'history', 'slow');
    expect(runs[0]!.close_reason).toBe('failed: interrupted: the server stopped');
    // The cooldown order ran within the hour: the restart does not run it again.
    await new Promise((r) => setTimeout(r, 600));
    expect(lines('hourly.out')).toEqual(['tick', 'tick']);
    writeFileSync(path.join(root, 'release'), '');
    const ok = await gc('order', 'run', 'slow', '--wait');
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^order slow completed: run \S+: exit 0/);
  });
});
