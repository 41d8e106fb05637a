/**
 * Shell completion from the command tree: the bash script, run in a real
 * bash, completes commands and options through `gc __complete`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO, gcBuilt } from './helpers/cli.js';

const bin = mkdtempSync(path.join(tmpdir(), 'gc-completion-'));
afterAll(() => rmSync(bin, { recursive: true, force: true }));
writeFileSync(
  path.join(bin, 'gc'),
  `#!/bin/sh\nexec '${process.execPath}' '${path.join(REPO, 'dist', 'cli', 'gc.js')}' "$@"\n`,
  { mode: 0o755 },
);

/** What bash offers after `line` (the last word is the one being completed). */
function bashComplete(line: string): string[] {
  const words = line.split(' ');
  const script = [
    'eval "$(gc completion bash)"',
    `COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')})`,
    `COMP_CWORD=${words.length - 1}`,
    '_gc_complete',
    'printf "%s\\n" "${COMPREPLY[@]}"',
  ].join('\n');
  return execFileSync('bash', ['-c', script], {
    encoding: 'utf8',
    env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` },
  })
    .split('\n')
    .filter(Boolean);
}

describe('gc completion', () => {
  it('bash completes commands, subcommands and options from the tree', () => {
    expect(bashComplete('gc be')).toEqual(['bead']);
    expect(bashComplete('gc bead cl').sort()).toEqual(['claim', 'close']);
    expect(bashComplete('gc mq status x --w')).toEqual(['--wait']);
    // The hidden command is not offered.
    expect(bashComplete('gc __')).toEqual([]);
  });

  it('prints zsh and fish scripts; another shell is a usage error', async () => {
    const zsh = await gcBuilt(['completion', 'zsh']);
    expect(zsh.stdout).toMatch(/^#compdef gc/);
    const fish = await gcBuilt(['completion', 'fish']);
    expect(fish.stdout).toContain("complete -c gc -f -a '(gc __complete");
    const bad = await gcBuilt(['completion', 'tcsh']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/shell: expected bash, zsh or fish/);
  });
});
