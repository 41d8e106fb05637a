/**
 * Where a city's API is (GC_API: the city socket, a TCP address, or the
 * servers of a city on a database) and the small pieces of a call the
 * remote client builds from it.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { GcError } from '../core/index.js';

export class ServerUnreachableError extends GcError {
  constructor(socket: string, cause: unknown) {
    super('unavailable', `city server not reachable on ${socket}`, {
      cause,
      fix: 'start it with gc start, or check .gc/server.log',
    });
  }
}

/** Where the API is: the city socket, or a TCP address. */
export type Endpoint = { socketPath: string } | { host: string; port: number };

/** `unix:/path/gc.sock`, `/path/gc.sock` or `http://host:port`. */
export function parseEndpoint(api: string): Endpoint {
  if (api.startsWith('unix:')) return { socketPath: api.slice(5) };
  if (api.startsWith('/')) return { socketPath: api };
  let u: URL;
  try {
    u = new URL(api);
  } catch {
    throw new GcError('invalid', `GC_API: not an address: ${JSON.stringify(api)}`, {
      fix: 'use unix:/path/to/.gc/gc.sock or http://host:port',
    });
  }
  if (u.protocol !== 'http:') {
    throw new GcError('invalid', `GC_API: only http:// and unix: are supported, got ${u.protocol}`);
  }
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 80) };
}

/**
 * GC_API: one address, or several separated by commas (the servers of a
 * city on a database): calls go to the first that answers.
 */
export function parseEndpoints(api: string): Endpoint[] {
  const parts = api
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  if (!parts.length) throw new GcError('invalid', 'GC_API: no address');
  return parts.map(parseEndpoint);
}

/** The sockets of a city's servers on this host (`.gc/srv-<id>.sock`; a city on a database). */
export function serverSockets(gcDir: string): string[] {
  try {
    return readdirSync(gcDir)
      .filter((f) => /^srv-[a-z0-9-]+\.sock$/.test(f))
      .sort()
      .map((f) => path.join(gcDir, f));
  } catch {
    return [];
  }
}

export function describeEndpoint(e: Endpoint): string {
  return 'socketPath' in e ? e.socketPath : `http://${e.host}:${e.port}`;
}

export function queryString(q: object): string {
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
