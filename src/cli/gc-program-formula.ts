/** `gc formula list|show|cook`: the city's formulas (Gas City's workflow templates). */
import type { Command } from 'commander';
import type { TreeHelpers } from './gc-program-city.js';
import { action } from './run.js';

export function addFormulaCommands(program: Command, { g, json }: TreeHelpers): void {
  const cmds = async () => import('./commands/formula.js');
  const formula = program
    .command('formula')
    .description("the city's formulas: formulas/ of its packs and its own folder");
  json(
    formula
      .command('list')
      .description('every formula: name, steps, where it comes from, what it shadows'),
  ).action(action(async (_o: unknown, cmd: Command) => (await cmds()).list(g(cmd))));
  const collect = (v: string, prev: string[] = []): string[] => [...prev, v];
  json(
    formula
      .command('show <name>')
      .description('the compiled molecule: its root and each step bead, with needs')
      .option(
        '--var <key=value>',
        'a variable (repeatable); any var makes the check strict',
        collect,
      ),
  ).action(
    action(async (name: string, o: { var?: string[] }, cmd: Command) =>
      (await cmds()).show(g(cmd), name, o.var ?? []),
    ),
  );
  json(
    formula
      .command('cook <name>')
      .description(
        'pour the formula as a molecule (root and step beads in one transaction), routed nowhere',
      )
      .option('--var <key=value>', 'a variable (repeatable); checked strictly', collect)
      .option(
        '--on <bead>',
        'the bead the molecule works on (var issue; it closes with the molecule)',
      )
      .option('-t, --title <title>', "the root's title")
      .option('--wisp [ttl]', 'a wisp: deleted this long after it completes (default 1h)'),
  ).action(
    action(
      async (
        name: string,
        o: { var?: string[]; on?: string; title?: string; wisp?: string | boolean },
        cmd: Command,
      ) => (await cmds()).cook(g(cmd), name, o),
    ),
  );
}
