/** `gc order list|show|check|run|history`: the city’s orders, Gas City’s scheduled work. */
import type { Command } from 'commander';
import type { TreeHelpers } from './gc-program-city.js';
import { action } from './run.js';

export function addOrderCommands(program: Command, { g, json }: TreeHelpers): void {
  const cmds = async () => import('./commands/order.js');
  const order = program
    .command('order')
    .description("the city's orders: orders/ of the city and of its packs (beside formulas/)");
  json(
    order.command('list').description('every order: its gate, what it runs, whether it is on'),
  ).action(action(async (_o: unknown, cmd: Command) => (await cmds()).list(g(cmd))));
  json(
    order
      .command('show <name>')
      .description('one order: its file, gate, whether it is due now and why, its recent runs')
      .option('--check', "run a condition gate's check to decide"),
  ).action(
    action(async (name: string, o: { check?: boolean }, cmd: Command) =>
      (await cmds()).show(g(cmd), name, o),
    ),
  );
  json(
    order
      .command('check')
      .description("every order's gate decision now (conditions are run; nothing fires)"),
  ).action(action(async (_o: unknown, cmd: Command) => (await cmds()).check(g(cmd))));
  json(
    order
      .command('run <name>')
      .description(
        'run an order now, whatever its gate (refused while one of its runs is open; on the leader)',
      )
      .option('--wait', 'wait for the run to end; exit 1 if it failed'),
  ).action(
    action(async (name: string, o: { wait?: boolean }, cmd: Command) =>
      (await cmds()).run(g(cmd), name, o),
    ),
  );
  json(
    order
      .command('history [name]')
      .description('past runs of one order (or all), newest first')
      .option('--limit <n>', 'at most this many (default 20)'),
  ).action(
    action(async (name: string | undefined, o: { limit?: string }, cmd: Command) =>
      (await cmds()).history(g(cmd), name, o),
    ),
  );
}
