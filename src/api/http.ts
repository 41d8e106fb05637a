/**
 * A small JSON router over node:http: path patterns with `:params`, JSON
 * bodies with a size cap, typed errors mapped to status codes and the
 * `{"error":{code,message,details,fix}}` body. A handler's thrown error
 * never takes the server down.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Principal } from '../city/index.js';
import type { z } from 'zod';
import { fingerprint, type IdempotencyRecords } from './idempotency.js';
import {
  ConflictError,
  ForbiddenError,
  GcError,
  RateLimitedError,
  TooLargeError,
  ValidationError,
  errorMessage,
  inRequest,
  type ErrorCode,
} from '../core/index.js';

/** Request body cap. */
export const MAX_BODY_BYTES = 1024 * 1024;

export interface RequestContext<B = Record<string, unknown>> {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string>;
  query: URLSearchParams;
  /** The authenticated caller. */
  principal: Principal;
  /** Who the caller acts as: an agent always as itself; admin may name anyone (X-GC-Actor). */
  actor: string;
  /** The request body, parsed and validated against the route's schema ({} when empty). */
  input: B;
  /** Same as `input` (kept for handlers written before schemas). */
  body: () => Promise<B>;
}

export interface RouterOptions {
  /**
   * Turn a request into its principal; throws (or rejects with)
   * UnauthenticatedError. A promise only when it must look further (a key
   * another server made).
   */
  authenticate: (req: IncomingMessage) => Principal | Promise<Principal>;
  /**
   * A leader route on a server that does not lead: send the request on to
   * the leader and answer with its answer (true), or serve it here (false).
   * Called once the caller is authenticated and allowed, before the body is read.
   */
  forward?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** Throws RateLimitedError when the principal is over its rate. */
  admit?: (principal: Principal) => void;
  /** Where write answers are kept for `Idempotency-Key` retries. */
  idempotency?: IdempotencyRecords;
  /** Failures that no client can be told about (a dropped connection, a full disk while answering). */
  onError?: (line: string) => void;
  /** Each answered request: its route pattern ("unmatched" for none), method, status and seconds. */
  observe?: (route: string, method: string, status: number, seconds: number) => void;
}

/** What a route accepts, for validation and the OpenAPI document. */
export interface RouteSpec<S extends z.ZodType | undefined = z.ZodType | undefined> {
  summary: string;
  /** JSON body schema; a route without one takes no body fields. */
  body?: S;
  /** Query-string schema (values are strings). */
  query?: z.ZodObject;
  /** The answer is a server-sent event stream. */
  stream?: boolean;
  /** Principal kinds allowed (default: any valid key); checked before the body is read. */
  allow?: readonly Principal['kind'][];
  /** Who may call it, when `allow` does not say it all (documentation). */
  who?: string;
  /**
   * Served by the city's leader (it needs the controller or the sessions):
   * another server forwards the request there (RouterOptions.forward).
   */
  leader?: boolean;
}

/**
 * Parsed bodies never hold `undefined` values (absent keys stay absent), so
 * optional fields can be typed without `| undefined`.
 */
export type Exact<T> = T extends readonly unknown[]
  ? T
  : T extends object
    ? { [K in keyof T]: Exact<Exclude<T[K], undefined>> }
    : T;

/** A handler returns JSON data, or undefined when it wrote the response itself. */
export type Handler<B = Record<string, unknown>> = (ctx: RequestContext<B>) => Promise<unknown>;

interface Route {
  method: string;
  pattern: string;
  parts: string[];
  spec: RouteSpec;
  handler: Handler<unknown>;
}

