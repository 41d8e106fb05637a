/**
 * The start config of a session: the JSON object the exec protocol passes on
 * stdin to `start`, and what every provider's `start` takes. snake_case, all
 * fields optional, unknown fields ignored (forward compatibility).
 */
import { z } from 'zod';
import { ValidationError } from '../core/index.js';

/** A dialog shown at start-up and the keys that dismiss it. Ours, not Gas City's. */
export const startupDialogSchema = z.object({
  /** Substring of the session output that identifies the dialog. */
  match: z.string().min(1),
  /** Keys sent (as with send-keys) to dismiss it. */
  keys: z.array(z.string().min(1)).min(1),
});

export const startConfigSchema = z.looseObject({
  work_dir: z.string().optional(),
  command: z.string().optional(),
  env: z.record(z.string(), z.string()).optional(),
  process_names: z.array(z.string()).optional(),
  nudge: z.string().optional(),
  ready_prompt_prefix: z.string().optional(),
  ready_delay_ms: z.number().int().nonnegative().optional(),
  pre_start: z.array(z.string()).optional(),
  session_setup: z.array(z.string()).optional(),
  session_setup_script: z.string().optional(),
  session_live: z.array(z.string()).optional(),
  overlay_dir: z.string().optional(),
  copy_files: z.array(z.object({ src: z.string(), rel_dst: z.string() })).optional(),
  /** Agent CLIs whose hook settings are installed in the work dir (agent-hooks.ts). */
  agent_hooks: z.array(z.string()).optional(),
  startup_dialogs: z.array(startupDialogSchema).optional(),
});

export type StartupDialog = z.infer<typeof startupDialogSchema>;
export type StartConfig = z.infer<typeof startConfigSchema>;

/** Validate a start config from an untrusted source (API, script, file). */
export function parseStartConfig(input: unknown, where = 'start config'): StartConfig {
  const r = startConfigSchema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const path = issue?.path.length ? `.${issue.path.join('.')}` : '';
  throw new ValidationError(issue?.message ?? 'invalid', { where: `${where}${path}` });
}
