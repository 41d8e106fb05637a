import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../../test/helpers/wait.js';
import { CityOps } from '../city/index.js';
import { FakeClock } from '../core/index.js';
import { parseCityConfig } from '../config/index.js';
import { MemoryEventLog } from '../events/index.js';
import { FakeProvider, type SessionSnapshot } from '../runtime/index.js';
import { MemoryStore, type Workload } from '../store/index.js';
import { Controller, SCALE_DOWN_GRACE_MS } from './controller.js';
import { desiredState } from './desired.js';
import { reconcilePlan, type PlanOptions, type SessionTracker } from './plan.js';
import { citySpec, hostSessionCap } from './spec.js';
import { renderTemplate } from './prompt.js';

const BASE = `
[workspace]
name = "town"
start_command = "sleep 600"
max_active_sessions = 50
[daemon]
patrol_interval = "1h"
max_restarts = 2
restart_window = "10m"
shutdown_timeout = "1s"
`;

function spec(extra: string) {
  return citySpec(parseCityConfig(BASE + extra, '/city/city.toml'));
}

const workload = (
  routed: Record<string, [number, number]> = {},
  claims: Record<string, number> = {},
): Workload => ({
  routed: Object.entries(routed).map(([routed_to, [ready, in_progress]]) => ({
    routed_to,
    ready,
    in_progress,
  })),
  claims: Object.entries(claims).map(([assignee, in_progress]) => ({ assignee, in_progress })),
});

const alive = (...names: string[]): SessionSnapshot[] =>
  names.map((name) => ({ name, alive: true, lastActivity: 1, attached: false }));

describe('desiredState', () => {
  const city = spec(`
[[agent]]
name = "mayor"
[[agent]]
name = "worker"
max_active_sessions = 4
[[agent]]
name = "floor"
min_active_sessions = 2
max_active_sessions = 3
[[agent]]
name = "paused"
suspended = true
[[agent]]
name = "sleeper"
idle_timeout = "5m"
`);
  const names = (d: ReturnType<typeof desiredState>) => d.sessions.map((s) => s.name);

  const cases: {
    name: string;
    work: Workload;
    snap: SessionSnapshot[];
    want: string[];
  }[] = [
    {
      name: 'no work: singletons and pool floors only',
      work: workload(),
      snap: [],
      want: ['mayor', 'floor-1', 'floor-2'],
    },
    {
      name: 'ready + in-progress routed work sizes the pool, capped at max',
      work: workload({ worker: [5, 1] }),
      snap: [],
      want: ['mayor', 'worker-1', 'worker-2', 'worker-3', 'worker-4', 'floor-1', 'floor-2'],
    },
    {
      name: 'scale down keeps busy sessions and fills from the lowest slot',
      work: workload({ worker: [0, 2] }, { 'worker-3': 1, 'worker-4': 1 }),
      snap: alive('worker-1', 'worker-2', 'worker-3', 'worker-4'),
      want: ['mayor', 'worker-3', 'worker-4', 'floor-1', 'floor-2'],
    },
    {
      name: 'an idle-timeout singleton wakes only for work',
      work: workload({ sleeper: [1, 0] }),
      snap: [],
      want: ['mayor', 'floor-1', 'floor-2', 'sleeper'],
    },
    {
      name: 'an idle-timeout singleton that is running stays desired',
      work: workload(),
      snap: alive('sleeper'),
      want: ['mayor', 'floor-1', 'floor-2', 'sleeper'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(names(desiredState(city, { workload: c.work, scale: new Map() }, c.snap))).toEqual(
        c.want,
      );
    });
  }

  it('nested caps: agent, rig, workspace', () => {
    const capped = citySpec(
      parseCityConfig(
        `
[workspace]
name = "town"
start_command = "x"
max_active_sessions = 5
[[rigs]]
name = "app"
path = "app"
max_active_sessions = 2
[[agent]]
name = "polecat"
dir = "app"
max_active_sessions = 3
[[agent]]
name = "w"
max_active_sessions = 10
`,
        '/c/city.toml',
      ),
    );
    const d = desiredState(
      capped,
      { workload: workload({ polecat: [9, 0], w: [9, 0] }), scale: new Map() },
      [],
    );
    expect(d.sessions.map((s) => s.name)).toEqual(['polecat-1', 'polecat-2', 'w-1', 'w-2', 'w-3']);
    expect(d.capped.map((c) => `${c.session}:${c.cap}`)).toEqual([
      'polecat-3:rig',
      'polecat-4:agent',
      'polecat-5:agent',
      'polecat-6:agent',
      'polecat-7:agent',
      'polecat-8:agent',
      'polecat-9:agent',
      'w-4:workspace',
      'w-5:workspace',
      'w-6:workspace',
      'w-7:workspace',
      'w-8:workspace',
      'w-9:workspace',
    ]);
  });

  it('scale_check answers win; a failed check means no change', () => {
    const c = spec(`
[[agent]]
name = "p"
max_active_sessions = 5
scale_check = "echo 3"
`);
    const ok = desiredState(c, { workload: workload(), scale: new Map([['p', 3]]) }, []);
    expect(ok.sessions.map((s) => s.name)).toEqual(['p-1', 'p-2', 'p-3']);
    expect(ok.pools).toEqual([{ agent: 'p', target: 3, source: 'scale_check' }]);
    const failed = desiredState(
      c,
      { workload: workload({ p: [9, 0] }), scale: new Map([['p', undefined]]) },
      alive('p-2'),
    );
    expect(failed.sessions.map((s) => s.name)).toEqual(['p-2']);
    expect(failed.pools[0]?.source).toBe('no change');
  });

  it('a suspended city wants nothing', () => {
    const c = citySpec(
      parseCityConfig(
        BASE.replace('[workspace]', '[workspace]\nsuspended = true') + '[[agent]]\nname = "a"\n',
        '/c/city.toml',
      ),
    );
    expect(desiredState(c, { workload: workload(), scale: new Map() }, []).sessions).toEqual([]);
  });
});

