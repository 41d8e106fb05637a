/**
 * API keys. A key is `gck_<keyid>_<secret>`: 32 random bytes of secret,
 * shown once. The city keeps only the key id and HMAC-SHA256(server secret,
 * secret), durably in a key store (`.gc/auth.db` and `.gc/server.secret`,
 * or the city's database: key-store.ts), and the live keys in memory here.
 * Verifying is one map lookup by key id, one HMAC and a constant-time
 * compare: microseconds, not a password hash (which would cap the API at a
 * few requests per second per core).
 *
 * Principals: `admin` (the human operator), `operator` (a tenant running
 * its own agents), `agent` (one per session, or a registered external agent).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
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
import type { SqlDb } from '../db/index.js';
import {
  SqlKeyStore,
  SqliteKeyStore,
  type KeyRow,
  type KeyStore,
  type NewKeyRow,
  type PrincipalKind,
} from './key-store.js';

export type { PrincipalKind } from './key-store.js';

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

export interface KeyInput {
  kind: PrincipalKind;
  name: string;
  owner?: string;
  maxSessions?: number;
  webhookUrl?: string;
}

/** How long a key id found missing or revoked is not looked up again. */
const MISS_MEMORY_MS = 2000;
const MISS_MEMORY_MAX = 10_000;
const TOKEN = /^gck_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$/;

