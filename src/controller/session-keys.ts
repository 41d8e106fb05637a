/**
 * Session keys (wake_mode): the name an agent CLI knows a session's
 * conversation by, `{{.SessionKey}}` in its commands and GC_SESSION_KEY in
 * its environment. With wake_mode = "resume" a session keeps its key across
 * restarts, and a start of a session that ran before is a resume (its
 * agent's resume_command runs); "fresh" makes a new key at every start.
 * Kept in `.gc/session-keys.json` of the machine that starts sessions
 * (another server that takes over starts each session fresh once);
 * `gc session reset` forgets a session's key.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Wake } from './spec.js';

export class SessionKeys {
  private keys: Map<string, string> | undefined;
  private chain: Promise<void> = Promise.resolve();
  private pending = false;

  constructor(private readonly file: string) {}

  static forCity(root: string): SessionKeys {
    return new SessionKeys(path.join(root, '.gc', 'session-keys.json'));
  }

  private load(): Map<string, string> {
    if (!this.keys) {
      this.keys = new Map();
      try {
        if (existsSync(this.file)) {
          const raw = JSON.parse(readFileSync(this.file, 'utf8')) as Record<string, unknown>;
          for (const [k, v] of Object.entries(raw)) if (typeof v === 'string') this.keys.set(k, v);
        }
      } catch {
        // An unreadable file only costs each session one fresh start.
      }
    }
    return this.keys;
  }

  /**
   * Written whole, in the background, writes coalesced (a wave of starts
   * is one write). A lost write costs a session one fresh start later,
   * never a failed start now.
   */
  private save(): void {
    if (this.pending) return;
    this.pending = true;
    const write = async () => {
      this.pending = false;
      const body = JSON.stringify(Object.fromEntries(this.load()), null, 1);
      await mkdir(path.dirname(this.file), { recursive: true });
      const tmp = `${this.file}.${process.pid}.tmp`;
      await writeFile(tmp, body, { mode: 0o600 });
      await rename(tmp, this.file);
    };
    this.chain = this.chain.then(write, write).catch(() => undefined);
  }

  /** Resolves once what was asked to be saved is written (tests, shutdown). */
  flushed(): Promise<void> {
    return this.chain;
  }

  /** The key and kind of this start of `session`. */
  wake(session: string, mode: 'resume' | 'fresh'): Promise<Wake> {
    if (mode === 'fresh') return Promise.resolve({ key: randomUUID(), resume: false });
    const keys = this.load();
    const known = keys.get(session);
    if (known) return Promise.resolve({ key: known, resume: true });
    const key = randomUUID();
    keys.set(session, key);
    this.save();
    return Promise.resolve({ key, resume: false });
  }

  /** The next start of `session` is fresh, with a new key. */
  forget(session: string): Promise<void> {
    if (this.load().delete(session)) this.save();
    return this.chain;
  }
}
