/** Routes: sessions, runs (with their SSE output) and the agent runtime protocol. */
import path from 'node:path';
import { NotFoundError, ValidationError } from '../../core/index.js';
import { requireSession, validateSessionName } from '../../runtime/index.js';
import type { Router } from '../http.js';
import * as S from '../schemas.js';
import { SseWriter, followFile, sseHeaders } from '../sse.js';
import { STAFF, num, only, type RouteKit } from './common.js';

export function sessionRoutes(router: Router, k: RouteKit): void {
  const { server, provider, events } = k;
  const { ownSession } = k;
  router
    // ---- sessions ----
    .on(
      'GET',
      '/v0/sessions',
      { leader: true, summary: 'Sessions by name (cursor = last name)', query: S.pageQuery },
      (ctx) => {
        const limit = num(ctx.query.get('limit')) ?? 100;
        const cursor = ctx.query.get('cursor') ?? '';
        const all = server.controller.status().sessions;
        const after = all.filter((s) => s.name > cursor);
        after.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
        const items = after.slice(0, limit);
        return Promise.resolve({
          items,
          next_cursor: after.length > limit ? items.at(-1)!.name : null,
        });
      },
    )
    .on(
      'GET',
      '/v0/sessions/:name',
      { leader: true, summary: 'One session and its state' },
      (ctx) => {
        const name = validateSessionName(ctx.params.name!);
        const found = server.controller.status().sessions.find((x) => x.name === name);
        if (!found) throw new NotFoundError('session', name);
        return Promise.resolve(found);
      },
    )
    .on(
      'GET',
      '/v0/sessions/:name/peek',
      { leader: true, summary: 'Last lines of a session', query: S.peekQuery },
      async (ctx) => {
        const name = validateSessionName(ctx.params.name!);
        const lines = num(ctx.query.get('lines')) ?? 50;
        await requireSession(provider, name);
        return { name, output: await provider.peek(name, lines) };
      },
    )
    .on(
      'POST',
      '/v0/sessions/:name/nudge',
      { leader: true, summary: 'Type a line into a session', body: S.nudgeBody },
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
      {
        leader: true,
        summary: 'Stop a session now (the controller decides what next)',
        allow: STAFF,
      },
      async (ctx) => {
        only(ctx, ['admin', 'operator'], 'kill sessions');
        const name = validateSessionName(ctx.params.name!);
        await requireSession(provider, name);
        await provider.stop(name);
        await events.record({
          type: 'session.killed',
          actor: ctx.actor,
          subject: name,
          message: `session ${name} killed by ${ctx.actor}`,
        });
        server.controller.sessionStopped(name);
        return { ok: true };
      },
    )
    .on(
      'POST',
      '/v0/sessions/:name/drain',
      {
        leader: true,
        summary:
          'Ask a session to wind down: its drain-check says so; it is stopped on drain-ack or at its drain_timeout, then started again if still wanted',
        allow: STAFF,
      },
      async (ctx) => {
        only(ctx, ['admin', 'operator'], 'drain sessions');
        const name = validateSessionName(ctx.params.name!);
        return server.controller.drain(name, true, ctx.actor);
      },
    )
    .on(
      'POST',
      '/v0/sessions/:name/undrain',
      { leader: true, summary: 'Cancel a drain not yet done', allow: STAFF },
      async (ctx) => {
        only(ctx, ['admin', 'operator'], 'undrain sessions');
        const name = validateSessionName(ctx.params.name!);
        return server.controller.drain(name, false, ctx.actor);
      },
    )
    .on(
      'POST',
      '/v0/rigs/:name/restart',
      {
        leader: true,
        summary: "Restart every running session of a rig's agents (each drains, then starts fresh)",
        allow: STAFF,
      },
      async (ctx) => {
        only(ctx, ['admin', 'operator'], 'restart rigs');
        const rig = ctx.params.name!;
        const spec = server.controller.currentSpec;
        const agents = new Set(spec.agents.filter((a) => a.rig === rig).map((a) => a.name));
        if (!agents.size) {
          throw new NotFoundError('rig', rig, {
            fix: 'no agent works in a rig of that name; gc rig list shows the rigs',
          });
        }
        const sessions = server.controller
          .status()
          .sessions.filter(
            (x) => x.agent && agents.has(x.agent) && ['running', 'draining'].includes(x.state),
          )
          .map((x) => x.name);
        for (const name of sessions) server.controller.requestRestart(name);
        await events.record({
          type: 'rig.restart_requested',
          actor: ctx.actor,
          subject: rig,
          message: `restart of rig ${rig} (${sessions.length} sessions) asked by ${ctx.actor}`,
          payload: { sessions },
        });
        return { rig, sessions };
      },
    )
    .on(
      'POST',
      '/v0/sessions/:name/reset',
      { leader: true, summary: 'Clear quarantine and restart counts', allow: STAFF },
      async (ctx) => {
        only(ctx, ['admin', 'operator'], 'reset sessions');
        const name = validateSessionName(ctx.params.name!);
        return { ok: true, cleared: await server.controller.resetSession(name) };
      },
    )

    // ---- runs ----
    .on(
      'POST',
      '/v0/runs',
      {
        leader: true,
        summary: 'Start a run: agent template + prompt -> session',
        allow: STAFF,
        body: S.runBody,
      },
      (ctx) => server.runs.start(ctx.principal, ctx.input),
    )
    .on(
      'GET',
      '/v0/runs',
      {
        leader: true,
        summary: 'Runs by start order (cursor pages)',
        allow: STAFF,
        query: S.pageQuery,
      },
      (ctx) => {
        only(ctx, ['admin', 'operator'], 'list runs');
        const cursor = ctx.query.get('cursor');
        if (cursor !== null && !/^\d+$/.test(cursor)) {
          throw new ValidationError('not a cursor from this list', { where: 'query.cursor' });
        }
        return server.runs.list(
          ctx.principal,
          Number(cursor ?? 0),
          num(ctx.query.get('limit')) ?? 100,
        );
      },
    )
    .on('GET', '/v0/runs/:id', { leader: true, summary: 'One run', allow: STAFF }, (ctx) =>
      server.runs.mayTouch(ctx.principal, ctx.params.id!),
    )
    .on(
      'POST',
      '/v0/runs/:id/stop',
      { leader: true, summary: 'Stop a run', allow: STAFF },
      async (ctx) => {
        await server.runs.mayTouch(ctx.principal, ctx.params.id!);
        return server.runs.stop(ctx.params.id!, ctx.actor);
      },
    )
    .on(
      'GET',
      '/v0/runs/:id/stream',
      {
        leader: true,
        summary: 'Output of a run as SSE; resume with Last-Event-ID (a byte offset)',
        allow: STAFF,
        stream: true,
      },
      async (ctx) => {
        const run = await server.runs.mayTouch(ctx.principal, ctx.params.id!);
        const header = String(ctx.req.headers['last-event-id'] ?? '');
        if (header && !/^\d+$/.test(header)) {
          throw new ValidationError('must be a byte offset', { where: 'Last-Event-ID' });
        }
        const ac = new AbortController();
        ctx.res.on('close', () => ac.abort());
        sseHeaders(ctx.res);
        await followFile(
          path.join(server.root, '.gc', 'sessions', 'logs', `${run.session}.log`),
          new SseWriter(ctx.res, { stallMs: server.sseStallMs }),
          {
            from: header ? Number(header) : 0,
            signal: ac.signal,
            live: async () => (await server.runs.get(run.id)).state === 'running',
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
      {
        leader: true,
        summary: 'Is the calling session asked to drain?',
        who: 'agent sessions (their own)',
      },
      async (ctx) => {
        const name = ownSession(ctx);
        const since = await provider.getMeta(name, 'GC_DRAIN');
        return { session: name, draining: since !== '', since: since ? Number(since) : null };
      },
    )
    .on(
      'POST',
      '/v0/runtime/drain-ack',
      {
        leader: true,
        summary: 'The calling session finished draining',
        who: 'agent sessions (their own)',
      },
      async (ctx) => {
        const name = ownSession(ctx);
        await provider.setMeta(name, 'GC_DRAIN_ACK', '1');
        server.controller.drainAcked(name);
        return { ok: true };
      },
    )
    .on(
      'POST',
      '/v0/runtime/request-restart',
      { leader: true, summary: 'Restart the calling session', who: 'agent sessions (their own)' },
      async (ctx) => {
        const name = ownSession(ctx);
        server.controller.requestRestart(name);
        await events.record({
          type: 'session.restart_requested',
          actor: ctx.actor,
          subject: name,
          message: `${name} asked to be restarted`,
        });
        return { ok: true };
      },
    );
}
