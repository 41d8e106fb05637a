/**
 * Whether a database-backed test runs: the one place that decides. A test
 * file asks for a server by kind; when the server answers, the tests run
 * against it; when it does not, they are skipped with the reason printed,
 * unless GC_TEST_REQUIRE_DB=1 (set by .ci/run), where an unreachable server
 * fails the file instead: CI must never pass by skipping.
 *
 * @example
 *   const pg = await database('postgres');
 *   describe.skipIf(!pg.url)(`store on postgres${pg.note}`, () => { ... pg.url ... });
 */
import { connect } from 'node:net';
import type { SqlDb } from '../../src/db/index.js';

export type DatabaseKind = 'postgres' | 'mysql';

/** Where each server is on this machine's kind (and CI's); env overrides. */
export const DEFAULT_URLS: Record<DatabaseKind, string> = {
  postgres: 'postgres://postgres@127.0.0.1:5432/test',
  mysql: 'mysql://root@127.0.0.1:3306/test',
};
const ENV_URL: Record<DatabaseKind, string> = {
  postgres: 'GC_TEST_POSTGRES_URL',
  mysql: 'GC_TEST_MYSQL_URL',
};
const DEFAULT_PORT: Record<DatabaseKind, number> = { postgres: 5432, mysql: 3306 };
const CONNECT_TIMEOUT_MS = 3000;

export interface DatabaseChoice {
  /** The server's URL when the tests run; undefined when they are skipped. */
  url: string | undefined;
  /** " (skipped: why)" for a suite name, or "". */
  note: string;
}

/** True when GC_TEST_REQUIRE_DB asks for every database-backed test to run. */
export function databaseRequired(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.GC_TEST_REQUIRE_DB === '1' || env.GC_TEST_REQUIRE_DB === 'true';
}

function tcpProbe(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (problem: string | undefined) => {
      socket.destroy();
      resolve(problem);
    };
    socket.setTimeout(CONNECT_TIMEOUT_MS, () => done(`no answer in ${CONNECT_TIMEOUT_MS} ms`));
    socket.once('connect', () => done(undefined));
    socket.once('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
  });
}

/**
 * Decide for one kind of server. Options exist for the helper's own tests;
 * test files call it with the kind only.
 */
export async function database(
  kind: DatabaseKind,
  options: { url?: string; required?: boolean; log?: (line: string) => void } = {},
): Promise<DatabaseChoice> {
  const url = options.url ?? process.env[ENV_URL[kind]] ?? DEFAULT_URLS[kind];
  const required = options.required ?? databaseRequired();
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  let problem: string | undefined;
  let where = url;
  try {
    const u = new URL(url);
    where = `${u.hostname}:${u.port || DEFAULT_PORT[kind]}`;
    problem = await tcpProbe(
      u.hostname.replace(/^\[|\]$/g, ''),
      Number(u.port) || DEFAULT_PORT[kind],
    );
  } catch (e) {
    problem = `bad URL ${JSON.stringify(url)}: ${(e as Error).message}`;
  }
  if (problem === undefined) return { url, note: '' };
  const reason = `${kind} at ${where} is unreachable (${problem})`;
  if (required) {
    throw new Error(
      `${reason}, and GC_TEST_REQUIRE_DB=1 says database-backed tests must run: start the server, or set ${ENV_URL[kind]}`,
    );
  }
  log(`skipping ${kind} tests: ${reason} (set GC_TEST_REQUIRE_DB=1 to make this an error)`);
  return { url: undefined, note: ` (skipped: ${reason})` };
}

/**
 * Fresh, empty schemas on a database server, one per store a test opens
 * (PostgreSQL: a schema; MySQL: a database), so test files and the tests
 * in them run in parallel without seeing each other's rows. `dropAll()`
 * (afterAll) removes what this process made.
 */
export class Scratch {
  private readonly made: { name: string; kind: 'SCHEMA' | 'DATABASE' }[] = [];
  private readonly tag = `t${process.pid}_${Date.now().toString(36)}`;

  constructor(readonly url: string) {}

  private get pg(): boolean {
    return this.url.startsWith('postgres');
  }

  private next(): string {
    return `gc_${this.tag}_${this.made.length}`;
  }

  /** A fresh schema (PostgreSQL) or database (MySQL) on the server: its name. */
  async create(): Promise<string> {
    const name = this.next();
    const kind = this.pg ? 'SCHEMA' : 'DATABASE';
    await this.admin(`CREATE ${kind} ${name}`);
    this.made.push({ name, kind });
    return name;
  }

  /** A fresh database on the server: a URL naming it (as a city's [database] url would). */
  async createDatabase(): Promise<string> {
    const name = this.next();
    await this.admin(`CREATE DATABASE ${name}`);
    this.made.push({ name, kind: 'DATABASE' });
    const u = new URL(this.url);
    u.pathname = `/${name}`;
    return u.toString();
  }

  async dropAll(): Promise<void> {
    for (const { name, kind } of this.made.splice(0)) {
      const tail = kind === 'SCHEMA' ? ' CASCADE' : this.pg ? ' WITH (FORCE)' : '';
      await this.admin(`DROP ${kind} IF EXISTS ${name}${tail}`).catch(() => undefined);
    }
  }

  private async admin(sql: string): Promise<void> {
    const { openSqlDb } = await import('../../src/db/index.js');
    const db = await openSqlDb(this.url, { poolSize: 1 });
    try {
      await db.run(sql);
    } finally {
      await db.close();
    }
  }
}

/**
 * Run `suite` for each database server that answers (PostgreSQL, then
 * MariaDB), with `fresh()` opening a pool on a new, migrated schema of
 * that server; pools are closed and schemas dropped after the file. A
 * server that does not answer gets a skipped suite named `what` with the
 * reason (or fails the file under GC_TEST_REQUIRE_DB=1). Call it at the top
 * level of a test file (it registers an afterAll).
 */
export async function onEachServer(
  what: string,
  suite: (kind: DatabaseKind, fresh: (options?: { poolSize?: number }) => Promise<SqlDb>) => void,
): Promise<void> {
  const { afterAll, describe } = await import('vitest');
  const { migrate, openSqlDb } = await import('../../src/db/index.js');
  for (const kind of ['postgres', 'mysql'] as const) {
    const server = await database(kind);
    if (!server.url) {
      describe.skip(`${kind} ${what}${server.note}`, () => undefined);
      continue;
    }
    const url = server.url;
    const scratch = new Scratch(url);
    const pools: { close(): Promise<void> }[] = [];
    afterAll(async () => {
      for (const p of pools.splice(0)) await p.close();
      await scratch.dropAll();
    });
    suite(kind, async (options = {}) => {
      const db = await openSqlDb(url, {
        schema: await scratch.create(),
        poolSize: options.poolSize ?? 4,
      });
      pools.push(db);
      await migrate(db);
      return db;
    });
  }
}
