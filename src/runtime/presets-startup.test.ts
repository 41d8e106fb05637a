/**
 * Each agent preset against a stand-in for its CLI on PATH, in real tmux:
 * the stand-in shows the start-up screens the preset knows (alone, together,
 * none) and one it does not, checks the keys it is answered with, then shows
 * its ready screen and records what it is told. A known screen must end in a
 * ready session; an unknown one in a ready session (presets that have no
 * ready prompt cannot tell) or a failure whose message quotes the screen.
 */
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBase36 } from '../core/index.js';
import { until } from '../../test/helpers/wait.js';
import { mergePreset, presetStartConfig } from './presets.js';
import { TmuxProvider } from './tmux.js';

/** One stand-in for every CLI: it acts by the name it was called as. */
const STAND_IN = `#!/bin/sh
me=$(basename "$0")
out="$STANDIN_DIR/$me-$STANDIN_ID"
printf '%s\\n' "$*" > "$out.args"
for screen in $(echo "$STANDIN_SCREENS" | tr ',' ' '); do
  want=enter
  case "$screen" in
    claude-trust)
      printf '\\033[1mDo you trust the files in this folder?\\033[0m\\n 1. Yes, proceed\\n 2. No, exit\\n';;
    claude-bypass)
      printf 'WARNING: Claude Code running in Bypass Permissions mode\\n 1. No, exit\\n 2. Yes, I accept\\n'
      want=down;;
    codex-allow)
      printf 'Since this folder is version controlled, you may wish to allow Codex to work in this folder without asking for approval.\\n';;
    codex-trust)
      printf 'Do you trust the contents of this directory? Working with untrusted contents comes with higher risk.\\n';;
    gemini-trust)
      printf 'Do you trust this folder?\\n 1. Trust folder\\n 2. Do not trust\\n';;
    unknown)
      printf 'Choose a colour theme for this terminal\\n 1. Dark\\n 2. Light\\n';;
  esac
  IFS= read -r answer
  case "$want:$answer" in
    enter:) ;;
    down:*'[B'*) ;;
    *) echo "wrong answer to $screen"; sleep 1; exit 3;;
  esac
  echo "$screen answered" >> "$out.answered"
done
if [ "$me" = claude ]; then printf '\\342\\235\\257 '; else echo "ready for work"; fi
while IFS= read -r line; do echo "$line" >> "$out.said"; done
`;

const CLIS = ['claude', 'codex', 'gemini', 'opencode'] as const;

interface Case {
  preset: (typeof CLIS)[number] | 'generic';
  screens: string[];
  /** The start fails, its message quoting this text of the screen. */
  fails?: string;
}

const CASES: Case[] = [
  { preset: 'claude', screens: [] },
  { preset: 'claude', screens: ['claude-trust'] },
  { preset: 'claude', screens: ['claude-bypass'] },
  { preset: 'claude', screens: ['claude-trust', 'claude-bypass'] },
  { preset: 'claude', screens: ['unknown'], fails: 'Choose a colour theme for this terminal' },
  { preset: 'codex', screens: [] },
  { preset: 'codex', screens: ['codex-allow'] },
  { preset: 'codex', screens: ['codex-trust'] },
  { preset: 'codex', screens: ['unknown'] },
  { preset: 'gemini', screens: [] },
  { preset: 'gemini', screens: ['gemini-trust'] },
  { preset: 'gemini', screens: ['unknown'] },
  { preset: 'opencode', screens: [] },
  { preset: 'opencode', screens: ['unknown'] },
];

describe('agent presets start their CLIs (stand-ins on PATH, real tmux)', () => {
  let dir: string;
  let bin: string;
  let tmux: TmuxProvider;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'gc-presets-'));
    bin = path.join(dir, 'bin');
    await mkdir(bin);
    for (const cli of CLIS) {
      await writeFile(path.join(bin, cli), STAND_IN);
      await chmod(path.join(bin, cli), 0o755);
    }
    tmux = new TmuxProvider({
      socket: `gc-test-${randomBase36(8)}`,
      stateDir: path.join(dir, 'state'),
      stopGraceMs: 300,
    });
  });
  afterAll(async () => {
    await tmux.killServer();
    await rm(dir, { recursive: true, force: true });
  });

  const read = (file: string) => readFile(path.join(dir, file), 'utf8').catch(() => '');

  for (const [n, c] of CASES.entries()) {
    const shown = c.screens.join(' then ') || 'no start-up screen';
    const outcome = c.fails ? 'fails naming the screen' : 'becomes ready';
    it.concurrent(`${c.preset}: ${shown}: ${outcome}`, async () => {
      const name = `p${n}-${c.preset}`;
      const id = String(n);
      const config = presetStartConfig(mergePreset(c.preset), {
        prompt: 'first task',
        base: {
          work_dir: dir,
          env: {
            PATH: `${bin}:${process.env.PATH ?? ''}`,
            STANDIN_DIR: dir,
            STANDIN_ID: id,
            STANDIN_SCREENS: c.screens.join(','),
          },
        },
      });
      const deadline = Date.now() + (c.fails ? 4000 : 30_000);
      const err = await tmux.start(name, config, { deadline }).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      try {
        if (c.fails) {
          expect(err?.message).toMatch(/did not show its ready prompt .* at the start deadline/);
          expect(err?.message).toContain(c.fails);
          expect(await tmux.isRunning(name)).toBe(false);
          return;
        }
        expect(err).toBeUndefined();
        // Each known screen answered once, with the keys it wants.
        const known = c.screens.filter((s) => s !== 'unknown');
        expect((await read(`${c.preset}-${id}.answered`)).split('\n').filter(Boolean)).toEqual(
          known.map((s) => `${s} answered`),
        );
        // The first prompt reached the CLI the way the preset passes it.
        const args = await read(`${c.preset}-${id}.args`);
        expect(args).toContain('first task');
        if (c.screens.includes('unknown')) {
          // No ready prompt to wait for: ready by the quiet period, the
          // unknown screen still up (visible in peek).
          expect(await tmux.peek(name, 50)).toContain('Choose a colour theme');
        } else {
          expect(await tmux.peek(name, 50)).toMatch(/\u276f|ready for work/);
        }
      } finally {
        await tmux.stop(name);
      }
    });
  }

  it.concurrent('generic: a plain shell is ready at once and takes the first nudge', async () => {
    const name = 'p-generic';
    const config = presetStartConfig(mergePreset('generic'), {
      prompt: `echo said-$((20+22)) > ${path.join(dir, 'generic.said')}`,
      base: { work_dir: dir },
    });
    await tmux.start(name, config, { deadline: Date.now() + 10_000 });
    try {
      await until(
        'the first nudge to run in the shell',
        () => read('generic.said'),
        (s) => s.includes('said-42'),
      );
    } finally {
      await tmux.stop(name);
    }
  });
});
