/**
 * Agent-written text with terminal control sequences (ESC, OSC, a lone C1
 * CSI) is shown to humans with the controls made visible; `--json` keeps it
 * exact. And a nudge refuses C1 controls as it refuses C0 ones.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { printable } from '../../src/core/index.js';
import { validateNudgeText } from '../../src/runtime/index.js';
import { gc } from '../helpers/cli.js';

const EVIL = 'fix \x1b]0;owned\x07 the \x1b[2J bug \u009b31m now';
let root: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'gc-ctl-'));
  await writeFile(path.join(root, 'city.toml'), '[workspace]\nname = "ctl"\n');
});
afterAll(() => rm(root, { recursive: true, force: true }));

// eslint-disable-next-line no-control-regex -- looking for raw controls is the point
const raw = /[\u001b\u0007\u009b]/;

describe('control characters in human output', () => {
  it('bead, mail and event views show them escaped; --json stays exact', async () => {
    const made = await gc([
      '--city',
      root,
      'bead',
      'create',
      EVIL,
      '-d',
      `line one\n${EVIL}`,
      '--json',
    ]);
    expect(made.code, made.stderr).toBe(0);
    const id = (JSON.parse(made.stdout) as { id: string; title: string }).id;
    expect((JSON.parse(made.stdout) as { title: string }).title).toBe(EVIL);
    const sent = await gc(['--city', root, 'mail', 'send', 'mayor', '-s', EVIL, '-m', EVIL]);
    expect(sent.code, sent.stderr).toBe(0);
    for (const args of [
      ['bead', 'show', id],
      ['bead', 'list'],
      ['events'],
      ['mail', 'inbox', '--agent', 'mayor'],
    ]) {
      const r = await gc(['--city', root, ...args]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      expect(raw.test(r.stdout), args.join(' ')).toBe(false);
      expect(r.stdout, args.join(' ')).toContain('\\x1b');
    }
    const json = await gc(['--city', root, 'bead', 'show', id, '--json']);
    expect(json.stdout).toContain(JSON.stringify(EVIL));
  });

  it('printable keeps tab and newline, escapes C0, DEL and C1', () => {
    expect(printable('a\tb\nc')).toBe('a\tb\nc');
    expect(printable('\x1b[0m\x7f\u0085\u009b')).toBe('\\x1b[0m\\x7f\\x85\\x9b');
  });

  it('nudges refuse C1 controls', () => {
    expect(() => validateNudgeText('hello \u009b2J')).toThrow(/control character 0x9b/);
    expect(validateNudgeText('tab\tand\nnewline')).toBe('tab\tand\nnewline');
  });
});
