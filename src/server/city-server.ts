/**
 * The city server. Without [database] url: the one process that holds the
 * city lock, writes the store and the event log, runs the controller, and
 * serves the API on a Unix socket in `.gc/` (mode 0600). With a database:
 * one of any number of servers of the city, each serving the whole API on
 * its own socket (`.gc/srv-<id>.sock`) and TCP port, one of them the
 * elected leader doing the work that must happen once and answering on
 * `.gc/gc.sock` too (see leadership.ts).
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { openCityState, type CityState, type Principal } from '../city/index.js';
import { ValidationError, errorMessage } from '../core/index.js';
import { loadCityConfig, ms, redactConfig, type LoadedConfig } from '../config/index.js';
import { citySpec, type CitySpec } from '../controller/index.js';
import { discoverFormulas, type FormulaFile } from '../formula/index.js';
import type { EventInput } from '../events/index.js';
import { SqlFlags, type ServerRow } from '../db/index.js';
import { RateLimiter, type ApiHost } from '../api/index.js';
import type { Message } from '../mail/index.js';
import type { OrderScheduler } from '../orders/index.js';
import { alertRules, type AlertRule } from '../alerts/index.js';
import type { Price, UsageRecord } from '../costs/index.js';
import { composeCity, type CityParts } from './compose.js';
import { deliverMail } from './delivery.js';
import { ApiListeners, removeDeadSockets, type LeaderTarget } from './listen.js';
import { Leadership, staleMsFor } from './leadership.js';
import { LeaderWork, type LeaderHost } from './leader-work.js';

export type ServerState = 'starting' | 'running' | 'stopping' | 'stopped';

export interface CityServerOptions {
  root: string;
  /** Where the server logs; default stderr. */
  log?: (line: string) => void;
  /** Override `[session] provider` (tests). */
  sessionProvider?: string;
  /** Grace period of session stops (tests use short ones). */
  stopGraceMs?: number;
  /** Extra CA certificates trusted for webhook pushes (tests, private CAs). */
  webhookCa?: string;
  /**
   * The directory holding the `gc` and `bd` entry points agents should run
   * (`.gc/bin` shims point there). `gc start` passes its own; default: the
   * sources next to this module (in-process servers, tests).
   */
  cliDir?: string;
  /** How long an SSE reader may take nothing before it is cut off (tests use short ones). */
  sseStallMs?: number;
  /** With a database: serve the API only, never lead (`gc start --api-only`). */
  apiOnly?: boolean;
  /** The TCP port, overriding [api] port (`gc start --port`). */
  port?: number;
  /** This server's id among the city's servers (default: GC_SERVER_ID, else made up). */
  serverId?: string;
}

/** The socket path of a city (what clients connect to): its leader's. */
export function citySocketPath(root: string): string {
  return path.join(root, '.gc', 'gc.sock');
}

/** The socket of one server of a city (with a database, every server has one). */
export function serverSocketPath(root: string, id: string): string {
  return path.join(root, '.gc', `srv-${id}.sock`);
}

/** Debounce of config file changes: editors write in several steps. */
const RELOAD_DEBOUNCE_MS = 200;

export interface ServerInfo {
  id: string;
  role: string;
  term: number | null;
  servers: ServerRow[] | null;
}

export class CityServer implements ApiHost, LeaderHost {
  state: ServerState = 'starting';
  readonly startedAt = Date.now();
  sseStallMs: number | undefined;
  private listeners!: ApiListeners;
  private work: LeaderWork | undefined;
  private watcher: FSWatcher | undefined;
  private reloadTimer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;
  private suspendedFlag = false;
  private readonly stoppedResolvers: (() => void)[] = [];

  private constructor(
    readonly root: string,
    readonly cityState: CityState,
    readonly parts: CityParts,
    readonly id: string,
    readonly leadership: Leadership | undefined,
    readonly log: (line: string) => void,
  ) {}

