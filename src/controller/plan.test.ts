/** The controller's pure decisions: desired sessions and the reconcile plan, table-tested. */
import { describe, expect, it } from 'vitest';
import { BASE, alive, spec, workload } from '../../test/helpers/city-spec.js';
import { parseCityConfig } from '../config/index.js';
import type { SessionSnapshot } from '../runtime/index.js';
import type { Workload } from '../store/index.js';
import { desiredState } from './desired.js';
import { STARTING, reconcilePlan, type PlanOptions, type SessionTracker } from './plan.js';
import { renderTemplate } from './prompt.js';
import { citySpec, hostSessionCap } from './spec.js';

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
[[agent]]
name = "watch"
mode = "on_demand"
[[agent]]
name = "napper"
sleep_after_idle = "10m"
[[agent]]
name = "insomniac"
sleep_after_idle = "off"
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
      want: ['mayor', 'floor-1', 'floor-2', 'insomniac'],
    },
    {
      name: 'on demand (a named session) and sleep_after_idle wake for work like idle_timeout',
      work: workload({ watch: [1, 0], napper: [0, 1] }),
      snap: [],
      want: ['mayor', 'floor-1', 'floor-2', 'watch', 'napper', 'insomniac'],
    },
    {
      name: 'ready + in-progress routed work sizes the pool, capped at max',
      work: workload({ worker: [5, 1] }),
      snap: [],
      want: [
        'mayor',
        'worker-1',
        'worker-2',
        'worker-3',
        'worker-4',
        'floor-1',
        'floor-2',
        'insomniac',
      ],
    },
    {
      name: 'scale down keeps busy sessions and fills from the lowest slot',
      work: workload({ worker: [0, 2] }, { 'worker-3': 1, 'worker-4': 1 }),
      snap: alive('worker-1', 'worker-2', 'worker-3', 'worker-4'),
      want: ['mayor', 'worker-3', 'worker-4', 'floor-1', 'floor-2', 'insomniac'],
    },
    {
      name: 'an idle-timeout singleton wakes only for work',
      work: workload({ sleeper: [1, 0] }),
      snap: [],
      want: ['mayor', 'floor-1', 'floor-2', 'sleeper', 'insomniac'],
    },
    {
      name: 'an idle-timeout singleton that is running stays desired',
      work: workload(),
      snap: alive('sleeper'),
      want: ['mayor', 'floor-1', 'floor-2', 'sleeper', 'insomniac'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(names(desiredState(city, { workload: c.work, scale: new Map() }, c.snap))).toEqual(
        c.want,
      );
    });
  }

  it('held agents (a tripped budget) are suspended: running or not, busy or not', () => {
    const d = desiredState(
      city,
      {
        workload: workload({ worker: [5, 1] }, { 'worker-1': 1 }),
        scale: new Map(),
        held: new Set(['worker', 'mayor']),
      },
      alive('worker-1', 'mayor'),
    );
    expect(names(d)).toEqual(['floor-1', 'floor-2', 'insomniac']);
  });

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

  it('a session whose start is under way is left alone and uses up a wake', () => {
    // w-1 was started before and is starting again: its tmux session may or
    // may not be in the snapshot yet, dead-looking or alive.
    const snap: SessionSnapshot[] = [
      { name: 'w-1', alive: false, lastActivity: 1, attached: false, exitCode: 1 },
    ];
    const trackers = new Map<string, SessionTracker>([['w-1', { startedAt: 1, deaths: [] }]]);
    const p = reconcilePlan(
      desired(workload({ w: [2, 1] }, { 'w-1': 1 }), snap),
      snap,
      trackers,
      opts({ claims: new Map([['w-1', 1]]), starting: new Set(['w-1', 'db']), maxWakesPerTick: 3 }),
    );
    // Not judged dead, its claim kept, not started again; db's start too;
    // two wakes in use leave one for this tick.
    expect(summary(p)).toEqual(['start w-2 w1 (desired)']);
    expect(p.waiting).toEqual([
      { session: 'db', reason: STARTING },
      { session: 'w-1', reason: STARTING },
      { session: 'w-3', reason: 'wake limit for this tick' },
      { session: 'app', reason: 'waiting for db' },
    ]);
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
