/**
 * After a mail is stored: nudge the recipient's live sessions (when asked)
 * and queue the push to its registered agent's webhook. Nothing here may
 * fail the send: the message is stored already.
 */
import { errorMessage } from '../core/index.js';
import type { KeyRing } from '../city/index.js';
import type { Message, WebhookDelivery } from '../mail/index.js';
import { nudgeSessions, type Provider } from '../runtime/index.js';

export async function deliverMail(
  parts: { provider: Provider; keys: KeyRing; webhooks: WebhookDelivery },
  log: (line: string) => void,
  message: Message,
  notify: boolean,
): Promise<{ notified: string[]; pushed: boolean }> {
  const notified: string[] = [];
  if (notify) {
    const to = message.to;
    const pool = new RegExp(`^${to.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-\\d+$`);
    // eslint-disable-next-line no-control-regex -- stripping control characters is the point
    const clean = (t: string) => t.replace(/[\u0000-\u001f\u007f]+/g, ' ').slice(0, 200);
    // A recipient that cannot be a session name has no sessions to nudge.
    let running: string[] = [];
    try {
      running = /^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(to) ? await parts.provider.listRunning(to) : [];
    } catch (e) {
      log(`mail notify ${to}: ${errorMessage(e)}`);
    }
    const targets = running.filter((s) => s === to || pool.test(s));
    const failed = new Set(
      await nudgeSessions(
        parts.provider,
        targets,
        `You have mail from ${clean(message.from)}: ${clean(message.subject)} (gc mail inbox)`,
        (line) => log(`mail notify: ${line}`),
      ),
    );
    notified.push(...targets.filter((s) => !failed.has(s)));
  }
  const agent = parts.keys.find('agent', message.to);
  const pushed = agent?.webhook_url ? parts.webhooks.enqueue(agent.webhook_url, message) : false;
  return { notified, pushed };
}
