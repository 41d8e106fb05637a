/**
 * Limits on every listener of the city server, so that no number of idle,
 * slow or half-open connections can use up the process's file descriptors
 * (which the controller needs for tmux, gates and git) or its memory:
 *
 * - a connection cap per listener (`[api] max_connections`; by default
 *   derived from the fd limit, keeping headroom for sessions and gates);
 *   connections past it are closed at once, with one log line and one
 *   `api.connections_capped` event per burst;
 * - a connection that has not sent its request headers within
 *   HEADERS_TIMEOUT_MS, or its whole request within REQUEST_TIMEOUT_MS, is
 *   dropped; an idle keep-alive connection after KEEP_ALIVE_MS.
 *
 * Responses that stay open on purpose (long polls, SSE) are not cut by these:
 * they bound receiving a request, not sending its answer.
 */
import { readFileSync } from 'node:fs';
import { createServer, type RequestListener, type Server } from 'node:http';

export const HEADERS_TIMEOUT_MS = 10_000;
export const REQUEST_TIMEOUT_MS = 30_000;
export const KEEP_ALIVE_MS = 5_000;
/** How often the server checks the timeouts above. */
const CHECK_INTERVAL_MS = 1_000;

/** The soft limit on open files of this process (node raises it to the hard limit at start). */
export function fdLimit(limitsFile = '/proc/self/limits'): number | undefined {
  try {
    const line = readFileSync(limitsFile, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    if (!soft) return undefined;
    return soft === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(soft);
  } catch {
    return undefined;
  }
}

/**
 * Connections each listener accepts by default: what is left of the fd limit
 * after a reserve for sessions, gates, git and the databases (a quarter of
 * the limit, at least 256), shared by the listeners.
 */
export function defaultMaxConnections(listeners: number, limit = fdLimit()): number {
  if (limit === undefined) return 1000;
  const reserve = Math.max(256, Math.floor(limit / 4));
  return Math.max(32, Math.min(100_000, Math.floor((limit - reserve) / Math.max(1, listeners))));
}

export interface ListenerLimits {
  /** Name in log lines and events (`unix socket`, `tcp 127.0.0.1:8080`). */
  name: string;
  maxConnections: number;
  /** A burst of refused connections began (called at most once per `quietMs`). */
  onCapped: (info: { listener: string; max_connections: number; refused: number }) => void;
  quietMs?: number;
}

/** An HTTP server with the cap and the timeouts, not yet listening. */
export function createLimitedServer(handler: RequestListener, limits: ListenerLimits): Server {
  const server = createServer(
    {
      headersTimeout: HEADERS_TIMEOUT_MS,
      requestTimeout: REQUEST_TIMEOUT_MS,
      keepAliveTimeout: KEEP_ALIVE_MS,
      // Node checks the two timeouts above on this timer (default 30 s).
      connectionsCheckingInterval: CHECK_INTERVAL_MS,
    },
    handler,
  );
  server.maxConnections = limits.maxConnections;
  const quiet = limits.quietMs ?? 10_000;
  let refused = 0;
  let reported = 0;
  let lastReport = -Infinity;
  server.on('drop', () => {
    refused++;
    const now = Date.now();
    if (now - lastReport < quiet) return;
    lastReport = now;
    limits.onCapped({
      listener: limits.name,
      max_connections: limits.maxConnections,
      refused: refused - reported,
    });
    reported = refused;
  });
  return server;
}
