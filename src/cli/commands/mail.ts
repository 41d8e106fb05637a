/**
 * `gc mail ...`: send, inbox, check, read, reply, thread, mark-read,
 * mark-unread, archive, delete, count. Through the running server when
 * there is one (agents always, with their own token: they read only their
 * own mail and send as themselves); on the city files otherwise.
 */
import { readFile } from 'node:fs/promises';
import { ValidationError, errorMessage } from '../../core/index.js';
import type { Message } from '../../mail/index.js';
import { withCity, type GlobalOptions } from '../context.js';
import { clip, printJson, printLine, table } from '../output.js';

export interface SendOptions {
  subject?: string;
  message?: string;
  file?: string;
  priority?: string;
  cc?: string;
  notify?: boolean;
}

async function bodyOf(o: { message?: string; file?: string }): Promise<string> {
  if (o.message !== undefined && o.file !== undefined) {
    throw new ValidationError('give the body with -m or --file, not both', { where: 'body' });
  }
  if (o.file === '-') {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin as AsyncIterable<Buffer>) chunks.push(c);
    return Buffer.concat(chunks).toString('utf8');
  }
  if (o.file !== undefined) {
    try {
      return await readFile(o.file, 'utf8');
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : errorMessage(e);
      throw new ValidationError(`cannot read ${o.file}: ${why}`, {
        where: '--file',
        fix: 'give a readable file, or - for standard input',
      });
    }
  }
  return o.message ?? '';
}

function priorityOf(p: string | undefined): number | undefined {
  if (p === undefined) return undefined;
  const n = Number(p);
  if (!Number.isInteger(n) || n < 0 || n > 4) {
    throw new ValidationError('must be 0..4', { where: '--priority' });
  }
  return n;
}

function list(g: GlobalOptions, items: Message[], empty: string): void {
  if (g.json) {
    printJson(items);
    return;
  }
  if (!items.length) {
    printLine(empty);
    return;
  }
  printLine(
    table(
      ['ID', 'FROM', 'TO', 'SUBJECT', 'READ', 'SENT'],
      items.map((m) => [
        m.id,
        m.from,
        m.to,
        clip(m.subject, 50),
        m.read ? 'yes' : 'no',
        m.created_at.slice(0, 19).replace('T', ' '),
      ]),
    ),
  );
}

function show(g: GlobalOptions, m: Message): void {
  if (g.json) {
    printJson(m);
    return;
  }
  printLine(`${m.id}  from ${m.from} to ${m.to}  ${m.created_at}`);
  printLine(`Subject: ${m.subject}`);
  if (m.reply_to) printLine(`In reply to: ${m.reply_to} (thread ${m.thread_id})`);
  printLine();
  printLine(m.body);
}

export async function send(g: GlobalOptions, rawTo: string, o: SendOptions): Promise<void> {
  const { agentRef } = await import('../names.js');
  const to = await agentRef(g, rawTo);
  const body = await bodyOf(o);
  const priority = priorityOf(o.priority);
  await withCity(g, 'mail send', async (city) => {
    const m = await city.sendMail(to, {
      subject: o.subject ?? '',
      body,
      ...(priority !== undefined ? { priority } : {}),
      ...(o.cc ? { cc: o.cc.split(',').filter(Boolean) } : {}),
      ...(o.notify ? { notify: true } : {}),
    });
    for (const w of m.warnings ?? []) process.stderr.write(`gc: warning: ${w}\n`);
    if (g.json) printJson(m);
    else {
      printLine(`sent ${m.id} to ${m.to}`);
      if (o.notify) {
        printLine(
          m.notified.length
            ? `nudged ${m.notified.join(', ')}`
            : `no live session of ${m.to} to nudge; it waits in the inbox`,
        );
      }
    }
  });
}

/** The mailbox named by NAME or --agent (RIG/AGENT resolved), or undefined: the caller's own. */
async function mailbox(
  g: GlobalOptions,
  positional: string | undefined,
  flag: string | undefined,
): Promise<string | undefined> {
  const { agentRef, oneName } = await import('../names.js');
  return agentRef(g, oneName(positional, flag, '--agent'));
}

export async function inbox(
  g: GlobalOptions,
  opts: { agent?: string; limit?: string; peek?: boolean },
  name?: string,
): Promise<void> {
  const agent = await mailbox(g, name, opts.agent);
  const o = { ...opts, ...(agent !== undefined ? { agent } : {}) };
  const limit = o.limit !== undefined ? Number(o.limit) : undefined;
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) {
    throw new ValidationError('must be a whole number >= 1', { where: '--limit' });
  }
  await withCity(g, 'mail inbox', async (city) => {
    const page = o.peek
      ? await city.mailCheck(o.agent, limit !== undefined ? { limit } : {})
      : await city.mailInbox(o.agent, limit);
    if (g.json) {
      printJson(page.items);
      return;
    }
    if (!page.items.length) {
      printLine('no unread mail');
      return;
    }
    for (const m of page.items) {
      show(g, m);
      printLine('---');
    }
    if (page.next_cursor) printLine('more unread mail: run gc mail inbox again');
  });
}

