/**
 * The city lock: `.gc/city.lock`, a pid file created with O_EXCL. Whoever
 * holds it is the only writer of the store and event log. Short-lived CLI
 * holders are waited for (bounded); a city server holder is refused at once
 * with a clear message. A lock whose process is gone is stale and taken over.
 */
import { hostname } from 'node:os';
import { open, readFile, unlink } from 'node:fs/promises';
import { LockedError, processAlive } from '../core/index.js';

export type LockRole = 'cli' | 'server';

export interface LockInfo {
  pid: number;
  role: LockRole;
  host: string;
  started_at: string;
  command?: string;
}

export interface AcquireOptions {
  role: LockRole;
  /** How long to wait for a CLI holder before refusing. Default 10 s. */
  waitMs?: number;
  command?: string;
}

const alive = processAlive;

async function readInfo(path: string): Promise<LockInfo | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as LockInfo;
  } catch {
    return undefined;
  }
}

export class CityLock {
  private constructor(
    readonly path: string,
    readonly info: LockInfo,
  ) {}

  static async acquire(path: string, options: AcquireOptions): Promise<CityLock> {
    const info: LockInfo = {
      pid: process.pid,
      role: options.role,
      host: hostname(),
      started_at: new Date().toISOString(),
      ...(options.command ? { command: options.command } : {}),
    };
    const deadline = Date.now() + (options.waitMs ?? 10_000);
    for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
      try {
        const fh = await open(path, 'wx', 0o600);
        try {
          await fh.writeFile(JSON.stringify(info));
          await fh.sync();
        } finally {
          await fh.close();
        }
        return new CityLock(path, info);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = await readInfo(path);
      if (holder === undefined) {
        // Being written right now, or garbage left by a crash mid-write.
        if (Date.now() > deadline) await unlink(path).catch(() => undefined);
      } else if (holder.host === info.host && !alive(holder.pid)) {
        // Stale: re-check that it is still the same stale file before removing.
        const again = await readInfo(path);
        if (again?.pid === holder.pid) await unlink(path).catch(() => undefined);
        continue;
      } else if (holder.role === 'server') {
        throw new LockedError(
          `the city server (pid ${holder.pid}) is running and holds the city lock`,
          {
            details: { holder },
            fix: 'stop it with `gc stop`, or run this command through the server once the API is enabled',
          },
        );
      } else if (Date.now() > deadline) {
        throw new LockedError(
          `another gc process (pid ${holder.pid}${holder.command ? `, ${holder.command}` : ''}) holds the city lock`,
          { details: { holder }, fix: 'wait for it to finish and retry' },
        );
      }
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  /** Remove the lock if it is still ours. Idempotent. */
  async release(): Promise<void> {
    const holder = await readInfo(this.path);
    if (holder?.pid === this.info.pid && holder.started_at === this.info.started_at) {
      await unlink(this.path).catch(() => undefined);
    }
  }

  static read(path: string): Promise<LockInfo | undefined> {
    return readInfo(path);
  }
}
