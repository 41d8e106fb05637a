/**
 * A small JSON router over node:http: path patterns with `:params`, JSON
 * bodies with a size cap, typed errors mapped to status codes and the
 * `{"error":{code,message,details,fix}}` body. A handler's thrown error
 * never takes the server down.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Principal } from '../city/index.js';
import {
  ForbiddenError,
  GcError,
  RateLimitedError,
  TooLargeError,
  ValidationError,
  errorMessage,
  type ErrorCode,
} from '../core/index.js';

/** Request body cap. */
export const MAX_BODY_BYTES = 1024 * 1024;

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string>;
  query: URLSearchParams;
  /** The authenticated caller. */
  principal: Principal;
  /** Who the caller acts as: an agent always as itself; admin may name anyone (X-GC-Actor). */
  actor: string;
  body: () => Promise<Record<string, unknown>>;
}

export interface RouterOptions {
  /** Turn a request into its principal; throws UnauthenticatedError. */
  authenticate: (req: IncomingMessage) => Principal;
  /** Throws RateLimitedError when the principal is over its rate. */
  admit?: (principal: Principal) => void;
}

/** A handler returns JSON data, or undefined when it wrote the response itself. */
export type Handler = (ctx: RequestContext) => Promise<unknown>;

interface Route {
  method: string;
  parts: string[];
  handler: Handler;
}

const STATUS: Record<ErrorCode, number> = {
  not_found: 404,
  already_exists: 409,
  already_claimed: 409,
  conflict: 409,
  invalid: 400,
  too_large: 413,
  locked: 423,
  config: 400,
  unsupported: 501,
  unavailable: 503,
  unauthenticated: 401,
  forbidden: 403,
  rate_limited: 429,
  internal: 500,
};

export function errorBody(err: unknown): { status: number; body: unknown } {
  if (err instanceof GcError) {
    return {
      status: STATUS[err.code] ?? 500,
      body: {
        error: {
          code: err.code,
          message: err.message,
          details: err.details,
          ...(err.fix ? { fix: err.fix } : {}),
        },
      },
    };
  }
  return {
    status: 500,
    body: { error: { code: 'internal', message: errorMessage(err), details: {} } },
  };
}

export function sendJson(res: ServerResponse, status: number, data: unknown): void {
  const text = JSON.stringify(data);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new TooLargeError('request body', size, MAX_BODY_BYTES);
    chunks.push(chunk);
  }
  if (size === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (e) {
    throw new ValidationError(`not JSON: ${errorMessage(e)}`, { where: 'request body' });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ValidationError('must be a JSON object', { where: 'request body' });
  }
  return parsed as Record<string, unknown>;
}

export class Router {
  private readonly routes: Route[] = [];

  constructor(private readonly options: RouterOptions) {}

  on(method: string, pattern: string, handler: Handler): this {
    this.routes.push({ method, parts: pattern.split('/').filter(Boolean), handler });
    return this;
  }

  private match(
    method: string,
    path: string,
  ): { route: Route; params: Record<string, string> } | 'method' | undefined {
    const parts = path.split('/').filter(Boolean);
    let wrongMethod = false;
    for (const route of this.routes) {
      if (route.parts.length !== parts.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (const [i, p] of route.parts.entries()) {
        const got = parts[i]!;
        if (p.startsWith(':')) params[p.slice(1)] = decodeURIComponent(got);
        else if (p !== got) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      if (route.method !== method) {
        wrongMethod = true;
        continue;
      }
      return { route, params };
    }
    return wrongMethod ? 'method' : undefined;
  }

  /** The node:http request listener. */
  handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://gc');
    const found = this.match(req.method ?? 'GET', url.pathname);
    if (found === undefined || found === 'method') {
      if (!req.complete) res.setHeader('connection', 'close');
      req.resume();
      sendJson(res, found ? 405 : 404, {
        error: {
          code: found ? 'invalid' : 'not_found',
          message: `${found ? 'method not allowed' : 'no route'}: ${req.method} ${url.pathname}`,
          details: {},
        },
      });
      return;
    }
    const fail = (err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const { status, body } = errorBody(err);
      if (err instanceof RateLimitedError) {
        res.setHeader('retry-after', String(Math.max(1, Math.ceil(err.retryAfterMs / 1000))));
      }
      // Answering before the body was read: do not reuse the connection, or
      // the unread bytes would be parsed as the next request.
      if (!req.complete) res.setHeader('connection', 'close');
      req.resume();
      sendJson(res, status, body);
    };
    let principal: Principal;
    let actor: string;
    try {
      principal = this.options.authenticate(req);
      this.options.admit?.(principal);
      const asked = String(req.headers['x-gc-actor'] ?? '').trim();
      if (principal.kind === 'agent' && asked && asked !== principal.name) {
        throw new ForbiddenError(
          `agent ${principal.name} cannot act as ${asked}: agents act only as themselves`,
        );
      }
      actor = principal.kind === 'agent' ? principal.name : asked || principal.name;
    } catch (err) {
      fail(err);
      return;
    }
    const ctx: RequestContext = {
      req,
      res,
      params: found.params,
      query: url.searchParams,
      principal,
      actor,
      body: () => readBody(req),
    };
    // A handler that throws before returning its promise is still answered.
    Promise.resolve()
      .then(() => found.route.handler(ctx))
      .then((data) => {
        if (data !== undefined && !res.headersSent) sendJson(res, 200, data);
      })
      .catch(fail);
  };
}
