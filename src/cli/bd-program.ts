/**
 * The command tree of `bd`: the beads command forms that agent prompts already use, mapped onto
 * the same city client as `gc bead`. Only the common forms are accepted;
 * anything else is a usage error (exit 2) naming the gc equivalent.
 */
import { Command } from 'commander';
import type * as BeadCommands from './commands/beads.js';
import type { GlobalOptions } from './context.js';
import { action } from './run.js';
import { GC_VERSION } from '../core/index.js';

/** Every command and option; handlers load their modules only when run. */
export function bdProgram(): Command {
  const program = new Command('bd')
    .description('beads work tracker (Gas City compatible subset; see `gc bead --help`)')
    .version(GC_VERSION)
    .option('--city <dir>', 'city root')
    .option('--actor <name>', 'act as this identity')
    .showHelpAfterError('(run with --help for usage)');

  const g = (cmd: Command): GlobalOptions => cmd.optsWithGlobals<GlobalOptions>();
  const collect = (v: string, prev: string[] = []): string[] => [...prev, v];
  const beads = async (): Promise<typeof BeadCommands> => import('./commands/beads.js');

  program
    .command('create <title>')
    .description('create an issue')
    .option('-t, --type <type>', 'issue type', 'task')
    .option('-p, --priority <n>', 'priority 0-4')
    .option('-d, --description <text>', 'description')
    .option('--parent <id>', 'parent issue')
    .option('--deps <ids>', 'dependencies, comma-separated (type:id allowed)')
    .option('-l, --labels <labels>', 'labels, comma-separated', collect)
    .option('-a, --assignee <name>', 'assignee')
    .option('--json', 'JSON output')
    .action(
      action(
        async (
          title: string,
          o: Record<string, string | string[] | boolean | undefined>,
          cmd: Command,
        ) => {
          const b = await beads();
          const needs = b.splitList(o.deps as string | undefined);
          const labels = b.splitList(o.labels as string[] | undefined);
          await b.createBead(g(cmd), {
            title,
            type: o.type as string,
            ...(o.priority !== undefined ? { priority: o.priority as string } : {}),
            ...(o.description !== undefined ? { description: o.description as string } : {}),
            ...(o.parent ? { parent: o.parent as string } : {}),
            ...(needs ? { needs } : {}),
            ...(labels ? { labels } : {}),
            ...(o.assignee ? { assignee: o.assignee as string } : {}),
          });
        },
      ),
    );

  program
    .command('show <ids...>')
    .description('show issues')
    .option('--json', 'JSON output')
    .action(
      action(async (ids: string[], _o: unknown, cmd: Command) =>
        (await beads()).showBeads(g(cmd), ids),
      ),
    );

  program
    .command('list')
    .description('list issues (default: not closed, work only)')
    .option('-s, --status <status>', 'status', collect)
    .option('-a, --assignee <name>', 'assignee')
    .option('-t, --type <type>', 'type')
    .option('--all-types', 'mail and other infrastructure records too')
    .option('-l, --label <label>', 'label')
    .option('--all', 'include closed')
    .option('-n, --limit <n>', 'limit')
    .option('--flat', 'one row per issue, no hierarchy (the only form this list prints)')
    .option('--json', 'JSON output')
    .action(
      action(async (o: BeadCommands.ListArgs, cmd: Command) =>
        (await beads()).listBeads(g(cmd), o),
      ),
    );

  program
    .command('ready')
    .description('ready work')
    .option('-a, --assignee <name>', 'assignee')
    .option('--unassigned', 'only issues nobody is assigned')
    .option('-t, --type <type>', 'type')
    .option('-l, --label <label>', 'label')
    .option('--metadata-field <key=value>', 'with this metadata (repeatable)', collect)
    .option('-n, --limit <n>', 'limit')
    .option('--json', 'JSON output')
    .action(
      action(async (o: BeadCommands.ReadyArgs, cmd: Command) =>
        (await beads()).readyBeads(g(cmd), o),
      ),
    );

  program
    .command('update <id>')
    .description('update an issue')
    .option('--claim', 'claim it (atomic; fails if someone else holds it)')
    .option('-s, --status <status>', 'status')
    .option('-a, --assignee <name>', 'assignee')
    .option('-p, --priority <n>', 'priority')
    .option('--title <title>', 'title')
    .option('-d, --description <text>', 'description')
    .option('--set-metadata <key=value>', 'metadata (repeatable)', collect)
    .option('--add-label <label>', 'label (repeatable)', collect)
    .option('--remove-label <label>', 'remove label (repeatable)', collect)
    .option('--json', 'JSON output')
    .action(
      action(async (id: string, o: BeadCommands.UpdateArgs, cmd: Command) =>
        (await beads()).updateBead(g(cmd), id, o),
      ),
    );

  program
    .command('close <ids...>')
    .description('close issues')
    .option('-r, --reason <text>', 'reason')
    .option('--json', 'JSON output')
    .action(
      action(async (ids: string[], o: { reason?: string }, cmd: Command) =>
        (await beads()).closeBeads(g(cmd), ids, o),
      ),
    );

  const dep = program
    .command('dep')
    .description('dependencies: add|remove|list, or `bd dep A --blocks B` (B waits for A)')
    .argument('[blocker]', 'with --blocks: the issue that must close first')
    .option('--blocks <issue>', 'the issue that waits for BLOCKER')
    .option('--json', 'JSON output')
    .action(
      action(async (blocker: string | undefined, o: { blocks?: string }, cmd: Command) => {
        if (blocker === undefined || o.blocks === undefined) {
          const { ValidationError } = await import('../core/index.js');
          throw new ValidationError(
            'expected `bd dep A --blocks B`, or one of: add, remove, list (see bd dep --help)',
            { where: 'dep' },
          );
        }
        await (await beads()).depAdd(g(cmd), o.blocks, blocker, { type: 'blocks' });
      }),
    );
  dep
    .command('add <issue> <depends-on>')
    .option('-t, --type <type>', 'dependency type', 'blocks')
    .option('--json', 'JSON output')
    .action(
      action(async (a: string, b: string, o: { type?: string }, cmd: Command) =>
        (await beads()).depAdd(g(cmd), a, b, o),
      ),
    );
  dep
    .command('remove <issue> <depends-on>')
    .option('--json', 'JSON output')
    .action(
      action(async (a: string, b: string, _o: unknown, cmd: Command) =>
        (await beads()).depRemove(g(cmd), a, b),
      ),
    );
  dep
    .command('list <id>')
    .option('--direction <dir>', 'down (default) or up', 'down')
    .option('--json', 'JSON output')
    .action(
      action(async (id: string, o: { direction?: string }, cmd: Command) => {
        if (o.direction !== 'up' && o.direction !== 'down') {
          const { ValidationError } = await import('../core/index.js');
          throw new ValidationError(`expected down or up, got ${JSON.stringify(o.direction)}`, {
            where: '--direction',
          });
        }
        await (await beads()).depList(g(cmd), id, { up: o.direction === 'up' });
      }),
    );

  const label = program.command('label').description('labels of an issue');
  for (const [op, what] of [
    ['add', 'add a label (idempotent)'],
    ['remove', 'remove a label (idempotent)'],
  ] as const) {
    label
      .command(`${op} <id> <label>`)
      .description(what)
      .option('--json', 'JSON output')
      .action(
        action(async (id: string, name: string, _o: unknown, cmd: Command) =>
          (await beads()).updateBead(
            g(cmd),
            id,
            op === 'add' ? { addLabel: [name] } : { removeLabel: [name] },
          ),
        ),
      );
  }

  return program;
}
