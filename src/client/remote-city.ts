/**
 * RemoteCity: a CityClient that talks to the running city server over its
 * API (today the city socket, `.gc/gc.sock`). Used by the CLI whenever a
 * server runs, and by agents always. Errors come back typed: the server's
 * `{"error":{code,...}}` becomes the same GcError code here, so exit codes
 * match LocalCity's.
 */
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import path from 'node:path';
import { readAdminKey } from '../city/index.js';
import { GcError, type ErrorCode } from '../core/index.js';
import {
  eventMatcher,
  type EventListQuery,
  type EventPage,
  type GcEvent,
  type WatchOptions,
} from '../events/index.js';
import type {
  Bead,
  BeadCounts,
  CloseResult,
  CreateBeadInput,
  Dependency,
  ListQuery,
  Page,
  ReadyQuery,
  UpdateBeadInput,
} from '../store/index.js';
import type { HookResult, SlingResult } from '../dispatch/index.js';
import type { ClaimRequest, CityClient, UnclaimRequest } from './city-client.js';

/** Time limit of one API call; `stop` and start-up waits use their own. */
const CALL_TIMEOUT_MS = 60_000;

export class ServerUnreachableError extends GcError {
  constructor(socket: string, cause: unknown) {
    super('unavailable', `city server not reachable on ${socket}`, {
      cause,
      fix: 'start it with gc start, or check .gc/server.log',
    });
  }
}

function queryString(q: object): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined) continue;
    if (k === 'metadata') params.set(k, JSON.stringify(v));
    else if (Array.isArray(v)) params.set(k, v.join(','));
    else params.set(k, String(v));
  }
  const s = params.toString();
  return s ? `?${s}` : '';
}

export class RemoteCity implements CityClient {
  readonly kind = 'remote' as const;

  constructor(
    readonly socketPath: string,
    readonly actor: string,
    readonly where: string,
    /** API key: GC_TOKEN in a session, else the admin key file of the city. */
    private readonly token: string | undefined,
  ) {}

  /** A client for the server of the city at `root`, or undefined when none is running. */
  static async connect(root: string, actor: string): Promise<RemoteCity | undefined> {
    const socket = path.join(root, '.gc', 'gc.sock');
    if (!existsSync(socket)) return undefined;
    const token = process.env.GC_TOKEN || readAdminKey(root);
    const city = new RemoteCity(socket, actor, root, token);
    try {
      await city.call('GET', '/v0/ping', undefined, 5000);
      return city;
    } catch (e) {
      if (e instanceof ServerUnreachableError) return undefined;
      throw e;
    }
  }

