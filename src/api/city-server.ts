/**
 * The city server: the one process that holds the city lock, writes the
 * store and the event log, runs the controller, and serves the API on a
 * Unix socket in `.gc/` (mode 0600). Every other client (CLI, agents) goes
 * through that socket while it runs.
 */
import { watch, type FSWatcher } from 'node:fs';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CityOps, KeyRing, openCityState, type CityState } from '../city/index.js';
import { UnauthenticatedError } from '../core/index.js';
import { errorMessage } from '../core/index.js';
import { loadCityConfig } from '../config/index.js';
import { Controller, citySpec, type CitySpec } from '../controller/index.js';
import { openProvider, type Provider } from '../runtime/index.js';
import type { ApiHost } from './host.js';
import { Router } from './http.js';
import { RateLimiter } from './rate-limit.js';
import { registerRoutes } from './routes.js';

export type ServerState = 'starting' | 'running' | 'stopping' | 'stopped';

export interface CityServerOptions {
  root: string;
  /** Where the server logs; default stderr. */
  log?: (line: string) => void;
  /** Override `[session] provider` (tests). */
  sessionProvider?: string;
  /** Grace period of session stops (tests use short ones). */
  stopGraceMs?: number;
}

/** The socket path of a city (what clients connect to). */
export function citySocketPath(root: string): string {
  return path.join(root, '.gc', 'gc.sock');
}

/** Debounce of config file changes: editors write in several steps. */
const RELOAD_DEBOUNCE_MS = 200;

export class CityServer implements ApiHost {
  state: ServerState = 'starting';
  readonly startedAt = Date.now();
  private http: Server | undefined;
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
    readonly log: (line: string) => void,
  ) {}

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
    const state = await openCityState({ root: options.root, role: 'server', command: 'gc start' });
    let provider: Provider | undefined;
    let keys: KeyRing | undefined;
    try {
      const root = state.loaded.root;
      keys = KeyRing.open(state.gcDir);
      keys.ensureAdminKey(root);
      const keyRing = keys;
      provider = openProvider(options.sessionProvider ?? state.loaded.config.session.provider, {
        cityRoot: root,
        ...(options.stopGraceMs !== undefined ? { stopGraceMs: options.stopGraceMs } : {}),
      });
      const spec = citySpec(state.loaded);
      const binDir = path.join(state.gcDir, 'bin');
      await writeShims(binDir);
      // Writes poke the controller, which needs the ops: tie the knot by reference.
      const ref: { controller?: Controller } = {};
      const ops = new CityOps(state.store, state.events, () => ref.controller?.poke());
      const controller = new Controller({
        provider,
        ops,
        spec,
        log,
        sessionEnv: {
          GC_API: `unix:${citySocketPath(root)}`,
          PATH: `${binDir}${path.delimiter}${process.env.PATH ?? ''}`,
        },
        tokens: {
          issue: (session) => {
            keyRing.revokeByName('agent', session);
            return keyRing.create({ kind: 'agent', name: session }).token;
          },
          revoke: (session) => void keyRing.revokeByName('agent', session),
        },
      });
      ref.controller = controller;
      const server = new CityServer(root, state, provider, ops, controller, keyRing, log);
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
      controller.start();
      log(`city ${spec.name} running; API on ${server.socketPath}`);
      return server;
    } catch (e) {
      await provider?.close();
      keys?.close();
      await state.close();
      throw e;
    }
  }

  private async listen(): Promise<void> {
    const api = this.cityState.loaded.config.api;
    const limiter = new RateLimiter(api.rate_per_s, api.rate_burst);
    const router = new Router({
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
    });
    registerRoutes(router, this);
    const sock = this.socketPath;
    // We hold the city lock, so a socket file left here is from a dead server.
    await rm(sock, { force: true });
    this.http = createServer(router.handle);
    this.http.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      this.http!.once('error', reject);
      this.http!.listen(sock, () => resolve());
    });
    await chmod(sock, 0o600);
  }

  private watchConfig(): void {
    const file = this.cityState.loaded.file;
    try {
      this.watcher = watch(path.dirname(file), (_event, name) => {
        if (name && name.toString() !== path.basename(file)) return;
        if (this.reloadTimer) clearTimeout(this.reloadTimer);
        this.reloadTimer = setTimeout(() => void this.reload(), RELOAD_DEBOUNCE_MS);
      });
      this.watcher.on('error', (e) => this.log(`config watch: ${errorMessage(e)}`));
    } catch (e) {
      this.log(`config watch unavailable (${errorMessage(e)}); use gc reload`);
    }
  }

  /** Load city.toml again; an invalid file keeps the running config. */
  async reload(): Promise<{ ok: boolean; error?: string }> {
    try {
      const loaded = await loadCityConfig(this.cityState.loaded.file);
      const spec = citySpec(loaded);
      this.controller.setSpec(this.suspendedFlag ? { ...spec, suspended: true } : spec);
      await this.cityState.events.record({
        type: 'controller.reloaded',
        actor: 'controller',
        subject: spec.name,
        message: 'city.toml reloaded',
      });
      return { ok: true };
    } catch (e) {
      const error = errorMessage(e);
      this.controller.setConfigError(error);
      await this.cityState.events.record({
        type: 'controller.config_error',
        actor: 'controller',
        subject: this.spec.name,
        payload: { error },
        message: `city.toml not reloaded, keeping the running config: ${error}`,
      });
      this.log(`reload refused: ${error}`);
      return { ok: false, error };
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
      await this.cityState.events.record({
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

  private async closeResources(): Promise<void> {
    await new Promise<void>((resolve) => {
      if (!this.http) return resolve();
      this.http.close(() => resolve());
      this.http.closeAllConnections();
    });
    await rm(this.socketPath, { force: true });
    await this.provider.close();
    this.keys.close();
    await this.cityState.close();
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
async function writeShims(binDir: string): Promise<void> {
  await mkdir(binDir, { recursive: true });
  const here = path.dirname(fileURLToPath(import.meta.url));
  const ext = path.extname(fileURLToPath(import.meta.url));
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
    const entry = path.join(here, '..', 'cli', `${prog}${ext}`);
    const script = `#!/bin/sh\nexec ${[process.execPath, ...loader, entry].map(q).join(' ')} "$@"\n`;
    await writeFile(path.join(binDir, prog), script, { mode: 0o755 });
  }
}
