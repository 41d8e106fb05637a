/**
 * The exec mail protocol details real scripts depend on: empty output is an
 * empty list, marking ops may print nothing, exit 2 is "unsupported,
 * treated as success" where gc can do without an answer, and a bare script
 * name is found on PATH.
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveScript, UnsupportedError } from '../core/index.js';
import { ExecMail } from './exec.js';

let dir = '';
let script = '';
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'gc-mailproto-'));
  script = path.join(dir, 'terse-mail');
  // A script in the style of many real ones: says only what it must.
  await writeFile(
    script,
    `#!/bin/sh
op=$1; arg=$2
case "$op" in
  get) printf '{"id":"%s","to":"w-1","from":"h","subject":"s","body":"b","read":false}\\n' "$arg" ;;
  mark-read|mark-unread|delete) cat >/dev/null ;;
  archive|all|thread|send) exit 2 ;;
  inbox|check) ;;
  count) echo '{"total":0,"unread":0}' ;;
  *) echo "no such op $op" >&2; exit 1 ;;
esac
`,
  );
  await chmod(script, 0o755);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('exec mail protocol', () => {
  it('empty output is an empty list; ops that print nothing or answer exit 2 succeed where they can', async () => {
    const mail = new ExecMail(script);
    expect((await mail.inbox('w-1')).items).toEqual([]);
    expect((await mail.check('w-1')).items).toEqual([]);
    expect((await mail.all('w-1')).items).toEqual([]); // exit 2
    expect(await mail.thread('m-1')).toEqual([]); // exit 2
    expect((await mail.markRead('m-1')).id).toBe('m-1'); // printed nothing: gc asks get
    expect((await mail.markUnread('m-1')).id).toBe('m-1');
    expect((await mail.archive('m-1')).id).toBe('m-1'); // exit 2
    await mail.delete('m-1');
    // gc cannot make up a sent message.
    await expect(mail.send('h', 'w-1', { subject: 's', body: 'b' })).rejects.toBeInstanceOf(
      UnsupportedError,
    );
  });

  it('a bare script name is the city root file when there is one, else found on PATH', () => {
    const root = path.join(dir, 'city');
    expect(resolveScript('terse-mail', root, `/nonexistent:${dir}`)).toBe(script);
    expect(resolveScript('./terse-mail', root, dir)).toBe(path.join(root, 'terse-mail'));
    expect(resolveScript('terse-mail', dir, '')).toBe(script);
    expect(resolveScript('no-such-script', root, dir)).toBe(path.join(root, 'no-such-script'));
  });
});
