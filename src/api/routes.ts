/**
 * API routes (`/v0`), served on the city socket. Beads, events, sling and
 * hook, sessions, the agent runtime protocol (drain, restart), status and
 * control. The caller's identity is the `X-GC-Actor` header for now; agent
 * tokens replace it with the authentication work.
 */
import { ForbiddenError, NotFoundError, ValidationError } from '../core/index.js';
import type { PrincipalKind } from '../city/index.js';
import { hook, sling } from '../dispatch/index.js';
import { validateSessionName } from '../runtime/index.js';
import type { EventListQuery } from '../events/index.js';
import type { CreateBeadInput, ListQuery, ReadyQuery } from '../store/index.js';
import type { ApiHost } from './host.js';
import type { RequestContext, Router } from './http.js';

const num = (v: string | null, where: string): number | undefined => {
  if (v === null || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n))
    throw new ValidationError(`expected a number, got ${JSON.stringify(v)}`, { where });
  return n;
};

/** Query-string form of list and ready filters. */
function filterFromQuery(q: URLSearchParams): ListQuery & ReadyQuery {
  const out: Record<string, unknown> = {};
  for (const key of ['assignee', 'type', 'label', 'parent', 'cursor']) {
    const v = q.get(key);
    if (v !== null) out[key] = v;
  }
  const status = q.get('status');
  if (status) out.status = status.includes(',') ? status.split(',') : status;
  if (q.get('unassigned') === 'true') out.unassigned = true;
  if (q.get('scan') === 'true') out.scan = true;
  const limit = num(q.get('limit'), 'limit');
  if (limit !== undefined) out.limit = limit;
  const meta = q.get('metadata');
  if (meta) {
    try {
      out.metadata = JSON.parse(meta) as Record<string, string>;
    } catch {
      throw new ValidationError('must be a JSON object of strings', { where: 'metadata' });
    }
  }
  return out;
}

function str(body: Record<string, unknown>, key: string, required = false): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) {
    if (required) throw new ValidationError('is required', { where: key });
    return undefined;
  }
  if (typeof v !== 'string') throw new ValidationError('must be a string', { where: key });
  return v;
}

/** Only these principal kinds may do `what`. */
function only(ctx: RequestContext, kinds: readonly PrincipalKind[], what: string): void {
  if (!kinds.includes(ctx.principal.kind)) {
    throw new ForbiddenError(`${ctx.principal.kind} ${ctx.principal.name} may not ${what}`, {
      details: { principal: ctx.principal.name, kind: ctx.principal.kind, allowed: kinds },
    });
  }
}

