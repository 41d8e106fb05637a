/** Typed errors of the mail seam. */
import { GcError } from '../core/index.js';

/** The recipient already has `limit` unread messages; nothing was dropped. */
export class InboxFullError extends GcError {
  constructor(recipient: string, unread: number, limit: number, sender?: string) {
    super(
      'conflict',
      sender
        ? `${sender} already has ${unread} unread messages in the inbox of ${recipient} (limit ${limit} per sender)`
        : `inbox of ${recipient} is full: ${unread} unread messages (limit ${limit})`,
      {
        details: { recipient, unread, limit, ...(sender ? { sender } : {}) },
        fix: sender
          ? `wait for ${recipient} to read your mail, or raise [mail] max_unread_per_sender`
          : `wait for ${recipient} to read its mail, or raise [mail] max_unread`,
      },
    );
  }
}