export async function check(
  g: GlobalOptions,
  o: { agent?: string; inject?: boolean },
  name?: string,
): Promise<void> {
  const agent = await mailbox(g, name, o.agent);
  await withCity(
    g,
    'mail check',
    async (city) => {
      const page = await city.mailCheck(agent);
      if (o.inject && !g.json) {
        // For an agent's hook: its unread mail as context, nothing when none.
        if (page.items.length) printLine(injectText(page.items, Boolean(page.next_cursor)));
        return;
      }
      list(g, page.items, 'no unread mail');
    },
    { readonly: true },
  );
}

/** Unread mail as one block an agent's hook adds to its context (nothing is marked read). */
export function injectText(items: readonly Message[], more: boolean): string {
  const lines = [`<gc-mail unread="${items.length}${more ? '+' : ''}">`];
  for (const m of items) {
    lines.push(`--- ${m.id} from ${m.from}${m.subject ? `: ${m.subject}` : ''}`);
    lines.push(m.body);
  }
  lines.push(
    more
      ? 'More unread mail waits: `gc mail inbox` reads it.'
      : 'Reply with `gc mail reply <id> -m ...`; `gc mail read <id>` marks one read.',
  );
  lines.push('</gc-mail>');
  return lines.join('\n');
}

export async function all(g: GlobalOptions, o: { agent?: string; cursor?: string }): Promise<void> {
  const agent = await mailbox(g, undefined, o.agent);
  await withCity(
    g,
    'mail all',
    async (city) => {
      const page = await city.mailAll(agent, o.cursor ? { cursor: o.cursor } : {});
      list(g, page.items, 'mailbox empty');
      if (!g.json && page.next_cursor) printLine(`more: --cursor ${page.next_cursor}`);
    },
    { readonly: true },
  );
}

export async function count(g: GlobalOptions, o: { agent?: string }): Promise<void> {
  const agent = await mailbox(g, undefined, o.agent);
  await withCity(
    g,
    'mail count',
    async (city) => {
      const c = await city.mailCount(agent);
      if (g.json) printJson(c);
      else printLine(`${c.unread} unread of ${c.total}`);
    },
    { readonly: true },
  );
}

export async function peek(g: GlobalOptions, id: string): Promise<void> {
  await withCity(g, 'mail peek', async (city) => show(g, await city.getMail(id)));
}

export async function read(g: GlobalOptions, id: string): Promise<void> {
  await withCity(g, 'mail read', async (city) => show(g, await city.readMail(id)));
}

export async function reply(g: GlobalOptions, id: string, o: SendOptions): Promise<void> {
  const body = await bodyOf(o);
  const priority = priorityOf(o.priority);
  await withCity(g, 'mail reply', async (city) => {
    const m = await city.replyMail(id, {
      body,
      ...(o.subject !== undefined ? { subject: o.subject } : {}),
      ...(priority !== undefined ? { priority } : {}),
      ...(o.notify ? { notify: true } : {}),
    });
    if (g.json) printJson(m);
    else printLine(`replied ${m.id} to ${m.to} (thread ${m.thread_id})`);
  });
}

export async function thread(g: GlobalOptions, id: string): Promise<void> {
  await withCity(
    g,
    'mail thread',
    async (city) => {
      const items = await city.mailThread(id);
      if (g.json) {
        printJson(items);
        return;
      }
      for (const m of items) {
        show(g, m);
        printLine('---');
      }
    },
    { readonly: true },
  );
}

type Change = 'mark-read' | 'mark-unread' | 'archive' | 'delete';

export async function change(g: GlobalOptions, what: Change, ids: string[]): Promise<void> {
  await withCity(g, `mail ${what}`, async (city) => {
    const out: unknown[] = [];
    for (const id of ids) {
      if (what === 'mark-read') out.push(await city.markMailRead(id));
      else if (what === 'mark-unread') out.push(await city.markMailUnread(id));
      else if (what === 'archive') out.push(await city.archiveMail(id));
      else {
        await city.deleteMail(id);
        out.push({ id, deleted: true });
      }
      if (!g.json) printLine(`${id}: ${what === 'delete' ? 'deleted' : what.replace('-', ' ')}`);
    }
    if (g.json) printJson(out);
  });
}
