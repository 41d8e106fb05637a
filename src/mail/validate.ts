/** Input checks shared by every mail provider, so they all refuse the same things. */
import { TooLargeError, ValidationError } from '../core/index.js';
import { MAX_MAIL_BODY, type SendInput } from './mail.js';

/** A mailbox name: an agent, session or human; no spaces or commas. */
export function checkMailName(name: unknown, where: string): string {
  if (typeof name !== 'string' || !name.trim() || name.length > 256 || /[\s,]/.test(name)) {
    throw new ValidationError('must be a non-empty name without spaces or commas (at most 256)', {
      where,
    });
  }
  return name;
}

/** Check a message before it is stored: names, body type and size, priority. */
export function checkSend(from: string, to: string, input: Partial<SendInput>): void {
  checkMailName(from, 'from');
  checkMailName(to, 'to');
  for (const [i, c] of (input.cc ?? []).entries()) checkMailName(c, `cc[${i}]`);
  if (typeof input.body !== 'string') {
    throw new ValidationError('must be a string', { where: 'body' });
  }
  const size = Buffer.byteLength(input.body);
  if (size > MAX_MAIL_BODY) throw new TooLargeError('mail body', size, MAX_MAIL_BODY);
  if (input.subject !== undefined && typeof input.subject !== 'string') {
    throw new ValidationError('must be a string', { where: 'subject' });
  }
  if (
    input.priority !== undefined &&
    (!Number.isInteger(input.priority) || input.priority < 0 || input.priority > 4)
  ) {
    throw new ValidationError('must be a whole number 0..4', { where: 'priority' });
  }
}
