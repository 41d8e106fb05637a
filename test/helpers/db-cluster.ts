/**
 * A database server of the test's own, to kill: PostgreSQL (`initdb`, then
 * `postgres`) or MariaDB (`mariadb-install-db`, then `mariadbd`) in a
 * temporary directory on a free loopback port, started and killed (SIGKILL
 * to the whole server, every process at once, as a machine crash leaves
 * it) as often as the test likes, on the same data. The shared servers on
 * 5432 and 3306 are never touched.
 *
 * The binaries are the ones installed here (Debian's
 * /usr/lib/postgresql/<version>/bin, or GC_TEST_PG_BIN; mariadbd and
 * mariadb-install-db on the PATH or in /usr/sbin). Neither server runs as
 * root: as root the data belongs to the `postgres` or `mysql` user.
 *
 * @example
 *   const db = await DbCluster.create('postgres');   // DbCluster.missing(kind) says why not
 *   await db.start();
 *   ... db.url ...
 *   await db.kill();
 *   await db.start();
 *   await db.destroy();
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './http.js';
import { waitFor } from './wait.js';

export type ClusterKind = 'postgres' | 'mysql';

/**
 * The password the URLs carry. PostgreSQL trusts every login and MariaDB
 * runs without grant tables, so it is never checked: it is there for tests
 * that it is never shown.
 */
export const PASSWORD = 'db-cluster-secret';

/** The database a city uses on the server. */
const DATABASE = 'city';

const asRoot = process.getuid?.() === 0;
const OWNER: Record<ClusterKind, string> = { postgres: 'postgres', mysql: 'mysql' };

