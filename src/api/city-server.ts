/**
 * The city server: the one process that holds the city lock, writes the
 * store and the event log, runs the controller, and serves the API on a
 * Unix socket in `.gc/` (mode 0600). Every other client (CLI, agents) goes
 * through that socket while it runs.
 */
import { watch, type FSWatcher } from 'node:fs';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CityOps, KeyRing, openCityState, type CityState, type Principal } from '../city/index.js';
import { UnauthenticatedError, errorMessage } from '../core/index.js';
import { loadCityConfig, redactConfig } from '../config/index.js';
import { Controller, citySpec, type CitySpec } from '../controller/index.js';
import { ConvoyPatrol } from '../dispatch/index.js';
import { MergeQueue, Refinery, SessionWorktrees, cityMergeHooks } from '../refinery/index.js';
import {
  WebhookDelivery,
  openMail,
  recordWebhookResults,
  type Mail,
  type Message,
} from '../mail/index.js';
import { nudgeSessions, openProvider, type Provider } from '../runtime/index.js';
import type { EventInput } from '../events/index.js';
import type { ApiHost } from './host.js';
import { Router } from './http.js';
import { openCityRecords } from './city-records.js';
import type { IdempotencyRecords } from './idempotency.js';
import type { RouterOptions } from './http.js';
import { createLimitedServer, defaultMaxConnections } from './listener.js';
import { RateLimiter } from './rate-limit.js';
import { registerRoutes } from './routes/index.js';
import { RunService } from './runs.js';

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
}

/**
 * A router with every API route for `host`. The city server builds its own
 * with key authentication; benchmarks build a second one to measure the
 * cost of authentication against the same routes.
 */
export function createApiRouter(host: ApiHost, options: RouterOptions): Router {
  const router = new Router(options);
  registerRoutes(router, host);
  return router;
}

/** Secrets in a loaded config: env values and keys named like credentials. */
/** The config as GET /v0/config shows it (see redactConfig). */
export const redact = (value: unknown): unknown => redactConfig(value);

/** The socket path of a city (what clients connect to). */
export function citySocketPath(root: string): string {
  return path.join(root, '.gc', 'gc.sock');
}

/** Debounce of config file changes: editors write in several steps. */
const RELOAD_DEBOUNCE_MS = 200;

export class CityServer implements ApiHost {
  state: ServerState = 'starting';
  readonly startedAt = Date.now();
  sseStallMs: number | undefined;
  private http: Server | undefined;
  private tcp: Server | undefined;
  /** `host:port` of the TCP listener when `[api] port` is set. */
  tcpAddress: string | undefined;
  private idempotency: IdempotencyRecords | undefined;
  private webhooks: WebhookDelivery | undefined;
  /** The merge queues (one engine per rig). */
  refinery!: Refinery;
  convoys: ConvoyPatrol | undefined;
  /** Session worktrees; their prunes finish before the queue they read is closed. */
  worktrees: SessionWorktrees | undefined;
  private watcher: FSWatcher | undefined;
  private reloadTimer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;
  private suspendedFlag = false;
  private readonly stoppedResolvers: (() => void)[] = [];

  private constructor(
    readonly root: string,
    readonly cityState: CityState,
    readonly provider: Provider,
    readonly ops: CityOps,
    readonly controller: Controller,
    readonly keys: KeyRing,
    readonly mail: Mail,
    readonly runs: RunService,
    readonly log: (line: string) => void,
  ) {}

  private createQuota: RateLimiter | undefined;

  admitCreate(principal: Principal): void {
    if (principal.kind !== 'agent') return;
    const api = this.cityState.loaded.config.api;
    this.createQuota ??= new RateLimiter(api.agent_creates_per_s, api.agent_creates_burst);
    this.createQuota.admit(principal);
  }

  redactedConfig(): unknown {
    return redact(this.cityState.loaded.config);
  }