  get provider() {
    return this.parts.provider;
  }
  get ops() {
    return this.parts.ops;
  }
  get controller() {
    return this.parts.controller;
  }
  get keys() {
    return this.parts.keys;
  }
  get mail() {
    return this.parts.mail;
  }
  get runs() {
    return this.parts.runs;
  }
  get refinery() {
    return this.parts.refinery;
  }
  get convoys() {
    return this.parts.convoys;
  }
  get metrics() {
    return this.parts.metrics;
  }
  get alerts() {
    return this.parts.alerts;
  }
  get patrol() {
    return this.parts.patrol;
  }
  get costs() {
    return this.parts.costs;
  }
  get usage() {
    return this.parts.records.usage;
  }
  get budgets() {
    return this.parts.costs.budgets;
  }
  recordUsage(records: readonly UsageRecord[]): Promise<number> {
    return this.parts.costs.record(records);
  }
  prices(): Record<string, Price> {
    return this.parts.costs.prices();
  }
  alertRules(): AlertRule[] {
    return alertRules(this.currentConfig().config);
  }
  get worktrees() {
    return this.parts.worktrees;
  }
  get dashboard() {
    return this.listeners.dashboard;
  }
  /** `host:port` of the TCP listener when there is one. */
  get tcpAddress(): string | undefined {
    return this.listeners.tcpAddress;
  }

  get identity(): { id: string; role: string; term: number | null } {
    const l = this.leadership;
    return { id: this.id, role: l ? l.role : 'leader', term: l?.term ?? null };
  }

  /** This server's id, role and term, and the city's live servers (with a database). */
  async serverInfo(): Promise<ServerInfo> {
    const l = this.leadership;
    if (!l) return { id: this.id, role: 'leader', term: null, servers: null };
    const { servers } = await l.list();
    return { id: this.id, role: l.role, term: l.term ?? null, servers };
  }

  private createQuota: RateLimiter | undefined;

  admitCreate(principal: Principal): void {
    if (principal.kind !== 'agent') return;
    const api = this.cityState.loaded.config.api;
    this.createQuota ??= new RateLimiter(api.agent_creates_per_s, api.agent_creates_burst);
    this.createQuota.admit(principal);
  }

  redactedConfig(): unknown {
    return redactConfig(this.cityState.loaded.config);
  }

  delivered(message: Message, notify: boolean): Promise<{ notified: string[]; pushed: boolean }> {
    return deliverMail(this.parts, this.log, message, notify);
  }

  get socketPath(): string {
    return citySocketPath(this.root);
  }

  /** This server's own socket (with a database; else the city socket). */
  get ownSocketPath(): string {
    return this.leadership ? serverSocketPath(this.root, this.id) : this.socketPath;
  }

  get spec(): CitySpec {
    return this.controller.currentSpec;
  }

  get suspended(): boolean {
    return this.suspendedFlag;
  }

