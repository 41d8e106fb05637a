/**
 * `gc mail` end to end, the same script run twice: on the city files (no
 * server) and through a running city server. The CLI must behave the same
 * either way.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CityServer } from '../src/server/index.js';
import { CONFIG_HOME, gcBuilt } from './helpers/cli.js';

for (const mode of ['local', 'server'] as const) {
  describe(`gc mail (${mode})`, () => {
    let root = '';
    let server: CityServer | undefined;
    const gc = async (args: string[], actor = 'mayor') => {
      const r = await gcBuilt(['--city', root, '--actor', actor, ...args]);
      return r;
    };
    const json = async <T>(args: string[], actor?: string): Promise<T> => {
      const r = await gc([...args, '--json'], actor);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      return JSON.parse(r.stdout) as T;
    };

    beforeAll(async () => {
      process.env.GC_CONFIG_HOME = CONFIG_HOME;
      root = await mkdtemp(path.join(os.tmpdir(), `gc-mailcli-${mode}-`));
      await writeFile(
        path.join(root, 'city.toml'),
        `[workspace]\nname = "mail-${mode}"\n[daemon]\npatrol_interval = "1h"\n[mail]\nmax_unread = 3\n`,
      );
      if (mode === 'server') {
        server = await CityServer.start({ root, sessionProvider: 'fake', log: () => undefined });
      }
    });

    afterAll(async () => {
      await server?.stop('test done');
      await rm(root, { recursive: true, force: true });
    });

    it('send, count, check, inbox, read, reply, thread, mark, archive, delete', async () => {
      type M = {
        id: string;
        from: string;
        to: string;
        subject: string;
        read: boolean;
        thread_id: string;
      };
      const sent = await json<M>(['mail', 'send', 'w-1', '-s', 'Status?', '-m', 'how is it going']);
      expect(sent).toMatchObject({ from: 'mayor', to: 'w-1', subject: 'Status?', read: false });
      expect(await json(['mail', 'count', '--agent', 'w-1'])).toEqual({ total: 1, unread: 1 });
      expect((await json<M[]>(['mail', 'check'], 'w-1')).map((m) => m.id)).toEqual([sent.id]);
      const inbox = await json<M[]>(['mail', 'inbox'], 'w-1');
      expect(inbox.map((m) => [m.id, m.read])).toEqual([[sent.id, true]]);
      expect(await json<M[]>(['mail', 'inbox'], 'w-1')).toEqual([]);
      const reply = await json<M>(['mail', 'reply', sent.id, '-m', 'half done'], 'w-1');
      expect(reply).toMatchObject({
        from: 'w-1',
        to: 'mayor',
        subject: 'Re: Status?',
        thread_id: sent.id,
      });
      const thread = await json<M[]>(['mail', 'thread', reply.id]);
      expect(thread.map((m) => m.id)).toEqual([sent.id, reply.id]);
      const text = await gc(['mail', 'read', reply.id]);
      expect(text.stdout).toContain('Subject: Re: Status?');
      expect(text.stdout).toContain('half done');
      expect((await json<M[]>(['mail', 'mark-unread', reply.id]))[0]!.read).toBe(false);
      expect((await json<M[]>(['mail', 'mark-read', reply.id]))[0]!.read).toBe(true);
      await json(['mail', 'archive', reply.id]);
      const again = await gc(['mail', 'archive', reply.id]);
      expect(again.code).toBe(4);
      expect(again.stderr).toMatch(/already archived/);
      await json(['mail', 'delete', sent.id]);
      const gone = await gc(['mail', 'read', sent.id]);
      expect(gone.code).toBe(3);
    });

    it('bad input and a full inbox fail clearly and lose nothing', async () => {
      for (let i = 0; i < 3; i++) await json(['mail', 'send', 'w-2', '-m', `${i}`]);
      const full = await gc(['mail', 'send', 'w-2', '-m', 'overflow']);
      expect(full.code).toBe(4);
      expect(full.stderr).toMatch(/inbox of w-2 is full/);
      expect(await json(['mail', 'count', '--agent', 'w-2'])).toEqual({ total: 3, unread: 3 });
      const bad = await gc(['mail', 'send', 'two words', '-m', 'x']);
      expect(bad.code).toBe(2);
      const prio = await gc(['mail', 'send', 'w-3', '-m', 'x', '-p', '9']);
      expect(prio.code).toBe(2);
      expect(prio.stderr).toMatch(/--priority/);
    });
  });
}
