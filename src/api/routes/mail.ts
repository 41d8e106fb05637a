/** Routes: the merge queue and mail. */
import { ForbiddenError } from '../../core/index.js';
import { unknownRecipientWarning } from '../../controller/index.js';
import type { MrState } from '../../refinery/index.js';
import type { Router } from '../http.js';
import * as S from '../schemas.js';
import { longPoll } from '../wait.js';
import { STAFF, num, type RouteKit } from './common.js';

/** States of a request still in the queue's hands. */
const IN_QUEUE = new Set<MrState>(['queued', 'testing', 'merging']);

export function mailAndQueueRoutes(router: Router, k: RouteKit): void {
  const { server, mail, keys, ops } = k;
  const { mailbox, mustHold, ownMessage, page } = k;
  router
    // ---- merge queue ----
    .on(
      'POST',
      '/v0/mq',
      { summary: 'Submit a branch to its rig merge queue, as the caller', body: S.mqSubmitBody },
      async (ctx) => {
        const agent = ctx.principal.kind === 'agent';
        if (agent) {
          // An agent submits its own work: beads it holds, branches that are
          // not another session's, and it replaces only its own requests.
          if (ctx.input.bead) await mustHold(ctx, ctx.input.bead, 'submit a merge request for');
          const owner = /^gc\/([^/]+)\//.exec(ctx.input.branch)?.[1];
          if (owner && owner !== ctx.actor) {
            throw new ForbiddenError(
              `agent ${ctx.actor} may not submit ${ctx.input.branch}: it is a branch of session ${owner}`,
            );
          }
        }
        const r = await server.refinery.submit(ctx.actor, { ...ctx.input, ownOnly: agent });
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
        return server.refinery.list({
          ...(rig ? { rig } : {}),
          ...(states.length ? { states } : {}),
          ...(limit !== undefined ? { limit } : {}),
          ...(cursor ? { cursor } : {}),
        });
      },
    )
    .on(
      'GET',
      '/v0/mq/stats',
      { summary: 'Merge-queue figures per rig', query: S.mqStatsQuery },
      (ctx) => server.refinery.stats(ctx.query.get('rig') ?? undefined),
    )
    .on(
      'GET',
      '/v0/mq/:id',
      {
        summary: 'One merge request (wait=N: until it leaves the queue, up to N s)',
        query: S.mqGetQuery,
      },
      (ctx) => {
        const id = ctx.params.id!;
        const waitMs = (num(ctx.query.get('wait')) ?? 0) * 1000;
        return longPoll(
          ctx,
          ops.events,
          waitMs,
          () => server.refinery.queue.get(id),
          (m) => !IN_QUEUE.has(m.state),
          (e) => e.subject === id || e.type === 'mq.submitted',
        );
      },
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
      async (ctx) => {
        const mr = await server.refinery.queue.get(ctx.params.id!);
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
        server.admitCreate(ctx.principal);
        const m = await mail.send(ctx.actor, to, { ...input, subject: input.subject ?? '' });
        const warning = unknownRecipientWarning(server.spec, keys, to);
        return {
          ...m,
          ...(await server.delivered(m, notify === true)),
          ...(warning ? { warnings: [warning] } : {}),
        };
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
        server.admitCreate(ctx.principal);
        const m = await mail.reply(ctx.params.id!, ctx.actor, input);
        return { ...m, ...(await server.delivered(m, notify === true)) };
      },
    );
}
