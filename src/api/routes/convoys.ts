/** Routes: convoys (create, add, list, status with waves). Staff create and add; anyone reads. */
import {
  addToConvoy,
  convoyOptions,
  convoyStatus,
  createConvoy,
  listConvoys,
} from '../../dispatch/index.js';
import type { Router } from '../http.js';
import * as S from '../schemas.js';
import { STAFF, num, only, type RouteKit } from './common.js';

export function convoyRoutes(router: Router, k: RouteKit): void {
  const { server, ops } = k;
  const pending = (bead: string) => server.refinery.queue.hasPending(bead);
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
      'GET',
      '/v0/convoys/:id',
      { summary: 'A convoy: its beads by wave, what has landed' },
      (ctx) => convoyStatus(ops, ctx.params.id!, pending),
    );
}
