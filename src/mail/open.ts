/** Open the mail provider `[mail] provider` names, with an event per change. */
import { ValidationError, resolveScript } from '../core/index.js';
import type { EventLog } from '../events/index.js';
import type { Store } from '../store/index.js';
import { ExecMail } from './exec.js';
import type { Mail } from './mail.js';
import { RecordingMail } from './recording.js';
import { StoreMail, type MailRecorder } from './store-mail.js';

export interface OpenMailOptions {
  /** `""` (the work store) or `exec:<script>` (see resolveScript: the city root, else PATH). */
  provider: string;
  maxUnread: number;
  /** Unread mail one sender may leave in one mailbox; 0 = none. */
  maxUnreadPerSender?: number;
  root: string;
  store: Store;
  events: EventLog;
  /** Store-backed mail: commit each change's event with it (see StoreMailOptions). */
  recorder?: MailRecorder;
}

export function openMail(o: OpenMailOptions): Mail {
  let inner: Mail;
  if (o.provider === '' || o.provider === 'store') {
    inner = new StoreMail(o.store, {
      maxUnread: o.maxUnread,
      maxUnreadPerSender: o.maxUnreadPerSender ?? 0,
      ...(o.recorder ? { recorder: o.recorder } : {}),
    });
  } else if (o.provider.startsWith('exec:')) {
    const script = resolveScript(o.provider.slice(5), o.root);
    inner = new ExecMail(script, {
      cwd: o.root,
      env: { GC_CITY_ROOT: o.root, GC_MAIL_MAX_UNREAD: String(o.maxUnread) },
    });
  } else {
    throw new ValidationError(`unknown mail provider ${JSON.stringify(o.provider)}`, {
      where: '[mail] provider',
      fix: 'use "" (the work store) or "exec:<script>"',
    });
  }
  return new RecordingMail(inner, o.events);
}
