import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MemoryStore, SqliteStore } from '../store/index.js';
import { runMailConformance } from './conformance.js';
import { StoreMail } from './store-mail.js';
import { ExecMail } from './exec.js';

runMailConformance('store (memory)', () =>
  Promise.resolve({
    mail: new StoreMail(new MemoryStore({ prefix: 'ml' }), { maxUnread: 5 }),
    maxUnread: 5,
  }),
);

runMailConformance('store (sqlite)', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gc-mail-'));
  const store = new SqliteStore({ path: path.join(dir, 'beads.db'), prefix: 'ml' });
  return {
    mail: new StoreMail(store, { maxUnread: 6 }),
    maxUnread: 6,
    close: async () => {
      await store.dispose();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

const script = path.resolve(import.meta.dirname, '..', '..', 'examples', 'mail', 'file-mail.mjs');
runMailConformance('exec (examples/mail/file-mail.mjs)', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gc-execmail-'));
  return {
    mail: new ExecMail(script, { env: { GC_MAIL_DIR: dir, GC_MAIL_MAX_UNREAD: '6' } }),
    maxUnread: 6,
    close: () => rm(dir, { recursive: true, force: true }),
  };
});
