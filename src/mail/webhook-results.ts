/**
 * What a webhook push leaves behind: a delivered message is marked read,
 * and every outcome is an event (mail.pushed or mail.push_failed) naming
 * the target with its secrets redacted.
 */
import { errorMessage } from '../core/index.js';
import type { EventLog } from '../events/index.js';
import type { Mail } from './mail.js';
import { redactUrl, type DeliveryResult } from './webhook.js';

export function recordWebhookResults(
  mail: Mail,
  events: EventLog,
  log: (line: string) => void,
): (r: DeliveryResult) => void {
  return (r) => {
    const to = redactUrl(r.url);
    if (r.alert) {
      const name = typeof r.alert.alert === 'string' ? r.alert.alert : r.message.subject;
      events
        .record({
          type: r.outcome === 'delivered' ? 'alert.pushed' : 'alert.push_failed',
          actor: 'alerts',
          subject: name,
          payload: {
            alert: name,
            url: to,
            outcome: r.outcome,
            attempts: r.attempts,
            ...(r.error ? { error: r.error } : {}),
          },
          message:
            r.outcome === 'delivered'
              ? `alert ${name} pushed to ${to}`
              : `alert ${name} not pushed to ${to} (${r.outcome}${r.error ? `: ${r.error}` : ''})`,
        })
        .catch(() => undefined);
      return;
    }
    if (r.outcome === 'delivered') {
      mail
        .markRead(r.message.id)
        .catch((e: unknown) => log(`webhook: mark read ${r.message.id}: ${errorMessage(e)}`));
    }
    events
      .record({
        type: r.outcome === 'delivered' ? 'mail.pushed' : 'mail.push_failed',
        actor: 'mail',
        subject: r.message.id,
        payload: {
          to: r.message.to,
          url: to,
          outcome: r.outcome,
          attempts: r.attempts,
          ...(r.error ? { error: r.error } : {}),
        },
        message:
          r.outcome === 'delivered'
            ? `mail ${r.message.id} pushed to ${r.message.to} at ${to}`
            : `mail ${r.message.id} not pushed to ${r.message.to} (${r.outcome}${r.error ? `: ${r.error}` : ''}); it waits in the inbox`,
      })
      .catch(() => undefined);
  };
}
