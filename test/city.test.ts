/**
 * The city end to end, with real processes: `gc start` in the background,
 * scripted agents that work only through the gc CLI, real subprocess and
 * tmux sessions, kill -9 of agents and of the server.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO, cityCli } from './helpers/cli.js';
import { until as waitUntil } from './helpers/wait.js';

const AGENTS = path.join(REPO, 'examples', 'agents');

/** City start-ups are slow on a busy 2-core machine: a minute per wait. */
const until = <T>(what: string, probe: () => Promise<T>, ok: (v: T) => boolean, ms = 60_000) =>
  waitUntil(what, probe, ok, ms, 250);

/** Live (not zombie) processes whose environment says they belong to the city at `root`. */
function cityProcesses(root: string): { pid: number; env: string[] }[] {
  const out: { pid: number; env: string[] }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const env = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (env.includes(`GC_CITY_ROOT=${root}`) && !/\) Z /.test(stat))
        out.push({ pid: Number(entry), env });
    } catch {
      // exited, or not ours to read
    }
  }
  return out;
}

const cityPids = (root: string): number[] => cityProcesses(root).map((p) => p.pid);
const sessionPids = (root: string, session: string): number[] =>
  cityProcesses(root)
    .filter((p) => p.env.includes(`GC_SESSION_NAME=${session}`))
    .map((p) => p.pid);

interface Status {
  running: boolean;
  pid: number;
  controller: {
    sessions: { name: string; state: string; reason?: string }[];
    ticks: number;
    config_error?: string;
  };
  beads: { open: number; in_progress: number; closed: number };
}