  static async start(options: CityServerOptions): Promise<CityServer> {
    const log =
      options.log ??
      ((line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`));
    const state = await openCityState({
      root: options.root,
      role: 'server',
      command: 'gc start',
      // With a database the servers share the city: the leader lease, not the lock.
      lockUnlessDatabase: true,
      // A database still starting (or restarting) is waited for, as [database] connect_retry says.
      connectRetryMs: 'database',
      log,
    });
    const config = state.loaded.config;
    const id = options.serverId ?? (process.env.GC_SERVER_ID || randomBytes(5).toString('hex'));
    let parts: CityParts | undefined;
    let leadership: Leadership | undefined;
    try {
      if (!/^[a-z0-9-]{1,40}$/.test(id)) {
        throw new ValidationError(`server id ${JSON.stringify(id)}: use a-z, 0-9 and '-'`, {
          where: 'GC_SERVER_ID',
        });
      }
      const root = state.loaded.root;
      const providerName = options.sessionProvider ?? config.session.provider;
      const ttlMs = ms(config.database.leader_lease);
      if (state.db) {
        if (ttlMs < 600) {
          throw new ValidationError(`is ${config.database.leader_lease}; use at least 600ms`, {
            where: 'database.leader_lease',
          });
        }
        const ref: { server?: CityServer } = {};
        leadership = new Leadership({
          db: state.db,
          id,
          apiOnly: options.apiOnly ?? false,
          ttlMs,
          provider: providerName,
          socket: serverSocketPath(root, id),
          url: () => (ref.server?.tcpAddress ? `http://${ref.server.tcpAddress}` : ''),
          onLead: (term) => ref.server!.lead(term),
          onLose: (term) => ref.server!.unlead(term),
          log,
        });
        await leadership.checkHost();
        const l = leadership;
        parts = await composeCity(state, {
          ...options,
          log,
          api: `unix:${citySocketPath(root)}`,
          serverId: id,
          staleMs: l.staleMs,
          mayAct: l.leadingNow,
          config: () => ref.server?.currentConfig() ?? state.loaded,
        });
        const server = new CityServer(root, state, parts, id, leadership, log);
        ref.server = server;
        await server.open(options);
        // Competing for the lease may take up the leader's work at once.
        await leadership.start();
        server.state = 'running';
        log(
          `city ${server.spec.name}: server ${id} (${leadership.role}) on ${server.ownSocketPath}`,
        );
        return server;
      }
      if (options.apiOnly) {
        throw new ValidationError('needs [database] url: one server serves a city on SQLite', {
          where: '--api-only',
        });
      }
      const own: { server?: CityServer } = {};
      parts = await composeCity(state, {
        ...options,
        log,
        api: `unix:${citySocketPath(root)}`,
        serverId: id,
        staleMs: staleMsFor(ttlMs),
        config: () => own.server?.currentConfig() ?? state.loaded,
      });
      // Events a crash left between the store and the log reach the log first.
      const recovered = await parts.ops.recover();
      if (recovered) log(`events: ${recovered} committed event(s) recovered from the outbox`);
      const server = new CityServer(root, state, parts, id, undefined, log);
      own.server = server;
      await server.open(options);
      await server.lead(0);
      server.state = 'running';
      log(`city ${server.spec.name} running; API on ${server.socketPath}`);
      return server;
    } catch (e) {
      await leadership?.stop().catch(() => undefined);
      await parts?.close(log);
      await state.close();
      throw e;
    }
  }

  /** What every server does at start: the suspend flag, the listeners, the config watch. */
  private async open(options: CityServerOptions): Promise<void> {
    this.sseStallMs = options.sseStallMs;
    await this.takeUpFlags();
    const config = this.cityState.loaded.config;
    const l = this.leadership;
    this.listeners = new ApiListeners({
      host: this,
      keys: this.keys,
      api: config.api,
      port: options.port ?? config.api.port,
      idempotency: this.parts.records.idempotency,
      serverId: this.id,
      log: this.log,
      observe: (route, method, code, s) => this.metrics.observeRequest(route, method, code, s),
      onCapped: (info) => {
        this.log(
          `API ${info.listener}: at its cap of ${info.max_connections} connections; refusing new ones (set [api] max_connections)`,
        );
        this.cityState.events
          .record({
            type: 'api.connections_capped',
            actor: 'controller',
            subject: info.listener,
            payload: info,
            message: `API ${info.listener} refused connections at its cap of ${info.max_connections}`,
          })
          .catch(() => undefined);
      },
      ...(l
        ? {
            leaderTarget: () => this.leaderTarget(l),
            leaderGone: (t: LeaderTarget) => l.forget(t.id),
            share: () => Math.max(1, l.live.length),
          }
        : {}),
    });
    if (l) {
      // Keys made and revoked by the other servers.
      this.keyTimer = setInterval(() => {
        this.keys.refresh().catch((e: unknown) => this.log(`keys: refresh: ${errorMessage(e)}`));
      }, KEY_REFRESH_MS);
      this.keyTimer.unref();
    }
    if (l) await removeDeadSockets(this.cityState.gcDir);
    await this.listeners.addSocket(this.ownSocketPath);
    await this.listeners.listenTcp();
    this.watchConfig();
  }

  private keyTimer: NodeJS.Timeout | undefined;

  /** Where a leader route goes: here while this server leads, else the leader's socket or URL. */
  private leaderTarget(l: Leadership): LeaderTarget | undefined | 'self' {
    if (l.leadingNow()) return 'self';
    const leader = l.leader;
    if (!leader || leader.id === this.id) return undefined;
    if (leader.host === l.host && leader.socket) {
      return { socketPath: leader.socket, id: leader.id };
    }
    return leader.url ? { url: leader.url, id: leader.id } : undefined;
  }

  /** Take up the leader's work at `term` (0: the only server of a city on SQLite). */
  private async lead(term: number): Promise<void> {
    const work = new LeaderWork(this, term);
    this.work = work;
    try {
      await work.start();
    } catch (e) {
      this.work = undefined;
      await work.stop('detach');
      throw e;
    }
  }

  /** Put the leader's work down, leaving sessions to the next leader. */
  private async unlead(term: number): Promise<void> {
    const work = this.work;
    if (!work || work.term !== term) return;
    this.work = undefined;
    await work.stop('detach');
  }

  get shared(): boolean {
    return this.leadership !== undefined;
  }

  async citySocket(on: boolean): Promise<void> {
    if (on) await this.listeners.addSocket(this.socketPath);
    else await this.listeners.removeSocket(this.socketPath);
  }

  /** Servers of this city, other than this one, that may lead. */
  private get otherCandidates(): number {
    return (this.leadership?.live ?? []).filter((s) => s.id !== this.id && s.role !== 'api-only')
      .length;
  }

  private watchConfig(): void {
    const file = this.cityState.loaded.file;
    try {
      this.watcher = watch(path.dirname(file), (_event, name) => {
        if (name && name.toString() !== path.basename(file)) return;
        if (this.reloadTimer) clearTimeout(this.reloadTimer);
        this.reloadTimer = setTimeout(() => {
          this.reload().catch((e: unknown) => this.log(`reload: ${errorMessage(e)}`));
        }, RELOAD_DEBOUNCE_MS);
      });
      this.watcher.on('error', (e) => this.log(`config watch: ${errorMessage(e)}`));
    } catch (e) {
      this.log(`config watch unavailable (${errorMessage(e)}); use gc reload`);
    }
  }

  /**
   * Load city.toml again; an invalid file keeps the running config. Never
   * rejects: a failure to record the outcome is logged, and the answer
   * still says whether the new config is in force.
   */
  get holdOverlapping(): 'prefer' | 'strict' | 'off' {
    return this.cityState.loaded.config.beads.hold_overlapping;
  }

  /** city.toml as last loaded (at start, or by a reload that took). */
  private latest: LoadedConfig | undefined;

  /** city.toml as last loaded (at start, or by a reload that took). */
  currentConfig(): LoadedConfig {
    return this.latest ?? this.cityState.loaded;
  }

  formulaFiles(): FormulaFile[] {
    return discoverFormulas(this.currentConfig());
  }

  defaultSlingFormula(agent: string): string | undefined {
    return this.currentConfig().config.agent.find((a) => a.name === agent)?.default_sling_formula;
  }

  get orders(): OrderScheduler {
    return this.parts.orders;
  }

  convoysChanged(): void {
    this.convoys?.kick();
  }

  async reload(): Promise<{ ok: boolean; error?: string }> {
    let loaded: Awaited<ReturnType<typeof loadCityConfig>>;
    let spec: CitySpec;
    try {
      loaded = await loadCityConfig(this.cityState.loaded.file);
      spec = citySpec(loaded);
      this.controller.setSpec(this.suspendedFlag ? { ...spec, suspended: true } : spec);
      await this.refinery.setRigs(loaded.config.rigs);
      this.latest = loaded;
    } catch (e) {
      const error = errorMessage(e);
      this.controller.setConfigError(error);
      this.log(`reload refused: ${error}`);
      await this.recordOrLog({
        type: 'controller.config_error',
        actor: 'controller',
        subject: this.spec.name,
        payload: { error },
        message: `city.toml not reloaded, keeping the running config: ${error}`,
      });
      return { ok: false, error };
    }
    await this.recordOrLog({
      type: 'controller.reloaded',
      actor: 'controller',
      subject: spec.name,
      message: 'city.toml reloaded',
    });
    return { ok: true };
  }

  /** Record an event whose loss must not undo what it records: a failure is logged. */
  private async recordOrLog(event: EventInput): Promise<void> {
    try {
      await this.cityState.events.record(event);
    } catch (e) {
      this.log(`event ${event.type} not recorded: ${errorMessage(e)}`);
    }
  }

  /**
   * Read the suspend flag: in the database when the city is shared (it
   * follows leadership from host to host), else `.gc/suspended`.
   */
  async takeUpFlags(): Promise<void> {
    const db = this.cityState.db;
    const on =
      this.leadership && db
        ? await new SqlFlags(db).get('suspended')
        : await readFile(path.join(this.cityState.gcDir, 'suspended'), 'utf8').then(
            () => true,
            () => false,
          );
    if (on !== this.suspendedFlag) await this.applySuspended(on);
  }

  async setSuspended(suspended: boolean): Promise<void> {
    const db = this.cityState.db;
    if (this.leadership && db) await new SqlFlags(db).set('suspended', suspended);
    else {
      const flag = path.join(this.cityState.gcDir, 'suspended');
      if (suspended) await writeFile(flag, `${new Date().toISOString()}\n`);
      else await rm(flag, { force: true });
    }
    await this.applySuspended(suspended);
    await this.cityState.events.record({
      type: suspended ? 'controller.suspended' : 'controller.resumed',
      actor: 'controller',
      subject: this.spec.name,
      message: suspended ? 'city suspended: no sessions will run' : 'city resumed',
    });
  }

  /** The flag joins city.toml's own `suspended`: either one suspends. */
  private async applySuspended(suspended: boolean): Promise<void> {
    this.suspendedFlag = suspended;
    const loaded = await loadCityConfig(this.cityState.loaded.file).catch(() => undefined);
    const base = loaded ? citySpec(loaded) : this.spec;
    this.controller.setSpec({ ...base, suspended: suspended || base.suspended });
  }

  /**
   * Graceful stop: stop sessions (interrupt, wait shutdown_timeout, stop the
   * rest), record controller.stopped, close the API, release the lock.
   */
  stop(reason = 'requested'): Promise<void> {
    // Never rejects: every step runs whatever the one before it did, each
    // failure is logged, and the server ends stopped with its lock released.
    this.stopping ??= (async () => {
      this.state = 'stopping';
      this.log(`stopping (${reason})`);
      this.watcher?.close();
      if (this.reloadTimer) clearTimeout(this.reloadTimer);
      const work = this.work;
      this.work = undefined;
      // Who else serves the city now (servers stopped a moment ago are gone from the table).
      await this.leadership?.list().catch(() => undefined);
      if (work && this.otherCandidates > 0) {
        // Other servers go on serving the city: one of them takes the
        // sessions up as they are (the lease is given up below).
        this.log(`handing the city over to its other servers (${reason})`);
        await work.stop('detach');
      } else if (work) {
        await work.stop('shutdown', reason);
      }
      await this.closeResources();
    })();
    return this.stopping;
  }

  /** Leave sessions running (they are adopted by the next server); close everything else. */
  async detach(): Promise<void> {
    this.watcher?.close();
    const work = this.work;
    this.work = undefined;
    await work?.stop('detach');
    await this.closeResources();
  }

  /** Close everything the server holds; a step that fails is logged and the rest still run. */
  private async closeResources(): Promise<void> {
    if (this.keyTimer) clearInterval(this.keyTimer);
    const steps: [string, () => unknown][] = [
      ['servers table', () => this.leadership?.stop()],
      ['API listeners', () => this.listeners.close()],
      ['server parts', () => this.parts.close(this.log)],
      ['city state', () => this.cityState.close()],
    ];
    for (const [what, step] of steps) {
      try {
        await step();
      } catch (e) {
        this.log(`closing the ${what}: ${errorMessage(e)}`);
      }
    }
    this.state = 'stopped';
    for (const r of this.stoppedResolvers.splice(0)) r();
  }

  /** Resolves once the server has stopped. */
  stopped(): Promise<void> {
    if (this.state === 'stopped') return Promise.resolve();
    return new Promise((resolve) => this.stoppedResolvers.push(resolve));
  }
}

/** How often a server of several takes up keys made and revoked by the others. */
const KEY_REFRESH_MS = 3000;
