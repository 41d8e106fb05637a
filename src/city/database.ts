/**
 * Where a city's database server is: `[database] url` (or GC_DATABASE_URL,
 * applied by the config loader), or the first line of `[database]
 * url_file`, a file only its owner may read. Empty when the city keeps its
 * state in `.gc/` (SQLite).
 */
import { statSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { join } from 'node:path';
import { ConfigError, loadCityConfig, ms, type LoadedConfig } from '../config/index.js';
import { SqlKeyStore } from './key-store.js';
import { KeyRing } from './keyring.js';
import type { GcError } from '../core/index.js';
import {
  DatabaseUnavailableError,
  dialectOf,
  migrate,
  openSqlDb,
  type Dialect,
  type SqlDb,
} from '../db/index.js';

export interface DatabaseTarget {
  url: string;
  dialect: Dialect;
}

export function databaseTarget(loaded: LoadedConfig): DatabaseTarget | undefined {
  const { root, file: configFile } = loaded;
  const configError = (key: string, message: string): ConfigError =>
    new ConfigError([{ file: configFile, path: `database.${key}`, message }]);
  const { url, url_file: file } = loaded.config.database;
  let text = url.trim();
  if (text && file) throw configError('url_file', 'set url or url_file, not both');
  if (!text && file) {
    const path = resolve(root, file);
    let st;
    try {
      st = statSync(path);
    } catch (e) {
      throw configError('url_file', `cannot read ${path}: ${(e as NodeJS.ErrnoException).code}`);
    }
    if (st.mode & 0o077) {
      throw configError(
        'url_file',
        `${path} may be read by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`,
      );
    }
    text = (readFileSync(path, 'utf8').split('\n')[0] ?? '').trim();
    if (!text) throw configError('url_file', `${path} is empty`);
  }
  if (!text) return undefined;
  let dialect: Dialect;
  try {
    dialect = dialectOf(text);
  } catch (e) {
    throw configError(file ? 'url_file' : 'url', (e as GcError).message);
  }
  return { url: text, dialect };
}

/**
 * The provider named in `[beads]` or `[events]` against the database: a
 * server provider needs `[database] url`, and must name its dialect.
 */
export function checkProvider(
  loaded: LoadedConfig,
  key: 'beads.provider' | 'events.provider',
  provider: string,
  target: DatabaseTarget | undefined,
): void {
  if (provider !== 'postgres' && provider !== 'mysql') return;
  const problem = !target
    ? `"${provider}" needs a database server: set [database] url (or url_file, or GC_DATABASE_URL)`
    : provider !== target.dialect
      ? `"${provider}" but [database] url is a ${target.dialect} server`
      : undefined;
  if (problem) throw new ConfigError([{ file: loaded.file, path: key, message: problem }]);
}

/**
 * A store on the database server writes each change's events into the
 * database's log in the change's own commit. An `[events]` provider that
 * keeps the log elsewhere (an exec script, memory) would never see them, so
 * that pairing is refused rather than losing the store's events.
 */
export function checkEventsBeside(
  loaded: LoadedConfig,
  beads: string,
  events: string,
  target: DatabaseTarget | undefined,
): void {
  if (!target) return;
  const storeOnServer = beads === 'sqlite' || beads === target.dialect;
  const logOnServer = events === 'jsonl' || events === target.dialect;
  if (!storeOnServer || logOnServer) return;
  throw new ConfigError([
    {
      file: loaded.file,
      path: 'events.provider',
      message:
        `"${events}" cannot keep the log of a city whose beads are on its database server: ` +
        `the store writes each change's events into the database with the change. ` +
        `Remove [events] provider (the log then lives in the database too), ` +
        `or keep the beads elsewhere ([beads] provider = "exec:<script>")`,
    },
  ]);
}

export interface ConnectOptions {
  poolSize?: number;
  /** Keep trying an unavailable server this long (ms), backing off; 0: fail at once. */
  retryMs?: number;
  log?: (line: string) => void;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Open the city's pool and bring its schema up to date. A server that is
 * down or refusing (DatabaseUnavailableError) is tried again with backoff
 * (0.5 s doubling to 5 s) for `retryMs`; any other error fails at once.
 */
export async function connectDatabase(
  target: DatabaseTarget,
  options: ConnectOptions = {},
): Promise<SqlDb> {
  const end = Date.now() + (options.retryMs ?? 0);
  const sleep = options.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)));
  let wait = 500;
  for (;;) {
    const db = await openSqlDb(target.url, options.poolSize ? { poolSize: options.poolSize } : {});
    try {
      await migrate(db);
      return db;
    } catch (e) {
      await db.close().catch(() => undefined);
      if (!(e instanceof DatabaseUnavailableError) || Date.now() + wait > end) throw e;
      options.log?.(`${e.message}; trying again in ${wait} ms`);
      await sleep(wait);
      wait = Math.min(5000, wait * 2);
    }
  }
}

/**
 * The key ring of the city at `root`, outside a running server (`gc start`
 * making the admin key, `gc init`): on its database when it has one (tried
 * for as long as `[database] connect_retry` says), else in `.gc/`.
 */
export async function openCityKeyRing(root: string, env: NodeJS.ProcessEnv = process.env) {
  const loaded = await loadCityConfig(join(root, 'city.toml'), env);
  const target = databaseTarget(loaded);
  if (!target) return KeyRing.open(join(loaded.root, '.gc'));
  const db = await connectDatabase(target, {
    poolSize: 2,
    retryMs: ms(loaded.config.database.connect_retry),
  });
  return KeyRing.open(new SqlKeyStore(db, true));
}
