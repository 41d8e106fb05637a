/**
 * Opening a city's state: its config, work store and event log, under the
 * city lock (unless read-only). Shared by the city server and by LocalCity,
 * so both open exactly the same backends the same way.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { UnsupportedError, derivePrefix } from '../core/index.js';
import { ConfigError, loadCityConfig, ms, type LoadedConfig } from '../config/index.js';
import { JsonlEventLog, MemoryEventLog, type EventLog } from '../events/index.js';
import { MemoryStore, SqlStore, SqliteStore, type Store } from '../store/index.js';
import { databaseTarget } from './database.js';
import { CityLock, type LockRole } from './lock.js';

export interface OpenCityStateOptions {
  root: string;
  env?: NodeJS.ProcessEnv;
  /** Open without the lock, for reading and following only. */
  readonly?: boolean;
  role?: LockRole;
  lockWaitMs?: number;
  command?: string;
}

export interface CityState {
  loaded: LoadedConfig;
  /** `<root>/.gc` */
  gcDir: string;
  store: Store;
  events: EventLog;
  lock: CityLock | undefined;
  /** Close the event log and store, then release the lock. */
  close(): Promise<void>;
}

export async function openCityState(options: OpenCityStateOptions): Promise<CityState> {
  const env = options.env ?? process.env;
  const loaded = await loadCityConfig(join(options.root, 'city.toml'), env);
  const gc = join(loaded.root, '.gc');
  const readonly = options.readonly ?? false;
  if (!readonly) await mkdir(gc, { recursive: true, mode: 0o700 });
  const lock = readonly
    ? undefined
    : await CityLock.acquire(join(gc, 'city.lock'), {
        role: options.role ?? 'cli',
        ...(options.lockWaitMs !== undefined ? { waitMs: options.lockWaitMs } : {}),
        ...(options.command ? { command: options.command } : {}),
      });
  try {
    const { config } = loaded;
    const prefix = config.workspace.prefix ?? derivePrefix(config.workspace.name);
    let store: Store;
    const bp = config.beads.provider || 'sqlite';
    const database = databaseTarget(loaded);
    if ((bp === 'postgres' || bp === 'mysql') && !database) {
      throw new ConfigError([
        {
          file: loaded.file,
          path: 'beads.provider',
          message: `"${bp}" needs a database server: set [database] url (or url_file, or GC_DATABASE_URL)`,
        },
      ]);
    }
    if (database && (bp === 'postgres' || bp === 'mysql') && bp !== database.dialect) {
      throw new ConfigError([
        {
          file: loaded.file,
          path: 'beads.provider',
          message: `"${bp}" but [database] url is a ${database.dialect} server`,
        },
      ]);
    }
    if (database && (bp === 'sqlite' || bp === database.dialect)) {
      // The city's work store (beads, and the mail kept in it) on the server.
      store = await SqlStore.open({
        url: database.url,
        prefix,
        defaultLeaseMs: ms(config.beads.claim_lease),
        poolSize: config.database.pool_size,
      });
    } else if (bp === 'sqlite') {
      const dbPath = join(gc, 'beads.db');
      store = new SqliteStore({
        path: dbPath,
        // A follower without the lock must never migrate behind the holder's back.
        readonly: readonly && existsSync(dbPath),
        prefix,
        defaultLeaseMs: ms(config.beads.claim_lease),
        durability: config.beads.durability,
      });
    } else if (bp === 'memory') {
      store = new MemoryStore({ prefix, defaultLeaseMs: ms(config.beads.claim_lease) });
    } else {
      throw new UnsupportedError(`beads provider "${bp}" is not available in this build`, {
        fix: 'use [beads] provider = "sqlite" (the default)',
      });
    }
    let events: EventLog;
    const ep = config.events.provider || 'jsonl';
    if (ep === 'jsonl') {
      events = await JsonlEventLog.open({
        path: join(gc, 'events.jsonl'),
        readonly,
        maxSegmentBytes: config.events.max_segment_mb * 1024 * 1024,
        retainSegments: config.events.retain_segments,
      });
    } else if (ep === 'memory') {
      events = new MemoryEventLog();
    } else {
      await store.dispose();
      throw new UnsupportedError(`events provider "${ep}" is not available in this build`, {
        fix: 'use [events] provider = "jsonl" (the default)',
      });
    }
    return {
      loaded,
      gcDir: gc,
      store,
      events,
      lock,
      async close() {
        try {
          await events.close();
          await store.dispose();
        } finally {
          await lock?.release();
        }
      },
    };
  } catch (err) {
    await lock?.release();
    throw err;
  }
}