/** Zod issues as one ValidationError naming the first bad field. */
/** A zod issue in the words the store and the CLI use ("must not be empty"). */
function plainIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'unrecognized_keys':
      return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`;
    case 'too_small': {
      const n = Number(issue.minimum);
      if (issue.origin === 'string') {
        return n === 1 ? 'must not be empty' : `must be at least ${n} characters`;
      }
      if (issue.origin === 'array') return `needs at least ${n} item${n === 1 ? '' : 's'}`;
      return `must be at least ${n}`;
    }
    case 'too_big': {
      const n = Number(issue.maximum);
      if (issue.origin === 'string') return `must be at most ${n} characters`;
      if (issue.origin === 'array') return `takes at most ${n} items`;
      return `must be at most ${n}`;
    }
    case 'invalid_type':
      return `expected ${issue.expected}`;
    default:
      return issue.message;
  }
}

export function zodToValidation(err: z.ZodError, where: string): ValidationError {
  const first = err.issues[0];
  const at = first && first.path.length ? `${where}.${first.path.map(String).join('.')}` : where;
  const message = first ? plainIssue(first) : 'invalid';
  return new ValidationError(message, {
    where: at,
    details: {
      issues: err.issues.slice(0, 10).map((i) => ({
        path: i.path.map(String).join('.'),
        message: i.message,
      })),
    },
  });
}

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

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

function readBody(req: IncomingMessage): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > MAX_BODY_BYTES) {
    return Promise.reject(new TooLargeError('request body', declared, MAX_BODY_BYTES));
  }
  if (req.complete && req.readableLength === 0) return Promise.resolve(Buffer.alloc(0));
  // Events rather than async iteration: a body is usually one chunk, and
  // this costs no extra turns of the event loop.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        cleanup();
        req.resume();
        reject(new TooLargeError('request body', size, MAX_BODY_BYTES));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    };
    const onError = (e: Error) => {
      cleanup();
      reject(e);
    };
    const onAborted = () => {
      cleanup();
      reject(new ValidationError('request body cut off', { where: 'request body' }));
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}

function parseBody(raw: Buffer): Record<string, unknown> {
  if (raw.length === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
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

  on<S extends z.ZodType | undefined = undefined>(
    method: string,
    pattern: string,
    spec: RouteSpec<S>,
    handler: Handler<S extends z.ZodType ? Exact<z.output<S>> : Record<string, never>>,
  ): this {
    this.routes.push({
      method,
      pattern,
      parts: pattern.split('/').filter(Boolean),
      spec,
      handler: handler as Handler<unknown>,
    });
    return this;
  }

  /** Every route, for the OpenAPI document. */
  list(): readonly { method: string; pattern: string; spec: RouteSpec }[] {
    return this.routes;
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
        if (p.startsWith(':')) {
          try {
            params[p.slice(1)] = decodeURIComponent(got);
          } catch {
            ok = false;
            break;
          }
        } else if (p !== got) {
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
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://gc');
    } catch {
      url = new URL('http://gc/');
    }
    const found = this.match(req.method ?? 'GET', url.pathname);
    const observe = this.options.observe;
    if (observe) {
      const started = performance.now();
      const pattern = typeof found === 'object' ? found.route.pattern : 'unmatched';
      res.once('finish', () =>
        observe(pattern, req.method ?? 'GET', res.statusCode, (performance.now() - started) / 1000),
      );
    }
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
    let idem: { scope: string; key: string } | undefined;
    /**
     * Forget or keep the request's answer, before the answer goes out (so a
     * retry that follows it finds the answer, not a pending claim). A
     * failure here (a full disk, a database away) must not fail the answer.
     */
    const settle = async (status?: number, text?: string): Promise<void> => {
      const i = idem;
      idem = undefined;
      if (!i || !this.options.idempotency) return;
      try {
        if (status === undefined) await this.options.idempotency.abandon(i.scope, i.key);
        else await this.options.idempotency.finish(i.scope, i.key, status, text ?? '');
      } catch (e) {
        // The writes themselves kept their results with them (see core/request.ts),
        // so a retry still gets the same outcome.
        this.options.onError?.(`idempotency record for ${i.key}: ${errorMessage(e)}`);
      }
    };
    const answer = async (status: number, body: unknown): Promise<void> => {
      const text = JSON.stringify(body);
      if (idem) await settle(status, text);
      if (res.headersSent || res.destroyed) return;
      res.writeHead(status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
      });
      res.end(text);
    };
    const fail = (err: unknown): Promise<void> => {
      if (res.headersSent) {
        res.destroy();
        return Promise.resolve();
      }
      const { status, body } = errorBody(err);
      if (err instanceof RateLimitedError) {
        res.setHeader('retry-after', String(Math.max(1, Math.ceil(err.retryAfterMs / 1000))));
      }
      // Answering before the body was read: do not reuse the connection, or
      // the unread bytes would be parsed as the next request.
      if (!req.complete) res.setHeader('connection', 'close');
      req.resume();
      return answer(status, body);
    };
    const proceed = (principal: Principal): void => {
      let actor: string;
      try {
        this.options.admit?.(principal);
        const asked = String(req.headers['x-gc-actor'] ?? '').trim();
        // A client's guess (the login name), replaced by the key's own name
        // for an agent: agents never need to name themselves.
        const guessed = String(req.headers['x-gc-default-actor'] ?? '').trim();
        // Only the admin key may act as someone else: agents and operators act
        // as the name on their key (an operator's default-actor guess is ignored).
        if (principal.kind !== 'admin' && asked && asked !== principal.name) {
          throw new ForbiddenError(
            `${principal.kind} ${principal.name} cannot act as ${asked}: only the admin key may set X-GC-Actor`,
          );
        }
        actor = principal.kind === 'admin' ? asked || guessed || principal.name : principal.name;
        const allow = found.route.spec.allow;
        if (principal.kind === 'metrics' && found.route.pattern !== '/metrics') {
          throw new ForbiddenError(
            `metrics key ${principal.name} may only scrape GET /metrics (${req.method} ${found.route.pattern})`,
            { details: { principal: principal.name, kind: principal.kind } },
          );
        }
        if (allow && !allow.includes(principal.kind)) {
          throw new ForbiddenError(
            `${principal.kind} ${principal.name} may not ${found.route.spec.summary.replace(/^\w/, (c) => c.toLowerCase())} (${req.method} ${found.route.pattern}; allowed: ${allow.join(', ')})`,
            { details: { principal: principal.name, kind: principal.kind, allowed: allow } },
          );
        }
      } catch (err) {
        fail(err).catch(() => res.destroy());
        return;
      }
      const { route, params } = found;
      // On a server that does not lead, the leader answers this one.
      if (route.spec.leader && this.options.forward?.(req, res)) return;
      const method = req.method ?? 'GET';
      let idemFp = '';
      const run = async (): Promise<unknown> => {
        if (route.spec.query) {
          const q = route.spec.query.safeParse(Object.fromEntries(url.searchParams));
          if (!q.success) throw zodToValidation(q.error, 'query');
        }
        let input: unknown = {};
        let raw: Buffer = Buffer.alloc(0);
        if (method !== 'GET' && method !== 'HEAD') {
          raw = await readBody(req);
          const parsed = parseBody(raw);
          if (route.spec.body) {
            const r = route.spec.body.safeParse(parsed);
            if (!r.success) throw zodToValidation(r.error, 'body');
            input = r.data;
          } else if (Object.keys(parsed).length) {
            throw new ValidationError(
              `takes no body fields, got ${Object.keys(parsed).join(', ')}`,
              {
                where: 'body',
              },
            );
          }
        }
        const key = req.headers['idempotency-key'];
        if (key !== undefined && method !== 'GET' && this.options.idempotency) {
          const k = String(key);
          if (!IDEMPOTENCY_KEY.test(k)) {
            throw new ValidationError('must be 1-255 printable ASCII characters', {
              where: 'Idempotency-Key',
            });
          }
          const scope = principal.key_id;
          idemFp = fingerprint([method, url.pathname, url.search, actor, raw]);
          const b = await this.options.idempotency.begin(scope, k, idemFp);
          if (b.state === 'replay') {
            res.setHeader('idempotent-replayed', 'true');
            res.writeHead(b.status, {
              'content-type': 'application/json',
              'content-length': Buffer.byteLength(b.body),
            });
            res.end(b.body);
            return undefined;
          }
          if (b.state === 'in_progress') {
            throw new ConflictError(`a request with Idempotency-Key ${k} is still in progress`, {
              fix: 'retry after it finishes',
              details: { in_progress: true },
            });
          }
          if (b.state === 'mismatch') {
            throw new ValidationError(
              'was already used for a different request (method, path or body differ)',
              { where: 'Idempotency-Key' },
            );
          }
          idem = { scope, key: k };
        }
        const ctx: RequestContext<unknown> = {
          req,
          res,
          params,
          query: url.searchParams,
          principal,
          actor,
          input,
          body: () => Promise.resolve(input),
        };
        const data = idem
          ? await inRequest({ scope: idem.scope, key: idem.key, fp: idemFp }, () =>
              Promise.resolve(route.handler(ctx)),
            )
          : await route.handler(ctx);
        return data === undefined ? NO_ANSWER : data;
      };
      // A handler that throws before returning its promise is still answered;
      // and nothing that goes wrong while answering may escape (an unhandled
      // rejection would end the server).
      Promise.resolve()
        .then(run)
        .then((data) => {
          if (data !== undefined && data !== NO_ANSWER && !res.headersSent)
            return answer(200, data);
          return settle();
        })
        .catch(fail)
        .catch((e: unknown) => {
          this.options.onError?.(`answering ${method} ${url.pathname}: ${errorMessage(e)}`);
          if (!res.destroyed) res.destroy();
        });
    };
    let authed: Principal | Promise<Principal>;
    try {
      authed = this.options.authenticate(req);
    } catch (err) {
      fail(err).catch(() => res.destroy());
      return;
    }
    if (authed instanceof Promise) {
      authed.then(proceed, (err: unknown) => fail(err).catch(() => res.destroy()));
    } else proceed(authed);
  };
}

const NO_ANSWER = Symbol('no answer');
