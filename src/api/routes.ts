/**
 * API routes (`/v0`). Every route declares its body and query schemas
 * (validated by the router, published in `/v0/openapi.json`) and enforces
 * who may call it: admin everything; operators their own runs, agents and
 * keys; agents only as themselves (their mail, their claims, beads they
 * hold), never city control.
 */
import path from 'node:path';
import { ForbiddenError, NotFoundError, ValidationError } from '../core/index.js';
import type { PrincipalKind } from '../city/index.js';
import { hook, sling } from '../dispatch/index.js';
import { webhookUrlProblem, type Message } from '../mail/index.js';
import { validateSessionName } from '../runtime/index.js';
import type { EventListQuery } from '../events/index.js';
import type { ListQuery, ReadyQuery } from '../store/index.js';
import type { MrState } from '../refinery/index.js';
import type { ApiHost } from './host.js';
import type { RequestContext, Router } from './http.js';
import { openApiDocument } from './openapi.js';
import * as S from './schemas.js';
import { followFile, sseFrame, sseHeaders } from './sse.js';

const num = (v: string | null): number | undefined =>
  v === null || v === '' ? undefined : Number(v);

/** Query-string form of list and ready filters (already schema-checked). */
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
function only(ctx: RequestContext<unknown>, kinds: readonly PrincipalKind[], what: string): void {
  if (!kinds.includes(ctx.principal.kind)) {
    throw new ForbiddenError(`${ctx.principal.kind} ${ctx.principal.name} may not ${what}`, {
      details: { principal: ctx.principal.name, kind: ctx.principal.kind, allowed: kinds },
    });
  }
}

const ADMIN: readonly PrincipalKind[] = ['admin'];
const STAFF: readonly PrincipalKind[] = ['admin', 'operator'];