describe('reconcilePlan', () => {
  const city = spec(`
[[agent]]
name = "db"
[[agent]]
name = "app"
depends_on = ["db"]
[[agent]]
name = "w"
max_active_sessions = 3
`);
  const opts = (o: Partial<PlanOptions> = {}): PlanOptions => ({
    now: 1_000_000,
    maxWakesPerTick: 10,
    maxRestarts: 2,
    restartWindowMs: 600_000,
    driftDrainTimeoutMs: 60_000,
    claims: new Map(),
    isCitySession: (n) => /^(db|app|w-\d+)$/.test(n),
    ...o,
  });
  const desired = (w: Workload, snap: SessionSnapshot[]) =>
    desiredState(city, { workload: w, scale: new Map() }, snap);
  const summary = (p: ReturnType<typeof reconcilePlan>) =>
    p.actions.map((a) =>
      a.kind === 'start'
        ? `start ${a.session.name} w${a.wave} (${a.reason})`
        : a.kind === 'release'
          ? `release ${a.holder}`
          : a.kind === 'died' || a.kind === 'exited'
            ? `${a.kind} ${a.session}`
            : a.kind === 'quarantine'
              ? `quarantine ${a.session}`
              : `${a.kind} ${a.session} (${a.reason})`,
    );

  it('cold start: dependencies in waves', () => {
    const p = reconcilePlan(desired(workload({ w: [1, 0] }), []), [], new Map(), opts());
    expect(summary(p)).toEqual([
      'start db w1 (desired)',
      'start w-1 w1 (desired)',
      'start app w2 (desired)',
    ]);
  });

  it('wake limit defers the rest, dependents wait', () => {
    const p = reconcilePlan(
      desired(workload({ w: [3, 0] }), []),
      [],
      new Map(),
      opts({ maxWakesPerTick: 2 }),
    );
    expect(summary(p)).toEqual(['start db w1 (desired)', 'start w-1 w1 (desired)']);
    expect(p.waiting).toEqual([
      { session: 'w-2', reason: 'wake limit for this tick' },
      { session: 'w-3', reason: 'wake limit for this tick' },
      { session: 'app', reason: 'wake limit for this tick' },
    ]);
  });

  it('steady state: nothing to do', () => {
    const snap = alive('db', 'app', 'w-1');
    const trackers = new Map<string, SessionTracker>(
      ['db', 'app', 'w-1'].map((n) => [
        n,
        {
          startedAt: 1,
          deaths: [],
          fingerprint: city.agents.find((a) => n.startsWith(a.name))!.fingerprint,
        },
      ]),
    );
    const p = reconcilePlan(
      desired(workload({ w: [0, 1] }), snap),
      snap,
      trackers,
      opts({ claims: new Map([['w-1', 1]]) }),
    );
    expect(p.actions).toEqual([]);
  });

  it('a death: recorded, claims released, restarted', () => {
    const snap: SessionSnapshot[] = [
      ...alive('db', 'app'),
      { name: 'w-1', alive: false, lastActivity: 1, attached: false, exitCode: 1 },
    ];
    const trackers = new Map<string, SessionTracker>([['w-1', { startedAt: 1, deaths: [] }]]);
    const p = reconcilePlan(
      desired(workload({ w: [0, 1] }, { 'w-1': 1 }), snap),
      snap,
      trackers,
      opts({ claims: new Map([['w-1', 1]]) }),
    );
    expect(summary(p)).toEqual(['died w-1', 'release w-1', 'start w-1 w1 (restart after death)']);
  });

  it('crash loop: quarantine instead of restart', () => {
    const snap = alive('db', 'app');
    const trackers = new Map<string, SessionTracker>([
      ['w-1', { startedAt: 1, deaths: [990_000, 995_000] }],
    ]);
    const p = reconcilePlan(desired(workload({ w: [1, 0] }), snap), snap, trackers, opts());
    expect(summary(p)).toEqual(['died w-1', 'quarantine w-1']);
    expect(p.waiting[0]?.reason).toMatch(/quarantined: 3 deaths/);
  });

  it('old deaths outside the window do not count', () => {
    const snap = alive('db', 'app');
    const trackers = new Map<string, SessionTracker>([['w-1', { deaths: [1, 2, 3] }]]);
    const p = reconcilePlan(desired(workload({ w: [1, 0] }), snap), snap, trackers, opts());
    expect(summary(p)).toEqual(['start w-1 w1 (desired)']);
  });

  it('config drift drains, then stops on ack or timeout', () => {
    const snap = alive('db');
    const desiredNow = desired(workload(), snap);
    const drift = new Map<string, SessionTracker>([
      ['db', { startedAt: 1, deaths: [], fingerprint: 'old' }],
    ]);
    expect(summary(reconcilePlan(desiredNow, snap, drift, opts()))).toEqual([
      'drain db (config drift)',
      'start app w1 (desired)',
    ]);
    const draining = new Map<string, SessionTracker>([
      [
        'db',
        {
          startedAt: 1,
          deaths: [],
          fingerprint: 'old',
          drainingSince: 999_000,
          drainReason: 'config drift',
        },
      ],
    ]);
    expect(
      summary(reconcilePlan(desiredNow, snap, draining, opts())).filter((s) =>
        s.startsWith('stop'),
      ),
    ).toEqual([]);
    draining.get('db')!.drainAcked = true;
    expect(summary(reconcilePlan(desiredNow, snap, draining, opts()))[0]).toBe(
      'stop db (drained (config drift))',
    );
    delete draining.get('db')!.drainAcked;
    expect(summary(reconcilePlan(desiredNow, snap, draining, opts({ now: 2_000_000 })))[0]).toBe(
      'stop db (drain timeout (config drift))',
    );
  });

  it('not desired: idle ones stop, busy ones drain, dead ones are cleaned up', () => {
    const snap: SessionSnapshot[] = [
      ...alive('db', 'app', 'w-1', 'w-2'),
      { name: 'w-3', alive: false, lastActivity: 0, attached: false },
    ];
    const p = reconcilePlan(
      desired(workload({ w: [0, 0] }), snap),
      snap,
      new Map(),
      // w-3 died holding a claim: it goes back to the pool.
      opts({
        claims: new Map([
          ['w-2', 1],
          ['w-3', 1],
        ]),
      }),
    );
    expect(summary(p)).toEqual([
      'release w-3',
      'stop w-1 (not desired (scale down or removed))',
      'drain w-2 (not desired (scale down or removed))',
      'stop w-3 (dead and not desired)',
    ]);
  });

  it('an idle session is kept until the scale-down grace after it became idle', () => {
    const snap = alive('db', 'app', 'w-1', 'w-2', 'w-3');
    const trackers = new Map<string, SessionTracker>([
      // Idle for 5 s: kept. Idle for 100 s: stopped. Running for long, but
      // idle only from now: kept, however old it is.
      ['w-1', { startedAt: 0, idleSince: 995_000, deaths: [] }],
      ['w-2', { startedAt: 0, idleSince: 900_000, deaths: [] }],
      ['w-3', { startedAt: 0, deaths: [] }],
    ]);
    const p = reconcilePlan(
      desired(workload(), snap),
      snap,
      trackers,
      opts({ scaleDownGraceMs: 10_000 }),
    );
    expect(summary(p).filter((s) => s.startsWith('stop w'))).toEqual([
      'stop w-2 (not desired (scale down or removed))',
    ]);
    expect(p.waiting.filter((w) => w.graceEndsAt !== undefined)).toEqual([
      {
        session: 'w-1',
        reason: 'idle; stops when the scale-down grace ends',
        graceEndsAt: 1_005_000,
      },
      {
        session: 'w-3',
        reason: 'idle; stops when the scale-down grace ends',
        graceEndsAt: 1_010_000,
      },
    ]);
  });

  it('orphaned claims of absent city sessions are released; human claims are not', () => {
    const snap = alive('db', 'app');
    const p = reconcilePlan(
      desired(workload(), snap),
      snap,
      new Map(),
      opts({
        claims: new Map([
          ['w-7', 2],
          ['alice', 1],
        ]),
      }),
    );
    expect(summary(p)).toEqual(['release w-7']);
  });
});

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

describe('spec helpers', () => {
  it('host cap', () => {
    expect(hostSessionCap(512, { cores: 2, freeBytes: 24 * 1024 ** 3 })).toBe(20);
    expect(hostSessionCap(512, { cores: 400, freeBytes: 4 * 1024 ** 3 })).toBe(8);
    expect(hostSessionCap(1, { cores: 1000, freeBytes: 1e13 })).toBe(2000);
    expect(hostSessionCap(512, { cores: 1, freeBytes: 0 })).toBe(1);
  });

  it('templates', () => {
    expect(
      renderTemplate('hi {{.Agent}} in {{ .Rig }} {{.Nope}}', { Agent: 'w', Rig: 'app' }),
    ).toBe('hi w in app {{.Nope}}');
  });

  it('unknown depends_on and rigs are errors naming the agent', () => {
    expect(() => spec('[[agent]]\nname = "a"\ndepends_on = ["zz"]\n')).toThrow(/depends_on/);
    expect(() => spec('[[agent]]\nname = "a"\ndir = "nope"\n')).toThrow(/agent a: dir/);
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
