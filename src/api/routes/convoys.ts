/**
 * Routes: convoys (create, add, list, status with waves, close and land,
 * target, delete, check, stranded). Staff change them; anyone reads.
 */
import {
  addToConvoy,
  closeConvoy,
  convoyNotifier,
  convoyOptions,
  convoyStatus,
  createConvoy,
  deleteConvoy,
  listConvoys,
  patrolConvoys,
  setConvoyTarget,
  strandedConvoys,
} from '../../dispatch/index.js';
import type { Router } from '../http.js';
import * as S from '../schemas.js';
import { STAFF, num, only, type RouteKit } from './common.js';

export function convoyRoutes(router: Router, k: RouteKit): void {
  const { server, ops } = k;
  const pending = (bead: string) => server.refinery.queue.hasPending(bead);
  const notify = convoyNotifier(server.mail, () => undefined);
  router
    .on(
      'POST',
      '/v0/convoys',
      {
        summary: 'Create a convoy over beads, optionally released in waves',
        body: S.convoyBody,
        allow: STAFF,
      },
      async (ctx) => {
        only(ctx, ['admin', 'operator'], 'create a convoy');
        const st = await createConvoy(
          ops,
          ctx.actor,
          ctx.input.title,
          ctx.input.beads,
          convoyOptions(ctx.input),
        );
        server.convoysChanged();
        return st;
      },
    )
    .on(
      'POST',
      '/v0/convoys/:id/beads',
      { summary: 'Add beads to a convoy', body: S.convoyAddBody, allow: STAFF },
      async (ctx) => {
        only(ctx, ['admin', 'operator'], 'add to a convoy');
        const st = await addToConvoy(ops, ctx.actor, ctx.params.id!, ctx.input.beads);
        server.convoysChanged();
        return st;
      },
    )
    .on(
      'GET',
      '/v0/convoys',
      { summary: 'Convoys (open; all=true for closed too)', query: S.convoyListQuery },
      (ctx) => {
        const limit = num(ctx.query.get('limit'));
        const cursor = ctx.query.get('cursor');
        return listConvoys(ops, {
          all: ctx.query.get('all') === 'true',
          ...(limit !== undefined ? { limit } : {}),
          ...(cursor ? { cursor } : {}),
        });
      },
    )
    .on(
      'POST',
      '/v0/convoys/:id/close',
      {
        summary: 'Close a convoy (all its beads closed, or force); land: an owned one',
        body: S.convoyCloseBody,
        allow: STAFF,
      },
      (ctx) => {
        only(ctx, ['admin', 'operator'], 'close a convoy');
        return closeConvoy(ops, ctx.actor, ctx.params.id!, { ...ctx.input, notify });
      },
    )
    .on(
      'POST',
      '/v0/convoys/:id/target',
      { summary: "Set the branch a convoy's work targets", body: S.convoyTargetBody, allow: STAFF },
      (ctx) => {
        only(ctx, ['admin', 'operator'], 'set a convoy target');
        return setConvoyTarget(ops, ctx.actor, ctx.params.id!, ctx.input.target);
      },
    )
    .on(
      'DELETE',
      '/v0/convoys/:id',
      {
        summary: 'Delete a convoy; its beads set free, or deleted too (beads=true)',
        query: S.convoyDeleteQuery,
        allow: STAFF,
      },
      (ctx) => {
        only(ctx, ['admin', 'operator'], 'delete a convoy');
        return deleteConvoy(ops, ctx.actor, ctx.params.id!, {
          beads: ctx.query.get('beads') === 'true',
          force: ctx.query.get('force') === 'true',
        });
      },
    )
    .on(
      'POST',
      '/v0/convoys/check',
      { summary: 'Close finished convoys and release due waves now', allow: STAFF },
      (ctx) => {
        only(ctx, ['admin', 'operator'], 'check convoys');
        return patrolConvoys(ops, pending, Date.now(), undefined, notify);
      },
    )
    .on(
      'GET',
      '/v0/convoys/stranded',
      { summary: 'Open convoys with open work nobody holds' },
      () => strandedConvoys(ops),
    )
    .on(
      'GET',
      '/v0/convoys/:id',
      { summary: 'A convoy: its beads by wave, what has landed' },
      (ctx) => convoyStatus(ops, ctx.params.id!, pending),
    );
}