export function registerRoutes(router: Router, server: ApiHost): void {
  const { ops, controller, provider, keys, mail, runs } = server;
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
    try {
      return validateSessionName(ctx.actor, 'X-GC-Actor');
    } catch {
      throw new ValidationError('this call is for agent sessions (GC_SESSION_NAME)', {
        where: 'actor',
      });
    }
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

  const page = (ctx: RequestContext<unknown>) => {
    const limit = num(ctx.query.get('limit'));
    const cursor = ctx.query.get('cursor');
    return { ...(limit !== undefined ? { limit } : {}), ...(cursor ? { cursor } : {}) };
  };

  router
    .on('GET', '/v0/ping', { summary: 'Liveness and identity of the server' }, () =>
      Promise.resolve({ ok: true, pid: process.pid, city: server.spec.name, state: server.state }),
    )
    .on('GET', '/v0/openapi.json', { summary: 'This API as an OpenAPI 3 document' }, () =>
      Promise.resolve(openApiDocument(router.list(), { title: 'gc city API', version: 'v0' })),
    )
    .on('GET', '/v0/status', { summary: 'City, controller and work summary' }, async () => ({
      city: server.spec.name,
      root: server.root,
      pid: process.pid,
      server: server.state,
      suspended: server.suspended || server.spec.suspended,
      started_at: new Date(server.startedAt).toISOString(),
      provider: provider.name,
      controller: controller.status(),
      runs: runs.active,
      beads: await store.counts(),
      events: { latest_seq: await events.latestSeq() },
    }))
    .on(
      'GET',
      '/v0/config',
      { summary: 'city.toml as loaded, secrets redacted', allow: STAFF },
      (ctx) => {
        only(ctx, ['admin', 'operator'], 'read the city config');
        return Promise.resolve(server.redactedConfig());
      },
    )
    .on(
      'POST',
      '/v0/control/poke',
      { summary: 'Run a controller pass now', allow: STAFF },
      (ctx) => {
        only(ctx, ['admin', 'operator'], 'poke the controller');
        controller.poke();
        return Promise.resolve({ ok: true });
      },
    )
    .on('POST', '/v0/control/reload', { summary: 'Load city.toml again', allow: ADMIN }, (ctx) => {
      only(ctx, ['admin'], 'reload the city');
      return server.reload();
    })
    .on(
      'POST',
      '/v0/control/suspend',
      { summary: 'Stop all sessions, keep the city', allow: ADMIN },
      async (ctx) => {
        only(ctx, ['admin'], 'suspend the city');
        await server.setSuspended(true);
        return { ok: true, suspended: true };
      },
    )
    .on('POST', '/v0/control/resume', { summary: 'Undo suspend', allow: ADMIN }, async (ctx) => {
      only(ctx, ['admin'], 'resume the city');
      await server.setSuspended(false);
      return { ok: true, suspended: false };
    })
    .on(
      'POST',
      '/v0/control/stop',
      { summary: 'Stop the city gracefully', allow: ADMIN, body: S.stopBody },
      (ctx) => {
        only(ctx, ['admin'], 'stop the city');
        const reason = ctx.input.reason ?? `gc stop by ${ctx.actor}`;
        // Answer first, then stop: the caller waits for the socket to go away.
        setImmediate(() => void server.stop(reason));
        return Promise.resolve({ ok: true, stopping: true });
      },
    )

    // ---- beads ----
    .on('POST', '/v0/beads', { summary: 'Create a bead', body: S.createBeadBody }, (ctx) =>
      ops.createBead(
        ctx.actor,
        // Agents create as themselves.
        ctx.principal.kind === 'agent' ? { ...ctx.input, from: ctx.actor } : ctx.input,
      ),
    )
    .on(
      'GET',
      '/v0/beads',
      { summary: 'List beads (cursor pages)', query: S.beadListQuery },
      (ctx) => store.list(filterFromQuery(ctx.query)),
    )
    .on(
      'GET',
      '/v0/beads/ready',
      { summary: 'Ready beads: open, unblocked', query: S.beadListQuery },
      (ctx) => store.ready(filterFromQuery(ctx.query)),
    )
    .on('GET', '/v0/beads/counts', { summary: 'Bead counts by status' }, () => store.counts())
    .on(
      'POST',
      '/v0/beads/claim-next',
      { summary: 'Claim the first ready bead matching a query', body: S.claimNextBody },
      async (ctx) => {
        const { lease_ms: leaseMs, query = {} } = ctx.input;
        return {
          bead: await ops.claimNext(ctx.actor, {
            ...query,
            ...(leaseMs !== undefined ? { leaseMs } : {}),
          }),
        };
      },
    )
    .on('GET', '/v0/beads/:id', { summary: 'One bead' }, (ctx) => store.get(ctx.params.id!))
    .on(
      'PATCH',
      '/v0/beads/:id',
      { summary: 'Update a bead (agents: only beads they hold)', body: S.updateBeadBody },
      async (ctx) => {
        await mustHold(ctx, ctx.params.id!, 'update');
        return ops.updateBead(ctx.actor, ctx.params.id!, ctx.input);
      },
    )
    .on(
      'POST',
      '/v0/beads/:id/close',
      { summary: 'Close a bead (agents: only beads they hold)', body: S.closeBody },
      async (ctx) => {
        await mustHold(ctx, ctx.params.id!, 'close');
        return ops.closeBead(ctx.actor, ctx.params.id!, ctx.input.reason);
      },
    )
    .on(
      'POST',
      '/v0/beads/:id/claim',
      { summary: 'Claim a bead for the caller', body: S.claimBody },
      (ctx) =>
        ops.claimBead(
          ctx.actor,
          ctx.params.id!,
          ctx.input.lease_ms !== undefined ? { leaseMs: ctx.input.lease_ms } : {},
        ),
    )
    .on(
      'POST',
      '/v0/beads/:id/unclaim',
      { summary: "Release the caller's claim (force: staff)", body: S.unclaimBody },
      (ctx) => {
        if (ctx.input.force === true)
          only(ctx, ['admin', 'operator'], "release another actor's claim");
        return ops.unclaimBead(ctx.actor, ctx.params.id!, {
          ...(ctx.input.attempt !== undefined ? { attempt: ctx.input.attempt } : {}),
          ...(ctx.input.force === true ? { force: true } : {}),
        });
      },
    )
    .on(
      'GET',
      '/v0/beads/:id/children',
      { summary: 'Children of a bead (cursor pages)', query: S.pageQuery },
      (ctx) => store.children(ctx.params.id!, page(ctx)),
    )
    .on(
      'GET',
      '/v0/beads/:id/deps',
      { summary: 'Dependencies (down) or dependents (up)', query: S.depsQuery },
      (ctx) =>
        store.listDependencies(ctx.params.id!, ctx.query.get('direction') === 'up' ? 'up' : 'down'),
    )
    .on(
      'POST',
      '/v0/beads/:id/deps',
      { summary: 'Add a dependency', body: S.depBody },
      async (ctx) => {
        await ops.addDependency(
          ctx.actor,
          ctx.params.id!,
          ctx.input.depends_on_id,
          ctx.input.type ?? 'blocks',
        );
        return { ok: true };
      },
    )
    .on('DELETE', '/v0/beads/:id/deps/:dep', { summary: 'Remove a dependency' }, async (ctx) => {
      await ops.removeDependency(ctx.actor, ctx.params.id!, ctx.params.dep!);
      return { ok: true };
    })

    .on(
      'DELETE',
      '/v0/beads/:id',
      { summary: 'Delete a bead for good (prefer close)', allow: STAFF },
      async (ctx) => {
        await ops.deleteBead(ctx.actor, ctx.params.id!);
        return { ok: true };
      },
    )

    // ---- events ----
    .on(
      'GET',
      '/v0/events',
      {
        summary: 'Events after a sequence number (cursor = after_seq)',
        query: S.eventListQuery,
      },
      (ctx) => {
        const q = ctx.query;
        const query: EventListQuery = {};
        const after = num(q.get('after_seq'));
        const limit = num(q.get('limit'));
        if (after !== undefined) query.afterSeq = after;
        if (limit !== undefined) query.limit = limit;
        for (const k of ['type', 'actor', 'subject', 'since'] as const) {
          const v = q.get(k);
          if (v) (query as Record<string, unknown>)[k] = v;
        }
        return events.list(query);
      },
    )
    .on('GET', '/v0/events/latest', { summary: 'Latest event sequence number' }, async () => ({
      seq: await events.latestSeq(),
    }))
    .on(
      'GET',
      '/v0/events/stream',
      {
        summary: 'Live events as SSE; resume with Last-Event-ID',
        query: S.streamQuery,
        stream: true,
      },
      async (ctx) => {
        const header = String(ctx.req.headers['last-event-id'] ?? '');
        if (header && !/^\d+$/.test(header)) {
          throw new ValidationError('must be an event sequence number', { where: 'Last-Event-ID' });
        }
        const after = num(ctx.query.get('after_seq')) ?? (header ? Number(header) : 0);
        const ac = new AbortController();
        ctx.res.on('close', () => ac.abort());
        // watch() subscribes before it replays, so nothing falls in between.
        const stream = events.watch(after, { signal: ac.signal });
        sseHeaders(ctx.res);
        try {
          for await (const e of stream) ctx.res.write(sseFrame(e.seq, e.type, e));
        } catch (e) {
          if (!ac.signal.aborted) throw e;
        }
        ctx.res.end();
        return undefined;
      },
    )

    // ---- dispatch ----
    .on(
      'POST',
      '/v0/sling',
      { summary: 'Route a bead to an agent or pool', body: S.slingBody },
      async (ctx) => {
        const { target, bead } = ctx.input;
        const result = await sling(
          ops,
          ctx.actor,
          target,
          bead,
          server.spec.agents.map((a) => a.name),
        );
        if (ctx.input.nudge === true) {
          for (const s of await provider.listRunning(target)) {
            await provider
              .nudge(s, `New work routed to ${target}: ${bead}. Run gc hook.`)
              .catch(() => undefined);
          }
        }
        return result;
      },
    )
    .on('GET', '/v0/hook', { summary: "The caller's current work", query: S.hookQuery }, (ctx) =>
      hook(ops, ctx.actor, ctx.query.get('agent') ?? undefined, num(ctx.query.get('limit'))),
    )

    // ---- merge queue ----
    .on(
      'POST',
      '/v0/mq',
      { summary: 'Submit a branch to its rig merge queue, as the caller', body: S.mqSubmitBody },
      async (ctx) => {
        const r = await server.refinery.submit(ctx.actor, ctx.input);
        return { ...r.request, created: r.created, superseded: r.superseded };
      },
    )
    .on(
      'GET',
      '/v0/mq',
      { summary: 'Merge requests, newest first', query: S.mqListQuery },
      (ctx) => {
        const states = (ctx.query.get('state') ?? '')
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean) as MrState[];
        const rig = ctx.query.get('rig');
        const limit = num(ctx.query.get('limit'));
        const cursor = ctx.query.get('cursor');
        return Promise.resolve(
          server.refinery.list({
            ...(rig ? { rig } : {}),
            ...(states.length ? { states } : {}),
            ...(limit !== undefined ? { limit } : {}),
            ...(cursor ? { cursor } : {}),
          }),
        );
      },
    )
    .on(
      'GET',
      '/v0/mq/stats',
      { summary: 'Merge-queue figures per rig', query: S.mqStatsQuery },
      (ctx) => Promise.resolve(server.refinery.stats(ctx.query.get('rig') ?? undefined)),
    )
    .on('GET', '/v0/mq/:id', { summary: 'One merge request' }, (ctx) =>
      Promise.resolve(server.refinery.queue.get(ctx.params.id!)),
    )
    .on(
      'POST',
      '/v0/mq/:id/reject',
      { summary: 'Take a request out of the queue', body: S.mqRejectBody, allow: STAFF },
      (ctx) => server.refinery.reject(ctx.actor, ctx.params.id!, ctx.input.reason ?? ''),
    )
    .on(
      'POST',
      '/v0/mq/:id/retry',
      { summary: 'Queue a failed or rejected request again' },
      (ctx) => {
        const mr = server.refinery.queue.get(ctx.params.id!);
        if (ctx.principal.kind === 'agent' && mr.author !== ctx.actor) {
          throw new ForbiddenError(
            `agent ${ctx.actor} may retry only its own merge requests (${mr.id} is ${mr.author}'s)`,
          );
        }
        return server.refinery.retry(ctx.actor, mr.id);
      },
    )

    // ---- mail ----
    .on(
      'POST',
      '/v0/mail',
      { summary: 'Send mail as the caller', body: S.mailSendBody },
      async (ctx) => {
        const { to, notify, ...input } = ctx.input;
        const m = await mail.send(ctx.actor, to, { ...input, subject: input.subject ?? '' });
        return { ...m, ...(await server.delivered(m, notify === true)) };
      },
    )
    .on(
      'GET',
      '/v0/mail/inbox',
      { summary: 'Unread mail, marked read as returned', query: S.mailboxQuery },
      (ctx) =>
        mail.inbox(mailbox(ctx), page(ctx).limit !== undefined ? { limit: page(ctx).limit! } : {}),
    )
    .on(
      'GET',
      '/v0/mail/check',
      { summary: 'Unread mail, not marked read', query: S.mailboxQuery },
      (ctx) => mail.check(mailbox(ctx), page(ctx)),
    )
    .on(
      'GET',
      '/v0/mail/all',
      { summary: 'Every unarchived message of a mailbox', query: S.mailboxQuery },
      (ctx) => mail.all(mailbox(ctx), page(ctx)),
    )
    .on(
      'GET',
      '/v0/mail/count',
      { summary: 'Total and unread of a mailbox', query: S.mailboxQuery },
      (ctx) => mail.count(mailbox(ctx)),
    )
    .on('GET', '/v0/mail/:id', { summary: 'One message (not marked read)' }, (ctx) =>
      ownMessage(ctx, ctx.params.id!, false),
    )
    .on('GET', '/v0/mail/:id/thread', { summary: 'The conversation of a message' }, async (ctx) => {
      await ownMessage(ctx, ctx.params.id!, false);
      const all = await mail.thread(ctx.params.id!);
      return {
        items:
          ctx.principal.kind === 'agent'
            ? all.filter((m) => m.to === ctx.actor || m.from === ctx.actor)
            : all,
      };
    })
    .on('POST', '/v0/mail/:id/read', { summary: 'Read a message (marks it read)' }, async (ctx) => {
      await ownMessage(ctx, ctx.params.id!, true);
      return mail.read(ctx.params.id!);
    })
    .on('POST', '/v0/mail/:id/mark-read', { summary: 'Mark read' }, async (ctx) => {
      await ownMessage(ctx, ctx.params.id!, true);
      return mail.markRead(ctx.params.id!);
    })
    .on('POST', '/v0/mail/:id/mark-unread', { summary: 'Mark unread' }, async (ctx) => {
      await ownMessage(ctx, ctx.params.id!, true);
      return mail.markUnread(ctx.params.id!);
    })
    .on('POST', '/v0/mail/:id/archive', { summary: 'Archive (second time: 409)' }, async (ctx) => {
      await ownMessage(ctx, ctx.params.id!, true);
      return mail.archive(ctx.params.id!);
    })
    .on('DELETE', '/v0/mail/:id', { summary: 'Delete for good' }, async (ctx) => {
      await ownMessage(ctx, ctx.params.id!, true);
      await mail.delete(ctx.params.id!);
      return { ok: true };
    })
    .on(
      'POST',
      '/v0/mail/:id/reply',
      { summary: 'Reply to the sender, same thread', body: S.mailReplyBody },
      async (ctx) => {
        await ownMessage(ctx, ctx.params.id!, true);
        const { notify, ...input } = ctx.input;
        const m = await mail.reply(ctx.params.id!, ctx.actor, input);
        return { ...m, ...(await server.delivered(m, notify === true)) };
      },
    )

    // ---- sessions ----
    .on(
      'GET',
      '/v0/sessions',
      { summary: 'Sessions by name (cursor = last name)', query: S.pageQuery },
      (ctx) => {
        const limit = num(ctx.query.get('limit')) ?? 100;
        const cursor = ctx.query.get('cursor') ?? '';
        const all = controller.status().sessions;
        const after = all.filter((s) => s.name > cursor);
        after.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
        const items = after.slice(0, limit);
        return Promise.resolve({
          items,
          next_cursor: after.length > limit ? items.at(-1)!.name : null,
        });
      },
    )
    .on('GET', '/v0/sessions/:name', { summary: 'One session and its state' }, (ctx) => {
      const name = validateSessionName(ctx.params.name!);
      const found = controller.status().sessions.find((x) => x.name === name);
      if (!found) throw new NotFoundError('session', name);
      return Promise.resolve(found);
    })
    .on(
      'GET',
      '/v0/sessions/:name/peek',
      { summary: 'Last lines of a session', query: S.peekQuery },
      async (ctx) => {
        const name = validateSessionName(ctx.params.name!);
        const lines = num(ctx.query.get('lines')) ?? 50;
        return { name, output: await provider.peek(name, lines) };
      },
    )
    .on(
      'POST',
      '/v0/sessions/:name/nudge',
      { summary: 'Type a line into a session', body: S.nudgeBody },
      async (ctx) => {
        const name = validateSessionName(ctx.params.name!);
        if (!(await provider.isRunning(name))) throw new NotFoundError('session', name);
        await provider.nudge(name, ctx.input.text);
        return { ok: true };
      },
    )
    .on(
      'POST',
      '/v0/sessions/:name/kill',
      { summary: 'Stop a session now (the controller decides what next)', allow: STAFF },
      async (ctx) => {
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
      },
    )
    .on(
      'POST',
      '/v0/sessions/:name/reset',
      { summary: 'Clear quarantine and restart counts', allow: STAFF },
      async (ctx) => {
        only(ctx, ['admin', 'operator'], 'reset sessions');
        const name = validateSessionName(ctx.params.name!);
        return { ok: true, cleared: await controller.resetSession(name) };
      },
    )

    // ---- runs ----
    .on(
      'POST',
      '/v0/runs',
      { summary: 'Start a run: agent template + prompt -> session', allow: STAFF, body: S.runBody },
      (ctx) => runs.start(ctx.principal, ctx.input),
    )
    .on(
      'GET',
      '/v0/runs',
      { summary: 'Runs by start order (cursor pages)', allow: STAFF, query: S.pageQuery },
      (ctx) => {
        only(ctx, ['admin', 'operator'], 'list runs');
        const cursor = ctx.query.get('cursor');
        if (cursor !== null && !/^\d+$/.test(cursor)) {
          throw new ValidationError('not a cursor from this list', { where: 'query.cursor' });
        }
        return Promise.resolve(
          runs.list(ctx.principal, Number(cursor ?? 0), num(ctx.query.get('limit')) ?? 100),
        );
      },
    )
    .on('GET', '/v0/runs/:id', { summary: 'One run', allow: STAFF }, (ctx) =>
      Promise.resolve(runs.mayTouch(ctx.principal, ctx.params.id!)),
    )
    .on('POST', '/v0/runs/:id/stop', { summary: 'Stop a run', allow: STAFF }, (ctx) => {
      runs.mayTouch(ctx.principal, ctx.params.id!);
      return runs.stop(ctx.params.id!, ctx.actor);
    })
    .on(
      'GET',
      '/v0/runs/:id/stream',
      {
        summary: 'Output of a run as SSE; resume with Last-Event-ID (a byte offset)',
        allow: STAFF,
        stream: true,
      },
      async (ctx) => {
        const run = runs.mayTouch(ctx.principal, ctx.params.id!);
        const header = String(ctx.req.headers['last-event-id'] ?? '');
        if (header && !/^\d+$/.test(header)) {
          throw new ValidationError('must be a byte offset', { where: 'Last-Event-ID' });
        }
        const ac = new AbortController();
        ctx.res.on('close', () => ac.abort());
        sseHeaders(ctx.res);
        await followFile(
          path.join(server.root, '.gc', 'sessions', 'logs', `${run.session}.log`),
          ctx.res,
          {
            from: header ? Number(header) : 0,
            signal: ac.signal,
            live: () => Promise.resolve(runs.get(run.id).state === 'running'),
          },
        );
        ctx.res.end();
        return undefined;
      },
    )

    // ---- the agent runtime protocol ----
    .on(
      'GET',
      '/v0/runtime/drain-check',
      { summary: 'Is the calling session asked to drain?', who: 'agent sessions (their own)' },
      async (ctx) => {
        const name = ownSession(ctx);
        const since = await provider.getMeta(name, 'GC_DRAIN');
        return { session: name, draining: since !== '', since: since ? Number(since) : null };
      },
    )
    .on(
      'POST',
      '/v0/runtime/drain-ack',
      { summary: 'The calling session finished draining', who: 'agent sessions (their own)' },
      async (ctx) => {
        const name = ownSession(ctx);
        await provider.setMeta(name, 'GC_DRAIN_ACK', '1');
        controller.drainAcked(name);
        return { ok: true };
      },
    )
    .on(
      'POST',
      '/v0/runtime/request-restart',
      { summary: 'Restart the calling session', who: 'agent sessions (their own)' },
      async (ctx) => {
        const name = ownSession(ctx);
        controller.requestRestart(name);
        await events.record({
          type: 'session.restart_requested',
          actor: ctx.actor,
          subject: name,
          message: `${name} asked to be restarted`,
        });
        return { ok: true };
      },
    )

    // ---- keys and the agent registry ----
    .on(
      'POST',
      '/v0/keys',
      {
        summary: 'Create an admin or operator key (shown once)',
        allow: ADMIN,
        body: S.keyCreateBody,
      },
      async (ctx) => {
        only(ctx, ['admin'], 'create API keys');
        const { kind, name, max_sessions: max } = ctx.input;
        const created = keys.create({
          kind,
          name,
          ...(max !== undefined ? { maxSessions: max } : {}),
        });
        await events.record({
          type: 'auth.key_created',
          actor: ctx.actor,
          subject: created.principal.key_id,
          payload: { kind, name: created.principal.name },
          message: `${kind} key ${created.principal.key_id} created for ${created.principal.name}`,
        });
        return created;
      },
    )
    .on(
      'GET',
      '/v0/keys',
      { summary: 'Keys by creation order (cursor = after)', allow: ADMIN, query: S.keysQuery },
      (ctx) => {
        only(ctx, ['admin'], 'list API keys');
        const after = num(ctx.query.get('after'));
        const limit = num(ctx.query.get('limit'));
        const kind = ctx.query.get('kind') as PrincipalKind | null;
        return Promise.resolve(
          keys.list({
            ...(kind ? { kind } : {}),
            ...(after !== undefined ? { after } : {}),
            ...(limit !== undefined ? { limit } : {}),
            includeRevoked: ctx.query.get('revoked') === 'true',
          }),
        );
      },
    )
    .on('DELETE', '/v0/keys/:id', { summary: 'Revoke a key', allow: ADMIN }, async (ctx) => {
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
    .on(
      'POST',
      '/v0/agents',
      {
        summary: 'Register an external agent (token shown once)',
        allow: STAFF,
        body: S.agentRegisterBody,
      },
      async (ctx) => {
        only(ctx, ['admin', 'operator'], 'register agents');
        const { name, webhook_url: webhook } = ctx.input;
        validateSessionName(name, 'body.name');
        if (server.spec.agents.some((a) => a.name === name) || keys.has('agent', name)) {
          throw new ValidationError(`${name} is taken by a city agent or a registered one`, {
            where: 'body.name',
          });
        }
        if (webhook !== undefined) {
          const problem = webhookUrlProblem(webhook);
          if (problem) throw new ValidationError(problem, { where: 'body.webhook_url' });
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
      },
    )
    .on(
      'GET',
      '/v0/agents',
      {
        summary: 'Registered agents by registration order (cursor = after)',
        allow: STAFF,
        query: S.keysQuery,
      },
      (ctx) => {
        only(ctx, ['admin', 'operator'], 'list registered agents');
        const after = num(ctx.query.get('after'));
        const limit = num(ctx.query.get('limit'));
        return Promise.resolve(
          keys.list({
            kind: 'agent',
            ...(ctx.principal.kind === 'operator' ? { owner: ctx.principal.name } : {}),
            ...(after !== undefined ? { after } : {}),
            ...(limit !== undefined ? { limit } : {}),
          }),
        );
      },
    );
}
