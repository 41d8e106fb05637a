/** Mail module: the mail seam and its store-backed provider. */
export {
  MAX_MAIL_BODY,
  type Mail,
  type MailCount,
  type MailPage,
  type Message,
  type SendInput,
} from './mail.js';
export { StoreMail, type MailRecorder, type StoreMailOptions } from './store-mail.js';
export { InboxFullError } from './errors.js';
export { ExecMail, type ExecMailOptions } from './exec.js';
export { checkMailName, checkSend } from './validate.js';
export {
  WebhookDelivery,
  isPrivateAddress,
  redactUrl,
  webhookUrlProblem,
  type DeliveryOutcome,
  type DeliveryResult,
  type WebhookOptions,
} from './webhook.js';
export { RecordingMail, mailChangedEvent, mailEventFor, mailSentEvent } from './recording.js';
export { openMail, type OpenMailOptions } from './open.js';
export { recordWebhookResults } from './webhook-results.js';