  async delivered(
    message: Message,
    notify: boolean,
  ): Promise<{ notified: string[]; pushed: boolean }> {
    const notified: string[] = [];
    if (notify) {
      const to = message.to;
      const pool = new RegExp(`^${to.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-\\d+$`);
      // eslint-disable-next-line no-control-regex -- stripping control characters is the point
      const clean = (t: string) => t.replace(/[\u0000-\u001f\u007f]+/g, ' ').slice(0, 200);
      // The message is stored: from here nothing may fail the request. A
      // recipient that cannot be a session name has no sessions to nudge.
      let running: string[] = [];
      try {
        running = /^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(to) ? await this.provider.listRunning(to) : [];
      } catch (e) {
        this.log(`mail notify ${to}: ${errorMessage(e)}`);
      }
      const targets = running.filter((s) => s === to || pool.test(s));
      const failed = new Set(
        await nudgeSessions(
          this.provider,
          targets,
          `You have mail from ${clean(message.from)}: ${clean(message.subject)} (gc mail inbox)`,
          (line) => this.log(`mail notify: ${line}`),
        ),
      );
      notified.push(...targets.filter((s) => !failed.has(s)));
    }
    const agent = this.keys.find('agent', message.to);
    const pushed = agent?.webhook_url
      ? (this.webhooks?.enqueue(agent.webhook_url, message) ?? false)
      : false;
    return { notified, pushed };
  }

