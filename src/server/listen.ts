/**
 * The API role: the router with key authentication and rate limits, the
 * Unix socket(s) and the TCP listener, and forwarding leader routes to the
 * leader when this server does not lead.
 */
import { chmod, readdir, rm, stat } from 'node:fs/promises';
import { request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import path from 'node:path';
import {
  createApiRouter,
  createLimitedServer,
  defaultMaxConnections,
  errorBody,
  type ApiHost,
  type IdempotencyRecords,
} from '../api/index.js';
import type { KeyRing } from '../city/index.js';
import { Dashboard } from '../dashboard/index.js';
import type { CityConfig } from '../config/index.js';
import { GcError, UnauthenticatedError, errorMessage } from '../core/index.js';
import { SharedRateLimiter } from './shared-rate.js';

export interface ListenOptions {
  host: ApiHost;
  keys: KeyRing;
  api: CityConfig['api'];
  /** The TCP port (overrides [api] port; 0: none). */
  port: number;
  idempotency?: IdempotencyRecords;
  /** Where leader routes go when this server does not lead; undefined: served here. */
  leaderTarget?: () => LeaderTarget | undefined | 'self';
  /** The leader did not answer at `target`: forget it until the servers table is read again. */
  leaderGone?: (target: LeaderTarget) => void;
  /** This server's id, sent along forwarded requests. */
  serverId: string;
  /** How many servers share the city's rate budget (each takes its share). */
  share?: () => number;
  log: (line: string) => void;
  /** Each answered request (metrics). */
  observe?: (route: string, method: string, status: number, seconds: number) => void;
  onCapped: (info: { listener: string; max_connections: number; refused: number }) => void;
}

/** How a forwarded request reaches the leader (`id`: its server id). */
export type LeaderTarget = ({ socketPath: string } | { url: string }) & { id: string };

/** Forwarded requests carry this header; a server never forwards one again. */
const FORWARDED = 'x-gc-forwarded-by';

export class ApiListeners {
  private readonly sockets = new Map<string, { server: Server; ino: number }>();
  private tcp: Server | undefined;
  /** `host:port` of the TCP listener, when there is one. */
  tcpAddress: string | undefined;
  private readonly handle: (req: IncomingMessage, res: ServerResponse) => void;
  private readonly max: number;
  /** The web UI under /ui (its pages are served by the leader, like leader routes). */
  readonly dashboard: Dashboard;

  constructor(private readonly o: ListenOptions) {
    this.dashboard = new Dashboard({
      host: o.host,
      keys: o.keys,
      origin: () => (this.tcpAddress ? `http://${reachable(this.tcpAddress)}` : undefined),
      log: o.log,
    });
    const limiter = new SharedRateLimiter(o.api.rate_per_s, o.api.rate_burst, o.share);
    const router = createApiRouter(o.host, {
      ...(o.idempotency ? { idempotency: o.idempotency } : {}),
      authenticate: (req) => {
        const header = String(req.headers.authorization ?? '');
        const m = /^Bearer\s+(\S+)$/i.exec(header);
        if (!m) {
          // A dashboard page acting through the API: its session cookie.
          const viaUi = this.dashboard.authenticateApi(req, pathOf(req));
          if (viaUi) return viaUi;
          throw new UnauthenticatedError('no API key: send Authorization: Bearer <key>');
        }
        const invalid = () =>
          new UnauthenticatedError('API key not valid (unknown, mistyped or revoked)');
        const principal = o.keys.verifyFresh(m[1]!);
        if (principal instanceof Promise) {
          return principal.then((p) => {
            if (!p) throw invalid();
            return p;
          });
        }
        if (!principal) throw invalid();
        return principal;
      },
      admit: (principal) => limiter.admit(principal),
      onError: (line) => o.log(`api: ${line}`),
      ...(o.observe ? { observe: o.observe } : {}),
      ...(o.leaderTarget ? { forward: (req, res) => this.forward(req, res) } : {}),
    });
    this.handle = (req, res) => {
      if (!/^\/ui(\/|$|\?)/.test(req.url ?? '')) return router.handle(req, res);
      // On a server that does not lead, the leader draws the pages.
      if (this.o.leaderTarget && this.forward(req, res)) return;
      this.dashboard.handle(req, res);
    };
    const listeners = o.port > 0 ? 2 : 1;
    this.max = o.api.max_connections || defaultMaxConnections(listeners);
  }

  /** Listen on a Unix socket (mode 0600), replacing a file left there. */
  async addSocket(path: string): Promise<void> {
    await rm(path, { force: true });
    const server = createLimitedServer(this.handle, {
      name: 'unix socket',
      maxConnections: this.max,
      onCapped: this.o.onCapped,
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    await chmod(path, 0o600);
    this.sockets.set(path, { server, ino: (await stat(path)).ino });
  }

  /** Stop listening on a socket; its file goes only if it is still this server's. */
  async removeSocket(path: string): Promise<void> {
    const s = this.sockets.get(path);
    if (!s) return;
    this.sockets.delete(path);
    await closeServer(s.server);
    const now = await stat(path).catch(() => undefined);
    if (now?.ino === s.ino) await rm(path, { force: true });
  }

  async listenTcp(): Promise<void> {
    if (this.o.port <= 0) return;
    this.tcp = createLimitedServer(this.handle, {
      name: 'tcp',
      maxConnections: this.max,
      onCapped: this.o.onCapped,
    });
    await new Promise<void>((resolve, reject) => {
      this.tcp!.once('error', reject);
      this.tcp!.listen(this.o.port, this.o.api.bind, () => resolve());
    });
    const a = this.tcp.address() as AddressInfo;
    this.tcpAddress = `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
    this.o.log(`API also on http://${this.tcpAddress}`);
  }

  async close(): Promise<void> {
    this.dashboard.close();
    for (const path of [...this.sockets.keys()]) await this.removeSocket(path);
    if (this.tcp) await closeServer(this.tcp);
  }

  /**
   * A leader route on a server that does not lead: pass it to the leader
   * as it came (the leader checks the key again) and pass its answer back.
   */
  private forward(req: IncomingMessage, res: ServerResponse): boolean {
    if (req.headers[FORWARDED]) return false;
    const target = this.o.leaderTarget?.();
    if (target === 'self') return false;
    const refuse = (err: GcError) => {
      const { status, body } = errorBody(err);
      req.resume();
      if (res.headersSent) return res.destroy();
      res.writeHead(status, { 'content-type': 'application/json', 'retry-after': '1' });
      res.end(JSON.stringify(body));
    };
    if (!target) {
      refuse(
        new GcError('unavailable', 'the city has no leader right now (an election is under way)', {
          fix: 'retry in a few seconds',
        }),
      );
      return true;
    }
    const headers = { ...req.headers, [FORWARDED]: this.o.serverId };
    const where = 'socketPath' in target ? { socketPath: target.socketPath } : new URL(target.url);
    const up = request(
      {
        ...('socketPath' in where
          ? { socketPath: where.socketPath }
          : { host: where.hostname, port: Number(where.port) }),
        method: req.method,
        path: req.url,
        headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        answer.on('error', () => res.destroy());
      },
    );
    up.on('error', (e) => {
      // The path only: a query may hold a secret (a dashboard login token).
      this.o.log(`api: forwarding ${req.method} ${pathOf(req)} to the leader: ${errorMessage(e)}`);
      this.o.leaderGone?.(target);
      refuse(
        new GcError('unavailable', `the city's leader did not answer: ${errorMessage(e)}`, {
          fix: 'retry in a few seconds (another server takes over when the leader is gone)',
        }),
      );
    });
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    req.pipe(up);
    return true;
  }
}

/**
 * Remove the sockets of servers that died on this host (`srv-*.sock` in
 * `.gc/` that refuse connections), so clients do not try them.
 */
export async function removeDeadSockets(gcDir: string): Promise<void> {
  let files: string[];
  try {
    files = (await readdir(gcDir)).filter((f) => /^srv-[a-z0-9-]+\.sock$/.test(f));
  } catch {
    return;
  }
  for (const f of files) {
    const file = path.join(gcDir, f);
    const dead = await new Promise<boolean>((resolve) => {
      const c = connect(file);
      c.once('connect', () => {
        c.destroy();
        resolve(false);
      });
      c.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
    });
    if (dead) await rm(file, { force: true });
  }
}

/** A request's path ("/" when it has none that parses). */
function pathOf(req: IncomingMessage): string {
  try {
    return new URL(req.url ?? '/', 'http://gc').pathname;
  } catch {
    return '/';
  }
}

/** An address a browser on this host can open: a wildcard bind becomes localhost. */
function reachable(address: string): string {
  return address.replace(/^(0\.0\.0\.0|\[::\])(?=:)/, '127.0.0.1');
}

function closeServer(srv: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    srv.close(() => resolve());
    srv.closeAllConnections();
  });
}