export class KeyRing {
  /** Live keys by id: the O(1) lookup of the request path. */
  private readonly live = new Map<string, { hmac: Buffer; principal: Principal }>();
  /** Live principals by `kind:name`, for O(1) lookups by name. */
  private readonly byName = new Map<string, Map<string, Principal>>();
  /** Revocations not yet written, by key id (retried until they are). */
  private readonly unpersisted = new Map<string, string>();
  private retryTimer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly store: KeyStore,
    private readonly secret: Buffer,
  ) {}

  /**
   * Open the ring on a key store: a city's `.gc` directory (SQLite), the
   * city's database pool, or a store.
   */
  static async open(target: string | SqlDb | KeyStore): Promise<KeyRing> {
    const store =
      typeof target === 'string'
        ? new SqliteKeyStore(target)
        : 'commit' in target
          ? target
          : new SqlKeyStore(target);
    try {
      const ring = new KeyRing(store, await store.secret());
      for (const r of await store.live()) {
        const p = toPrincipal(r);
        ring.live.set(r.key_id, { hmac: r.hmac, principal: p });
        ring.index(p, true);
      }
      return ring;
    } catch (e) {
      await store.close().catch(() => undefined);
      throw e;
    }
  }

  get backend(): string {
    return this.store.backend;
  }

  private hmacOf(secret: string): Buffer {
    return createHmac('sha256', this.secret).update(secret).digest();
  }

  /** A new key, not yet recorded: checked, with its token and row. */
  private mint(input: KeyInput): { token: string; row: NewKeyRow } {
    if (!NAME.test(input.name)) {
      throw new ValidationError('letters, digits, "_", ".", "@" and "-", at most 100', {
        where: 'name',
      });
    }
    const keyId = randomBase36(12);
    const secret = randomBytes(32).toString('base64url');
    return {
      token: `gck_${keyId}_${secret}`,
      row: {
        key_id: keyId,
        kind: input.kind,
        name: input.name,
        owner: input.owner ?? '',
        max_sessions: input.maxSessions ?? 0,
        webhook_url: input.webhookUrl ?? '',
        hmac: this.hmacOf(secret),
        created_at: new Date().toISOString(),
      },
    };
  }

  /** Make a key; it works once it is recorded (when this resolves). */
  async create(input: KeyInput): Promise<CreatedKey> {
    const [made] = await this.createMany([input], []);
    return made!;
  }

  /**
   * Record new keys and revoke old ones in one write. The revocations hold
   * in memory at once, even when the write fails (then they are retried);
   * the new keys work only once the write is done.
   */
  private async createMany(
    inputs: readonly KeyInput[],
    revokeIds: readonly string[],
  ): Promise<CreatedKey[]> {
    const minted = inputs.map((i) => this.mint(i));
    const at = new Date().toISOString();
    const revokes = revokeIds.map((id): [string, string] => [id, at]);
    for (const id of revokeIds) this.deny(id);
    let seqs: number[];
    try {
      fault('keys.write');
      seqs = await this.store.commit(
        minted.map((m) => m.row),
        revokes,
      );
    } catch (e) {
      for (const [id, when] of revokes) this.unpersisted.set(id, when);
      if (revokes.length) this.retryRevokes();
      throw e;
    }
    return minted.map((m, i) => {
      const principal = toPrincipal({ ...m.row, seq: seqs[i]!, revoked_at: null });
      this.live.set(m.row.key_id, { hmac: m.row.hmac, principal });
      this.index(principal, true);
      return { token: m.token, principal };
    });
  }

  /** The principal of a live (unrevoked) key by its id, if this process knows it. */
  byId(keyId: string): Principal | undefined {
    return this.live.get(keyId)?.principal;
  }

  /**
   * A MAC of `data` for `purpose` under the server secret (base64url): what
   * a server signs here (a dashboard session), every server of the city can
   * check. The purpose keeps one use's MACs from passing as another's.
   */
  sign(purpose: string, data: string): string {
    return createHmac('sha256', this.secret).update(`gc:${purpose}\0${data}`).digest('base64url');
  }

  /** Whether `mac` is sign(purpose, data), in constant time. */
  signed(purpose: string, data: string, mac: string): boolean {
    const want = Buffer.from(this.sign(purpose, data));
    const got = Buffer.from(mac);
    return got.length === want.length && timingSafeEqual(got, want);
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

  /**
   * Like verify, but a well-formed token whose key this process has not
   * seen is looked up in the key store (another server of the city may
   * have made it a moment ago). Ids found missing or revoked are not asked
   * about again for a while, so random tokens cost the database little.
   */
  verifyFresh(token: string): Principal | undefined | Promise<Principal | undefined> {
    const known = this.verify(token);
    const m = TOKEN.exec(token);
    if (known || !m || this.live.has(m[1]!)) return known;
    const id = m[1]!;
    const now = performance.now();
    const missed = this.missed.get(id);
    if (missed !== undefined && now - missed < MISS_MEMORY_MS) return undefined;
    return this.store.get(id).then((r) => {
      if (!r || r.revoked_at !== null || this.unpersisted.has(id)) {
        if (this.missed.size >= MISS_MEMORY_MAX) this.missed.clear();
        this.missed.set(id, now);
        return undefined;
      }
      const principal = toPrincipal(r);
      if (!this.live.has(id)) {
        this.live.set(id, { hmac: r.hmac, principal });
        this.index(principal, true);
      }
      return this.verify(token);
    });
  }

  /**
   * Take up the key store's live keys again: keys made and revoked by the
   * city's other servers (each server refreshes every few seconds).
   */
  async refresh(): Promise<void> {
    const rows = await this.store.live();
    const seen = new Set<string>();
    for (const r of rows) {
      seen.add(r.key_id);
      if (this.live.has(r.key_id) || this.unpersisted.has(r.key_id)) continue;
      const p = toPrincipal(r);
      this.live.set(r.key_id, { hmac: r.hmac, principal: p });
      this.index(p, true);
    }
    for (const id of [...this.live.keys()]) if (!seen.has(id)) this.deny(id);
  }

  private readonly missed = new Map<string, number>();

  /** Stop honouring a key in this process now. */
  private deny(keyId: string): void {
    const live = this.live.get(keyId);
    if (live) this.index(live.principal, false);
    this.live.delete(keyId);
  }

  /**
   * Revoke one key. Idempotent; NotFoundError for an unknown id. The key
   * stops working at once, even when the write that records it fails (a
   * full disk, a database away): that write is retried, and the error says so.
   */
  async revoke(keyId: string): Promise<Principal> {
    this.deny(keyId);
    const r = await this.store.get(keyId);
    if (!r) throw new NotFoundError('key', keyId);
    if (r.revoked_at === null) {
      r.revoked_at = new Date().toISOString();
      await this.persistRevokes([[keyId, r.revoked_at]], r.name);
    }
    return toPrincipal(r);
  }

  private async persistRevokes(revokes: [string, string][], name: string): Promise<void> {
    try {
      fault('keys.write');
      await this.store.commit([], revokes);
    } catch (e) {
      for (const [id, at] of revokes) this.unpersisted.set(id, at);
      this.retryRevokes();
      throw new GcError(
        'unavailable',
        `key ${revokes.map(([id]) => id).join(', ')} (${name}) is revoked, but recording it failed (${errorMessage(e)}); retrying`,
      );
    }
  }

  private retryRevokes(): void {
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.flushRevokes()
        .catch(() => undefined)
        .finally(() => {
          if (this.unpersisted.size) this.retryRevokes();
        });
    }, 2000);
    this.retryTimer.unref();
  }

  private async flushRevokes(): Promise<void> {
    const batch = [...this.unpersisted];
    if (!batch.length) return;
    fault('keys.write');
    await this.store.commit([], batch);
    for (const [id, at] of batch) if (this.unpersisted.get(id) === at) this.unpersisted.delete(id);
  }

  private index(p: Principal, add: boolean): void {
    const k = `${p.kind}:${p.name}`;
    const set = this.byName.get(k) ?? new Map<string, Principal>();
    if (add) set.set(p.key_id, p);
    else set.delete(p.key_id);
    if (set.size) this.byName.set(k, set);
    else this.byName.delete(k);
  }

  private idsOf(kind: PrincipalKind, name: string): string[] {
    return [...(this.byName.get(`${kind}:${name}`)?.keys() ?? [])];
  }

  /**
   * Revoke every live key of `kind` named `name` (a session's token when it
   * ends), in one write. They stop working before this returns its promise.
   */
  async revokeByName(kind: PrincipalKind, name: string): Promise<number> {
    const ids = this.idsOf(kind, name);
    if (!ids.length) return 0;
    for (const id of ids) this.deny(id);
    const at = new Date().toISOString();
    await this.persistRevokes(
      ids.map((id) => [id, at]),
      name,
    );
    return ids.length;
  }

  /**
   * Session tokens as the controller and the run service use them: a
   * session's key replaces any it had; a wave of them is one write. When
   * that write fails, none of the wave's keys works and every old key of
   * those sessions stays revoked.
   */
  sessionTokens(): {
    issue(session: string): Promise<string>;
    issueMany(sessions: readonly string[]): Promise<Map<string, string>>;
    revoke(session: string): void;
  } {
    const issueMany = async (sessions: readonly string[]) => {
      const made = await this.createMany(
        sessions.map((s) => ({ kind: 'agent' as const, name: s })),
        sessions.flatMap((s) => this.idsOf('agent', s)),
      );
      return new Map(made.map((k) => [k.principal.name, k.token]));
    };
    return {
      issue: async (session) => (await issueMany([session])).get(session)!,
      issueMany,
      // The key is dead in memory at once; its record is retried if it fails.
      revoke: (session) => {
        this.revokeByName('agent', session).catch(() => undefined);
      },
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
  async list(
    query: {
      kind?: PrincipalKind;
      owner?: string;
      includeRevoked?: boolean;
      limit?: number;
      after?: number;
    } = {},
  ): Promise<{ items: Principal[]; next_after: number | null }> {
    const limit = Math.min(Math.max(query.limit ?? 100, 1), 1000);
    const rows = await this.store.list({
      kind: query.kind,
      owner: query.owner,
      includeRevoked: query.includeRevoked,
      after: query.after ?? 0,
      limit: limit + 1,
    });
    const items = rows.slice(0, limit).map(toPrincipal);
    return { items, next_after: rows.length > limit ? (items.at(-1)?.seq ?? null) : null };
  }

  /**
   * Make sure the human has a working admin key in `adminKeyPath(root)`;
   * create one (and the file, 0600) when the file is missing or stale.
   */
  async ensureAdminKey(root: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
    const existing = readAdminKey(root, env);
    if (existing && this.verify(existing)?.kind === 'admin') return existing;
    const { token } = await this.create({ kind: 'admin', name: 'admin' });
    const file = adminKeyPath(root, env);
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
    return token;
  }

  async close(): Promise<void> {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    // Still failing: the key revives at the next start (logged by the caller).
    await this.flushRevokes().catch(() => undefined);
    await this.store.close();
  }
}

function toPrincipal(r: Omit<KeyRow, 'hmac'>): Principal {
  return {
    key_id: r.key_id,
    kind: r.kind,
    name: r.name,
    owner: r.owner,
    max_sessions: Number(r.max_sessions),
    webhook_url: r.webhook_url,
    created_at: r.created_at,
    revoked_at: r.revoked_at,
    seq: Number(r.seq),
  };
}
