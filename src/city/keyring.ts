/**
 * API keys. A key is `gck_<keyid>_<secret>`: 32 random bytes of secret,
 * shown once. The city keeps only the key id and HMAC-SHA256(server secret,
 * secret), in `.gc/auth.db`; the server secret is `.gc/server.secret`
 * (0600). Verifying is one map lookup by key id, one HMAC and a
 * constant-time compare: microseconds, not a password hash (which would cap
 * the API at a few requests per second per core).
 *
 * Principals: `admin` (the human operator), `operator` (a tenant running
 * its own agents), `agent` (one per session, or a registered external agent).
 */
import Database from 'better-sqlite3';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  GcError,
  NotFoundError,
  ValidationError,
  adminKeyPath,
  errorMessage,
  fault,
  randomBase36,
  readAdminKey,
} from '../core/index.js';

export type PrincipalKind = 'admin' | 'operator' | 'agent';

export interface Principal {
  key_id: string;
  kind: PrincipalKind;
  /** Who it acts as: the session name for session agents. */
  name: string;
  /** The operator that registered an external agent ('' otherwise). */
  owner: string;
  /** Operators: cap on concurrent sessions (0 = none). */
  max_sessions: number;
  /** External agents: where mail is pushed ('' = inbox only). */
  webhook_url: string;
  created_at: string;
  revoked_at: string | null;
  seq: number;
}

export interface CreatedKey {
  /** The key itself; shown once, never stored. */
  token: string;
  principal: Principal;
}

interface Pending {
  created: string[];
  revoked: [id: string, at: string][];
}

const TOKEN = /^gck_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/;

interface Row extends Omit<Principal, 'revoked_at'> {
  hmac: Buffer;
  revoked_at: string | null;
}

export class KeyRing {
  private readonly db: Database.Database;
  private readonly secret: Buffer;
  /** Live keys by id: the O(1) lookup of the request path. */
  private readonly live = new Map<string, { hmac: Buffer; principal: Principal }>();
  /** Live principals by `kind:name`, for O(1) lookups by name. */
  private readonly byName = new Map<string, Map<string, Principal>>();

  private constructor(gcDir: string) {
    mkdirSync(gcDir, { recursive: true });
    const secretFile = path.join(gcDir, 'server.secret');
    if (!existsSync(secretFile)) {
      writeFileSync(secretFile, randomBytes(32).toString('base64'), { mode: 0o600, flag: 'wx' });
    }
    this.secret = Buffer.from(readFileSync(secretFile, 'utf8').trim(), 'base64');
    this.db = new Database(path.join(gcDir, 'auth.db'));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(`CREATE TABLE IF NOT EXISTS keys (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      key_id TEXT NOT NULL UNIQUE,
      kind TEXT NOT NULL CHECK (kind IN ('admin','operator','agent')),
      name TEXT NOT NULL,
      owner TEXT NOT NULL DEFAULT '',
      max_sessions INTEGER NOT NULL DEFAULT 0,
      webhook_url TEXT NOT NULL DEFAULT '',
      hmac BLOB NOT NULL,
      created_at TEXT NOT NULL,
      revoked_at TEXT
    );
    CREATE INDEX IF NOT EXISTS keys_by_name ON keys(kind, name) WHERE revoked_at IS NULL;`);
    for (const r of this.db.prepare('SELECT * FROM keys WHERE revoked_at IS NULL').all() as Row[]) {
      this.live.set(r.key_id, { hmac: r.hmac, principal: toPrincipal(r) });
      this.index(toPrincipal(r), true);
    }
  }

  static open(gcDir: string): KeyRing {
    return new KeyRing(gcDir);
  }

  private hmacOf(secret: string): Buffer {
    return createHmac('sha256', this.secret).update(secret).digest();
  }