export function registerRoutes(router: Router, server: ApiHost): void {
  const { ops, controller, provider, keys } = server;
  const store = ops.store;
  const events = ops.events;

  /** Agents may change only beads they hold. */
  const mustHold = async (ctx: RequestContext, id: string, what: string): Promise<void> => {
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
  const ownSession = (ctx: RequestContext): string => {
    try {
      return validateSessionName(ctx.actor, 'X-GC-Actor');
    } catch {
      throw new ValidationError('this call is for agent sessions (GC_SESSION_NAME)', {
        where: 'actor',
      });
    }
  };

  router
    .on('GET', '/v0/ping', () =>
      Promise.resolve({ ok: true, pid: process.pid, city: server.spec.name, state: server.state }),
    )
    .on('GET', '/v0/status', async () => ({
      city: server.spec.name,
      root: server.root,
      pid: process.pid,
      server: server.state,
      suspended: server.suspended || server.spec.suspended,
      started_at: new Date(server.startedAt).toISOString(),
      provider: provider.name,
      controller: controller.status(),
      beads: await store.counts(),
      events: { latest_seq: await events.latestSeq() },
    }))
    .on('POST', '/v0/control/poke', (ctx) => {
      only(ctx, ['admin', 'operator'], 'poke the controller');
      controller.poke();
      return Promise.resolve({ ok: true });
    })
    .on('POST', '/v0/control/reload', (ctx) => {
      only(ctx, ['admin'], 'reload the city');
      return server.reload();
    })
    .on('POST', '/v0/control/suspend', async (ctx) => {
      only(ctx, ['admin'], 'suspend the city');
      await server.setSuspended(true);
      return { ok: true, suspended: true };
    })
    .on('POST', '/v0/control/resume', async (ctx) => {
      only(ctx, ['admin'], 'resume the city');
      await server.setSuspended(false);
      return { ok: true, suspended: false };
    })
    .on('POST', '/v0/control/stop', async (ctx) => {
      only(ctx, ['admin'], 'stop the city');
      const body = await ctx.body();
      const reason = str(body, 'reason') ?? `gc stop by ${ctx.actor}`;
      // Answer first, then stop: the caller waits for the socket to go away.
      setImmediate(() => void server.stop(reason));
      return { ok: true, stopping: true };
    })

    // ---- beads ----
    .on('POST', '/v0/beads', async (ctx) =>
      ops.createBead(ctx.actor, (await ctx.body()) as unknown as CreateBeadInput),
    )
    .on('GET', '/v0/beads', (ctx) => store.list(filterFromQuery(ctx.query)))
    .on('GET', '/v0/beads/ready', (ctx) => store.ready(filterFromQuery(ctx.query)))
    .on('GET', '/v0/beads/counts', () => store.counts())
    .on('POST', '/v0/beads/claim-next', async (ctx) => {
      const body = await ctx.body();
      const leaseMs = typeof body.lease_ms === 'number' ? body.lease_ms : undefined;
      const query = (body.query ?? {}) as ReadyQuery;
      return {
        bead: await ops.claimNext(ctx.actor, {
          ...query,
          ...(leaseMs !== undefined ? { leaseMs } : {}),
        }),
      };
    })
    .on('GET', '/v0/beads/:id', (ctx) => store.get(ctx.params.id!))
    .on('PATCH', '/v0/beads/:id', async (ctx) => {
      await mustHold(ctx, ctx.params.id!, 'update');
      return ops.updateBead(ctx.actor, ctx.params.id!, await ctx.body());
    })
    .on('POST', '/v0/beads/:id/close', async (ctx) => {
      await mustHold(ctx, ctx.params.id!, 'close');
      return ops.closeBead(ctx.actor, ctx.params.id!, str(await ctx.body(), 'reason'));
    })
    .on('POST', '/v0/beads/:id/claim', async (ctx) => {
      const body = await ctx.body();
      return ops.claimBead(
        ctx.actor,
        ctx.params.id!,
        typeof body.lease_ms === 'number' ? { leaseMs: body.lease_ms } : {},
      );
    })
    .on('POST', '/v0/beads/:id/unclaim', async (ctx) => {
      const body = await ctx.body();
      if (body.force === true) only(ctx, ['admin', 'operator'], "release another actor's claim");
      return ops.unclaimBead(ctx.actor, ctx.params.id!, {
        ...(typeof body.attempt === 'number' ? { attempt: body.attempt } : {}),
        ...(body.force === true ? { force: true } : {}),
      });
    })
    .on('GET', '/v0/beads/:id/children', (ctx) => {
      const limit = num(ctx.query.get('limit'), 'limit');
      const cursor = ctx.query.get('cursor');
      return store.children(ctx.params.id!, {
        ...(limit !== undefined ? { limit } : {}),
        ...(cursor ? { cursor } : {}),
      });
    })
    .on('GET', '/v0/beads/:id/deps', (ctx) =>
      store.listDependencies(ctx.params.id!, ctx.query.get('direction') === 'up' ? 'up' : 'down'),
    )
    .on('POST', '/v0/beads/:id/deps', async (ctx) => {
      const body = await ctx.body();
      await ops.addDependency(
        ctx.actor,
        ctx.params.id!,
        str(body, 'depends_on_id', true)!,
        str(body, 'type') ?? 'blocks',
      );
      return { ok: true };
    })
    .on('DELETE', '/v0/beads/:id/deps/:dep', async (ctx) => {
      await ops.removeDependency(ctx.actor, ctx.params.id!, ctx.params.dep!);
      return { ok: true };
    })

    // ---- events ----
    .on('GET', '/v0/events', (ctx) => {
      const q = ctx.query;
      const query: EventListQuery = {};
      const after = num(q.get('after_seq'), 'after_seq');
      const limit = num(q.get('limit'), 'limit');
      if (after !== undefined) query.afterSeq = after;
      if (limit !== undefined) query.limit = limit;
      for (const k of ['type', 'actor', 'subject'] as const) {
        const v = q.get(k);
        if (v) (query as Record<string, unknown>)[k] = v;
      }
      return events.list(query);
    })
    .on('GET', '/v0/events/latest', async () => ({ seq: await events.latestSeq() }))
    .on('GET', '/v0/events/stream', async (ctx) => {
      // Server-sent events from after_seq (or Last-Event-ID) on.
      const after =
        num(ctx.query.get('after_seq'), 'after_seq') ??
        (Number(ctx.req.headers['last-event-id']) || 0);
      const ac = new AbortController();
      ctx.res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      ctx.res.write(': gc event stream\n\n');
      ctx.req.on('close', () => ac.abort());
      try {
        for await (const e of events.watch(after, { signal: ac.signal })) {
          ctx.res.write(`id: ${e.seq}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
        }
      } catch (e) {
        if (!ac.signal.aborted) throw e;
      }
      ctx.res.end();
      return undefined;
    })

    // ---- dispatch ----
    .on('POST', '/v0/sling', async (ctx) => {
      const body = await ctx.body();
      const target = str(body, 'target', true)!;
      const bead = str(body, 'bead', true)!;
      const result = await sling(
        ops,
        ctx.actor,
        target,
        bead,
        server.spec.agents.map((a) => a.name),
      );
      if (body.nudge === true) {
        for (const s of await provider.listRunning(target)) {
          await provider
            .nudge(s, `New work routed to ${target}: ${bead}. Run gc hook.`)
            .catch(() => undefined);
        }
      }
      return result;
    })
    .on('GET', '/v0/hook', async (ctx) => {
      const agent = ctx.query.get('agent') ?? undefined;
      const limit = num(ctx.query.get('limit'), 'limit');
      return hook(ops, ctx.actor, agent, limit);
    })

    // ---- sessions ----
    .on('GET', '/v0/sessions', () => Promise.resolve({ items: controller.status().sessions }))
    .on('GET', '/v0/sessions/:name/peek', async (ctx) => {
      const name = validateSessionName(ctx.params.name!);
      const lines = num(ctx.query.get('lines'), 'lines') ?? 50;
      return { name, output: await provider.peek(name, lines) };
    })
    .on('POST', '/v0/sessions/:name/nudge', async (ctx) => {
      const name = validateSessionName(ctx.params.name!);
      const text = str(await ctx.body(), 'text', true)!;
      if (!(await provider.isRunning(name))) throw new NotFoundError('session', name);
      await provider.nudge(name, text);
      return { ok: true };
    })
    .on('POST', '/v0/sessions/:name/kill', async (ctx) => {
      only(ctx, ['admin', 'operator'], 'kill sessions');
      const name = validateSessionName(ctx.params.name!);
      await provider.stop(name);
      await events.record({
        type: 'session.killed',
        actor: ctx.actor,
        subject: name,
        message: `session ${name} killed by ${ctx.actor}`,
      });
      controller.poke();
      return { ok: true };
    })
    .on('POST', '/v0/sessions/:name/reset', async (ctx) => {
      only(ctx, ['admin', 'operator'], 'reset sessions');
      const name = validateSessionName(ctx.params.name!);
      return { ok: true, cleared: await controller.resetSession(name) };
    })

    // ---- the agent runtime protocol ----
    .on('GET', '/v0/runtime/drain-check', async (ctx) => {
      const name = ownSession(ctx);
      const since = await provider.getMeta(name, 'GC_DRAIN');
      return { session: name, draining: since !== '', since: since ? Number(since) : null };
    })
    .on('POST', '/v0/runtime/drain-ack', async (ctx) => {
      const name = ownSession(ctx);
      await provider.setMeta(name, 'GC_DRAIN_ACK', '1');
      controller.drainAcked(name);
      return { ok: true };
    })
    .on('POST', '/v0/runtime/request-restart', async (ctx) => {
      const name = ownSession(ctx);
      controller.requestRestart(name);
      await events.record({
        type: 'session.restart_requested',
        actor: ctx.actor,
        subject: name,
        message: `${name} asked to be restarted`,
      });
      return { ok: true };
    })

    // ---- keys and the agent registry ----
    .on('POST', '/v0/keys', async (ctx) => {
      only(ctx, ['admin'], 'create API keys');
      const body = await ctx.body();
      const kind = str(body, 'kind', true)!;
      if (kind !== 'admin' && kind !== 'operator') {
        throw new ValidationError(
          'must be "admin" or "operator" (agents are registered with POST /v0/agents)',
          {
            where: 'kind',
          },
        );
      }
      const max = body.max_sessions;
      if (max !== undefined && (typeof max !== 'number' || !Number.isInteger(max) || max < 0)) {
        throw new ValidationError('must be a whole number >= 0', { where: 'max_sessions' });
      }
      const created = keys.create({
        kind,
        name: str(body, 'name', true)!,
        ...(typeof max === 'number' ? { maxSessions: max } : {}),
      });
      await events.record({
        type: 'auth.key_created',
        actor: ctx.actor,
        subject: created.principal.key_id,
        payload: { kind, name: created.principal.name },
        message: `${kind} key ${created.principal.key_id} created for ${created.principal.name}`,
      });
      return created;
    })
    .on('GET', '/v0/keys', (ctx) => {
      only(ctx, ['admin'], 'list API keys');
      const after = num(ctx.query.get('after'), 'after');
      const limit = num(ctx.query.get('limit'), 'limit');
      const kind = ctx.query.get('kind');
      if (kind !== null && kind !== 'admin' && kind !== 'operator' && kind !== 'agent') {
        throw new ValidationError('must be admin, operator or agent', { where: 'kind' });
      }
      return Promise.resolve(
        keys.list({
          ...(kind ? { kind } : {}),
          ...(after !== undefined ? { after } : {}),
          ...(limit !== undefined ? { limit } : {}),
          includeRevoked: ctx.query.get('revoked') === 'true',
        }),
      );
    })
    .on('DELETE', '/v0/keys/:id', async (ctx) => {
      only(ctx, ['admin'], 'revoke API keys');
      const p = keys.revoke(ctx.params.id!);
      await events.record({
        type: 'auth.key_revoked',
        actor: ctx.actor,
        subject: p.key_id,
        payload: { kind: p.kind, name: p.name },
        message: `${p.kind} key ${p.key_id} (${p.name}) revoked`,
      });
      return p;
    })
    .on('POST', '/v0/agents', async (ctx) => {
      only(ctx, ['admin', 'operator'], 'register agents');
      const body = await ctx.body();
      const name = str(body, 'name', true)!;
      validateSessionName(name, 'name');
      if (server.spec.agents.some((a) => a.name === name) || keys.has('agent', name)) {
        throw new ValidationError(`${name} is taken by a city agent or a registered one`, {
          where: 'name',
        });
      }
      const webhook = str(body, 'webhook_url');
      if (webhook !== undefined && !/^https:\/\//.test(webhook)) {
        throw new ValidationError('must be an https:// URL', { where: 'webhook_url' });
      }
      const created = keys.create({
        kind: 'agent',
        name,
        owner: ctx.principal.kind === 'operator' ? ctx.principal.name : '',
        ...(webhook ? { webhookUrl: webhook } : {}),
      });
      await events.record({
        type: 'agent.registered',
        actor: ctx.actor,
        subject: name,
        payload: { key_id: created.principal.key_id, owner: created.principal.owner },
        message: `external agent ${name} registered`,
      });
      return created;
    })
    .on('GET', '/v0/agents', (ctx) => {
      only(ctx, ['admin', 'operator'], 'list registered agents');
      const after = num(ctx.query.get('after'), 'after');
      const limit = num(ctx.query.get('limit'), 'limit');
      return Promise.resolve(
        keys.list({
          kind: 'agent',
          ...(ctx.principal.kind === 'operator' ? { owner: ctx.principal.name } : {}),
          ...(after !== undefined ? { after } : {}),
          ...(limit !== undefined ? { limit } : {}),
        }),
      );
    });
}
