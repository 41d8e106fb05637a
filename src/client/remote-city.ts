/**
 * RemoteCity: a CityClient that talks to the running city server over its
 * API (today the city socket, `.gc/gc.sock`). Used by the CLI whenever a
 * server runs, and by agents always. Errors come back typed: the server's
 * `{"error":{code,...}}` becomes the same GcError code here, so exit codes
 * match LocalCity's.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { request, type RequestOptions } from 'node:http';
import path from 'node:path';
import { GcError, readAdminKey } from '../core/index.js';
import { errorFromData } from './errors.js';
import {
  describeEndpoint,
  parseEndpoints,
  queryString,
  serverSockets,
  ServerUnreachableError,
  type Endpoint,
} from './endpoints.js';
import { followEvents } from './event-stream.js';
import { sinceMs, type EventListQuery, type EventPage, type GcEvent } from '../events/index.js';
import type { PatrolReport } from '../patrol/index.js';
import type {
  CostInput,
  CostsQuery,
  CostsView,
  DashboardLink,
  DashboardLinkInput,
  RecordedCost,
} from './city-client.js';
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
import type {
  ConvoyCloseResult,
  ConvoyCreate,
  ConvoyDeleteResult,
  ConvoyStatus,
  ConvoySummary,
  FormulaSlingResult,
  HookResult,
  PatrolResult,
  StrandedConvoy,
} from '../dispatch/index.js';
import type { MailCount, MailPage, Message } from '../mail/index.js';
import type { OrderRun, OrderState } from '../orders/index.js';
import type { MergeRequest, MqListQuery, RigStats, SubmitRequest } from '../refinery/index.js';
import type {
  ClaimRequest,
  CityClient,
  EmitEvent,
  FollowOptions,
  FormulaSlingRequest,
  MailReply,
  MqSubmitted,
  MailSend,
  AlertsView,
  OrderDetail,
  OrderList,
  SentMessage,
  SlingBeadResult,
  SlingOptions,
  UnclaimRequest,
} from './city-client.js';

/** Time limit of one API call; `stop` and start-up waits use their own. */
const CALL_TIMEOUT_MS = 60_000;

export interface RemoteOptions {
  /**
   * How long calls keep retrying while the server is unreachable (restart,
   * upgrade, crash and adoption) or rate-limits. Writes are retried with the
   * same Idempotency-Key, so they apply once. Default: GC_API_RETRY_MS, else
   * 60 s inside an agent session (GC_TOKEN set), else 0.
   */
  retryMs?: number;
  /**
   * The actor is a guess (the login name): send it as the default, which the
   * server replaces with the key's own name for an agent's key.
   */
  actorIsDefault?: boolean;
}

