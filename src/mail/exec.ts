/**
 * Mail through a user script (`[mail] provider = "exec:<script>"`), the
 * Gas City exec mail protocol: the script gets the operation and its
 * argument as argv (never through a shell) and a JSON payload on stdin for
 * writes; it prints JSON on stdout. Exit 0 = success, 2 = operation not
 * supported, anything else = failure, described by stdout
 * `{"error":{"code","message"}}` or by stderr.
 *
 *   send TO          stdin {from,subject,body,priority?,cc?}  -> message
 *   inbox|check|all RECIPIENT                                 -> [message]
 *   get|read|mark-read|mark-unread|archive ID                 -> message
 *   delete ID                                                 -> (nothing)
 *   reply ID         stdin {from,body,subject?,priority?}     -> message
 *   thread ID                                                 -> [message]
 *   count RECIPIENT                                           -> {total,unread}
 *
 * Inputs are checked here before the script runs, so every provider
 * refuses the same things. Lists are paged here (the script returns whole
 * arrays).
 */
import {
  ConflictError,
  GcError,
  NotFoundError,
  UnsupportedError,
  ValidationError,
  errorMessage,
  type ErrorCode,
  checkScript,
  runScript,
  type ScriptOptions,
} from '../core/index.js';
import type { Page } from '../store/index.js';
import { InboxFullError } from './errors.js';
import type { Mail, MailCount, MailPage, Message, SendInput } from './mail.js';
import { checkMailName, checkSend } from './validate.js';

/** Time limit of one call, extra environment (e.g. where it keeps mail), working directory. */
export type ExecMailOptions = ScriptOptions;

const DEFAULT_LIMIT = 100;
const CODES = new Set<ErrorCode>([
  'not_found',
  'already_exists',
  'conflict',
  'invalid',
  'too_large',
  'unavailable',
]);

function checkId(id: unknown): string {
  if (typeof id !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/.test(id)) {
    throw new ValidationError('must be a message id (letters, digits, . _ : -)', { where: 'id' });
  }
  return id;
}

function asMessage(v: unknown, op: string): Message {
  const m = v as Partial<Message> | null;
  if (!m || typeof m !== 'object' || typeof m.id !== 'string' || typeof m.to !== 'string') {
    throw new GcError('internal', `mail script ${op}: expected a message object`);
  }
  return {
    id: m.id,
    from: String(m.from ?? ''),
    to: m.to,
    subject: String(m.subject ?? ''),
    body: String(m.body ?? ''),
    created_at: String(m.created_at ?? ''),
    read: m.read === true,
    archived: m.archived === true,
    thread_id: String(m.thread_id || m.id),
    reply_to: String(m.reply_to ?? ''),
    priority: typeof m.priority === 'number' ? m.priority : 2,
    cc: Array.isArray(m.cc) ? m.cc.map(String) : [],
  };
}

/** Page a whole list: the cursor is the offset of the next item. */
function page<T>(items: T[], p: MailPage): Page<T> {
  const start = p.cursor ? Number(p.cursor) : 0;
  if (!Number.isInteger(start) || start < 0) {
    throw new ValidationError('not a cursor from this list', { where: 'cursor' });
  }
  const limit = p.limit ?? DEFAULT_LIMIT;
  const slice = items.slice(start, start + limit);
  return {
    items: slice,
    next_cursor: start + limit < items.length ? String(start + limit) : null,
  };
}

/** Ops that answer a message, which a script may leave unsaid (then gc asks `get`). */
const MARKING = new Set(['mark-read', 'mark-unread', 'archive']);
/** Ops a script may decline (exit 2) without failing: lists are empty, marks are no-ops. */
const SUCCEED_EMPTY = new Set([...MARKING, 'delete', 'inbox', 'check', 'all', 'thread']);

export class ExecMail implements Mail {
  private checked = false;

  constructor(
    readonly script: string,
    private readonly options: ExecMailOptions = {},
  ) {}

  private async call(op: string, arg: string, input?: unknown): Promise<unknown> {
    if (!this.checked) {
      await checkScript('mail', this.script);
      this.checked = true;
    }
    const r = await runScript(
      'mail',
      this.script,
      [op, arg],
      input !== undefined ? JSON.stringify(input) : '',
      this.options,
    );
    if (r.code === 2) {
      // "Unsupported, treated as success" (the exec protocol): an op whose
      // answer gc needs cannot succeed without one.
      if (SUCCEED_EMPTY.has(op)) return undefined;
      throw new UnsupportedError(`mail script does not support ${op}`, {
        details: { op, script: this.script },
      });
    }
    if (r.code !== 0) throw this.failure(op, arg, r.stdout, r.stderr, r.code);
    const text = r.stdout.trim();
    if (!text) return undefined;
    try {
      return JSON.parse(text) as unknown;
    } catch (e) {
      throw new GcError(
        'internal',
        `mail script ${op}: output is not JSON (${errorMessage(e)}): ${text.slice(0, 200)}`,
      );
    }
  }