  /** One API call; resolves with the JSON body or throws the server's typed error. */
  call<T>(method: string, url: string, body?: unknown, timeoutMs = CALL_TIMEOUT_MS): Promise<T> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise<T>((resolve, reject) => {
      const req = request(
        {
          socketPath: this.socketPath,
          method,
          path: url,
          headers: {
            'x-gc-actor': this.actor,
            ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
            ...(payload !== undefined
              ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
              : {}),
          },
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let data: unknown;
            try {
              data = text ? JSON.parse(text) : undefined;
            } catch {
              reject(
                new GcError(
                  'internal',
                  `server sent non-JSON (${res.statusCode}): ${text.slice(0, 200)}`,
                ),
              );
              return;
            }
            if ((res.statusCode ?? 500) >= 400) {
              const err = (
                data as {
                  error?: {
                    code?: string;
                    message?: string;
                    details?: Record<string, unknown>;
                    fix?: string;
                  };
                }
              )?.error;
              reject(
                new GcError(
                  (err?.code ?? 'internal') as ErrorCode,
                  err?.message ?? `HTTP ${res.statusCode}`,
                  {
                    details: err?.details ?? {},
                    ...(err?.fix ? { fix: err.fix } : {}),
                  },
                ),
              );
              return;
            }
            resolve(data as T);
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () =>
        req.destroy(new GcError('unavailable', `${method} ${url} timed out after ${timeoutMs} ms`)),
      );
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'ECONNREFUSED' || e.code === 'ENOENT' || e.code === 'ECONNRESET') {
          reject(new ServerUnreachableError(this.socketPath, e));
        } else reject(e);
      });
      req.end(payload);
    });
  }

  createBead(input: CreateBeadInput): Promise<Bead> {
    return this.call('POST', '/v0/beads', input);
  }

  getBead(id: string): Promise<Bead> {
    return this.call('GET', `/v0/beads/${encodeURIComponent(id)}`);
  }

  listBeads(query: ListQuery): Promise<Page<Bead>> {
    return this.call('GET', `/v0/beads${queryString(query)}`);
  }

  readyBeads(query: ReadyQuery = {}): Promise<Page<Bead>> {
    return this.call('GET', `/v0/beads/ready${queryString(query)}`);
  }

  children(parentId: string, query: { limit?: number; cursor?: string } = {}): Promise<Page<Bead>> {
    return this.call(
      'GET',
      `/v0/beads/${encodeURIComponent(parentId)}/children${queryString(query)}`,
    );
  }

  beadCounts(): Promise<BeadCounts> {
    return this.call('GET', '/v0/beads/counts');
  }

  updateBead(id: string, patch: UpdateBeadInput): Promise<Bead> {
    return this.call('PATCH', `/v0/beads/${encodeURIComponent(id)}`, patch);
  }

  closeBead(id: string, reason?: string): Promise<CloseResult> {
    return this.call(
      'POST',
      `/v0/beads/${encodeURIComponent(id)}/close`,
      reason !== undefined ? { reason } : {},
    );
  }

  claimBead(id: string, request: ClaimRequest = {}): Promise<Bead> {
    return this.call(
      'POST',
      `/v0/beads/${encodeURIComponent(id)}/claim`,
      request.leaseMs !== undefined ? { lease_ms: request.leaseMs } : {},
    );
  }

  async claimNext(query: ReadyQuery & ClaimRequest = {}): Promise<Bead | null> {
    const { leaseMs, ...rest } = query;
    const r = await this.call<{ bead: Bead | null }>('POST', '/v0/beads/claim-next', {
      query: rest,
      ...(leaseMs !== undefined ? { lease_ms: leaseMs } : {}),
    });
    return r.bead;
  }

  unclaimBead(id: string, request: UnclaimRequest = {}): Promise<Bead> {
    return this.call('POST', `/v0/beads/${encodeURIComponent(id)}/unclaim`, request);
  }

  async addDependency(issueId: string, dependsOnId: string, type = 'blocks'): Promise<void> {
    await this.call('POST', `/v0/beads/${encodeURIComponent(issueId)}/deps`, {
      depends_on_id: dependsOnId,
      type,
    });
  }

  async removeDependency(issueId: string, dependsOnId: string): Promise<void> {
    await this.call(
      'DELETE',
      `/v0/beads/${encodeURIComponent(issueId)}/deps/${encodeURIComponent(dependsOnId)}`,
    );
  }

  listDependencies(id: string, direction: 'down' | 'up'): Promise<Dependency[]> {
    return this.call('GET', `/v0/beads/${encodeURIComponent(id)}/deps?direction=${direction}`);
  }

  sling(target: string, beadId: string, options: { nudge?: boolean } = {}): Promise<SlingResult> {
    return this.call('POST', '/v0/sling', { target, bead: beadId, nudge: options.nudge === true });
  }

  hook(agent?: string, limit?: number): Promise<HookResult> {
    return this.call('GET', `/v0/hook${queryString({ agent, limit })}`);
  }

  listEvents(query: EventListQuery = {}): Promise<EventPage> {
    const { afterSeq, since, ...rest } = query;
    return this.call(
      'GET',
      `/v0/events${queryString({ ...rest, ...(afterSeq !== undefined ? { after_seq: afterSeq } : {}), ...(since !== undefined ? { since } : {}) })}`,
    );
  }

  async latestEventSeq(): Promise<number> {
    return (await this.call<{ seq: number }>('GET', '/v0/events/latest')).seq;
  }

  async *watchEvents(afterSeq: number, options: WatchOptions = {}): AsyncIterable<GcEvent> {
    const matches = options.filter ? eventMatcher(options.filter) : () => true;
    const queue: GcEvent[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    let failure: unknown;
    const req = request(
      {
        socketPath: this.socketPath,
        method: 'GET',
        path: `/v0/events/stream?after_seq=${afterSeq}`,
        headers: {
          'x-gc-actor': this.actor,
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        },
      },
      (res) => {
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const frame = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const data = frame.split('\n').find((l) => l.startsWith('data: '));
            if (!data) continue;
            const event = JSON.parse(data.slice(6)) as GcEvent;
            if (matches(event)) queue.push(event);
          }
          wake?.();
        });
        res.on('end', () => {
          done = true;
          wake?.();
        });
      },
    );
    req.on('error', (e) => {
      failure = e;
      done = true;
      wake?.();
    });
    req.end();
    const onAbort = () => {
      req.destroy();
      done = true;
      wake?.();
    };
    options.signal?.addEventListener('abort', onAbort);
    try {
      for (;;) {
        while (queue.length) yield queue.shift()!;
        if (done) break;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
      if (failure && !options.signal?.aborted) {
        throw failure instanceof Error ? failure : new Error('event stream failed');
      }
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      req.destroy();
    }
  }

  async close(): Promise<void> {
    // One request per call; nothing held open.
  }
}
