/**
 * Opening a city's state: its config, work store and event log, under the
 * city lock (unless read-only). Shared by the city server and by LocalCity,
 * so both open exactly the same backends the same way.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { UnsupportedError, derivePrefix, resolveScript } from '../core/index.js';
import { loadCityConfig, ms, type LoadedConfig } from '../config/index.js';
import { type SqlDb } from '../db/index.js';
import {
  ExecEventLog,
  JsonlEventLog,
  MemoryEventLog,
  SqlEventLog,
  type EventLog,
} from '../events/index.js';
import { ExecStore, MemoryStore, SqlStore, SqliteStore, type Store } from '../store/index.js';
import { checkEventsBeside, checkProvider, connectDatabase, databaseTarget } from './database.js';
import { CityLock, type LockRole } from './lock.js';

export interface OpenCityStateOptions {
  root: string;
  env?: NodeJS.ProcessEnv;
  /** Open without the lock, for reading and following only. */
  readonly?: boolean;
  role?: LockRole;
  /** Take no lock when the city is on a database server (its servers share it; see server/). */
  lockUnlessDatabase?: boolean;
  lockWaitMs?: number;
  command?: string;
  /**
   * With [database] url: keep trying a server that is down this long (ms)
   * before failing; 'database': as `[database] connect_retry` says.
   */
  connectRetryMs?: number | 'database';
  log?: (line: string) => void;
}

export interface CityState {
  loaded: LoadedConfig;
  /** `<root>/.gc` */
  gcDir: string;
  store: Store;
  events: EventLog;
  lock: CityLock | undefined;
  /** The city's database pool, with [database] url (closed by `close`). */
  db: SqlDb | undefined;
  /** Close the event log and store, then release the lock. */
  close(): Promise<void>;
}

export async function openCityState(options: OpenCityStateOptions): Promise<CityState> {
  const env = options.env ?? process.env;
  const loaded = await loadCityConfig(join(options.root, 'city.toml'), env);
  const gc = join(loaded.root, '.gc');
  const readonly = options.readonly ?? false;
  if (!readonly) await mkdir(gc, { recursive: true, mode: 0o700 });
  const shared = options.lockUnlessDatabase === true && databaseTarget(loaded) !== undefined;
  const lock =
    readonly || shared
      ? undefined
      : await CityLock.acquire(join(gc, 'city.lock'), {
          role: options.role ?? 'cli',
          ...(options.lockWaitMs !== undefined ? { waitMs: options.lockWaitMs } : {}),
          ...(options.command ? { command: options.command } : {}),
        });
  let db: SqlDb | undefined;
  let store: Store | undefined;
  try {
    const { config } = loaded;
    const prefix = config.workspace.prefix ?? derivePrefix(config.workspace.name);
    const bp = config.beads.provider || 'sqlite';
    const ep = config.events.provider || 'jsonl';
    const database = databaseTarget(loaded);
    checkProvider(loaded, 'beads.provider', bp, database);
    checkProvider(loaded, 'events.provider', ep, database);
    checkEventsBeside(loaded, bp, ep, database);
    if (database) {
      db = await connectDatabase(database, {
        poolSize: config.database.pool_size,
        retryMs:
          options.connectRetryMs === 'database'
            ? ms(config.database.connect_retry)
            : (options.connectRetryMs ?? 0),
        ...(options.log ? { log: options.log } : {}),
      });
    }
    const lease = ms(config.beads.claim_lease);
    if (db && (bp === 'sqlite' || bp === db.dialect)) {
      // The city's work store (beads, and the mail kept in it) on the server.
      store = await SqlStore.open({ db, prefix, defaultLeaseMs: lease });
    } else if (bp === 'sqlite') {
      const dbPath = join(gc, 'beads.db');
      store = new SqliteStore({
        path: dbPath,
        // A follower without the lock must never migrate behind the holder's back.
        readonly: readonly && existsSync(dbPath),
        prefix,
        defaultLeaseMs: lease,
        durability: config.beads.durability,
      });
    } else if (bp === 'memory') {
      store = new MemoryStore({ prefix, defaultLeaseMs: lease });
    } else if (bp.startsWith('exec:')) {
      // Gas City's exec beads protocol: the script keeps the beads (REFERENCE.md 2).
      store = await new ExecStore(resolveScript(bp.slice(5), loaded.root), {
        prefix,
        defaultLeaseMs: lease,
        cwd: loaded.root,
        env: {
          GC_CITY_ROOT: loaded.root,
          GC_STORE_ROOT: loaded.root,
          GC_STORE_SCOPE: 'city',
          GC_BEADS_PREFIX: prefix,
        },
      }).open();
    } else {
      throw new UnsupportedError(`beads provider "${bp}" is not available in this build`, {
        fix: 'use [beads] provider = "sqlite" (the default), or "exec:<script>" for a script speaking the exec beads protocol',
      });
    }
    let events: EventLog;
    if (db && (ep === 'jsonl' || ep === db.dialect)) {
      // With a database, the log is there too: nothing a second server needs stays in .gc/.
      const maxAge = config.events.retain_max_age;
      events = await SqlEventLog.open({
        db,
        retention: {
          maxEvents: config.events.retain_max_events,
          maxAgeMs: maxAge ? ms(maxAge) : 0,
        },
        // Only the lock holder prunes; a follower only reads.
        pruneEveryMs: readonly ? 0 : 600_000,
      });
    } else if (ep === 'jsonl') {
      events = await JsonlEventLog.open({
        path: join(gc, 'events.jsonl'),
        readonly,
        maxSegmentBytes: config.events.max_segment_mb * 1024 * 1024,
        retainSegments: config.events.retain_segments,
      });
    } else if (ep === 'memory') {
      events = new MemoryEventLog();
    } else if (ep.startsWith('exec:')) {
      // Gas City's exec events protocol: the script keeps the log (REFERENCE.md 3).
      events = await new ExecEventLog(resolveScript(ep.slice(5), loaded.root), {
        cwd: loaded.root,
        env: { GC_CITY_ROOT: loaded.root },
      }).open();
    } else {
      throw new UnsupportedError(`events provider "${ep}" is not available in this build`, {
        fix: 'use [events] provider = "jsonl" (the default)',
      });
    }
    const pool = db;
    const opened: Store = store;
    return {
      loaded,
      gcDir: gc,
      store,
      events,
      lock,
      db: pool,
      async close() {
        try {
          await events.close();
          await opened.dispose();
          await pool?.close();
        } finally {
          await lock?.release();
        }
      },
    };
  } catch (err) {
    await store?.dispose().catch(() => undefined);
    await db?.close().catch(() => undefined);
    await lock?.release();
    throw err;
  }
}