  private failure(op: string, arg: string, stdout: string, stderr: string, code: number | null) {
    let described: { code?: string; message?: string; details?: Record<string, unknown> } = {};
    try {
      described = (JSON.parse(stdout) as { error?: typeof described }).error ?? {};
    } catch {
      // not JSON: use stderr
    }
    const message = (described.message ?? stderr.trim()) || `exit status ${code}`;
    const c = described.code as ErrorCode | undefined;
    if (c === 'not_found' || /not found/i.test(message)) {
      return new NotFoundError('message', arg, { details: { op } });
    }
    if (/inbox .*full/i.test(message)) {
      const d = described.details ?? {};
      return new InboxFullError(arg, Number(d.unread ?? 0), Number(d.limit ?? 0));
    }
    if (/already archived/i.test(message)) {
      return new ConflictError(`message ${arg} is already archived`, { details: { id: arg } });
    }
    if (c && CODES.has(c)) return new GcError(c, `mail script ${op}: ${message}`);
    return new GcError('internal', `mail script ${op} ${arg} failed: ${message}`, {
      details: { op, exit: code },
    });
  }

  private async one(op: string, id: string): Promise<Message> {
    const v = await this.call(op, checkId(id));
    // A marking op may print nothing (or not be supported): the message as it is now.
    if (v === undefined && MARKING.has(op)) return this.get(id);
    return asMessage(v, op);
  }

  private async list(op: string, arg: string): Promise<Message[]> {
    const v = await this.call(op, arg);
    // Empty output is an empty list.
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw new GcError('internal', `mail script ${op}: expected an array`);
    return v.map((m) => asMessage(m, op));
  }

  async send(from: string, to: string, input: SendInput): Promise<Message> {
    checkSend(from, to, input);
    return asMessage(
      await this.call('send', to, {
        from,
        subject: (input.subject ?? '').trim() || '(no subject)',
        body: input.body,
        ...(input.priority !== undefined ? { priority: input.priority } : {}),
        ...(input.cc?.length ? { cc: input.cc } : {}),
      }),
      'send',
    );
  }

  async inbox(recipient: string, p: MailPage = {}): Promise<Page<Message>> {
    checkMailName(recipient, 'recipient');
    if (p.limit === undefined) {
      return { items: await this.list('inbox', recipient), next_cursor: null };
    }
    // Mark only what this call returns.
    const unread = await this.list('check', recipient);
    const items: Message[] = [];
    for (const m of unread.slice(0, p.limit)) items.push(await this.markRead(m.id));
    return { items, next_cursor: unread.length > p.limit ? 'inbox' : null };
  }

  async check(recipient: string, p: MailPage = {}): Promise<Page<Message>> {
    checkMailName(recipient, 'recipient');
    return page(await this.list('check', recipient), p);
  }

  async all(recipient: string, p: MailPage = {}): Promise<Page<Message>> {
    checkMailName(recipient, 'recipient');
    return page(await this.list('all', recipient), p);
  }

  get(id: string): Promise<Message> {
    return this.one('get', id);
  }

  read(id: string): Promise<Message> {
    return this.one('read', id);
  }

  markRead(id: string): Promise<Message> {
    return this.one('mark-read', id);
  }

  markUnread(id: string): Promise<Message> {
    return this.one('mark-unread', id);
  }

  async reply(
    id: string,
    from: string,
    input: Omit<SendInput, 'subject'> & { subject?: string },
  ): Promise<Message> {
    checkId(id);
    checkSend(from, 'reply', input);
    return asMessage(
      await this.call('reply', id, {
        from,
        body: input.body,
        ...(input.subject !== undefined ? { subject: input.subject } : {}),
        ...(input.priority !== undefined ? { priority: input.priority } : {}),
      }),
      'reply',
    );
  }

  async thread(id: string): Promise<Message[]> {
    return this.list('thread', checkId(id));
  }

  archive(id: string): Promise<Message> {
    return this.one('archive', id);
  }

  async delete(id: string): Promise<void> {
    await this.call('delete', checkId(id));
  }

  async count(recipient: string): Promise<MailCount> {
    checkMailName(recipient, 'recipient');
    const v = (await this.call('count', recipient)) as Partial<MailCount> | null;
    if (!v || typeof v.total !== 'number' || typeof v.unread !== 'number') {
      throw new GcError('internal', 'mail script count: expected {total, unread}');
    }
    return { total: v.total, unread: v.unread };
  }
}
