/** Watching a fleet: `gc alerts`, `gc patrol`, `gc costs`, `gc cost record` and `gc dashboard`. */
import type { Command } from 'commander';
import type { TreeHelpers } from './gc-program-city.js';
import { action } from './run.js';

export function addWatchCommands(program: Command, { g, json }: TreeHelpers): void {
  json(
    program
      .command('alerts')
      .description(
        'alert rules ([[alerts]] in city.toml, or the defaults) and the alerts pending or firing now',
      ),
  ).action(
    action(async (_o: unknown, cmd: Command) =>
      (await import('./commands/alerts.js')).alerts(g(cmd)),
    ),
  );
  json(
    program
      .command('patrol')
      .description(
        'the health patrol: rigs by tier (hot, warm, cold), its last pass, and what it found with the step it took',
      ),
  ).action(
    action(async (_o: unknown, cmd: Command) =>
      (await import('./commands/patrol.js')).patrol(g(cmd)),
    ),
  );
  json(
    program
      .command('costs')
      .description('tokens and dollars spent, grouped, and the budgets (from the leader)')
      .option('--by <what>', 'group by agent, rig, bead, model, session or provider')
      .option('--since <when>', 'from this long ago (24h), an RFC 3339 time or epoch ms')
      .option('--until <when>', 'up to (same forms)')
      .option('--agent <name>', 'only this agent template')
      .option('--rig <name>', 'only this rig'),
  ).action(
    action(async (o: Record<string, string | undefined>, cmd: Command) =>
      (await import('./commands/costs.js')).costs(g(cmd), o),
    ),
  );
  json(
    program
      .command('dashboard')
      .description(
        'a one-time login link to the web dashboard (served on [api] port by the running city); it acts as your key',
      )
      .option('--role <role>', 'viewer (looks only) or operator (may act too)', 'operator')
      .option('--hours <n>', 'how long the browser session lasts (1-168)', '12')
      .option('--open', 'open it in a browser ($BROWSER, else xdg-open or open)'),
  ).action(
    action(async (o: { role?: string; hours?: string; open?: boolean }, cmd: Command) =>
      (await import('./commands/dashboard.js')).dashboard(g(cmd), o),
    ),
  );
  const cost = program.command('cost').description('usage records');
  json(
    cost
      .command('record')
      .description(
        "record usage (an agent's Stop hook); inside a session it is the session's own, and the price table gives dollars when --cost is not given",
      )
      .requiredOption('--model <model>', 'the model the tokens went to')
      .option('--input <n>', 'input tokens (not cached)', '0')
      .option('--cached-input <n>', 'cached input tokens read', '0')
      .option('--cache-write <n>', 'tokens written to a prompt cache', '0')
      .option('--output <n>', 'output tokens', '0')
      .option('--cost <usd>', 'dollars, when the CLI says')
      .option('--bead <id>', 'the bead the work was for')
      .option('--provider <name>', 'the agent CLI (claude, codex, ...)')
      .option('--id <id>', 'an id for this record: the same id twice is recorded once')
      .option('--at <when>', 'when (RFC 3339 or epoch ms; default now)')
      .option('--session <name>', 'whose (staff only; a session records its own)')
      .option('--agent <name>', 'the agent template (staff; default: the session’s)')
      .option('--rig <name>', 'the rig (staff; default: the session’s)'),
  ).action(
    action(async (o: Record<string, string | undefined>, cmd: Command) =>
      (await import('./commands/costs.js')).record(g(cmd), o),
    ),
  );
}
