import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BASE, spec } from '../../test/helpers/city-spec.js';
import { waitFor } from '../../test/helpers/wait.js';
import { CityOps } from '../city/index.js';
import { FakeClock } from '../core/index.js';
import { parseCityConfig } from '../config/index.js';
import { MemoryEventLog } from '../events/index.js';
import { FakeProvider } from '../runtime/index.js';
import { MemoryStore } from '../store/index.js';
import { Controller, SCALE_DOWN_GRACE_MS } from './controller.js';
import { citySpec } from './spec.js';

describe('prompts', () => {
  const loaded = (extra: string) => parseCityConfig(BASE + extra, '/city/city.toml');

  it('a provider agent with no prompt_template gets the default prompt for where it works', () => {
    const s = citySpec(
      loaded(
        '[[rigs]]\nname = "app"\npath = "app"\ntarget = "trunk"\n' +
          '[[agent]]\nname = "coder"\ndir = "app"\nprovider = "claude"\nmax_active_sessions = 3\n' +
          '[[agent]]\nname = "mayor"\nprovider = "claude"\n' +
          '[[agent]]\nname = "script"\nstart_command = "./run.sh"\n',
      ),
    );
    const coder = s.agents.find((a) => a.name === 'coder')!;
    const text = coder.promptFor('coder-2', '/city/.gc/worktrees/app/coder-2')!;
    expect(text).toContain('You are coder-2, a coding agent of coder');
    expect(text).toContain('Your work dir is /city/.gc/worktrees/app/coder-2');
    expect(text).toContain('gc mq submit --bead <id>');
    expect(text).toContain('git rev-parse trunk');
    expect(text).not.toMatch(/gc bead close/);
    expect(text).not.toContain('{{');
    // The prompt reaches the agent CLI: in the session's start command.
    expect(coder.startFor('coder-2', '/w').command).toContain('You are coder-2');
    const mayor = s.agents.find((a) => a.name === 'mayor')!.promptFor('mayor', '/city')!;
    expect(mayor).toContain('gc bead close <id>');
    // A script with no prompt_template is not typed a prompt.
    expect(s.agents.find((a) => a.name === 'script')!.promptFor('script', '/city')).toBeUndefined();
  });

  it('an agent on the generic preset (a plain shell) is not typed the default prompt', () => {
    // A prompt sent to a shell runs as commands: its `gc ...` lines among
    // them, and a non-interactive shell exits at the first syntax error.
    const s = citySpec(
      loaded('[[agent]]\nname = "shell"\n[[agent]]\nname = "g"\nprovider = "generic"\n'),
    );
    for (const a of s.agents) {
      expect(a.promptFor(a.name, '/city')).toBeUndefined();
      expect(a.start.nudge).toBeUndefined();
    }
    expect(s.agents.find((a) => a.name === 'g')!.start.command).toBe('sh');
  });

  it('the controller renders each session its own prompt and work dir', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gc-prompt-'));
    try {
      writeFileSync(path.join(dir, 'p.md'), 'I am {{.SessionName}} in {{.WorkDir}} for {{.Agent}}');
      const spec = citySpec(
        parseCityConfig(
          BASE +
            '[[agent]]\nname = "w"\nstart_command = "cat"\nprompt_template = "p.md"\nmax_active_sessions = 2\n',
          path.join(dir, 'city.toml'),
        ),
      );
      const store = new MemoryStore({ prefix: 'gc' });
      const ops = new CityOps(store, new MemoryEventLog());
      const provider = new FakeProvider();
      const controller = new Controller({ provider, ops, spec });
      for (const i of [1, 2]) {
        await ops.createBead('human', { title: `t${i}`, metadata: { 'gc.routed_to': 'w' } });
      }
      await controller.tick();
      expect(provider.configOf('w-1')?.nudge).toBe(`I am w-1 in ${dir} for w`);
      expect(provider.configOf('w-2')?.nudge).toBe(`I am w-2 in ${dir} for w`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('wake_mode and resume_command', () => {
  it('resume: a restarted session keeps its key and runs resume_command; fresh: a new key and start_command; reset starts fresh', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gc-wake-'));
    try {
      const toml =
        BASE +
        '[[agent]]\nname = "r"\nstart_command = "agent --session-id {{.SessionKey}}"\nresume_command = "agent --resume {{.SessionKey}}"\n' +
        '[[agent]]\nname = "f"\nwake_mode = "fresh"\nstart_command = "agent --session-id {{.SessionKey}}"\nresume_command = "agent --resume {{.SessionKey}}"\n';
      const spec = citySpec(parseCityConfig(toml, path.join(dir, 'city.toml')));
      const ops = new CityOps(new MemoryStore({ prefix: 'gc' }), new MemoryEventLog());
      const provider = new FakeProvider();
      const clock = new FakeClock();
      const controller = new Controller({ provider, ops, spec, clock });
      await controller.tick();
      const first = provider.configOf('r')!;
      const key = first.env?.GC_SESSION_KEY ?? '';
      expect(key).toMatch(/^[0-9a-f-]{36}$/);
      expect(first.command).toBe(`agent --session-id ${key}`);
      const fresh1 = provider.configOf('f')!.env?.GC_SESSION_KEY;
      provider.kill('r', 1);
      provider.kill('f', 1);
      clock.advance(1000);
      await controller.tick();
      await waitFor(
        async () => (await provider.isRunning('r')) && provider.isRunning('f'),
        'restarts',
      );
      expect(provider.configOf('r')!.command).toBe(`agent --resume ${key}`);
      expect(provider.configOf('r')!.env?.GC_SESSION_KEY).toBe(key);
      const fresh2 = provider.configOf('f')!;
      expect(fresh2.command).toMatch(/^agent --session-id /);
      expect(fresh2.env?.GC_SESSION_KEY).not.toBe(fresh1);
      // The key outlives the server: the next server resumes it too.
      const file = path.join(dir, '.gc', 'session-keys.json');
      await waitFor(() => existsSync(file) && readFileSync(file, 'utf8').includes(key), 'saved');
      const next = new FakeProvider();
      const again = new Controller({ provider: next, ops, spec, clock });
      await again.tick();
      await waitFor(() => next.isRunning('r'), 'started by the next server');
      expect(next.configOf('r')!.command).toBe(`agent --resume ${key}`);
      await again.resetSession('r');
      next.kill('r', 1);
      clock.advance(1000);
      await again.tick();
      await waitFor(() => next.isRunning('r'), 'restart after reset');
      expect(next.configOf('r')!.command).toMatch(/^agent --session-id /);
      expect(next.configOf('r')!.env?.GC_SESSION_KEY).not.toBe(key);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Controller with the fake provider', () => {
  function setup(extra: string) {
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const store = new MemoryStore({ prefix: 'gc', clock });
    const events = new MemoryEventLog();
    const ops = new CityOps(store, events);
    const provider = new FakeProvider({ clock });
    const controller = new Controller({ provider, ops, spec: spec(extra), clock });
    const types = async () =>
      (await events.list({ limit: 1000 })).items.map((e) => `${e.type} ${e.subject}`);
    return { clock, store, events, ops, provider, controller, types };
  }

  it('scales a pool with routed work and back down when it is done', async () => {
    const { store, ops, provider, controller, clock } = setup(
      '[[agent]]\nname = "w"\nmax_active_sessions = 3\n',
    );
    await controller.tick();
    expect(await provider.listRunning('')).toEqual([]);
    const beads = await Promise.all(
      [1, 2, 3, 4].map((i) =>
        ops.createBead('human', { title: `t${i}`, metadata: { 'gc.routed_to': 'w' } }),
      ),
    );
    await controller.tick();
    expect(await provider.listRunning('')).toEqual(['w-1', 'w-2', 'w-3']);
    for (const b of beads) await store.close(b.id);
    await controller.tick();
    // Idle, but inside the scale-down grace: kept, so a dip in demand does not churn.
    expect(await provider.listRunning('')).toEqual(['w-1', 'w-2', 'w-3']);
    clock.advance(11_000);
    await controller.tick();
    expect(await provider.listRunning('')).toEqual([]);
  });

  it('a wave of stops is one provider call', async () => {
    const { store, ops, provider, controller, clock } = setup(
      '[[agent]]\nname = "w"\nmax_active_sessions = 4\n',
    );
    const beads = await Promise.all(
      [1, 2, 3, 4].map((i) =>
        ops.createBead('human', { title: `t${i}`, metadata: { 'gc.routed_to': 'w' } }),
      ),
    );
    await controller.tick();
    expect(await provider.listRunning('')).toHaveLength(4);
    for (const b of beads) await store.close(b.id);
    await controller.tick(); // idle from now: the scale-down grace starts
    clock.advance(11_000);
    provider.calls.length = 0;
    await controller.tick();
    expect(await provider.listRunning('')).toEqual([]);
    const ops_ = provider.calls.map((c) => c.op);
    expect(ops_.filter((o) => o === 'stopMany')).toHaveLength(1);
    expect(ops_.filter((o) => o === 'stop')).toHaveLength(0);
  });

  it('a wave of starts is one provider call and one token write; past the wake limit the next wave goes at once', async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const ops = new CityOps(new MemoryStore({ prefix: 'gc', clock }), new MemoryEventLog());
    const provider = new FakeProvider({ clock });
    const issued: string[][] = [];
    const controller = new Controller({
      provider,
      ops,
      clock,
      spec: citySpec(
        parseCityConfig(
          BASE.replace('[daemon]', '[daemon]\nmax_wakes_per_tick = 3') +
            '[[agent]]\nname = "w"\nmin_active_sessions = 7\nmax_active_sessions = 7\n',
          '/city/city.toml',
        ),
      ),
      tokens: {
        issue: () => {
          throw new Error('one token at a time');
        },
        issueMany: (names) => {
          issued.push([...names]);
          return Promise.resolve(new Map(names.map((n) => [n, `token-${n}`])));
        },
        revoke: () => undefined,
      },
    });
    // patrol_interval is an hour: only the wake limit's own re-tick starts the rest.
    controller.start();
    try {
      await waitFor(async () => (await provider.listRunning('')).length === 7, 'all 7 running');
      expect(provider.configOf('w-1')?.env?.GC_TOKEN).toBe('token-w-1');
    } finally {
      await controller.shutdown();
    }
    const waves = provider.callsOf('startMany').map((c) => c.name.split(','));
    expect(waves.map((w) => w.length)).toEqual([3, 3]);
    expect(provider.callsOf('start')).toHaveLength(1); // the last one, alone
    expect(issued.map((w) => w.length)).toEqual([3, 3, 1]);
  });

  it('a start slower than patrol_interval does not hold the tick: others are restarted meanwhile, it shows as starting', async () => {
    const ops = new CityOps(new MemoryStore({ prefix: 'gc' }), new MemoryEventLog());
    const provider = new FakeProvider();
    const controller = new Controller({
      provider,
      ops,
      spec: citySpec(
        parseCityConfig(
          BASE.replace('patrol_interval = "1h"', 'patrol_interval = "20ms"') +
            '[[agent]]\nname = "slow"\n[[agent]]\nname = "quick"\n[[agent]]\nname = "after"\ndepends_on = ["slow"]\n',
          '/city/city.toml',
        ),
      ),
    });
    const release = provider.holdStart('slow');
    controller.start();
    try {
      await waitFor(() => provider.isRunning('quick'), 'quick running');
      const ticks0 = controller.status().ticks;
      // Many patrol intervals pass while slow's start is under way.
      await waitFor(() => controller.status().ticks >= ticks0 + 10, '10 more ticks');
      const slow = controller.status().sessions.find((s) => s.name === 'slow');
      expect(slow).toMatchObject({ state: 'starting' });
      expect(slow?.start_deadline).toBeGreaterThan(Date.now());
      const after = controller.status().sessions.find((s) => s.name === 'after');
      expect(after).toMatchObject({ state: 'waiting', reason: 'waiting for slow' });
      // A crash meanwhile is restarted by the next tick, not after slow's start.
      provider.kill('quick', 1);
      await waitFor(async () => {
        const died = (await ops.events.list({ limit: 100 })).items.filter(
          (e) => e.type === 'session.died',
        );
        return died.length === 1 && (await provider.isRunning('quick'));
      }, 'quick restarted');
      // One start of slow only, however many ticks ran.
      const startsOf = (n: string) =>
        [...provider.callsOf('start'), ...provider.callsOf('startMany')].filter((c) =>
          c.name.split(',').includes(n),
        );
      expect(startsOf('slow')).toHaveLength(1);
      expect(startsOf('quick')).toHaveLength(2); // with slow, then alone after its crash
      expect(await provider.isRunning('after')).toBe(false);
      release();
      await waitFor(() => provider.isRunning('after'), 'the dependent started once slow runs');
      expect(controller.status().sessions.find((s) => s.name === 'slow')?.state).toBe('running');
    } finally {
      release();
      await controller.shutdown();
    }
  });

  it('a start that fails reports why in status, on its session and its agent', async () => {
    const { provider, controller, types } = setup('[[agent]]\nname = "solo"\n');
    provider.failStart('solo', new Error('no such image'));
    await controller.tick();
    const st = controller.status();
    expect(st.failing).toMatchObject([{ agent: 'solo', session: 'solo', error: 'no such image' }]);
    expect(st.sessions.find((s) => s.name === 'solo')).toMatchObject({
      state: 'waiting',
      start_error: 'no such image',
    });
    expect(await types()).toContain('session.start_failed solo');
    provider.failStart('solo', undefined);
    await controller.tick();
    const ok = controller.status();
    expect(ok.failing).toEqual([]);
    expect(ok.sessions.find((s) => s.name === 'solo')).toEqual(
      // eslint-disable-next-line @typescript-eslint/no-unsafe-assignment
      expect.not.objectContaining({ start_error: expect.anything() }),
    );
  });

  it('a dead session is restarted and its claim released; a crash loop is quarantined', async () => {
    const { ops, provider, controller, store, types, clock } = setup('[[agent]]\nname = "solo"\n');
    await controller.tick();
    const b = await ops.createBead('human', { title: 'x' });
    await ops.claimBead('solo', b.id);
    provider.kill('solo', 9);
    await controller.tick();
    expect((await store.get(b.id)).status).toBe('open');
    expect(await provider.isRunning('solo')).toBe(true);
    for (let i = 0; i < 3; i++) {
      clock.advance(1000);
      provider.kill('solo', 1);
      await controller.tick();
    }
    expect(await provider.isRunning('solo')).toBe(false);
    const status = controller.status();
    expect(status.sessions.find((s) => s.name === 'solo')?.state).toBe('quarantined');
    expect(await types()).toContain('session.quarantined solo');
    await controller.resetSession('solo');
    await controller.tick();
    expect(await provider.isRunning('solo')).toBe(true);
  });

  it('claims racing scale-down: a session is never stopped holding work', async () => {
    const { store, ops, events, provider, controller, clock } = setup(
      '[[agent]]\nname = "w"\nmax_active_sessions = 8\n',
    );
    const routed = { 'gc.routed_to': 'w' };
    let claims = 0;
    let refused = 0;
    let stops = 0;
    for (let round = 0; round < 60; round++) {
      // Demand up: the pool grows; then every piece of work is finished, so
      // the next tick plans to stop the idle sessions (past their grace)...
      await Promise.all(
        Array.from({ length: 1 + (round % 8) }, (_, i) =>
          ops.createBead('human', { title: `r${round}-${i}`, metadata: routed }),
        ),
      );
      await controller.tick();
      for (const b of (await store.list({ status: ['open', 'in_progress'], limit: 1000 })).items) {
        await ops.closeBead('human', b.id, 'done');
      }
      // The idle sessions' scale-down grace starts now, and ends.
      await controller.tick();
      clock.advance(60_000);
      // ...while new work arrives and the running sessions grab it, racing
      // the tick's snapshot, decision and stops.
      const late = ops.createBead('human', { title: `late-${round}`, metadata: routed });
      const running = await provider.listRunning('w-');
      const grabs = running.map(async (s, i) => {
        for (let k = 0; k < (i + round) % 4; k++) await Promise.resolve();
        await late;
        try {
          if (await ops.claimNext(s, { metadata: routed })) claims++;
        } catch (e) {
          if (!/is being stopped/.test(String(e))) throw e;
          refused++;
        }
      });
      await Promise.all([controller.tick(), ...grabs]);
      await controller.tick();
    }
    const all = (await events.list({ limit: 100_000 })).items;
    stops = all.filter((e) => e.type === 'session.stopped').length;
    // The race happened: sessions were stopped, and work was claimed and refused around them.
    expect(stops).toBeGreaterThan(10);
    expect(claims).toBeGreaterThan(10);
    expect(refused + all.filter((e) => e.type === 'session.draining').length).toBeGreaterThan(0);
    // No claim was ever taken back from a stopped session.
    const released = all.filter(
      (e) => e.type === 'bead.updated' && (e.payload as { action?: string }).action === 'unclaim',
    );
    expect(released.map((e) => e.message)).toEqual([]);
    // Every bead in progress is held by a session that runs.
    const live = new Set(await provider.listRunning(''));
    for (const b of (await store.list({ status: 'in_progress', limit: 1000 })).items) {
      expect(live.has(b.assignee), `${b.id} held by ${b.assignee}`).toBe(true);
    }
  });

  it('status shows what a tick did at once; the idle grace counts from idle, not from start', async () => {
    const { store, ops, provider, controller, clock } = setup(
      '[[agent]]\nname = "w"\nmax_active_sessions = 3\n',
    );
    const names = () => controller.status().sessions.map((s) => `${s.name} ${s.state}`);
    const beads = await Promise.all(
      [1, 2].map((i) =>
        ops.createBead('human', { title: `t${i}`, metadata: { 'gc.routed_to': 'w' } }),
      ),
    );
    await controller.tick();
    // Started in this tick: running now, not absent until the next one.
    expect(names()).toEqual(['w-1 running', 'w-2 running']);
    // Long-running sessions whose work ends: the grace starts when they go idle.
    clock.advance(600_000);
    for (const b of beads) await ops.closeBead('human', b.id, 'done');
    await controller.tick();
    expect(await provider.listRunning('w-')).toEqual(['w-1', 'w-2']);
    expect(controller.status().sessions.map((s) => s.reason)).toEqual([
      'idle; stops when the scale-down grace ends',
      'idle; stops when the scale-down grace ends',
    ]);
    clock.advance(SCALE_DOWN_GRACE_MS - 1000);
    await controller.tick();
    expect(await provider.listRunning('w-')).toEqual(['w-1', 'w-2']);
    clock.advance(1000);
    await controller.tick();
    expect(await provider.listRunning('w-')).toEqual([]);
    // Stopped in this tick: gone from status now.
    expect(names()).toEqual([]);
    // A kill outside a tick shows at once too.
    await ops.createBead('human', { title: 't3', metadata: { 'gc.routed_to': 'w' } });
    await controller.tick();
    expect(names()).toEqual(['w-1 running']);
    await provider.stop('w-1');
    controller.sessionStopped('w-1');
    expect(names()).toEqual([]);
    expect(await store.count({ status: 'open' })).toBe(1);
  });

  it('a new controller adopts running sessions without restarting them', async () => {
    const { ops, provider, controller, types } = setup(
      '[[agent]]\nname = "a"\n[[agent]]\nname = "b"\n',
    );
    await controller.tick();
    const startsBefore = provider.callsOf('start').length;
    const second = new Controller({ provider, ops, spec: controller.currentSpec });
    const report = await second.tick();
    expect(report.plan.actions).toEqual([]);
    expect(provider.callsOf('start').length).toBe(startsBefore);
    expect((await types()).filter((t) => t.startsWith('session.adopted'))).toEqual([
      'session.adopted a',
      'session.adopted b',
    ]);
    // Steady state afterwards: one provider call per tick.
    const steady = await second.tick();
    expect(steady.providerCalls).toBe(1);
  });

  it('a session cut off mid-start is not adopted: it is stopped and started again', async () => {
    const { ops, provider, controller, types } = setup(
      '[[agent]]\nname = "a"\n[[agent]]\nname = "b"\n',
    );
    await controller.tick();
    // b's server died during its session_setup: it runs, but never got its fingerprint.
    await provider.removeMeta('b', 'GC_FINGERPRINT');
    const startsBefore = provider.callsOf('start').length;
    const second = new Controller({ provider, ops, spec: controller.currentSpec });
    await second.tick();
    const seen = await types();
    expect(seen.filter((t) => t.startsWith('session.adopted'))).toEqual(['session.adopted a']);
    expect(seen).toContain('session.start_interrupted b');
    expect(provider.callsOf('start').length).toBe(startsBefore + 1);
    expect(await provider.getMeta('b', 'GC_FINGERPRINT')).not.toBe('');
  });

  it('sessions get the city env', async () => {
    const { provider, controller } = setup('[[agent]]\nname = "a"\nenv = { X = "1" }\n');
    await controller.tick();
    expect(provider.configOf('a')?.env).toMatchObject({
      X: '1',
      GC_CITY: 'town',
      GC_CITY_ROOT: '/city',
      GC_AGENT: 'a',
      GC_SESSION_NAME: 'a',
      GC_RIG: '',
    });
  });

  it('shutdown interrupts, then stops survivors', async () => {
    const { provider, controller, types } = setup('[[agent]]\nname = "a"\n');
    controller.start();
    await controller.settle();
    await controller.shutdown();
    expect(await provider.listRunning('')).toEqual([]);
    expect(provider.callsOf('interrupt').map((c) => c.name)).toEqual(['a']);
    expect(await types()).toContain('session.stopped a');
  });

  it('shutdown reports its progress in status: phases in order, sessions left', async () => {
    const { controller, provider } = setup('[[agent]]\nname = "a"\n[[agent]]\nname = "b"\n');
    controller.start();
    await controller.settle();
    expect(controller.status().shutdown).toBeUndefined();
    // The same steps, watched one by one (the fake ignores interrupts: the grace runs out).
    const { shutdownSessions } = await import('./shutdown.js');
    const seen: { phase: string; left: number }[] = [];
    await shutdownSessions({
      provider,
      isCitySession: () => true,
      graceMs: 300,
      log: () => undefined,
      progress: (p) => seen.push({ phase: p.phase, left: p.sessions_left }),
      stopped: () => Promise.resolve(),
    });
    const phases = seen.map((p) => p.phase).filter((p, i, a) => a[i - 1] !== p);
    expect(phases).toEqual(['interrupting', 'waiting', 'stopping', 'done']);
    expect(seen[0]).toEqual({ phase: 'interrupting', left: 2 });
    expect(seen.at(-2)).toEqual({ phase: 'stopping', left: 2 });
    expect(await provider.listRunning('')).toEqual([]);
    await controller.shutdown();
    expect(controller.status().shutdown).toMatchObject({
      phase: 'done',
      sessions_total: 0,
      sessions_left: 0,
    });
  });
});

describe('scale checks (real shell commands)', () => {
  it('numbers count; failures, garbage and hangs are "no change" and reported', async () => {
    const { runScaleChecks } = await import('./scale-check.js');
    const c = spec(`
[[agent]]
name = "ok"
max_active_sessions = 9
scale_check = "echo 4"
[[agent]]
name = "fails"
max_active_sessions = 9
scale_check = "echo nope >&2; exit 3"
[[agent]]
name = "garbage"
max_active_sessions = 9
scale_check = "echo many"
[[agent]]
name = "hangs"
max_active_sessions = 9
scale_check = "sleep 30"
`);
    const failures: string[] = [];
    // A check that ignored its 500 ms timeout would hold the test for 30 s (its timeout).
    const out = await runScaleChecks(
      { ...c, root: process.cwd() },
      { timeoutMs: 500, onFailure: (a, why) => failures.push(`${a}: ${why}`) },
    );
    expect(Object.fromEntries(out)).toEqual({
      ok: 4,
      fails: undefined,
      garbage: undefined,
      hangs: undefined,
    });
    expect(failures.sort()).toEqual([
      'fails: exit 3: nope',
      'garbage: printed "many", not a count',
      'hangs: timed out after 500 ms',
    ]);
  });
});
