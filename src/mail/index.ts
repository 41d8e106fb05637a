/** Mail module: the mail seam and its store-backed provider. */
export {
  MAX_MAIL_BODY,
  type Mail,
  type MailCount,
  type MailPage,
  type Message,
  type SendInput,
} from './mail.js';
export { StoreMail, type StoreMailOptions } from './store-mail.js';
export { InboxFullError } from './errors.js';
