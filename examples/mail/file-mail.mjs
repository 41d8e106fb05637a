#!/usr/bin/env node
// Reference mail script for gc's exec mail protocol ([mail] provider =
// "exec:examples/mail/file-mail.mjs"). Keeps every message in one JSON file
// under $GC_MAIL_DIR (default ./.gc/mail), guarded by a lock directory so
// concurrent calls do not lose writes. $GC_MAIL_MAX_UNREAD bounds each
// inbox (0 or unset = no bound). Node only, no dependencies.
//
// Usage: file-mail.mjs <op> <arg>   (payload for send/reply on stdin)
import { mkdirSync, readFileSync, renameSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const [op, arg] = process.argv.slice(2);
const dir = process.env.GC_MAIL_DIR || path.join(process.cwd(), '.gc', 'mail');
const file = path.join(dir, 'mail.json');
const lock = path.join(dir, 'lock');
const maxUnread = Number(process.env.GC_MAIL_MAX_UNREAD || 0);

class Failure {
  constructor(code, message, details = {}) {
    this.error = { code, message, details };
  }
}

function fail(code, message, details) {
  throw new Failure(code, message, details);
}

function sleep(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function withLock(fn) {
  mkdirSync(dir, { recursive: true });
  for (let i = 0; ; i++) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // A lock older than 10 s belongs to a dead call.
      try {
        if (Date.now() - statSync(lock).mtimeMs > 10_000) rmdirSync(lock);
      } catch {
        // someone else removed it first
      }
      if (i > 2000) fail('unavailable', 'mail lock busy');
      sleep(5);
    }
  }
  try {
    let db = { next: 1, messages: [] };
    try {
      db = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      // no mail yet
    }
    const out = fn(db);
    const tmp = `${file}.${process.pid}`;
    writeFileSync(tmp, JSON.stringify(db));
    renameSync(tmp, file);
    return out;
  } finally {
    rmdirSync(lock);
  }
}

function input() {
  try {
    return JSON.parse(readFileSync(0, 'utf8') || '{}');
  } catch {
    fail('invalid', 'stdin is not JSON');
  }
}

function find(db, id) {
  const m = db.messages.find((x) => x.id === id);
  if (!m) fail('not_found', `message not found: ${id}`);
  return m;
}

function deliver(db, from, to, payload, thread) {
  const unread = db.messages.filter((m) => m.to === to && !m.read && !m.archived).length;
  if (maxUnread > 0 && unread >= maxUnread) {
    fail('conflict', `inbox of ${to} is full`, { unread, limit: maxUnread });
  }
  const id = `fm-${db.next++}`;
  const m = {
    id,
    from,
    to,
    subject: payload.subject || '(no subject)',
    body: payload.body ?? '',
    created_at: new Date().toISOString(),
    read: false,
    archived: false,
    thread_id: thread ? thread.root : id,
    reply_to: thread ? thread.replyTo : '',
    priority: payload.priority ?? 2,
    cc: payload.cc ?? [],
  };
  db.messages.push(m);
  return m;
}

const mailbox = (db, who, unreadOnly) =>
  db.messages.filter((m) => m.to === who && !m.archived && (!unreadOnly || !m.read));

const ops = {
  send: (db) => {
    const p = input();
    return deliver(db, p.from, arg, p);
  },
  inbox: (db) =>
    mailbox(db, arg, true).map((m) => {
      m.read = true;
      return m;
    }),
  check: (db) => mailbox(db, arg, true),
  all: (db) => mailbox(db, arg, false),
  get: (db) => find(db, arg),
  read: (db) => Object.assign(find(db, arg), { read: true }),
  'mark-read': (db) => Object.assign(find(db, arg), { read: true }),
  'mark-unread': (db) => Object.assign(find(db, arg), { read: false }),
  reply: (db) => {
    const p = input();
    const orig = find(db, arg);
    const subject =
      p.subject ?? (/^re:/i.test(orig.subject) ? orig.subject : `Re: ${orig.subject}`);
    return deliver(
      db,
      p.from,
      orig.from,
      { ...p, subject },
      {
        root: orig.thread_id,
        replyTo: orig.id,
      },
    );
  },
  thread: (db) => {
    const root = find(db, arg).thread_id;
    return db.messages.filter((m) => m.thread_id === root);
  },
  archive: (db) => {
    const m = find(db, arg);
    if (m.archived) fail('conflict', `message ${arg} is already archived`);
    m.archived = true;
    return m;
  },
  delete: (db) => {
    find(db, arg);
    db.messages = db.messages.filter((m) => m.id !== arg);
    return undefined;
  },
  count: (db) => {
    const box = mailbox(db, arg, false);
    return { total: box.length, unread: box.filter((m) => !m.read).length };
  },
};

if (!Object.hasOwn(ops, op ?? '')) process.exit(2);
try {
  const result = withLock(ops[op]);
  if (result !== undefined) process.stdout.write(JSON.stringify(result));
} catch (e) {
  if (!(e instanceof Failure)) throw e;
  process.stdout.write(JSON.stringify(e));
  process.exit(1);
}
