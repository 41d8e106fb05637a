/**
 * A PostgreSQL server of the test's own, to kill: `initdb` into a temporary
 * directory and `postgres` on a free loopback port, started and killed
 * (SIGKILL to the whole server: postmaster and every backend, as a machine
 * crash would leave it) as often as the test likes, on the same data.
 * The shared server on 5432 is never touched.
 *
 * The binaries come from the PostgreSQL installed here (Debian's
 * /usr/lib/postgresql/<version>/bin, or GC_TEST_PG_BIN). PostgreSQL refuses
 * to run as root; as root the cluster belongs to the `postgres` user.
 *
 * @example
 *   const pg = await PgCluster.create();   // undefined: why in PgCluster.missing()
 *   await pg.start();
 *   ... pg.url ...
 *   await pg.kill();
 *   await pg.start();
 *   await pg.destroy();
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from './wait.js';

/** The directory holding initdb and postgres, or undefined. */
function binDir(): string | undefined {
  const env = process.env.GC_TEST_PG_BIN;
  if (env) return existsSync(path.join(env, 'postgres')) ? env : undefined;
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base)
    .filter((v) => existsSync(path.join(base, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? path.join(base, versions[0], 'bin') : undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** The password the URL carries (never checked; see `url`). */
export const PASSWORD = 'pg-cluster-secret';

const asRoot = process.getuid?.() === 0;

export class PgCluster {
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;
  private log = '';

  private constructor(
    private readonly bin: string,
    readonly dir: string,
    readonly port: number,
  ) {}

  /** Why no cluster can be made here, or undefined when one can. */
  static missing(): string | undefined {
    const bin = binDir();
    if (!bin) return 'no PostgreSQL binaries (initdb, postgres) under /usr/lib/postgresql';
    if (asRoot && spawnSync('id', ['-u', 'postgres']).status !== 0) {
      return 'running as root and there is no postgres user to run the server as';
    }
    return undefined;
  }

  /** A new cluster (initdb), not started. */
  static async create(): Promise<PgCluster> {
    const why = PgCluster.missing();
    if (why) throw new Error(`cannot make a PostgreSQL server: ${why}`);
    const bin = binDir()!;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gc-pg-'));
    if (asRoot) chownSync(dir, uidOf('postgres'), gidOf('postgres'));
    const init = runAs(path.join(bin, 'initdb'), [
      '-D',
      path.join(dir, 'data'),
      '-A',
      'trust',
      '-U',
      'postgres',
      '--no-sync',
    ]);
    if (init.status !== 0) {
      throw new Error(`initdb failed: ${String(init.stderr)}${String(init.stdout)}`);
    }
    return new PgCluster(bin, dir, await freePort());
  }

  /**
   * The URL of its `postgres` database. Logins are trusted, so the password
   * in it is never checked: it is there for tests that it is never shown.
   */
  get url(): string {
    return `postgres://postgres:${PASSWORD}@127.0.0.1:${this.port}/postgres`;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** What the server wrote (for a failing test's message). */
  get output(): string {
    return this.log.slice(-4000);
  }

  /** Start it on its data (recovering after a kill) and wait until it takes connections. */
  async start(): Promise<void> {
    if (this.child) throw new Error('the PostgreSQL server is already running');
    // After a kill the last backends may still be exiting: a start then
    // fails on the lock file or the shared memory, and is tried again.
    await waitFor(async () => {
      const child = this.spawnServer();
      const ok = await Promise.race([
        waitFor(() => this.ready(), 'postgres takes connections', 15_000).then(() => true),
        new Promise<boolean>((r) => child.once('exit', () => r(false))),
      ]);
      if (ok) {
        this.child = child;
        return true;
      }
      await this.exited;
      return false;
    }, `the test's PostgreSQL server starts (${this.output})`);
  }

  /** Accepting connections (not only listening: recovery runs after the port opens). */
  private async ready(): Promise<boolean> {
    if (!(await answers(this.port))) return false;
    const r = spawnSync(
      path.join(this.bin, 'pg_isready'),
      ['-h', '127.0.0.1', '-p', String(this.port), '-U', 'postgres', '-t', '2'],
      { encoding: 'utf8' },
    );
    return r.status === 0;
  }

  private spawnServer(): ChildProcess {
    const args = [
      '-D',
      path.join(this.dir, 'data'),
      '-p',
      String(this.port),
      '-k',
      this.dir,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'max_connections=200',
    ];
    const [cmd, argv] = asRoot
      ? ['runuser', ['-u', 'postgres', '--', path.join(this.bin, 'postgres'), ...args]]
      : [path.join(this.bin, 'postgres'), args];
    // Its own process group, so a kill takes every backend with it.
    const child = spawn(cmd, argv, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (b: Buffer) => {
      this.log = (this.log + b.toString()).slice(-20_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise<void>((r) => child.once('exit', () => r()));
    return child;
  }

  /** SIGKILL the server and every backend at once; resolves when they are gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child?.pid) return;
    this.child = undefined;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await this.exited;
    // Backends are in the group too; wait until none is left.
    await waitFor(() => {
      const r = spawnSync('pgrep', ['-g', String(child.pid)]);
      return r.status !== 0;
    }, 'the killed server is gone');
  }

  async destroy(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function runAs(cmd: string, args: string[]): ReturnType<typeof spawnSync> {
  return asRoot
    ? spawnSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { encoding: 'utf8' })
    : spawnSync(cmd, args, { encoding: 'utf8' });
}

function idOf(flag: '-u' | '-g', user: string): number {
  const r = spawnSync('id', [flag, user], { encoding: 'utf8' });
  return Number(r.stdout.trim());
}
const uidOf = (u: string) => idOf('-u', u);
const gidOf = (u: string) => idOf('-g', u);
