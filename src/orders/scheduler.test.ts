/**
 * The order scheduler over a real CityOps (memory store, event log) and
 * real `sh`, on a fake clock: cron, cooldown, event and condition gates
 * fire exactly when due; a restart after missed slots fires once; a
 * long-running order is not started twice; runs end as completed, failed,
 * timed out or interrupted, with their env; formula orders pour a wisp.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CityOps } from '../city/index.js';
import { FakeClock } from '../core/index.js';
import { MemoryEventLog } from '../events/index.js';
import { discoverFormulas } from '../formula/index.js';
import { MemoryStore, ROUTED_TO } from '../store/index.js';
import { OrderScheduler, readOrder, type Discovered, type OrderSpec } from './index.js';

const T = Date.parse('2026-03-04T10:00:00Z');
const MIN = 60_000;
const running: OrderScheduler[] = [];

afterEach(async () => {
  for (const s of running.splice(0)) await s.stop();
});

function city(files: Record<string, string>, tweak: (o: OrderSpec) => OrderSpec = (o) => o) {
  const root = mkdtempSync(path.join(tmpdir(), 'gc-orders-'));
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    writeFileSync(path.join(root, f), text);
  }
  const ops = new CityOps(new MemoryStore(), new MemoryEventLog());
  const clock = new FakeClock(T);
  const logs: string[] = [];
  const discovered = (): Discovered => ({
    orders: Object.keys(files)
      .filter((f) => f.startsWith('orders/'))
      .map((f) =>
        tweak(
          readOrder({
            name: path.basename(f, '.toml'),
            file: path.join(root, f),
            pack: '',
            packDir: root,
          }),
        ),
      ),
    skipped: [],
    issues: [],
  });
  const make = () => {
    const s = new OrderScheduler(
      {
        ops,
        root,
        clock,
        orders: discovered,
        formulas: () => discoverFormulas({ root }),
        agents: () => [{ name: 'worker' }],
        log: (l) => logs.push(l),
      },
      3_600_000,
    );
    running.push(s);
    return s;
  };
  return { root, ops, clock, logs, make };
}

const exec = (gate: string, more = '', command = 'true') =>
  `[order]\nexec = ${JSON.stringify(command)}\ngate = "${gate}"\n${more}\n`;

async function settle(s: OrderScheduler, runs: { run: { id: string } }[]) {
  for (const r of runs) await s.settled(r.run.id);
}

const names = (runs: { order: string }[]) => runs.map((r) => r.order);

describe('order scheduler', () => {
  it('cron fires on its slot, once a minute at most, and once after missed slots', async () => {
    const c = city({ 'orders/tick.toml': exec('cron', 'schedule = "*/5 * * * *"\ntz = "UTC"') });
    let s = c.make();
    let runs = await s.tick();
    expect(names(runs)).toEqual(['tick']);
    await settle(s, runs);
    c.clock.advance(30_000);
    expect(await s.tick()).toEqual([]);
    c.clock.advance(2 * MIN);
    expect(await s.tick()).toEqual([]);
    c.clock.set(T + 5 * MIN);
    runs = await s.tick();
    expect(names(runs)).toEqual(['tick']);
    await settle(s, runs);
    // Down for an hour: a new scheduler (a restart) fires once, not twelve times.
    await s.stop();
    c.clock.set(T + 65 * MIN + 20_000);
    s = c.make();
    runs = await s.tick();
    expect(names(runs)).toEqual(['tick']);
    expect(runs[0]!.run.metadata['order.reason']).toMatch(/missed, run once now/);
    await settle(s, runs);
    expect(await s.tick()).toEqual([]);
    const fired = (await c.ops.events.list({ type: 'order.fired' })).items;
    expect(fired).toHaveLength(3);
    const done = (await c.ops.events.list({ type: 'order.completed' })).items;
    expect(done).toHaveLength(3);
    expect(await s.history('tick')).toHaveLength(3);
  });

  it('cooldown fires when never run, then each interval; after downtime once', async () => {
    const c = city({ 'orders/sweep.toml': exec('cooldown', 'interval = "10m"') });
    const s = c.make();
    let runs = await s.tick();
    expect(names(runs)).toEqual(['sweep']);
    await settle(s, runs);
    c.clock.advance(9 * MIN);
    expect(await s.tick()).toEqual([]);
    c.clock.advance(MIN);
    runs = await s.tick();
    expect(names(runs)).toEqual(['sweep']);
    await settle(s, runs);
    c.clock.advance(300 * MIN);
    runs = await s.tick();
    expect(names(runs)).toEqual(['sweep']);
    await settle(s, runs);
    expect(await s.tick()).toEqual([]);
  });

  it('event fires once for the events since its cursor, never for its own beads', async () => {
    const c = city({
      'orders/on-close.toml': exec('event', 'on = "bead.closed"', 'echo "$GC_EVENT_SEQ" > seq'),
    });
    const s = c.make();
    expect(await s.tick()).toEqual([]);
    const b1 = await c.ops.createBead('mayor', { title: 'one' });
    const b2 = await c.ops.createBead('mayor', { title: 'two' });
    await c.ops.closeBead('mayor', b1.id, 'done');
    await c.ops.closeBead('mayor', b2.id, 'done');
    let runs = await s.tick();
    expect(names(runs)).toEqual(['on-close']);
    await settle(s, runs);
    const seq = Number(readFileSync(path.join(c.root, 'seq'), 'utf8'));
    expect(runs[0]!.run.labels).toContain(`seq:${seq}`);
    // The run's own tracking bead closed (a bead.closed by "order"): not a new event.
    expect(await s.tick()).toEqual([]);
    const b3 = await c.ops.createBead('mayor', { title: 'three' });
    await c.ops.closeBead('mayor', b3.id, 'done');
    runs = await s.tick();
    expect(names(runs)).toEqual(['on-close']);
    await settle(s, runs);
    expect(await s.tick()).toEqual([]);
  });

  it('condition fires while its check exits 0', async () => {
    const c = city({ 'orders/when.toml': exec('condition', 'check = "test -f ready"') });
    const s = c.make();
    expect(await s.tick()).toEqual([]);
    expect((await s.status('when', true)).decision.reason).toMatch(/not met \(exit 1\)/);
    writeFileSync(path.join(c.root, 'ready'), '');
    const runs = await s.tick();
    expect(names(runs)).toEqual(['when']);
  });

  it('a long run is never started twice; stop interrupts it and a new leader closes what was left', async () => {
    const c = city({
      'orders/long.toml': exec(
        'cooldown',
        'interval = "1m"\n[order.env]\nGREETING = "hi"',
        'echo "$GC_ORDER $GREETING $ORDER_DIR $GC_ORDER_RUN" > env.out; while [ ! -f release ]; do sleep 0.05; done',
      ),
    });
    const s = c.make();
    const [first] = await s.tick();
    expect(first).toBeDefined();
    c.clock.advance(5 * MIN);
    expect(await s.tick()).toEqual([]);
    expect((await s.status('long')).decision.reason).toBe(`still running (${first!.run.id})`);
    await expect(s.run('long', 'mayor')).rejects.toThrow(/still running/);
    writeFileSync(path.join(c.root, 'release'), '');
    await s.settled(first!.run.id);
    expect(readFileSync(path.join(c.root, 'env.out'), 'utf8').trim()).toBe(
      `long hi ${path.join(c.root, 'orders')} ${first!.run.id}`,
    );
    expect((await c.ops.store.get(first!.run.id)).status).toBe('closed');
    // Again, then the server stops under it.
    c.clock.advance(5 * MIN);
    rmRelease(c.root);
    const [second] = await s.tick();
    await s.stop();
    const b = await c.ops.store.get(second!.run.id);
    expect(b.status).toBe('closed');
    expect(b.close_reason).toMatch(/failed: interrupted: the server stopped/);
    // A run left open by a server that died: the next leader closes it.
    const orphan = await c.ops.createBead('order', {
      title: 'order:long',
      type: 'order',
      labels: ['order-tracking', 'order-run:long'],
      metadata: { 'order.name': 'long', 'order.fired_at': String(c.clock.now()) },
    });
    const next = c.make();
    await next.start();
    await next.stop();
    expect((await c.ops.store.get(orphan.id)).close_reason).toMatch(
      /interrupted: the server running it stopped/,
    );
    const failed = (await c.ops.events.list({ type: 'order.failed' })).items;
    expect(failed.map((e) => e.subject)).toEqual([second!.run.id, orphan.id]);
  });

  it('a run past its timeout is killed and recorded as failed; a failing command too', async () => {
    const c = city({
      'orders/slow.toml': exec('manual', 'timeout = "200ms"', 'sleep 5'),
      'orders/bad.toml': exec('manual', '', 'echo oops >&2; exit 3'),
    });
    const s = c.make();
    expect(await s.tick()).toEqual([]);
    const slow = await s.run('slow', 'mayor');
    const bad = await s.run('bad', 'mayor');
    await settle(s, [slow, bad]);
    expect((await c.ops.store.get(slow.run.id)).close_reason).toBe('failed: timed out after 0.2s');
    const b = await c.ops.store.get(bad.run.id);
    expect(b.close_reason).toBe('failed: exit 3');
    expect(b.metadata['order.exit_code']).toBe('3');
    expect(readFileSync(path.join(c.root, '.gc', 'orders', `${bad.run.id}.log`), 'utf8')).toBe(
      'oops\n',
    );
    const failed = (await c.ops.events.list({ type: 'order.failed' })).items;
    expect(failed.map((e) => (e.payload as { order: string }).order).sort()).toEqual([
      'bad',
      'slow',
    ]);
    expect(JSON.stringify(failed)).not.toContain('oops');
  });

  it("a rig's copy runs in the rig's folder with GC_RIG", async () => {
    const c = city(
      {
        'orders/sweep.toml': exec(
          'manual',
          '',
          'pwd > "$GC_CITY/where.out"; echo "$GC_RIG" >> "$GC_CITY/where.out"',
        ),
      },
      (o) => ({
        ...o,
        name: 'sweep:rig:app',
        rig: 'app',
        workDir: path.join(o.packDir, 'app'),
      }),
    );
    mkdirSync(path.join(c.root, 'app'));
    const s = c.make();
    const r = await s.run('sweep:rig:app', 'mayor');
    await s.settled(r.run.id);
    expect(readFileSync(path.join(c.root, 'where.out'), 'utf8')).toBe(
      `${path.join(c.root, 'app')}\napp\n`,
    );
    expect(r.run.labels).toContain('order-run:sweep:rig:app');
  });

  it('a formula order pours a wisp routed to its pool and waits for it to complete', async () => {
    const c = city({
      'formulas/digest.toml':
        '[[steps]]\nid = "gather"\n[[steps]]\nid = "write"\nneeds = ["gather"]\n',
      'orders/digest.toml':
        '[order]\nformula = "digest"\ngate = "cooldown"\ninterval = "1m"\npool = "worker"\n',
    });
    const s = c.make();
    const [r] = await s.tick();
    const root = r!.run.metadata['order.molecule']!;
    expect(r!.run.status).toBe('closed');
    const mol = await c.ops.store.get(root);
    expect(mol.labels).toEqual(expect.arrayContaining(['wisp', 'order-run:digest']));
    const steps = (
      await c.ops.store.list({ metadata: { 'gc.molecule_key': mol.metadata['gc.molecule_key']! } })
    ).items;
    expect(
      steps
        .filter((b) => b.id !== root && b.metadata[ROUTED_TO] === 'worker')
        .map((b) => b.title)
        .sort(),
    ).toEqual(['gather', 'write']);
    c.clock.advance(5 * MIN);
    expect(await s.tick()).toEqual([]);
    for (const b of steps.filter((x) => x.id !== root))
      await c.ops.closeBead('worker', b.id, 'done');
    await c.ops.closeBead('worker', root, 'done');
    expect(names(await s.tick())).toEqual(['digest']);
  });

  it('a formula order naming an unknown pool fails its run with the reason', async () => {
    const c = city({
      'formulas/digest.toml': '[[steps]]\nid = "gather"\n',
      'orders/digest.toml': '[order]\nformula = "digest"\ngate = "manual"\npool = "wroker"\n',
    });
    const s = c.make();
    const err = await s.run('digest', 'mayor').then(
      () => undefined,
      (e: unknown) => e as { message: string; fix: string },
    );
    expect(err?.message).toMatch(/wroker/);
    expect(err?.fix).toMatch(/did you mean worker/);
    const [run] = await s.history('digest');
    expect(run!.close_reason).toMatch(/failed: .*wroker.*did you mean worker/);
    await expect(s.run('nope', 'mayor')).rejects.toThrow(/order.*nope/);
    expect(existsSync(path.join(c.root, '.gc'))).toBe(false);
  });
});

function rmRelease(root: string) {
  rmSync(path.join(root, 'release'), { force: true });
}
