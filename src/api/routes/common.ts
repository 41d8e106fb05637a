/** What every route file shares: query parsing, who-may checks, and the per-server kit. */
import { ForbiddenError, NotFoundError, ValidationError } from '../../core/index.js';
import type { PrincipalKind } from '../../city/index.js';
import type { Message } from '../../mail/index.js';
import { validateSessionName } from '../../runtime/index.js';
import type { Bead, ListQuery, ReadyQuery } from '../../store/index.js';
import type { ApiHost } from '../host.js';
import type { RequestContext } from '../http.js';

export const num = (v: string | null): number | undefined =>
  v === null || v === '' ? undefined : Number(v);

/** Query-string form of list and ready filters (already schema-checked). */
export function filterFromQuery(q: URLSearchParams): ListQuery & ReadyQuery {
  const out: Record<string, unknown> = {};
  for (const key of ['assignee', 'type', 'label', 'parent', 'cursor']) {
    const v = q.get(key);
    if (v !== null) out[key] = v;
  }
  const status = q.get('status');
  if (status) out.status = status.includes(',') ? status.split(',') : status;
  if (q.get('unassigned') === 'true') out.unassigned = true;
  if (q.get('work') === 'true') out.work = true;
  if (q.get('scan') === 'true') out.scan = true;
  const limit = num(q.get('limit'));
  if (limit !== undefined) out.limit = limit;
  const meta = q.get('metadata');
  if (meta) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(meta);
    } catch {
      parsed = undefined;
    }
    if (
      !parsed ||
      typeof parsed !== 'object' ||
      Array.isArray(parsed) ||
      Object.values(parsed).some((v) => typeof v !== 'string')
    ) {
      throw new ValidationError('must be a JSON object of strings', { where: 'query.metadata' });
    }
    out.metadata = parsed;
  }
  return out;
}

/** Only these principal kinds may do `what`. */
export function only(
  ctx: RequestContext<unknown>,
  kinds: readonly PrincipalKind[],
  what: string,
): void {
  if (!kinds.includes(ctx.principal.kind)) {
    throw new ForbiddenError(`${ctx.principal.kind} ${ctx.principal.name} may not ${what}`, {
      details: { principal: ctx.principal.name, kind: ctx.principal.kind, allowed: kinds },
    });
  }
}

export const ADMIN: readonly PrincipalKind[] = ['admin'];
export const STAFF: readonly PrincipalKind[] = ['admin', 'operator'];

/** The server's parts and the checks the routes share, made once per server. */
export function routeKit(server: ApiHost) {
  const { ops, provider, keys, mail } = server;
  const store = ops.store;
  const events = ops.events;

  /** Agents may change only beads they hold. */
  const mustHold = async (ctx: RequestContext<unknown>, id: string, what: string) => {
    if (ctx.principal.kind !== 'agent') return;
    const bead = await store.get(id);
    if (bead.assignee !== ctx.actor) {
      throw new ForbiddenError(
        `agent ${ctx.actor} may not ${what} ${id}: it is held by ${bead.assignee || 'nobody'}`,
        { fix: `claim it first (gc bead claim ${id})` },
      );
    }
  };

  /** The session the caller is (agents act as their session name). */
  const ownSession = (ctx: RequestContext<unknown>): string => {
    const forSessions = (why: string) =>
      new ValidationError(
        `this call is for agent sessions of this city, run inside one (GC_SESSION_NAME): ${why}`,
        { where: 'actor' },
      );
    let name: string;
    try {
      name = validateSessionName(ctx.actor, 'X-GC-Actor');
    } catch {
      throw forSessions(`${JSON.stringify(ctx.actor)} is not a session name`);
    }
    if (!server.controller.hasSession(name) && !server.runs.isRunSession(name)) {
      throw forSessions(`${name} is not a running session`);
    }
    return name;
  };

  /** The mailbox a call reads: agents only their own. */
  const mailbox = (ctx: RequestContext<unknown>): string => {
    const asked = ctx.query.get('agent');
    if (ctx.principal.kind === 'agent' && asked && asked !== ctx.actor) {
      throw new ForbiddenError(`agent ${ctx.actor} may not read the mail of ${asked}`);
    }
    return asked || ctx.actor;
  };

  /** A message the caller may see (agents: sent to or by them) or change (recipient only). */
  const ownMessage = async (
    ctx: RequestContext<unknown>,
    id: string,
    change: boolean,
  ): Promise<Message> => {
    const m = await mail.get(id);
    if (ctx.principal.kind !== 'agent') return m;
    const mine = m.to === ctx.actor || (!change && m.from === ctx.actor);
    if (!mine) {
      throw new ForbiddenError(
        `agent ${ctx.actor} may not ${change ? 'change' : 'read'} message ${id}: it is ${m.from} -> ${m.to}`,
      );
    }
    return m;
  };

  /**
   * Message beads are mail: agents reach them only through the mail routes
   * (their own mail), and only the admin key writes them through the beads
   * API (everyone else sends mail, which counts unread and records
   * mail.sent). To an agent a message bead does not exist here.
   */
  const notMail = async (ctx: RequestContext<unknown>, id: string, write = false) => {
    if (ctx.principal.kind === 'admin') return;
    const bead = await store.get(id);
    if (bead.issue_type !== 'message') return;
    if (ctx.principal.kind === 'agent') {
      throw new NotFoundError('bead', id, { fix: 'mail is read with gc mail (GET /v0/mail)' });
    }
    if (write) {
      throw new ForbiddenError(`${id} is a message: change mail through the mail routes`, {
        fix: 'gc mail (POST /v0/mail/...)',
      });
    }
  };

  /** A page of beads without the messages an agent may not see here. */
  const hideMail = <P extends { items: Bead[] }>(ctx: RequestContext<unknown>, p: P): P =>
    ctx.principal.kind === 'agent'
      ? { ...p, items: p.items.filter((b) => b.issue_type !== 'message') }
      : p;

  const page = (ctx: RequestContext<unknown>) => {
    const limit = num(ctx.query.get('limit'));
    const cursor = ctx.query.get('cursor');
    return { ...(limit !== undefined ? { limit } : {}), ...(cursor ? { cursor } : {}) };
  };

  return {
    server,
    ops,
    provider,
    keys,
    mail,
    store,
    events,
    mustHold,
    notMail,
    hideMail,
    ownSession,
    mailbox,
    ownMessage,
    page,
  };
}

export type RouteKit = ReturnType<typeof routeKit>;
