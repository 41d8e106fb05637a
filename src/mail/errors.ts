/** Typed errors of the mail seam. */
import { GcError } from '../core/index.js';

/** The recipient already has `limit` unread messages; nothing was dropped. */
export class InboxFullError extends GcError {
  constructor(recipient: string, unread: number, limit: number) {
    super('conflict', `inbox of ${recipient} is full: ${unread} unread messages (limit ${limit})`, {
      details: { recipient, unread, limit },
      fix: `wait for ${recipient} to read its mail, or raise [mail] max_unread`,
    });
  }
}
