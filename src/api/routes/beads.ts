/** Routes: beads and the event log (list, latest, SSE stream). */
import { ForbiddenError, ValidationError } from '../../core/index.js';
import { claimNextAware, holdReasons } from '../../dispatch/index.js';
import { checkEmittedType, type EventListQuery } from '../../events/index.js';
import { mailEventFor } from '../../mail/index.js';
import type { Router } from '../http.js';
import * as S from '../schemas.js';
import { SseWriter, sseHeaders } from '../sse.js';
import { longPoll } from '../wait.js';
import { STAFF, filterFromQuery, num, only, type RouteKit } from './common.js';

export function beadRoutes(router: Router, k: RouteKit): void {
  const { server, ops, store, events } = k;
  const { mustHold, notMail, hideMail, page } = k;
  const pending = () => server.refinery.queue.queuedBeads();
  router
    // ---- beads ----
    .on('POST', '/v0/beads', { summary: 'Create a bead', body: S.createBeadBody }, (ctx) => {
      if (ctx.input.type === 'message' && ctx.principal.kind !== 'admin') {
        throw new ForbiddenError('messages are sent as mail, not created as beads', {
          fix: 'gc mail send (POST /v0/mail)',
        });
      }
      server.admitCreate(ctx.principal);
      // Only the admin key may create on someone else's behalf.
      return ops.createBead(
        ctx.actor,
        ctx.principal.kind === 'admin' ? ctx.input : { ...ctx.input, from: ctx.actor },
      );
    })
    .on(
      'GET',
      '/v0/beads',
      { summary: 'List beads (cursor pages)', query: S.beadListQuery },
      async (ctx) => {
        const q = filterFromQuery(ctx.query);
        if (q.type === 'message' && ctx.principal.kind === 'agent') {
          throw new ForbiddenError('agents read mail through the mail routes', {
            fix: 'gc mail inbox (GET /v0/mail)',
          });
        }
        return hideMail(ctx, await store.list(q));
      },
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
        const { lease_ms: leaseMs, query = {}, wait_ms: waitMs = 0 } = ctx.input;
        const q = { ...query, ...(leaseMs !== undefined ? { leaseMs } : {}) };
        const claim = () =>
          server.holdOverlapping === 'off'
            ? ops.claimNext(ctx.actor, q)
            : claimNextAware(ops, ctx.actor, q, pending, server.holdOverlapping);
        // With wait_ms, an idle agent waits here for work instead of polling.
        const bead = await longPoll(
          ctx,
          events,
          waitMs,
          claim,
          (b) => b !== null,
          (e) => e.type.startsWith('bead.'),
        );
        return { bead };
      },
    )
    .on(
      'GET',
      '/v0/beads/:id',
      { summary: 'One bead (held: why it is held back)' },
      async (ctx) => {
        await notMail(ctx, ctx.params.id!);
        const bead = await store.get(ctx.params.id!);
        if (server.holdOverlapping === 'off') return bead;
        const held = (await holdReasons(ops, [bead], pending))[bead.id];
        return held ? { ...bead, held } : bead;
      },
    )
    .on(
      'PATCH',
      '/v0/beads/:id',
      { summary: 'Update a bead (agents: only beads they hold)', body: S.updateBeadBody },
      async (ctx) => {
        await notMail(ctx, ctx.params.id!, true);
        await mustHold(ctx, ctx.params.id!, 'update');
        if (ctx.input.type === 'message' && ctx.principal.kind !== 'admin') {
          throw new ForbiddenError('a bead cannot be turned into a message (body.type)');
        }
        return ops.updateBead(ctx.actor, ctx.params.id!, ctx.input);
      },
    )
    .on(
      'POST',
      '/v0/beads/:id/close',
      { summary: 'Close a bead (agents: only beads they hold)', body: S.closeBody },
      async (ctx) => {
        await notMail(ctx, ctx.params.id!, true);
        await mustHold(ctx, ctx.params.id!, 'close');
        return ops.closeBead(ctx.actor, ctx.params.id!, ctx.input.reason);
      },
    )
    .on(
      'POST',
      '/v0/beads/:id/claim',
      { summary: 'Claim a bead for the caller', body: S.claimBody },
      async (ctx) => {
        await notMail(ctx, ctx.params.id!, true);
        return ops.claimBead(
          ctx.actor,
          ctx.params.id!,
          ctx.input.lease_ms !== undefined ? { leaseMs: ctx.input.lease_ms } : {},
        );
      },
    )
    .on(
      'POST',
      '/v0/beads/:id/unclaim',
      { summary: "Release the caller's claim (force: staff)", body: S.unclaimBody },
      async (ctx) => {
        await notMail(ctx, ctx.params.id!, true);
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
      async (ctx) => {
        await notMail(ctx, ctx.params.id!);
        return hideMail(ctx, await store.children(ctx.params.id!, page(ctx)));
      },
    )
    .on(
      'GET',
      '/v0/beads/:id/deps',
      { summary: 'Dependencies (down) or dependents (up)', query: S.depsQuery },
      async (ctx) => {
        await notMail(ctx, ctx.params.id!);
        return store.listDependencies(
          ctx.params.id!,
          ctx.query.get('direction') === 'up' ? 'up' : 'down',
        );
      },
    )
    .on(
      'POST',
      '/v0/beads/:id/deps',
      { summary: 'Add a dependency', body: S.depBody },
      async (ctx) => {
        await notMail(ctx, ctx.params.id!, true);
        await notMail(ctx, ctx.input.depends_on_id, true);
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
      await notMail(ctx, ctx.params.id!, true);
      const removed = await ops.removeDependency(ctx.actor, ctx.params.id!, ctx.params.dep!);
      return { ok: true, removed };
    })

    .on(
      'DELETE',
      '/v0/beads/:id',
      { summary: 'Delete a bead for good (prefer close)', allow: STAFF },
      async (ctx) => {
        await notMail(ctx, ctx.params.id!, true);
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
      async (ctx) => {
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
        await ops.published();
        const page = await events.list(query);
        if (ctx.principal.kind !== 'agent') return page;
        return { ...page, items: page.items.map((e) => mailEventFor(e, ctx.actor)) };
      },
    )
    .on(
      'POST',
      '/v0/events',
      {
        summary: "Record an event of the caller's own (not one of gc's types)",
        body: S.eventEmitBody,
      },
      async (ctx) => {
        const { type, subject, message, payload } = ctx.input;
        return events.record({
          type: checkEmittedType(type),
          actor: ctx.actor,
          ...(subject !== undefined ? { subject } : {}),
          ...(message !== undefined ? { message } : {}),
          ...(payload !== undefined ? { payload } : {}),
        });
      },
    )
    .on('GET', '/v0/events/latest', { summary: 'Latest event sequence number' }, async () => {
      await ops.published();
      return { seq: await events.latestSeq() };
    })
    .on(
      'GET',
      '/v0/events/stream',
      {
        summary: 'Live events as SSE; resume with Last-Event-ID (it wins over after_seq)',
        query: S.streamQuery,
        stream: true,
      },
      async (ctx) => {
        const header = String(ctx.req.headers['last-event-id'] ?? '');
        if (header && !/^\d+$/.test(header)) {
          throw new ValidationError('must be an event sequence number', { where: 'Last-Event-ID' });
        }
        // A reconnecting client sends Last-Event-ID with the URL it first
        // used: the id is where it got to, so it wins over after_seq.
        const after = header ? Number(header) : (num(ctx.query.get('after_seq')) ?? 0);
        const plain = ctx.query.get('plain') === 'true';
        const ac = new AbortController();
        ctx.res.on('close', () => ac.abort());
        await ops.published();
        // watch() subscribes before it replays, so nothing falls in between.
        const stream = events.watch(after, { signal: ac.signal });
        sseHeaders(ctx.res);
        const out = new SseWriter(ctx.res, { stallMs: server.sseStallMs });
        try {
          const agent = ctx.principal.kind === 'agent';
          for await (const e of stream) {
            const shown = agent ? mailEventFor(e, ctx.actor) : e;
            if (!(await out.send(e.seq, plain ? '' : e.type, shown))) break;
          }
        } catch (e) {
          if (!ac.signal.aborted) throw e;
        }
        ctx.res.end();
        return undefined;
      },
    );
}
