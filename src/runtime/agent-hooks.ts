/**
 * install_agent_hooks: the hook settings an agent CLI reads from its work
 * dir, so each session is told its current work and its mail without
 * anyone typing it in. For `claude` (Claude Code), `.claude/settings.local.json`
 * (Claude Code's own place for settings not meant to be committed):
 *
 *   SessionStart      gc hook --inject; gc mail check --inject
 *                     (and, after a compaction, gc prime: the role prompt again)
 *   UserPromptSubmit  gc mail check --inject
 *
 * An existing file is kept: gc's hooks are added to it where missing,
 * nothing of its own is removed. Commands run with the session's PATH,
 * which holds gc.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GcError } from '../core/index.js';

interface HookGroup {
  matcher?: string;
  hooks: { type: 'command'; command: string }[];
}

const cmd = (command: string) => ({ type: 'command' as const, command });

const CLAUDE_HOOKS: Record<string, HookGroup[]> = {
  SessionStart: [
    {
      matcher: 'startup|resume|clear',
      hooks: [cmd('gc hook --inject'), cmd('gc mail check --inject')],
    },
    { matcher: 'compact', hooks: [cmd('gc prime'), cmd('gc hook --inject')] },
  ],
  UserPromptSubmit: [{ hooks: [cmd('gc mail check --inject')] }],
};

/** `settings` with gc's hook groups added where an identical group is not already there. */
export function mergeClaudeHooks(settings: Record<string, unknown>): Record<string, unknown> {
  const hooks =
    settings.hooks && typeof settings.hooks === 'object' && !Array.isArray(settings.hooks)
      ? { ...(settings.hooks as Record<string, unknown>) }
      : {};
  for (const [event, groups] of Object.entries(CLAUDE_HOOKS)) {
    const have = Array.isArray(hooks[event]) ? [...(hooks[event] as unknown[])] : [];
    const seen = new Set(have.map((g) => JSON.stringify(g)));
    for (const g of groups) if (!seen.has(JSON.stringify(g))) have.push(g);
    hooks[event] = have;
  }
  return { ...settings, hooks };
}

/** Install the hooks of each named agent CLI into `workDir`. */
export async function installAgentHooks(
  workDir: string,
  providers: readonly string[],
): Promise<void> {
  if (!providers.includes('claude')) return;
  const file = path.join(workDir, '.claude', 'settings.local.json');
  let settings: Record<string, unknown> = {};
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text !== undefined && text.trim()) {
    try {
      const v = JSON.parse(text) as unknown;
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
      settings = v as Record<string, unknown>;
    } catch (e) {
      throw new GcError('invalid', `cannot add agent hooks to ${file}: ${(e as Error).message}`, {
        fix: 'fix or remove the file, or drop "claude" from install_agent_hooks',
      });
    }
  }
  const merged = `${JSON.stringify(mergeClaudeHooks(settings), null, 2)}\n`;
  if (merged === text) return;
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, merged);
  await rename(tmp, file);
}
