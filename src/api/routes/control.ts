/** Routes: liveness, status, the OpenAPI document, config and city control (poke, reload, suspend, resume, stop). */
import type { Router } from '../http.js';
import { boundedStatus } from '../../controller/index.js';
import { openApiDocument } from '../openapi.js';
import * as S from '../schemas.js';
import { ADMIN, STAFF, only, type RouteKit } from './common.js';

export function controlRoutes(router: Router, k: RouteKit): void {
  const { server, provider, store, events } = k;
  router
    .on('GET', '/v0/ping', { summary: 'Liveness and identity of the server' }, () =>
      Promise.resolve({
        ok: true,
        pid: process.pid,
        city: server.spec.name,
        state: server.state,
        provider: server.provider.name,
        server: server.identity,
      }),
    )
    .on('GET', '/v0/openapi.json', { summary: 'This API as an OpenAPI 3 document' }, () =>
      Promise.resolve(openApiDocument(router.list(), { title: 'gc city API', version: 'v0' })),
    )
    .on(
      'GET',
      '/v0/status',
      { leader: true, summary: 'City, controller and work summary' },
      async () => ({
        city: server.spec.name,
        root: server.root,
        pid: process.pid,
        server: server.state,
        suspended: server.suspended || server.spec.suspended,
        started_at: new Date(server.startedAt).toISOString(),
        provider: provider.name,
        // Bounded: counts by state and at most STATUS_SESSIONS sessions (GET /v0/sessions pages all).
        controller: boundedStatus(server.controller.status()),
        runs: server.runs.active,
        beads: await store.counts(),
        events: { latest_seq: await events.latestSeq() },
        // With a database: every live server of the city, its role, and the leader's term.
        cluster: await server.serverInfo(),
      }),
    )
    .on(
      'GET',
      '/metrics',
      { summary: 'The city’s figures in Prometheus text format (docs/operations.md)' },
      async (ctx) => {
        const text = await server.metrics.render();
        ctx.res.writeHead(200, {
          'content-type': server.metrics.contentType,
          'content-length': Buffer.byteLength(text),
        });
        ctx.res.end(text);
        return undefined;
      },
    )
    .on(
      'GET',
      '/v0/alerts',
      { leader: true, summary: 'Alert rules, and the alerts pending or firing now' },
      () => Promise.resolve({ rules: server.alertRules(), active: server.alerts.active() }),
    )
    .on(
      'GET',
      '/v0/patrol',
      { leader: true, summary: 'The health patrol: rigs by tier, its last pass, open findings' },
      () => Promise.resolve(server.patrol.report()),
    )
    .on(
      'POST',
      '/v0/dashboard/links',
      {
        leader: true,
        summary: 'A one-time dashboard login link (role viewer or operator, as the caller)',
        body: S.dashboardLinkBody,
        allow: STAFF,
      },
      (ctx) =>
        Promise.resolve(
          server.dashboard.link(ctx.principal, ctx.input.role ?? 'operator', ctx.input.hours ?? 12),
        ),
    )
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
      { leader: true, summary: 'Run a controller pass now', allow: STAFF },
      (ctx) => {
        only(ctx, ['admin', 'operator'], 'poke the controller');
        server.controller.poke();
        return Promise.resolve({ ok: true });
      },
    )
    .on(
      'POST',
      '/v0/control/reload',
      { leader: true, summary: 'Load city.toml again', allow: ADMIN },
      (ctx) => {
        only(ctx, ['admin'], 'reload the city');
        return server.reload();
      },
    )
    .on(
      'POST',
      '/v0/control/suspend',
      { leader: true, summary: 'Stop all sessions, keep the city', allow: ADMIN },
      async (ctx) => {
        only(ctx, ['admin'], 'suspend the city');
        await server.setSuspended(true);
        return { ok: true, suspended: true };
      },
    )
    .on(
      'POST',
      '/v0/control/resume',
      { leader: true, summary: 'Undo suspend', allow: ADMIN },
      async (ctx) => {
        only(ctx, ['admin'], 'resume the city');
        await server.setSuspended(false);
        return { ok: true, suspended: false };
      },
    )
    .on(
      'POST',
      '/v0/control/stop',
      { summary: 'Stop the city gracefully', allow: ADMIN, body: S.stopBody },
      (ctx) => {
        only(ctx, ['admin'], 'stop the city');
        const reason = ctx.input.reason ?? `gc stop by ${ctx.actor}`;
        // Answer first, then stop: the caller waits for the socket to go away.
        // stop() never rejects; it logs what failed and ends stopped.
        setImmediate(() => {
          server.stop(reason).catch(() => undefined);
        });
        return Promise.resolve({ ok: true, stopping: true });
      },
    );
}
