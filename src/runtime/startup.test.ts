import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { prepareWorkDir } from './startup.js';

const root = mkdtempSync(path.join(tmpdir(), 'gc-startup-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function files(dir: string, entries: Record<string, string>): string {
  for (const [f, text] of Object.entries(entries)) {
    mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    writeFileSync(path.join(dir, f), text);
  }
  return dir;
}

describe('prepareWorkDir', () => {
  it('copies overlay_dir into the work dir without overwriting what is there', async () => {
    const overlay = files(path.join(root, 'overlay'), {
      'CLAUDE.md': 'from the overlay',
      '.claude/settings.json': '{"overlay":true}',
      'notes/new.md': 'new',
    });
    const work = files(path.join(root, 'work'), {
      'CLAUDE.md': 'the agent edited this',
      'notes/keep.md': 'keep',
    });
    await prepareWorkDir({ work_dir: work, overlay_dir: overlay });
    const read = (f: string) => readFileSync(path.join(work, f), 'utf8');
    expect(read('CLAUDE.md')).toBe('the agent edited this');
    expect(read('.claude/settings.json')).toBe('{"overlay":true}');
    expect(read('notes/new.md')).toBe('new');
    expect(read('notes/keep.md')).toBe('keep');
    // A missing overlay is nothing to copy; a missing work dir is an error.
    await prepareWorkDir({ work_dir: work, overlay_dir: path.join(root, 'none') });
    await expect(prepareWorkDir({ work_dir: path.join(root, 'gone') })).rejects.toThrow(
      /not a directory/,
    );
  });
});