function defaultRetryMs(env: NodeJS.ProcessEnv = process.env): number {
  const set = Number(env.GC_API_RETRY_MS);
  if (env.GC_API_RETRY_MS !== undefined && Number.isFinite(set) && set >= 0) return set;
  return env.GC_TOKEN ? 60_000 : 0;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class RemoteCity implements CityClient {
  readonly kind = 'remote' as const;

  /** Every server this client may call; `endpoint` is the one it calls now. */
  readonly endpoints: readonly Endpoint[];
  private current = 0;
  private readonly retryMs: number;
  private readonly actorIsDefault: boolean;
  /** Attempts that failed and were retried (unreachable or rate-limited); for diagnostics. */
  retries = 0;

  constructor(
    endpoint: Endpoint | string | readonly Endpoint[],
    readonly actor: string,
    readonly where: string,
    /** API key: GC_TOKEN in a session, else the admin key file of the city. */
    private readonly token: string | undefined,
    options: RemoteOptions = {},
  ) {
    this.endpoints =
      typeof endpoint === 'string'
        ? [{ socketPath: endpoint }]
        : Array.isArray(endpoint)
          ? (endpoint as readonly Endpoint[])
          : [endpoint as Endpoint];
    if (!this.endpoints.length) throw new GcError('invalid', 'no API address');
    this.retryMs = options.retryMs ?? defaultRetryMs();
    this.actorIsDefault = options.actorIsDefault ?? false;
  }

  /** The server calls go to now. */
  get endpoint(): Endpoint {
    return this.endpoints[this.current]!;
  }

  /** The socket path, or the URL of a TCP endpoint (for messages). */
  get socketPath(): string {
    return describeEndpoint(this.endpoint);
  }

  /**
   * Inside an agent session (GC_API and GC_TOKEN set): a client of the
   * city's API, without probing it (calls retry while it restarts).
   */
  static fromEnv(
    actor: string,
    env: NodeJS.ProcessEnv = process.env,
    options: RemoteOptions = {},
  ): RemoteCity | undefined {
    if (!env.GC_API || !env.GC_TOKEN) return undefined;
    const endpoint = parseEndpoints(env.GC_API);
    return new RemoteCity(endpoint, actor, env.GC_CITY_ROOT || env.GC_API, env.GC_TOKEN, options);
  }

  /** A client for the server of the city at `root`, or undefined when none is running. */
  static async connect(
    root: string,
    actor: string,
    options: RemoteOptions = {},
  ): Promise<RemoteCity | undefined> {
    // The leader's socket; with a database, any server of the city on this
    // host answers too (each on its own socket) and forwards what the leader does.
    const gcDir = path.join(root, '.gc');
    const sockets = [path.join(gcDir, 'gc.sock'), ...serverSockets(gcDir)].filter((p) =>
      existsSync(p),
    );
    if (!sockets.length) return undefined;
    const token = process.env.GC_TOKEN || readAdminKey(root);
    for (const socket of sockets) {
      const city = new RemoteCity(socket, actor, root, token, { ...options, retryMs: 0 });
      try {
        await city.call('GET', '/v0/ping', undefined, 5000);
      } catch (e) {
        if (e instanceof ServerUnreachableError) continue;
        throw e;
      }
      const rest = sockets.filter((p) => p !== socket).map((p) => ({ socketPath: p }));
      return new RemoteCity([{ socketPath: socket }, ...rest], actor, root, token, options);
    }
    return undefined;
  }

  private requestOptions(
    method: string,
    url: string,
    headers: Record<string, string | number>,
  ): RequestOptions {
    return {
      ...this.endpoint,
      method,
      path: url,
      headers: {
        [this.actorIsDefault ? 'x-gc-default-actor' : 'x-gc-actor']: this.actor,
        ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        ...headers,
      },
    };
  }

  /**
   * One API call; resolves with the JSON body or throws the server's typed
   * error. While the server is unreachable or rate-limits, retries with
   * backoff for the client's retry window; writes carry one Idempotency-Key
   * across the retries, so they apply once.
   */
  async call<T>(
    method: string,
    url: string,
    body?: unknown,
    timeoutMs = CALL_TIMEOUT_MS,
  ): Promise<T> {
    const key = method === 'GET' ? undefined : randomUUID();
    const deadline = Date.now() + this.retryMs;
    let delay = 100;
    // Servers tried since one last answered: while another is untried, go there at once.
    let tried = 1;
    for (;;) {
      try {
        return await this.once<T>(method, url, body, timeoutMs, key);
      } catch (e) {
        const unreachable = e instanceof ServerUnreachableError;
        const limited = e instanceof GcError && e.code === 'rate_limited';
        // A server without a leader to forward to (an election) answers 503.
        const leaderless = e instanceof GcError && e.details.http_status === 503;
        if ((unreachable || leaderless) && this.endpoints.length > 1) {
          this.current = (this.current + 1) % this.endpoints.length;
          if (tried < this.endpoints.length) {
            tried++;
            this.retries++;
            continue;
          }
          tried = 1;
        }
        // The same write still running (on a server that may have died with
        // it: another takes it over once that server is known gone).
        const running = e instanceof GcError && e.details.in_progress === true;
        const left = deadline - Date.now();
        if ((!unreachable && !limited && !leaderless && !running) || left <= 0) throw e;
        const hinted = limited ? Number(e.details.retry_after_ms) || 1000 : 0;
        const wait = Math.min(left, Math.max(hinted, delay / 2 + Math.random() * delay));
        this.retries++;
        await sleep(wait);
        delay = Math.min(delay * 2, 2000);
      }
    }
  }

  private once<T>(
    method: string,
    url: string,
    body: unknown,
    timeoutMs: number,
    idempotencyKey: string | undefined,
  ): Promise<T> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise<T>((resolve, reject) => {
      const req = request(
        {
          ...this.requestOptions(method, url, {
            ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}),
            ...(payload !== undefined
              ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
              : {}),
          }),
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
              const err = errorFromData(res.statusCode ?? 500, data);
              if (res.statusCode === 503) err.details.http_status = 503;
              reject(err);
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
        if (
          e.code === 'ECONNREFUSED' ||
          e.code === 'ENOENT' ||
          e.code === 'ECONNRESET' ||
          e.code === 'EPIPE'
        ) {
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

  async claimNext(
    query: ReadyQuery & ClaimRequest & { waitMs?: number } = {},
  ): Promise<Bead | null> {
    const { leaseMs, waitMs, ...rest } = query;
    const r = await this.call<{ bead: Bead | null }>('POST', '/v0/beads/claim-next', {
      query: rest,
      ...(leaseMs !== undefined ? { lease_ms: leaseMs } : {}),
      ...(waitMs ? { wait_ms: Math.min(Math.round(waitMs), 30_000) } : {}),
    });
    return r.bead;
  }

  unclaimBead(id: string, request: UnclaimRequest = {}): Promise<Bead & { changed: boolean }> {
    return this.call('POST', `/v0/beads/${encodeURIComponent(id)}/unclaim`, request);
  }

  async addDependency(issueId: string, dependsOnId: string, type = 'blocks'): Promise<void> {
    await this.call('POST', `/v0/beads/${encodeURIComponent(issueId)}/deps`, {
      depends_on_id: dependsOnId,
      type,
    });
  }

  async removeDependency(issueId: string, dependsOnId: string): Promise<boolean> {
    const r = await this.call<{ removed?: boolean }>(
      'DELETE',
      `/v0/beads/${encodeURIComponent(issueId)}/deps/${encodeURIComponent(dependsOnId)}`,
    );
    return r.removed !== false;
  }

  listDependencies(id: string, direction: 'down' | 'up'): Promise<Dependency[]> {
    return this.call('GET', `/v0/beads/${encodeURIComponent(id)}/deps?direction=${direction}`);
  }

  sling(target: string, beadId: string, options: SlingOptions = {}): Promise<SlingBeadResult> {
    return this.call('POST', '/v0/sling', {
      target,
      bead: beadId,
      nudge: options.nudge === true,
      ...(options.convoy !== undefined ? { convoy: options.convoy } : {}),
      ...(options.owned !== undefined ? { owned: options.owned } : {}),
      ...(options.formula === false ? { formula: false } : {}),
    });
  }

  slingFormula(target: string | null, request: FormulaSlingRequest): Promise<FormulaSlingResult> {
    return this.call('POST', '/v0/molecules', { ...request, ...(target ? { target } : {}) });
  }

  hook(agent?: string, limit?: number): Promise<HookResult> {
    return this.call('GET', `/v0/hook${queryString({ agent, limit })}`);
  }

  createConvoy(input: ConvoyCreate): Promise<ConvoyStatus> {
    return this.call('POST', '/v0/convoys', input);
  }

  addToConvoy(id: string, beads: string[]): Promise<ConvoyStatus> {
    return this.call('POST', `/v0/convoys/${encodeURIComponent(id)}/beads`, { beads });
  }

  listConvoys(
    query: { all?: boolean; limit?: number; cursor?: string } = {},
  ): Promise<Page<ConvoySummary>> {
    return this.call(
      'GET',
      `/v0/convoys${queryString({ all: query.all ? 'true' : undefined, limit: query.limit, cursor: query.cursor })}`,
    );
  }

  convoyStatus(id: string): Promise<ConvoyStatus> {
    return this.call('GET', `/v0/convoys/${encodeURIComponent(id)}`);
  }

  closeConvoy(
    id: string,
    options: { reason?: string; force?: boolean; land?: boolean } = {},
  ): Promise<ConvoyCloseResult> {
    return this.call('POST', `/v0/convoys/${encodeURIComponent(id)}/close`, {
      ...(options.reason !== undefined ? { reason: options.reason } : {}),
      ...(options.force ? { force: true } : {}),
      ...(options.land ? { land: true } : {}),
    });
  }

  setConvoyTarget(id: string, target: string): Promise<Bead> {
    return this.call('POST', `/v0/convoys/${encodeURIComponent(id)}/target`, { target });
  }

  deleteConvoy(
    id: string,
    options: { beads?: boolean; force?: boolean } = {},
  ): Promise<ConvoyDeleteResult> {
    return this.call(
      'DELETE',
      `/v0/convoys/${encodeURIComponent(id)}${queryString({
        beads: options.beads ? 'true' : undefined,
        force: options.force ? 'true' : undefined,
      })}`,
    );
  }

  checkConvoys(): Promise<PatrolResult> {
    return this.call('POST', '/v0/convoys/check');
  }

  strandedConvoys(): Promise<StrandedConvoy[]> {
    return this.call('GET', '/v0/convoys/stranded');
  }

  alerts(): Promise<AlertsView> {
    return this.call('GET', '/v0/alerts');
  }
  patrol(): Promise<PatrolReport> {
    return this.call('GET', '/v0/patrol');
  }
  costs(q: CostsQuery = {}): Promise<CostsView> {
    return this.call('GET', `/v0/costs${queryString(q)}`);
  }
  recordCost(input: CostInput): Promise<RecordedCost> {
    return this.call('POST', '/v0/costs', input);
  }
  dashboardLink(input: DashboardLinkInput): Promise<DashboardLink> {
    return this.call('POST', '/v0/dashboard/links', input);
  }

  listOrders(): Promise<OrderList> {
    return this.call('GET', '/v0/orders');
  }

  checkOrders(): Promise<OrderState[]> {
    return this.call('GET', '/v0/orders/check');
  }

  orderStatus(name: string, check = false): Promise<OrderDetail> {
    return this.call(
      'GET',
      `/v0/orders/${encodeURIComponent(name)}${queryString({ check: check ? 'true' : undefined })}`,
    );
  }

  runOrder(name: string): Promise<OrderRun> {
    return this.call('POST', `/v0/orders/${encodeURIComponent(name)}/run`, {});
  }

  orderHistory(name?: string, limit?: number): Promise<Bead[]> {
    return this.call('GET', `/v0/orders/history${queryString({ order: name, limit })}`);
  }

  sendMail(to: string, input: MailSend): Promise<SentMessage> {
    return this.call('POST', '/v0/mail', { to, ...input });
  }

  mailInbox(agent?: string, limit?: number): Promise<Page<Message>> {
    return this.call('GET', `/v0/mail/inbox${queryString({ agent, limit })}`);
  }

  mailCheck(agent?: string, page: MailPage = {}): Promise<Page<Message>> {
    return this.call('GET', `/v0/mail/check${queryString({ agent, ...page })}`);
  }

  mailAll(agent?: string, page: MailPage = {}): Promise<Page<Message>> {
    return this.call('GET', `/v0/mail/all${queryString({ agent, ...page })}`);
  }

  mqSubmit(input: SubmitRequest): Promise<MqSubmitted> {
    return this.call('POST', '/v0/mq', input);
  }

  mqList(query: MqListQuery = {}): Promise<Page<MergeRequest>> {
    return this.call(
      'GET',
      `/v0/mq${queryString({
        rig: query.rig,
        state: query.states?.join(','),
        limit: query.limit,
        cursor: query.cursor,
      })}`,
    );
  }

  mqGet(id: string, options: { waitMs?: number } = {}): Promise<MergeRequest> {
    const wait = options.waitMs ? Math.min(Math.ceil(options.waitMs / 1000), 30) : 0;
    return this.call('GET', `/v0/mq/${encodeURIComponent(id)}${wait ? `?wait=${wait}` : ''}`);
  }

  mqReject(id: string, reason?: string): Promise<MergeRequest> {
    return this.call('POST', `/v0/mq/${encodeURIComponent(id)}/reject`, reason ? { reason } : {});
  }

  mqRetry(id: string): Promise<MergeRequest> {
    return this.call('POST', `/v0/mq/${encodeURIComponent(id)}/retry`, {});
  }

  mqStats(rig?: string): Promise<RigStats[]> {
    return this.call('GET', `/v0/mq/stats${queryString({ rig })}`);
  }

  mailCount(agent?: string): Promise<MailCount> {
    return this.call('GET', `/v0/mail/count${queryString({ agent })}`);
  }

  getMail(id: string): Promise<Message> {
    return this.call('GET', `/v0/mail/${encodeURIComponent(id)}`);
  }

  readMail(id: string): Promise<Message> {
    return this.call('POST', `/v0/mail/${encodeURIComponent(id)}/read`);
  }

  markMailRead(id: string): Promise<Message> {
    return this.call('POST', `/v0/mail/${encodeURIComponent(id)}/mark-read`);
  }

  markMailUnread(id: string): Promise<Message> {
    return this.call('POST', `/v0/mail/${encodeURIComponent(id)}/mark-unread`);
  }

  replyMail(id: string, input: MailReply): Promise<SentMessage> {
    return this.call('POST', `/v0/mail/${encodeURIComponent(id)}/reply`, input);
  }

  async mailThread(id: string): Promise<Message[]> {
    return (
      await this.call<{ items: Message[] }>('GET', `/v0/mail/${encodeURIComponent(id)}/thread`)
    ).items;
  }

  archiveMail(id: string): Promise<Message> {
    return this.call('POST', `/v0/mail/${encodeURIComponent(id)}/archive`);
  }

  async deleteMail(id: string): Promise<void> {
    await this.call('DELETE', `/v0/mail/${encodeURIComponent(id)}`);
  }

  emitEvent(input: EmitEvent): Promise<GcEvent> {
    return this.call('POST', '/v0/events', input);
  }

  listEvents(query: EventListQuery = {}): Promise<EventPage> {
    const { afterSeq, since, ...rest } = query;
    return this.call(
      'GET',
      `/v0/events${queryString({
        ...rest,
        ...(afterSeq !== undefined ? { after_seq: afterSeq } : {}),
        // A time on the wire is RFC 3339, whatever form the caller gave.
        ...(since !== undefined ? { since: new Date(sinceMs(since)!).toISOString() } : {}),
      })}`,
    );
  }

  async latestEventSeq(): Promise<number> {
    return (await this.call<{ seq: number }>('GET', '/v0/events/latest')).seq;
  }

  /**
   * Live events after `afterSeq`; with `reconnect`, across server restarts
   * (see followEvents).
   */
  watchEvents(afterSeq: number, options: FollowOptions = {}): AsyncIterable<GcEvent> {
    return followEvents((p) => this.requestOptions('GET', p, {}), afterSeq, options);
  }

  async close(): Promise<void> {
    // One request per call; nothing held open.
  }
}