  get socketPath(): string {
    return citySocketPath(this.root);
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
      // A database still starting (or restarting) is waited for, as [database] connect_retry says.
      connectRetryMs: 'database',
      log,
    });
    let provider: Provider | undefined;
    let keys: KeyRing | undefined;
    let idempotency: IdempotencyRecords | undefined;
    let runService: RunService | undefined;
    try {
      const root = state.loaded.root;
      keys = await KeyRing.open(state.db ?? state.gcDir);
      await keys.ensureAdminKey(root);
      const keyRing = keys;
      provider = openProvider(options.sessionProvider ?? state.loaded.config.session.provider, {
        cityRoot: root,
        ...(options.stopGraceMs !== undefined ? { stopGraceMs: options.stopGraceMs } : {}),
      });
      const spec = citySpec(state.loaded);
      const binDir = path.join(state.gcDir, 'bin');
      await writeShims(binDir, options.cliDir);
      // Writes poke the controller, which needs the ops: tie the knot by reference.
      const ref: { controller?: Controller; refinery?: Refinery } = {};
      const records = await openCityRecords(state);
      idempotency = records.idempotency;
      const idem = idempotency;
      const sessionEnv = {
        GC_API: `unix:${citySocketPath(root)}`,
        PATH: `${binDir}${path.delimiter}${process.env.PATH ?? ''}`,
      };
      const tokens = keyRing.sessionTokens();
      const runs = await RunService.open({
        records: records.runs,
        provider,
        events: state.events,
        spec: () => ref.controller?.currentSpec ?? spec,
        maxRuns: state.loaded.config.api.max_runs,
        sessionEnv,
        tokens,
        log,
      });
      runService = runs;
      const ops = new CityOps(state.store, state.events, () => ref.controller?.nudge(), log, false);
      // Events a crash left between the store and the log reach the log first.
      const recovered = await ops.recover();
      if (recovered) log(`events: ${recovered} committed event(s) recovered from the outbox`);
      const mqQueue = MergeQueue.forCity(state.gcDir, { db: state.db });
      const worktrees = new SessionWorktrees(root, state.gcDir, mqQueue);
      const controller = new Controller({
        facts: records.facts,
        provider,
        ops,
        spec,
        log,
        sessionEnv,
        tokens,
        foreign: runs.isRunSession,
        workspaces: {
          prepare: async (session, rigName) => {
            const rig = ref.refinery?.rigConfig(rigName);
            return rig?.worktrees ? worktrees.prepare(rig, session) : undefined;
          },
          release: (session, rigName, pool) => {
            const rig = ref.refinery?.rigConfig(rigName);
            if (!pool || !rig?.worktrees) return;
            worktrees.pruneLater(rig, session, log);
          },
        },
      });
      ref.controller = controller;
      const mailCfg = state.loaded.config.mail;
      const mail = openMail({
        provider: mailCfg.provider,
        maxUnread: mailCfg.max_unread,
        maxUnreadPerSender: mailCfg.max_unread_per_sender,
        root,
        store: state.store,
        events: state.events,
        // Each change's event commits with it.
        recorder: ops.recorder(),
      });
      const refinery = new Refinery({
        root,
        gcDir: state.gcDir,
        rigs: state.loaded.config.rigs,
        queue: mqQueue,
        hooks: cityMergeHooks({
          events: state.events,
          mail,
          createBead: (actor, input) => ops.createBead(actor, input),
          // A landed bead may let a convoy's next wave go.
          closeBead: (actor, id, reason) =>
            ops.closeBead(actor, id, reason).finally(() => server.convoys?.kick()),
          getBead: (id) => state.store.get(id),
          setMetadata: (actor, id, key, value) => ops.setMetadata(actor, id, key, value),
        }),
        log,
      });
      ref.refinery = refinery;
      const server = new CityServer(
        root,
        state,
        provider,
        ops,
        controller,
        keyRing,
        mail,
        runs,
        log,
      );
      server.sseStallMs = options.sseStallMs;
      idempotency = undefined;
      server.idempotency = idem;
      server.refinery = refinery;
      server.convoys = new ConvoyPatrol(ops, (bead) => mqQueue.hasPending(bead), log);
      server.worktrees = worktrees;
      server.webhooks = new WebhookDelivery({
        workers: mailCfg.webhook_workers,
        allowPrivate: mailCfg.webhook_allow_private,
        timeoutMs: mailCfg.webhook_timeout_ms,
        ...(options.webhookCa ? { ca: options.webhookCa } : {}),
        onResult: recordWebhookResults(mail, state.events, log),
      });
      server.suspendedFlag = await readFile(path.join(state.gcDir, 'suspended'), 'utf8').then(
        () => true,
        () => false,
      );
      if (server.suspendedFlag) controller.setSpec({ ...spec, suspended: true });
      await server.listen();
      server.watchConfig();
      await state.events.record({
        type: 'controller.started',
        actor: 'controller',
        subject: spec.name,
        payload: { pid: process.pid, provider: provider.name, socket: server.socketPath },
        message: `city ${spec.name} started (pid ${process.pid}, sessions on ${provider.name})`,
      });
      server.state = 'running';
      const kept = await controller.loadFacts();
      if (kept) log(`controller: crash-loop records of ${kept} session(s) taken up`);
      controller.start();
      await refinery.start();
      server.convoys.start();
      log(`city ${spec.name} running; API on ${server.socketPath}`);
      return server;
    } catch (e) {
      runService?.close();
      await idempotency?.close();
      await provider?.close();
      await keys?.close();
      await state.close();
      throw e;
    }
  }

  private async listen(): Promise<void> {
    const api = this.cityState.loaded.config.api;
    const limiter = new RateLimiter(api.rate_per_s, api.rate_burst);
    const router = createApiRouter(this, {
      ...(this.idempotency ? { idempotency: this.idempotency } : {}),
      authenticate: (req) => {
        const header = String(req.headers.authorization ?? '');
        const m = /^Bearer\s+(\S+)$/i.exec(header);
        if (!m) throw new UnauthenticatedError('no API key: send Authorization: Bearer <key>');
        const principal = this.keys.verify(m[1]!);
        if (!principal)
          throw new UnauthenticatedError('API key not valid (unknown, mistyped or revoked)');
        return principal;
      },
      admit: (principal) => limiter.admit(principal),
      onError: (line) => this.log(`api: ${line}`),
    });
    const sock = this.socketPath;
    // We hold the city lock, so a socket file left here is from a dead server.
    await rm(sock, { force: true });
    const listeners = api.port > 0 ? 2 : 1;
    const max = api.max_connections || defaultMaxConnections(listeners);
    const onCapped = (info: { listener: string; max_connections: number; refused: number }) => {
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
    };
    this.http = createLimitedServer(router.handle, {
      name: 'unix socket',
      maxConnections: max,
      onCapped,
    });
    await new Promise<void>((resolve, reject) => {
      this.http!.once('error', reject);
      this.http!.listen(sock, () => resolve());
    });
    await chmod(sock, 0o600);
    if (api.port > 0) {
      this.tcp = createLimitedServer(router.handle, { name: 'tcp', maxConnections: max, onCapped });
      await new Promise<void>((resolve, reject) => {
        this.tcp!.once('error', reject);
        this.tcp!.listen(api.port, api.bind, () => resolve());
      });
      const a = this.tcp.address() as AddressInfo;
      this.tcpAddress = `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
      this.log(`API also on http://${this.tcpAddress}`);
    }
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

  async setSuspended(suspended: boolean): Promise<void> {
    const flag = path.join(this.cityState.gcDir, 'suspended');
    if (suspended) await writeFile(flag, `${new Date().toISOString()}\n`);
    else await rm(flag, { force: true });
    this.suspendedFlag = suspended;
    const loaded = await loadCityConfig(this.cityState.loaded.file).catch(() => undefined);
    const base = loaded ? citySpec(loaded) : this.spec;
    this.controller.setSpec({ ...base, suspended: suspended || base.suspended });
    await this.cityState.events.record({
      type: suspended ? 'controller.suspended' : 'controller.resumed',
      actor: 'controller',
      subject: this.spec.name,
      message: suspended ? 'city suspended: no sessions will run' : 'city resumed',
    });
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
      try {
        await this.controller.shutdown();
      } catch (e) {
        this.log(`shutdown: ${errorMessage(e)}`);
      }
      // Sessions stopped above hand their worktrees back: prune them while
      // the merge queue they consult is still open.
      await this.worktrees?.settle();
      await this.recordOrLog({
        type: 'controller.stopped',
        actor: 'controller',
        subject: this.spec.name,
        payload: { reason },
        message: `city ${this.spec.name} stopped (${reason})`,
      });
      await this.closeResources();
    })();
    return this.stopping;
  }

  /** Leave sessions running (they are adopted by the next server); close everything else. */
  async detach(): Promise<void> {
    this.controller.detach();
    this.watcher?.close();
    await this.closeResources();
  }

  /** Close everything the server holds; a step that fails is logged and the rest still run. */
  private async closeResources(): Promise<void> {
    const steps: [string, () => unknown][] = [
      [
        'API listeners',
        async () => {
          for (const srv of [this.http, this.tcp]) {
            await new Promise<void>((resolve) => {
              if (!srv) return resolve();
              srv.close(() => resolve());
              srv.closeAllConnections();
            });
          }
        },
      ],
      ['API socket', () => rm(this.socketPath, { force: true })],
      ['convoy patrol', () => this.convoys?.stop()],
      ['merge queue', () => this.refinery.stop()],
      ['merge queue database', () => this.refinery.queue.close()],
      ['runs', () => this.runs.close()],
      ['webhooks', () => this.webhooks?.stop()],
      ['idempotency database', () => this.idempotency?.close()],
      ['outbox', () => this.ops.flush().finally(() => this.ops.close())],
      ['session provider', () => this.provider.close()],
      ['key ring', () => this.keys.close()],
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

/**
 * `.gc/bin/gc` and `.gc/bin/bd`: shims that run this very build of gc with
 * this node, so agents' `gc ...` calls reach the same code as the server.
 */
async function writeShims(binDir: string, cliDir?: string): Promise<void> {
  await mkdir(binDir, { recursive: true });
  const self = fileURLToPath(import.meta.url);
  const dir = cliDir ?? path.join(path.dirname(self), '..', 'cli');
  const ext = path.extname(self);
  // Loader flags (e.g. tsx in development) resolved to absolute URLs, so the
  // shim works from any directory.
  const loader: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = a === '--import' ? argv[++i] : a.startsWith('--import=') ? a.slice(9) : undefined;
    if (value === undefined) continue;
    const resolved = /^(\.|\/|file:)/.test(value) ? value : import.meta.resolve(value);
    loader.push('--import', resolved);
  }
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  for (const prog of ['gc', 'bd']) {
    const entry = path.join(dir, `${prog}${ext}`);
    // The hot agent commands (fast.ts) talk to the city over its socket and
    // never use TLS, while Node parses NODE_EXTRA_CA_CERTS at every start
    // (tens of ms of CPU, paid by every agent's every call).
    const script = `#!/bin/sh\ncase "$1" in hook|runtime) unset NODE_EXTRA_CA_CERTS ;; esac\nexec ${[process.execPath, ...loader, entry].map(q).join(' ')} "$@"\n`;
    await writeFile(path.join(binDir, prog), script, { mode: 0o755 });
  }
}