function pgBin(): string | undefined {
  const env = process.env.GC_TEST_PG_BIN;
  if (env) return existsSync(path.join(env, 'postgres')) ? env : undefined;
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base)
    .filter((v) => existsSync(path.join(base, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? path.join(base, versions[0], 'bin') : undefined;
}

function which(name: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin']) {
    if (dir && existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

/** The programs of one kind: [make the data, run the server, ask whether it is ready]. */
function programs(kind: ClusterKind): [string, string, string] | undefined {
  if (kind === 'postgres') {
    const bin = pgBin();
    return bin
      ? [path.join(bin, 'initdb'), path.join(bin, 'postgres'), path.join(bin, 'pg_isready')]
      : undefined;
  }
  const install = which('mariadb-install-db');
  const server = which('mariadbd');
  const admin = which('mariadb-admin') ?? which('mysqladmin');
  return install && server && admin ? [install, server, admin] : undefined;
}

function listens(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function idOf(flag: '-u' | '-g', user: string): number {
  return Number(spawnSync('id', [flag, user], { encoding: 'utf8' }).stdout.trim());
}

export class DbCluster {
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;
  private log = '';

  private constructor(
    readonly kind: ClusterKind,
    private readonly progs: [string, string, string],
    readonly dir: string,
    readonly port: number,
  ) {}

  /** Why no server of this kind can be made here, or undefined when one can. */
  static missing(kind: ClusterKind): string | undefined {
    if (!programs(kind)) {
      return kind === 'postgres'
        ? 'no PostgreSQL binaries (initdb, postgres, pg_isready) under /usr/lib/postgresql'
        : 'no MariaDB binaries (mariadb-install-db, mariadbd, mariadb-admin)';
    }
    if (asRoot && spawnSync('id', ['-u', OWNER[kind]]).status !== 0) {
      return `running as root and there is no ${OWNER[kind]} user to run the server as`;
    }
    return undefined;
  }

  /** A new server's data (not started). */
  static async create(kind: ClusterKind): Promise<DbCluster> {
    const why = DbCluster.missing(kind);
    if (why) throw new Error(`cannot make a ${kind} server: ${why}`);
    const progs = programs(kind)!;
    const dir = mkdtempSync(path.join(os.tmpdir(), `gc-${kind}-`));
    if (asRoot) chownSync(dir, idOf('-u', OWNER[kind]), idOf('-g', OWNER[kind]));
    const data = path.join(dir, 'data');
    const init =
      kind === 'postgres'
        ? run(progs[0], ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync'], 'postgres')
        : run(
            progs[0],
            [
              '--no-defaults',
              `--datadir=${data}`,
              '--auth-root-authentication-method=normal',
              '--skip-test-db',
              ...(asRoot ? ['--user=mysql'] : []),
            ],
            undefined,
          );
    if (init.status !== 0) throw new Error(`making the ${kind} data failed: ${init.out}`);
    const cluster = new DbCluster(kind, progs, dir, await freePort());
    return cluster;
  }

  /** The URL of the city's database on it. */
  get url(): string {
    return `${this.kind}://root:${PASSWORD}@127.0.0.1:${this.port}/${DATABASE}`.replace(
      /^postgres:\/\/root:/,
      'postgres://postgres:',
    );
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** What the server wrote last (for a failing test's message). */
  get output(): string {
    return this.log.slice(-4000);
  }

  /**
   * Start it on its data (recovering after a kill) and wait until it takes
   * connections; the city's database is made the first time.
   */
  async start(): Promise<void> {
    if (this.child) throw new Error(`the ${this.kind} server is already running`);
    // After a kill the last processes may still be going: a start then
    // fails on the lock file, the shared memory or the port, and is tried again.
    await waitFor(async () => {
      const child = this.spawnServer();
      const ok = await Promise.race([
        waitFor(() => this.ready(), `${this.kind} takes connections`, 15_000).then(() => true),
        new Promise<boolean>((r) => child.once('exit', () => r(false))),
      ]);
      if (ok) {
        this.child = child;
        return true;
      }
      await this.exited;
      return false;
    }, `the test's ${this.kind} server starts`);
    const made = this.sql(`CREATE DATABASE ${DATABASE}`);
    if (made.status !== 0 && !/already exists|database exists/i.test(made.out)) {
      throw new Error(`creating the database: ${made.out}`);
    }
  }

  /** Accepting connections (not only listening: recovery runs after the port opens). */
  private async ready(): Promise<boolean> {
    if (!(await listens(this.port))) return false;
    const [, , check] = this.progs;
    const r =
      this.kind === 'postgres'
        ? run(check, ['-h', '127.0.0.1', '-p', String(this.port), '-U', 'postgres', '-t', '2'])
        : run(check, ['--no-defaults', ...this.clientArgs(), '--connect-timeout=2', 'ping']);
    return r.status === 0;
  }

  private clientArgs(): string[] {
    return ['-h', '127.0.0.1', '-P', String(this.port), '-u', 'root'];
  }

  /** One statement through the server's own client (psql or mariadb). */
  private sql(statement: string): { status: number | null; out: string } {
    if (this.kind === 'postgres') {
      const psql = path.join(path.dirname(this.progs[1]), 'psql');
      const bin = existsSync(psql) ? psql : 'psql';
      return run(bin, [
        '-h',
        '127.0.0.1',
        '-p',
        String(this.port),
        '-U',
        'postgres',
        '-d',
        'postgres',
        '-c',
        statement,
      ]);
    }
    const client = which('mariadb') ?? which('mysql') ?? 'mariadb';
    return run(client, ['--no-defaults', ...this.clientArgs(), '-e', statement]);
  }

  private spawnServer(): ChildProcess {
    const data = path.join(this.dir, 'data');
    const [, server] = this.progs;
    const args =
      this.kind === 'postgres'
        ? [
            '-D',
            data,
            '-p',
            String(this.port),
            '-k',
            this.dir,
            '-c',
            'listen_addresses=127.0.0.1',
            '-c',
            'max_connections=200',
          ]
        : [
            '--no-defaults',
            `--datadir=${data}`,
            `--port=${this.port}`,
            '--bind-address=127.0.0.1',
            `--socket=${path.join(this.dir, 'mysqld.sock')}`,
            `--pid-file=${path.join(this.dir, 'mysqld.pid')}`,
            '--skip-grant-tables',
            '--skip-log-bin',
            '--max-connections=200',
            ...(asRoot ? ['--user=mysql'] : []),
          ];
    // MariaDB drops to its user itself; PostgreSQL must be started as its own.
    const [cmd, argv] =
      asRoot && this.kind === 'postgres'
        ? ['runuser', ['-u', 'postgres', '--', server, ...args]]
        : [server, args];
    // Its own process group, so a kill takes every process of it.
    const child = spawn(cmd, argv, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (b: Buffer) => {
      this.log = (this.log + b.toString()).slice(-20_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise<void>((r) => child.once('exit', () => r()));
    return child;
  }

  /** SIGKILL the server, every process of it at once; resolves when they are gone. */
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
    await waitFor(
      () => spawnSync('pgrep', ['-g', String(child.pid)]).status !== 0,
      'the killed server is gone',
    );
  }

  async destroy(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Run a program (as postgres for PostgreSQL's, when root); its status and output. */
function run(
  cmd: string,
  args: string[],
  as: string | undefined = undefined,
): { status: number | null; out: string } {
  const r =
    asRoot && as
      ? spawnSync('runuser', ['-u', as, '--', cmd, ...args], { encoding: 'utf8' })
      : spawnSync(cmd, args, { encoding: 'utf8' });
  return { status: r.status, out: `${r.stderr ?? ''}${r.stdout ?? ''}${r.error?.message ?? ''}` };
}