  create(input: {
    kind: PrincipalKind;
    name: string;
    owner?: string;
    maxSessions?: number;
    webhookUrl?: string;
  }): CreatedKey {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$/.test(input.name)) {
      throw new ValidationError('letters, digits, "_", ".", "@" and "-", at most 100', {
        where: 'name',
      });
    }
    fault('keys.write');
    const keyId = randomBase36(12);
    const secret = randomBytes(32).toString('base64url');
    const hmac = this.hmacOf(secret);
    const created_at = new Date().toISOString();
    const info = this.db
      .prepare(
        `INSERT INTO keys (key_id, kind, name, owner, max_sessions, webhook_url, hmac, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        keyId,
        input.kind,
        input.name,
        input.owner ?? '',
        input.maxSessions ?? 0,
        input.webhookUrl ?? '',
        hmac,
        created_at,
      );
    const principal: Principal = {
      key_id: keyId,
      kind: input.kind,
      name: input.name,
      owner: input.owner ?? '',
      max_sessions: input.maxSessions ?? 0,
      webhook_url: input.webhookUrl ?? '',
      created_at,
      revoked_at: null,
      seq: Number(info.lastInsertRowid),
    };
    this.live.set(keyId, { hmac, principal });
    this.index(principal, true);
    this.pending?.created.push(keyId);
    return { token: `gck_${keyId}_${secret}`, principal };
  }

  /** The principal of a valid, unrevoked key; undefined otherwise. Constant time in the secret. */
  verify(token: string): Principal | undefined {
    const m = TOKEN.exec(token);
    if (!m) return undefined;
    const entry = this.live.get(m[1]!);
    const got = this.hmacOf(m[2]!);
    if (!entry) return undefined;
    return timingSafeEqual(got, entry.hmac) ? entry.principal : undefined;
  }

  /** Revoke one key. Idempotent; NotFoundError for an unknown id. */
  revoke(keyId: string): Principal {
    // Deny first, in memory: the key stops working now even when the write
    // that records it fails (a full disk); that write is retried.
    const live = this.live.get(keyId);
    if (live) this.index(live.principal, false);
    this.live.delete(keyId);
    const r = this.db.prepare('SELECT * FROM keys WHERE key_id = ?').get(keyId) as Row | undefined;
    if (!r) throw new NotFoundError('key', keyId);
    if (r.revoked_at === null) {
      r.revoked_at = new Date().toISOString();
      try {
        this.persistRevoke(keyId, r.revoked_at);
        this.pending?.revoked.push([keyId, r.revoked_at]);
      } catch (e) {
        this.unpersisted.set(keyId, r.revoked_at);
        this.retryRevokes();
        throw new GcError(
          'unavailable',
          `key ${keyId} (${r.name}) is revoked, but recording it failed (${errorMessage(e)}); retrying`,
        );
      }
    }
    return toPrincipal(r);
  }

  /** Revocations not yet written, by key id (retried until they are). */
  private readonly unpersisted = new Map<string, string>();
  private retryTimer: NodeJS.Timeout | undefined;

  private persistRevoke(keyId: string, at: string): void {
    fault('keys.write');
    this.db.prepare('UPDATE keys SET revoked_at = ? WHERE key_id = ?').run(at, keyId);
  }

  private retryRevokes(): void {
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      for (const [id, at] of this.unpersisted) {
        try {
          this.persistRevoke(id, at);
          this.unpersisted.delete(id);
        } catch {
          // still failing: try again later
        }
      }
      if (this.unpersisted.size) this.retryRevokes();
    }, 2000);
    this.retryTimer.unref();
  }

  private index(p: Principal, add: boolean): void {
    const k = `${p.kind}:${p.name}`;
    const set = this.byName.get(k) ?? new Map<string, Principal>();
    if (add) set.set(p.key_id, p);
    else set.delete(p.key_id);
    if (set.size) this.byName.set(k, set);
    else this.byName.delete(k);
  }

  /** Revoke every live key of `kind` named `name` (a session's token when it ends). */
  revokeByName(kind: PrincipalKind, name: string): number {
    const ids = [...(this.byName.get(`${kind}:${name}`)?.keys() ?? [])];
    for (const id of ids) this.revoke(id);
    return ids.length;
  }

  /**
   * Run `fn` (creates and revokes) as one transaction: one durable write
   * for a wave of session keys instead of one each. When it throws, none
   * of its writes is kept.
   */
  batch<T>(fn: () => T): T {
    if (this.pending) return fn();
    const pending: Pending = { created: [], revoked: [] };
    this.pending = pending;
    try {
      return this.db.transaction(fn)();
    } catch (e) {
      // Rolled back: keys made in it never existed; its revocations still
      // hold in memory and are written again later.
      for (const id of pending.created) {
        const entry = this.live.get(id);
        if (entry) this.index(entry.principal, false);
        this.live.delete(id);
      }
      for (const [id, at] of pending.revoked) this.unpersisted.set(id, at);
      if (pending.revoked.length) this.retryRevokes();
      throw e;
    } finally {
      this.pending = undefined;
    }
  }

  /** What the batch in progress wrote, to undo in memory if it rolls back. */
  private pending: Pending | undefined;

  /**
   * Session tokens as the controller and the run service use them: a
   * session's key replaces any it had; a wave of them is one write.
   */
  sessionTokens(): {
    issue(session: string): string;
    issueMany(sessions: readonly string[]): Map<string, string>;
    revoke(session: string): void;
  } {
    const issue = (session: string): string => {
      this.revokeByName('agent', session);
      return this.create({ kind: 'agent', name: session }).token;
    };
    return {
      issue,
      issueMany: (sessions) => this.batch(() => new Map(sessions.map((s) => [s, issue(s)]))),
      revoke: (session) => void this.revokeByName('agent', session),
    };
  }

  /** Whether `kind`/`name` has a live key. */
  has(kind: PrincipalKind, name: string): boolean {
    return this.byName.has(`${kind}:${name}`);
  }

  /** The newest live principal of `kind`/`name`, if any (O(1)). */
  find(kind: PrincipalKind, name: string): Principal | undefined {
    const set = this.byName.get(`${kind}:${name}`);
    if (!set) return undefined;
    let newest: Principal | undefined;
    for (const p of set.values()) if (!newest || p.seq > newest.seq) newest = p;
    return newest;
  }

  /** Keys in registration order, cursor-paginated (cursor = last seq). */
  list(
    query: {
      kind?: PrincipalKind;
      owner?: string;
      includeRevoked?: boolean;
      limit?: number;
      after?: number;
    } = {},
  ): {
    items: Principal[];
    next_after: number | null;
  } {
    const limit = Math.min(Math.max(query.limit ?? 100, 1), 1000);
    const where = ['seq > ?'];
    const args: unknown[] = [query.after ?? 0];
    if (query.kind) {
      where.push('kind = ?');
      args.push(query.kind);
    }
    if (query.owner !== undefined) {
      where.push('owner = ?');
      args.push(query.owner);
    }
    if (!query.includeRevoked) where.push('revoked_at IS NULL');
    const rows = this.db
      .prepare(`SELECT * FROM keys WHERE ${where.join(' AND ')} ORDER BY seq LIMIT ?`)
      .all(...args, limit + 1) as Row[];
    const items = rows.slice(0, limit).map(toPrincipal);
    return { items, next_after: rows.length > limit ? (items.at(-1)?.seq ?? null) : null };
  }

  /**
   * Make sure the human has a working admin key in `adminKeyPath(root)`;
   * create one (and the file, 0600) when the file is missing or stale.
   */
  ensureAdminKey(root: string, env: NodeJS.ProcessEnv = process.env): string {
    const existing = readAdminKey(root, env);
    if (existing && this.verify(existing)?.kind === 'admin') return existing;
    const { token } = this.create({ kind: 'admin', name: 'admin' });
    const file = adminKeyPath(root, env);
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
    return token;
  }

  close(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    for (const [id, at] of this.unpersisted) {
      try {
        this.persistRevoke(id, at);
      } catch {
        // the disk is still full: the key revives at the next start (logged by the caller)
      }
    }
    this.db.close();
  }
}

function toPrincipal(r: Row): Principal {
  return {
    key_id: r.key_id,
    kind: r.kind,
    name: r.name,
    owner: r.owner,
    max_sessions: r.max_sessions,
    webhook_url: r.webhook_url,
    created_at: r.created_at,
    revoked_at: r.revoked_at,
    seq: r.seq,
  };
}
