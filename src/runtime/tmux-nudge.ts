/**
 * Typing a nudge into tmux sessions: one line as literal keys then Enter,
 * several lines as one paste (bracketed when the agent asked for it) then
 * Enter. A fan-out to many sessions is a few tmux calls (command
 * sequences), each session nudged exactly once.
 */
import { randomBytes } from 'node:crypto';
import { tmuxArg } from './tmux-args.js';
import { sequences, type TmuxClient } from './tmux-client.js';

/** What a sequence prints after each session it nudged. */
const DONE = 'gc-nudged ';

function bufferName(): string {
  return `gc-nudge-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** The commands that type `text` (validated) into session `name`. */
function typeCommands(name: string, text: string, buffer: string | undefined): string[] {
  const target = `=${name}:`;
  const keys = buffer
    ? ['paste-buffer', '-p', '-b', buffer, '-t', target]
    : ['send-keys', '-t', target, '-l', '--', tmuxArg(text)];
  return [...keys, ';', 'send-keys', '-t', target, 'Enter'];
}

/** Nudge one session (one tmux call); a missing session is a no-op. */
export async function nudgeOne(client: TmuxClient, name: string, text: string): Promise<void> {
  if (!text.includes('\n')) {
    await client.run(typeCommands(name, text, undefined));
    return;
  }
  const buffer = bufferName();
  // The paste deletes the buffer (-d); loaded from stdin, never from argv.
  const cmds = typeCommands(name, text, buffer);
  cmds.splice(1, 0, '-d');
  await client.run(['load-buffer', '-b', buffer, '-', ';', ...cmds], text);
}

/**
 * Nudge every live session of `names` with `text` (validated), in command
 * sequences. tmux ends a sequence at its first failing command (a session
 * that went away meanwhile), so every session's commands are followed by a
 * marker line: the sessions after the failing one, and only those, are
 * sent again. A session is never nudged twice.
 */
export async function nudgeMany(
  client: TmuxClient,
  names: readonly string[],
  text: string,
): Promise<void> {
  let left = [...(await client.panePids(names)).keys()];
  if (!left.length) return;
  const buffer = text.includes('\n') ? bufferName() : undefined;
  const prefix = buffer ? ['load-buffer', '-b', buffer, '-'] : [];
  const perSession = (n: string) => [
    ...typeCommands(n, text, buffer),
    ';',
    'display-message',
    '-p',
    `${DONE}${n}`,
  ];
  try {
    for (let round = 0; left.length && round < 3; round++) {
      const again: string[] = [];
      for (const seq of sequences(left, perSession, prefix)) {
        const r = await client.run(seq.args, buffer ? text : undefined);
        if (r.code === 0) continue;
        const done = new Set(
          r.stdout
            .split('\n')
            .filter((l) => l.startsWith(DONE))
            .map((l) => l.slice(DONE.length)),
        );
        const failed = seq.items.findIndex((n) => !done.has(n));
        // The failing session is skipped (gone, as nudge does); the rest never ran.
        if (failed >= 0) again.push(...seq.items.slice(failed + 1));
      }
      left = again;
    }
  } finally {
    if (buffer) await client.run(['delete-buffer', '-b', buffer]);
  }
}
