/**
 * The command tree of `gc`: the Gas City command line. Commands are registered here; their
 * handlers are imported only when run, so an agent's `gc` call pays for
 * what it uses.
 */
import { Command } from 'commander';
import { addCompletion } from './completion.js';
import { addCityCommands } from './gc-program-city.js';
import { addFormulaCommands } from './gc-program-formula.js';
import { addOrderCommands } from './gc-program-order.js';
import { addWatchCommands } from './gc-program-watch.js';
import type * as BeadCommands from './commands/beads.js';
import type * as BuildImage from './commands/build-image.js';
import type * as ConfigCommands from './commands/config.js';
import type * as DemoCommands from './commands/demo.js';
import type * as EventCommands from './commands/events.js';
import type { SlingArgs } from './commands/work.js';
import type { GlobalOptions } from './context.js';
import { action } from './run.js';
import { GC_VERSION } from '../core/index.js';

/** Every command and option; handlers load their modules only when run. */
export function gcProgram(): Command {
  const program = new Command('gc')
    .description('Gas City: run fleets of AI coding agents against your repositories')
    .version(GC_VERSION)
    .option('--city <dir>', 'city root (default: $GC_CITY_ROOT or the nearest city.toml)')
    .option(
      '--actor <name>',
      'act as this identity (default: $GC_SESSION_NAME, $GC_AGENT, $BD_ACTOR, $USER)',
    )
    .showHelpAfterError('(run with --help for usage)');

  const g = (cmd: Command): GlobalOptions => cmd.optsWithGlobals<GlobalOptions>();
  const json = (c: Command): Command => c.option('--json', 'print JSON on stdout');
  const collect = (v: string, prev: string[] = []): string[] => [...prev, v];
  const cities = async () => import('./commands/cities.js');

  program
    .command('init [dir]')
    .description(
      'create a working city in dir (default: here): city.toml, .gc/, pack.toml, a coordinating agent (agents/mayor/), formulas/, orders/; registered machine-wide',
    )
    .option('--name <name>', 'city name (default: the directory name)')
    .option(
      '--from <dir>',
      "start from a city (copied without its .gc/ state) or a pack (the new city's own pack)",
    )
    .option(
      '--provider <name>',
      'agent CLI of the coordinator: claude (default), codex, gemini, opencode, generic',
    )
    .option('--start', 'start the city at the end without asking')
    .option('--no-start', 'do not start it (the default when stdin is not a terminal)')
    .option('--force', 'overwrite an existing city.toml (keeps .gc/ data and other files)')
    .option('--json', 'print JSON on stdout')
    .action(
      action(async (dir: string | undefined, o: ConfigCommands.InitArgs, cmd: Command) => {
        const { init } = await import('./commands/config.js');
        await init(g(cmd), dir, o);
      }),
    );

  json(
    program
      .command('build-image')
      .description(
        'write the Docker build context of the agent and controller images with gc and this city baked in (Kubernetes)',
      )
      .option('--out <dir>', 'where the context goes (default .gc/image)')
      .option('--tag <tag>', 'agent image tag (default gc-agent:latest)')
      .option('--controller-tag <tag>', 'controller image tag (default gc-controller:latest)')
      .option('--city-path <path>', 'where the city lives in the images (default /city)')
      .option('--base <image>', 'base image with Node 20 (default node:20-bookworm-slim)')
      .option('--build', 'also run docker build (needs docker)'),
  ).action(
    action(async (o: BuildImage.BuildImageArgs, cmd: Command) =>
      (await import('./commands/build-image.js')).buildImage(g(cmd), o),
    ),
  );
  json(
    program
      .command('cities')
      .description('the cities registered on this machine, with their rigs (gc register adds one)'),
  ).action(action(async (_o: unknown, cmd: Command) => (await cities()).list(g(cmd))));
  json(
    program
      .command('register [dir]')
      .description(
        'record the city at dir (default: this city) and its rigs in the machine-wide registry, so gc run in a rig directory finds it',
      ),
  ).action(
    action(async (dir: string | undefined, _o: unknown, cmd: Command) =>
      (await cities()).register(g(cmd), dir),
    ),
  );
  json(
    program
      .command('unregister [city]')
      .description(
        'remove a city (its directory or registered name; default: this city) from the registry',
      ),
  ).action(
    action(async (target: string | undefined, _o: unknown, cmd: Command) =>
      (await cities()).unregister(g(cmd), target),
    ),
  );

  const config = program.command('config').description('inspect city.toml');
  json(config.command('validate').description('check city.toml; exit 2 when invalid')).action(
    action(async (_o: unknown, cmd: Command) =>
      (await import('./commands/config.js')).validate(g(cmd)),
    ),
  );
  json(
    config.command('show').description('print the effective config and where each value came from'),
  ).action(
    action(async (_o: unknown, cmd: Command) =>
      (await import('./commands/config.js')).show(g(cmd)),
    ),
  );
  json(
    config
      .command('explain <agent>')
      .description(
        'show how one agent was composed: its layers (pack, patches, [global], named session, rig) and where each field came from',
      ),
  ).action(
    action(async (agent: string, _o: unknown, cmd: Command) =>
      (await import('./commands/config.js')).explain(g(cmd), agent),
    ),
  );

  const pack = program.command('pack').description('packs the city composes');
  json(
    pack
      .command('fetch')
      .description(
        'pin every remote pack (git) the city names in packs.lock and cache its checkout, so loading the city needs no network',
      )
      .option('--update', "move each pin to its ref's (or default branch's) newest commit"),
  ).action(
    action(async (o: { update?: boolean }, cmd: Command) =>
      (await import('./commands/pack.js')).fetchPacks(g(cmd), o),
    ),
  );

  const bead = program.command('bead').description('work items (beads)');
  const beads = async (): Promise<typeof BeadCommands> => import('./commands/beads.js');

  json(
    bead
      .command('create <title>')
      .description('create a bead')
      .option('-t, --type <type>', 'bead type (task, bug, feature, epic, ...)', 'task')
      .option('-p, --priority <n>', 'priority 0 (highest) to 4')
      .option('-d, --description <text>', 'description')
      .option('--parent <id>', 'parent bead')
      .option('--needs <ids...>', 'dependencies: id or type:id (blocks by default)')
      .option('-l, --label <label>', 'label (repeatable, or comma-separated)', collect)
      .option('--meta <key=value>', 'metadata (repeatable)', collect)
      .option('--assignee <name>', 'assign to')
      .option('--routed-to <agent>', 'route to an agent or pool (sets gc.routed_to)'),
  ).action(
    action(async (title: string, o: Record<string, unknown>, cmd: Command) => {
      const b = await beads();
      await b.createBead(g(cmd), {
        title,
        ...(o as object),
        ...(o.label ? { labels: b.splitList(o.label as string[]) ?? [] } : {}),
        ...(o.needs ? { needs: b.splitList(o.needs as string[]) ?? [] } : {}),
      });
    }),
  );

  json(bead.command('show <ids...>').description('show beads')).action(
    action(async (ids: string[], _o: unknown, cmd: Command) =>
      (await beads()).showBeads(g(cmd), ids),
    ),
  );

  json(
    bead
      .command('list')
      .description(
        'list work beads (default: not closed; mail and other records with --type or --all-types)',
      )
      .option('-s, --status <status>', 'open, in_progress, closed (repeatable)', collect)
      .option('-a, --assignee <name>', 'assigned to')
      .option('-t, --type <type>', 'of type (message: mail)')
      .option('--all-types', 'mail, sessions and other infrastructure records too')
      .option('-l, --label <label>', 'with label')
      .option('--parent <id>', 'children of')
      .option('--meta <key=value>', 'metadata equals (repeatable)', collect)
      .option('--all', 'every bead, any status')
      .option('-n, --limit <n>', 'page size (default 100, max 1000)')
      .option('--cursor <cursor>', 'continue from a previous page'),
  ).action(
    action(async (o: BeadCommands.ListArgs, cmd: Command) => (await beads()).listBeads(g(cmd), o)),
  );

  const readyOptions = (c: Command): Command =>
    c
      .option('-a, --assignee <name>', 'assigned to')
      .option('--unassigned', 'only unassigned')
      .option('-t, --type <type>', 'of type')
      .option('-l, --label <label>', 'with label')
      .option('--routed-to <agent>', 'routed to an agent or pool')
      .option('--metadata-field <key=value>', 'with this metadata (repeatable)', collect)
      .option('-n, --limit <n>', 'page size (default 100)')
      .option('--cursor <cursor>', 'continue from a previous page');

  json(
    readyOptions(bead.command('ready').description('ready work: open, unblocked, by priority')),
  ).action(
    action(async (o: BeadCommands.ReadyArgs, cmd: Command) =>
      (await beads()).readyBeads(g(cmd), o),
    ),
  );

  json(
    bead
      .command('update <id>')
      .description('change fields (absent options change nothing)')
      .option('--title <title>', 'title')
      .option('-s, --status <status>', 'open, in_progress, closed')
      .option('-p, --priority <n>', 'priority 0-4')
      .option('--assignee <name>', 'assignee ("" to clear)')
      .option('-d, --description <text>', 'description')
      .option('-t, --type <type>', 'type')
      .option('--parent <id>', 'parent ("" to clear)')
      .option('--add-label <label>', 'add label (repeatable)', collect)
      .option('--remove-label <label>', 'remove label (repeatable)', collect)
      .option('--set-metadata <key=value>', 'set metadata (repeatable)', collect)
      .option('--claim', 'claim it for yourself first'),
  ).action(
    action(async (id: string, o: BeadCommands.UpdateArgs, cmd: Command) =>
      (await beads()).updateBead(g(cmd), id, o),
    ),
  );

  json(
    readyOptions(
      bead
        .command('claim [id]')
        .description('claim a bead for yourself (atomic); without an id, the next ready one')
        .option('--lease <duration>', 'claim lease (default [beads] claim_lease)')
        .option(
          '--wait <s>',
          'without an id: wait up to s seconds (at most 30) for work instead of answering none',
        ),
    ),
  ).action(
    action(
      async (
        id: string | undefined,
        o: BeadCommands.ReadyArgs & { lease?: string; wait?: string },
        cmd: Command,
      ) => (await beads()).claimBead(g(cmd), id, o),
    ),
  );

  json(
    bead
      .command('unclaim <id>')
      .description('return a claimed bead to open')
      .option('--force', 'release even if another actor holds it'),
  ).action(
    action(async (id: string, o: { force?: boolean }, cmd: Command) =>
      (await beads()).unclaimBead(g(cmd), id, o),
    ),
  );

  json(
    bead
      .command('close <ids...>')
      .description('close beads (idempotent)')
      .option('-r, --reason <text>', 'why'),
  ).action(
    action(async (ids: string[], o: { reason?: string }, cmd: Command) =>
      (await beads()).closeBeads(g(cmd), ids, o),
    ),
  );

  const dep = bead.command('dep').description('dependencies between beads');
  json(
    dep
      .command('add <issue> <depends-on>')
      .description('issue depends on depends-on')
      .option('-t, --type <type>', 'blocks, waits-for, related, ...', 'blocks'),
  ).action(
    action(async (a: string, b: string, o: { type?: string }, cmd: Command) =>
      (await beads()).depAdd(g(cmd), a, b, o),
    ),
  );
  json(
    dep.command('remove <issue> <depends-on>').description('remove a dependency (idempotent)'),
  ).action(
    action(async (a: string, b: string, _o: unknown, cmd: Command) =>
      (await beads()).depRemove(g(cmd), a, b),
    ),
  );
  json(
    dep
      .command('list <id>')
      .description('what id depends on (--up: what depends on id)')
      .option('--up', 'dependents instead'),
  ).action(
    action(async (id: string, o: { up?: boolean }, cmd: Command) =>
      (await beads()).depList(g(cmd), id, o),
    ),
  );

  json(
    program
      .command('events')
      .description('the event log (NDJSON with --json --follow)')
      .option('--type <type>', 'event type, or prefix* (repeatable)', collect)
      .option('--actor <name>', 'by actor')
      .option('--since <when>', 'a duration ago (10m) or an RFC 3339 time')
      .option('--after <seq>', 'events after this seq')
      .option('--last <n>', 'only the last n events')
      .option('-n, --limit <n>', 'page size (default 1000)')
      .option('-f, --follow', 'stream new events until interrupted')
      .option(
        '--no-reconnect',
        'with --follow: exit (status 1) when the server goes away, instead of waiting for it and resuming',
      ),
  ).action(
    action(async (o: EventCommands.EventsArgs, cmd: Command) =>
      (await import('./commands/events.js')).events(g(cmd), o),
    ),
  );
  const event = program.command('event').description('record events of your own');
  json(
    event
      .command('emit <type>')
      .description("record an event as yourself (a type of your own, not one of gc's)")
      .option('--subject <s>', 'what it is about (a bead, a rig, ...)')
      .option('-m, --message <text>', 'one line for people')
      .option('--payload <json>', 'a JSON value'),
  ).action(
    action(async (type: string, o: EventCommands.EmitArgs, cmd: Command) =>
      (await import('./commands/events.js')).emit(g(cmd), type, o),
    ),
  );

  // ---- the city server ----
  const city = async () => import('./commands/city.js');
  json(
    program
      .command('start')
      .description('start the city server in the background (sessions, controller, API)')
      .option('--foreground', 'run the server in this process (for systemd, Kubernetes)')
      .option(
        '--api-only',
        'with [database] url: a server that serves the API and never leads (see docs/deploy.md)',
      )
      .option('--port <port>', 'the TCP port of this server (overrides [api] port)'),
  ).action(
    action(async (o: { foreground?: boolean; apiOnly?: boolean; port?: string }, cmd: Command) =>
      (await city()).start(g(cmd), o),
    ),
  );
  json(
    program.command('stop').description('stop the city gracefully (sessions get shutdown_timeout)'),
  ).action(action(async (_o: unknown, cmd: Command) => (await city()).stop(g(cmd))));
  json(program.command('restart').description('stop, then start the city')).action(
    action(async (_o: unknown, cmd: Command) => (await city()).restart(g(cmd))),
  );
  json(
    program
      .command('status')
      .description(
        'the city: server, session counts, pools, beads, and the sessions needing attention',
      )
      .option('--all', 'list every session (paged from the server)'),
  ).action(action(async (o: { all?: boolean }, cmd: Command) => (await city()).status(g(cmd), o)));
  for (const [name, what] of [
    ['suspend', 'stop starting sessions (running ones are drained by the controller)'],
    ['resume', 'undo suspend'],
    ['reload', 'reload city.toml now (it is also watched)'],
    ['poke', 'run a controller tick now'],
  ] as const) {
    json(program.command(name).description(what)).action(
      action(async (_o: unknown, cmd: Command) => (await city()).control(g(cmd), name)),
    );
  }

  json(
    program
      .command('demo')
      .description(
        'a working city in a temp dir: a rig, a pool of scripted coding agents, a merge queue, beads',
      )
      .option('--agents <n>', 'coding agents in the pool (default 8)')
      .option('--beads <m>', 'beads to do (default 30); every third waits for the one before')
      .option('--provider <p>', 'tmux or subprocess (default: tmux when installed)')
      .option('--agent <cli>', 'scripted (default), or an agent CLI preset: claude, codex, ...')
      .option('--keep', 'leave the city running at the end (stop it with gc stop)')
      .option('--clean', 'remove the demo city at the end, once the summary is printed')
      .option('--dir <dir>', 'make the city in dir/city (default: a new temp dir)')
      .option('--timeout <s>', 'give up after this many seconds (default 600)')
      .option('--work-seconds <s>', 'how long a scripted agent "codes" per bead (default 1)'),
  ).action(
    action(async (o: DemoCommands.DemoArgs, cmd: Command) =>
      (await import('./commands/demo.js')).demo(g(cmd), o),
    ),
  );

  // ---- work routing and the agent side ----
  const work = async () => import('./commands/work.js');
  json(
    program
      .command('sling <target> <bead-or-text-or-formula>')
      .description(
        'route work to an agent or pool (sets gc.routed_to) in its own convoy and wake it: a bead id, text that becomes a new bead, or with --formula a formula poured as a molecule whose steps go to the target',
      )
      .option('--nudge', 'also nudge the live sessions of the agent')
      .option('--text', 'file the second argument as a new bead even if it looks like an id')
      .option('-f, --formula', 'the second argument is a formula: pour it as a molecule')
      .option('--no-formula', "route the bead alone, without the target's default_sling_formula")
      .option(
        '--on <bead-or-formula>',
        'with --formula: the bead the molecule works on (var issue; it closes with the molecule); without: a formula to pour on the bead',
      )
      .option('--var <key=value>', 'a formula variable (repeatable)', collect)
      .option('-t, --title <title>', "the molecule root's title")
      .option('--wisp [ttl]', 'a wisp: deleted this long after it completes (default 1h)')
      .option('--no-convoy', 'no auto-convoy (sling-<bead>, or over the molecule root)')
      .option('--owned', 'the auto-convoy is owned: never closed by itself'),
  ).action(
    action(async (agent: string, what: string, o: SlingArgs, cmd: Command) =>
      (await work()).sling(g(cmd), agent, what, o),
    ),
  );
  // Never reached from the command line: gc.ts hands `gc bd ...` to bd (bd-pass.ts).
  program
    .command('bd')
    .description('the bd beads commands: gc bd ARGS is bd ARGS (gc bd --help lists them)')
    .allowUnknownOption()
    .argument('[args...]')
    .action(
      action(async (args: string[], _o: unknown, cmd: Command) => {
        const { bdProgram } = await import('./bd-program.js');
        const { runProgram } = await import('./run.js');
        const o = g(cmd);
        await runProgram('bd', bdProgram(), [
          'node',
          'bd',
          ...(o.city ? ['--city', o.city] : []),
          ...(o.actor ? ['--actor', o.actor] : []),
          ...args,
        ]);
      }),
    );
  json(program.command('version').description('the version of gc')).action(
    action(async (_o: unknown, cmd: Command) => {
      const { printJson, printLine } = await import('./output.js');
      if (g(cmd).json) printJson({ version: GC_VERSION });
      else printLine(`gc ${GC_VERSION}`);
    }),
  );
  json(
    program
      .command('hook')
      .description("the caller's current work: its claims, else ready beads routed to it")
      .option('--inject', 'wrap the text for agent hooks')
      .option('--agent <name>', 'agent whose routed work to show (default: $GC_AGENT)'),
  ).action(
    action(async (o: { inject?: boolean; agent?: string }, cmd: Command) =>
      (await work()).hook(g(cmd), o),
    ),
  );
  json(
    program
      .command('prime [agent]')
      .description(
        "print the agent's rendered prompt (AGENT or RIG/AGENT; the default prompt when it has none)",
      )
      .option('--agent <name>', 'agent (default: $GC_AGENT)'),
  ).action(
    action(async (agent: string | undefined, o: { agent?: string }, cmd: Command) =>
      (await work()).prime(g(cmd), o, agent),
    ),
  );
  const runtime = program
    .command('runtime')
    .description(
      'the controller protocol: the agent side (drain-check, drain-ack, request-restart) and the operator side (drain, undrain)',
    );
  for (const [name, what] of [
    ['drain-check', 'exit 0 when this session is asked to wind down, 1 otherwise'],
    ['drain-ack', 'tell the controller this session has wound down'],
    ['request-restart', 'ask the controller to restart this session'],
  ] as const) {
    json(runtime.command(name).description(what)).action(
      action(async (_o: unknown, cmd: Command) => (await work()).runtime(g(cmd), name)),
    );
  }
  for (const [verb, what, on] of [
    [
      'drain',
      'ask a session to wind down (the operator side): it stops on drain-ack or at its drain_timeout, then starts again if still wanted',
      true,
    ],
    ['undrain', 'cancel a drain not yet done', false],
  ] as const) {
    json(runtime.command(`${verb} <session>`).description(what)).action(
      action(async (session: string, _o: unknown, cmd: Command) =>
        (await import('./commands/sessions.js')).drain(g(cmd), session, on),
      ),
    );
  }

  addCityCommands(program, { g, json });
  addFormulaCommands(program, { g, json });
  addOrderCommands(program, { g, json });
  addWatchCommands(program, { g, json });
  addCompletion(program, 'gc');
  return program;
}