for (const provider of ['subprocess', 'tmux'] as const) {
  describe(`city end to end (${provider})`, { timeout: 180_000 }, () => {
    let root = '';
    const { g, json } = cityCli(() => root);
    const status = () => json<Status>('status');
    const events = async (type: string) =>
      await json<
        { type: string; subject: string; actor: string; payload?: Record<string, unknown> }[]
      >('events', '--type', type);

    async function city(agents: string, daemon = ''): Promise<void> {
      root = await mkdtemp(path.join(os.tmpdir(), `gc-city-${provider}-`));
      await writeFile(
        path.join(root, 'city.toml'),
        `[workspace]
name = "e2e"
max_active_sessions = 40
[session]
provider = "${provider}"
[daemon]
patrol_interval = "500ms"
shutdown_timeout = "2s"
${daemon}
${agents}`,
      );
      const r = await g('start');
      expect(r.code, r.stderr).toBe(0);
    }

    afterEach(async () => {
      if (!root) return;
      await g('stop');
      // Whatever the test did, nothing of the city may survive it.
      const left = await until(
        'city processes to exit',
        () => Promise.resolve(cityPids(root)),
        (p) => p.length === 0,
        15_000,
      ).catch((e: unknown) => {
        for (const pid of cityPids(root)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone
          }
        }
        throw e;
      });
      expect(left).toEqual([]);
      if (provider === 'tmux') {
        const socket = (await import('../src/runtime/index.js')).tmuxSocketFor(root);
        // The server is normally gone with its last session; make sure, and drop the socket file.
        try {
          execFileSync('tmux', ['-L', socket, 'kill-server'], { stdio: 'ignore' });
        } catch {
          // no server: expected
        }
        await rm(path.join('/tmp', `tmux-${process.getuid?.() ?? 0}`, socket), { force: true });
      }
      await rm(root, { recursive: true, force: true });
      root = '';
    });

    it('a pool scales up for routed work, does every bead exactly once, scales back to zero', async () => {
      await city(`
[[agent]]
name = "w"
start_command = "${AGENTS}/worker.sh"
max_active_sessions = 20
env = { GC_WORK_SECONDS = "1", GC_IDLE_SECONDS = "2" }
`);
      expect((await status()).controller.sessions).toEqual([]);
      // Suspended while the work is filed, so the pool sees all of it at once.
      expect((await g('suspend')).code).toBe(0);
      const BEADS = 40;
      const ids: string[] = [];
      for (let i = 0; i < BEADS; i++) {
        ids.push(
          (await json<{ id: string }>('bead', 'create', `task ${i}`, '--routed-to', 'w')).id,
        );
      }
      expect((await status()).controller.sessions).toEqual([]);
      expect((await g('resume')).code).toBe(0);
      // The pool grows to its cap of 20 sessions at its peak (from the event log).
      const peak = async () => {
        let live = 0;
        let max = 0;
        for (const e of await events('session.*')) {
          if (e.type === 'session.started') live++;
          else if (['session.stopped', 'session.died', 'session.exited'].includes(e.type)) live--;
          max = Math.max(max, live);
        }
        return max;
      };
      await until('a pool of 20 at its peak', peak, (n) => n === 20, 60_000);
      await until('all beads closed', status, (s) => s.beads.closed === BEADS, 120_000);
      await until('pool back to zero', status, (s) => s.controller.sessions.length === 0, 30_000);
      const closed = await events('bead.closed');
      expect(closed.map((e) => e.subject).sort()).toEqual([...ids].sort());
      // Every bead claimed once, except where a scaled-down session was
      // stopped just after claiming: then the controller released the claim
      // (recorded) and another worker claimed it again.
      const updates = await events('bead.updated');
      const count = (action: string, id: string) =>
        updates.filter((e) => e.subject === id && e.payload?.action === action).length;
      for (const id of ids) {
        expect(count('claim', id), id).toBe(1 + count('unclaim', id));
      }
      const done = (
        await Promise.all(
          (await readdir(root))
            .filter((f) => f.startsWith('work-w-'))
            .map((f) => readFile(path.join(root, f), 'utf8')),
        )
      )
        .join('')
        .trim()
        .split('\n');
      expect(done).toHaveLength(BEADS);
    });

    it('a killed agent is restarted and its claim released; a crash loop is quarantined', async () => {
      await city(
        `
[[agent]]
name = "holder"
start_command = "${AGENTS}/stuck.sh"
[[agent]]
name = "crasher"
start_command = "echo starting; exit 3"
`,
        'max_restarts = 2\nrestart_window = "10m"',
      );
      const bead = await json<{ id: string }>(
        'bead',
        'create',
        'held work',
        '--routed-to',
        'holder',
      );
      const show = (id: string) => json<{ status: string; attempt: number }>('bead', 'show', id);
      await until(
        'holder to claim',
        () => show(bead.id),
        (b) => b.status === 'in_progress',
      );
      const pids = sessionPids(root, 'holder');
      expect(pids.length).toBeGreaterThan(0);
      for (const pid of pids) process.kill(pid, 'SIGKILL');
      const died = await until(
        'session.died holder',
        () => events('session.died'),
        (e) => e.some((x) => x.subject === 'holder'),
      );
      expect(died.length).toBeGreaterThan(0);
      const released = await until(
        'claim released',
        () => events('bead.updated'),
        (e) =>
          e.some(
            (x) =>
              x.subject === bead.id && x.payload?.action === 'unclaim' && x.actor === 'controller',
          ),
      );
      expect(released.length).toBeGreaterThan(0);
      // Restarted: the stuck agent claims the bead again, as attempt 2.
      await until(
        'holder reclaims',
        () => show(bead.id),
        (b) => b.status === 'in_progress' && b.attempt === 2,
      );

      const q = await until(
        'crasher quarantined',
        status,
        (s) => s.controller.sessions.some((x) => x.name === 'crasher' && x.state === 'quarantined'),
        30_000,
      );
      expect(q.controller.sessions.find((x) => x.name === 'crasher')?.reason).toMatch(
        /quarantined/,
      );
      expect((await events('session.quarantined')).map((e) => e.subject)).toEqual(['crasher']);
      const reset = await g('session', 'reset', 'crasher');
      expect(reset.code, reset.stderr).toBe(0);
      await until(
        'crasher restarted after reset',
        () => events('session.started'),
        (e) => e.filter((x) => x.subject === 'crasher').length >= 4,
      );
    });

    it('kill -9 of the server: the next server adopts every session, restarts none, keeps every claim', async () => {
      await city(`
[[agent]]
name = "p"
start_command = "sleep 600"
min_active_sessions = 20
max_active_sessions = 20
`);
      await until(
        '20 sessions',
        status,
        (s) => s.controller.sessions.filter((x) => x.state === 'running').length === 20,
        60_000,
      );
      const ids: string[] = [];
      for (let i = 1; i <= 5; i++) {
        const b = await json<{ id: string }>('bead', 'create', `claimed ${i}`);
        await json('bead', 'claim', b.id, '--actor', `p-${i}`);
        ids.push(b.id);
      }
      const before = await status();
      const startsBefore = (await events('session.started')).length;
      process.kill(before.pid, 'SIGKILL');
      await until(
        'old server gone',
        () =>
          Promise.resolve(
            (() => {
              try {
                process.kill(before.pid, 0);
                return true;
              } catch {
                return false;
              }
            })(),
          ),
        (alive) => !alive,
        10_000,
      );
      const r = await g('start');
      expect(r.code, r.stderr).toBe(0);
      const after = await until(
        'adoption',
        status,
        (s) => s.controller.sessions.filter((x) => x.state === 'running').length === 20,
        30_000,
      );
      expect(after.pid).not.toBe(before.pid);
      // A few more ticks, in which nothing may be restarted.
      await until(
        'three more ticks',
        status,
        (s) => s.controller.ticks >= after.controller.ticks + 3,
      );
      expect((await events('session.started')).length).toBe(startsBefore);
      expect((await events('session.adopted')).length).toBe(20);
      expect(await events('session.died')).toEqual([]);
      for (const id of ids) {
        const b = await json<{ status: string; attempt: number }>('bead', 'show', id);
        expect(b).toMatchObject({ status: 'in_progress', attempt: 1 });
      }
    });

    it('SIGTERM stops the city gracefully: sessions stopped, controller.stopped recorded', async () => {
      await city(`
[[agent]]
name = "a"
start_command = "sleep 600"
`);
      const st = await until('a running', status, (s) =>
        s.controller.sessions.some((x) => x.name === 'a' && x.state === 'running'),
      );
      process.kill(st.pid, 'SIGTERM');
      const serverAlive = () => {
        try {
          process.kill(st.pid, 0);
          return true;
        } catch {
          return false;
        }
      };
      await until(
        'server and sessions to exit',
        () => Promise.resolve(serverAlive() || cityPids(root).length > 0),
        (busy) => !busy,
        20_000,
      );
      const stopped = await events('controller.stopped');
      expect(stopped.at(-1)?.payload?.reason).toBe('signal SIGTERM');
      expect((await events('session.stopped')).map((e) => e.subject)).toEqual(['a']);
      expect((await status()).running).toBe(false);
    });

    it('a bad city.toml keeps the city running and says why; a fixed one is picked up', async () => {
      await city(`
[[agent]]
name = "a"
start_command = "sleep 600"
`);
      await until('a running', status, (s) =>
        s.controller.sessions.some((x) => x.name === 'a' && x.state === 'running'),
      );
      const file = path.join(root, 'city.toml');
      const good = await readFile(file, 'utf8');
      await writeFile(file, good + '\n[[agent]]\nname = "b"\nmax_active_sessions = "lots"\n');
      const bad = await until(
        'config error shown',
        status,
        (s) => !!s.controller.config_error,
        15_000,
      );
      expect(bad.controller.config_error).toMatch(/max_active_sessions/);
      expect(bad.controller.sessions.find((x) => x.name === 'a')?.state).toBe('running');
      expect((await events('controller.config_error')).length).toBeGreaterThan(0);
      await writeFile(file, good + '\n[[agent]]\nname = "b"\nstart_command = "sleep 600"\n');
      await until(
        'b started',
        status,
        (s) =>
          s.controller.sessions.some((x) => x.name === 'b' && x.state === 'running') &&
          !s.controller.config_error,
        15_000,
      );
      const second = await g('start');
      expect(second.code).not.toBe(0);
      expect(second.stderr).toMatch(/already running/);
    });
  });
}
