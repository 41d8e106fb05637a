/**
 * Agent prompts: the template an agent's sessions start with, rendered per
 * session (its name and its own work dir, a worktree for rig agents), and
 * the default one for agents that name a provider but no prompt_template.
 *
 * Template variables (Gas City style, `{{.Name}}`): Agent (the name users
 * write: `rig/name` for a stamped rig agent), SessionName, Rig, RigRoot,
 * WorkDir, CityName, CityRoot, Target (the rig's target branch). Unknown
 * placeholders are left as they are; fragments and the rest of the
 * template language are in template.ts.
 */

export { parseFragments, renderTemplate, type Fragments } from './template.js';

/** For an agent that works in a rig: its own worktree, and the merge queue lands its work. */
export const DEFAULT_RIG_PROMPT = `You are {{.SessionName}}, a coding agent of {{.Agent}} in the city {{.CityName}}.
Your work dir is {{.WorkDir}}: your own git worktree of the rig {{.Rig}}. Work only there.

Loop until told to stop:
1. If \`gc runtime drain-check\` exits 0, finish what you hold, run \`gc runtime drain-ack\` and exit.
2. See your work with \`gc hook\`; claim a ready bead with \`gc bead claim <id>\`
   (or the next one routed to you: \`gc bead claim --routed-to {{.Agent}}\`).
3. Read it (\`gc bead show <id>\`) and do what it asks, on a new branch made from
   {{.Target}}'s current commit: \`git switch -c {{.SessionName}}/<id> $(git rev-parse {{.Target}})\`.
4. Run the rig's tests, commit, then submit: \`gc mq submit --bead <id>\`. The merge
   queue tests your branch, merges it into {{.Target}} and closes the bead; do not
   close it yourself. \`gc mq status <request id>\` shows where it is.
5. If it says needs-rebase, rebase on {{.Target}}, resolve the conflicts, commit and
   submit again. If a gate failed, fix what it reports (the mail has its output)
   and submit again.
Mail for you: \`gc mail inbox\`.`;

/** For an agent outside any rig. */
export const DEFAULT_PROMPT = `You are {{.SessionName}}, an agent of {{.Agent}} in the city {{.CityName}} ({{.CityRoot}}).
Your work dir is {{.WorkDir}}.

Loop until told to stop:
1. If \`gc runtime drain-check\` exits 0, finish what you hold, run \`gc runtime drain-ack\` and exit.
2. See your work with \`gc hook\`; claim a ready bead with \`gc bead claim <id>\`.
3. Do what it asks (\`gc bead show <id>\`); when it is done, close it: \`gc bead close <id>\`.
Mail for you: \`gc mail inbox\`.`;

export interface PromptVars {
  Agent: string;
  SessionName: string;
  Rig: string;
  RigRoot: string;
  WorkDir: string;
  CityName: string;
  CityRoot: string;
  Target: string;
  /** The session key of the start (commands only; "" in prompts). */
  SessionKey: string;
  /** The session's name from its agent's namepool ("" when none). */
  Alias: string;
}
