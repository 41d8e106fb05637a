/**
 * The second half of the `gc` command tree: rigs and the merge queue, mail,
 * sessions, API keys and external agents. Like the first half
 * (gc-program.ts), handlers load their modules only when run.
 */
import type { Command } from 'commander';
import type * as ConvoyCommands from './commands/convoy.js';
import type { GlobalOptions } from './context.js';
import { action } from './run.js';

export interface TreeHelpers {
  /** The global options of a command (--city, --actor, --json). */
  g: (cmd: Command) => GlobalOptions;
  /** Add --json to a command. */
  json: (c: Command) => Command;
}

export function addCityCommands(program: Command, { g, json }: TreeHelpers): void {
  // ---- the database server ----
  const dbCmds = async () => import('./commands/db.js');
  const db = program
    .command('db')
    .description('the city database server ([database] url): schema and state');
  json(
    db.command('status').description('server, schema version, rows waiting in the outbox'),
  ).action(action(async (_o: unknown, cmd: Command) => (await dbCmds()).status(g(cmd))));
  json(
    db
      .command('migrate')
      .description('bring the schema up to date (the city server also does at start)'),
  ).action(action(async (_o: unknown, cmd: Command) => (await dbCmds()).migrateCmd(g(cmd))));
  json(
    db
      .command('copy')
      .description(
        "move a stopped city's .gc/ state (SQLite, the JSONL log, keys, runs) into an empty database, and verify it",
      )
      .option('--to <url>', 'postgres://... or mysql://... (no password here: use --to-file)')
      .option('--to-file <file>', 'a file (mode 0600) whose first line is the URL'),
  ).action(
    action(async (o: { to?: string; toFile?: string }, cmd: Command) =>
      (await dbCmds()).copyCmd(o, g(cmd)),
    ),
  );

  // ---- rigs and the merge queue ----
  json(
    program
      .command('doctor')
      .description(
        "check the city's health: config, server, sessions, store, events, worktrees, then each pack's doctor scripts; exit 0 ok, 1 warnings, 2 errors",
      )
      .option(
        '--fix',
        'repair what is safe to: prune stale worktrees, stop sessions a stopped city left running',
      )
      .option('-v, --verbose', 'details of passing checks too'),
  ).action(
    action(async (o: { fix?: boolean; verbose?: boolean }, cmd: Command) => {
      process.exitCode = await (await import('./commands/doctor.js')).doctor(g(cmd), o);
    }),
  );

  const agentCmds = async () => import('./commands/agent.js');
  const agent = program
    .command('agent')
    .description("the city's agents: city.toml, its pack, included and imported packs, rigs");
  json(
    agent
      .command('list')
      .description('every composed agent: its Gas City name, session name, rig, sessions, state'),
  ).action(action(async (_o: unknown, cmd: Command) => (await agentCmds()).list(g(cmd))));
  json(
    agent
      .command('add [name]')
      .description(
        'create an agent folder: agents/NAME/prompt.template.md (and agent.toml for keys)',
      )
      .option('--name <name>', 'agent name (Gas City form; same as NAME)')
      .option('--rig <rig>', 'the rig it works in (dir)')
      .option('--provider <preset>', 'agent CLI preset: claude, codex, gemini, ...')
      .option('--start-command <command>', 'command that starts the agent')
      .option('--prompt <text>', 'its prompt (default: a short one naming its work and mail)'),
  ).action(
    action(
      async (
        name: string | undefined,
        o: {
          name?: string;
          rig?: string;
          provider?: string;
          startCommand?: string;
          prompt?: string;
        },
        cmd: Command,
      ) => {
        const { oneName } = await import('./names.js');
        const chosen = oneName(name, o.name, '--name');
        if (!chosen) {
          const { ValidationError } = await import('../core/index.js');
          throw new ValidationError('give the agent a name', {
            where: 'NAME',
            fix: 'gc agent add NAME',
          });
        }
        await (await agentCmds()).add(g(cmd), chosen, o);
      },
    ),
  );
  for (const [verb, what, value] of [
    ['suspend', "stop the agent's sessions and start none until it is resumed", true],
    ['resume', 'let the agent run again', false],
  ] as const) {
    json(
      agent.command(`${verb} <agent>`).description(`${what} (AGENT, RIG/AGENT or BINDING.AGENT)`),
    ).action(
      action(async (name: string, _o: unknown, cmd: Command) =>
        (await agentCmds()).setSuspended(g(cmd), name, value),
      ),
    );
  }

  const rigCmds = async () => import('./commands/rig.js');
  const rig = program.command('rig').description('projects (git repositories) and their settings');
  json(
    rig
      .command('add <path-or-name> [path]')
      .description(
        'add a rig: a git repository agents work in and the merge queue merges into (gc rig add PATH [--name N], or gc rig add NAME PATH)',
      )
      .option('--name <name>', 'rig name (default: the directory name of PATH)')
      .option('--target <branch>', 'branch the merge queue merges into', 'main')
      .option('--prefix <p>', 'bead id prefix for the rig')
      .option('--workers <k>', 'merge-queue candidates tested at once')
      .option('--test <command>', 'the test gate: run on every candidate before it merges')
      .option(
        '--gate <name=command>',
        'a gate: setup, typecheck, lint or test (repeatable)',
        (v: string, prev: string[] = []) => [...prev, v],
      )
      .option(
        '--include <pack>',
        'a pack whose agents are stamped into the rig (repeatable; path relative to the city root, or a git URL)',
        (v: string, prev: string[] = []) => [...prev, v],
      ),
  ).action(
    action(
      async (
        first: string,
        second: string | undefined,
        o: { target?: string; prefix?: string; workers?: string; name?: string },
        cmd: Command,
      ) => {
        const rigs = await rigCmds();
        const { name, repo } = rigs.addArgs(first, second, o.name);
        await rigs.add(g(cmd), name, repo, o);
      },
    ),
  );
  for (const [verb, what, value] of [
    ['suspend', "stop the rig's agents and start none until it is resumed", true],
    ['resume', "let the rig's agents run again", false],
  ] as const) {
    json(rig.command(`${verb} <name>`).description(what)).action(
      action(async (name: string, _o: unknown, cmd: Command) =>
        (await rigCmds()).setSuspended(g(cmd), name, value),
      ),
    );
  }
  json(
    rig
      .command('restart <name>')
      .description(
        "restart every running session of the rig's agents: each drains, then starts fresh",
      ),
  ).action(
    action(async (name: string, _o: unknown, cmd: Command) =>
      (await rigCmds()).restart(g(cmd), name),
    ),
  );
  json(rig.command('list').description('the rigs of city.toml')).action(
    action(async (_o: unknown, cmd: Command) => (await rigCmds()).list(g(cmd))),
  );
  json(
    rig
      .command('remove <name>')
      .description('remove a rig from city.toml (its repository is kept)'),
  ).action(
    action(async (name: string, _o: unknown, cmd: Command) =>
      (await rigCmds()).remove(g(cmd), name),
    ),
  );
  json(
    rig
      .command('status [name]')
      .description('repository, target head, worktrees and merge queue of each rig'),
  ).action(
    action(async (name: string | undefined, _o: unknown, cmd: Command) =>
      (await rigCmds()).status(g(cmd), name),
    ),
  );

  const mqCmds = async () => import('./commands/mq.js');
  const mq = program.command('mq').description('merge queue: tested, ordered merges into each rig');
  json(
    mq
      .command('submit')
      .description('submit a branch (default: the current branch here, and the bead you hold)')
      .option('--branch <name>', 'branch to merge (default: the current branch)')
      .option('--bead <id>', 'bead the work is for (closed when it merges)')
      .option('--rig <name>', 'rig (default: $GC_RIG, or the only rig)')
      .option('-p, --priority <0-4>', 'priority (default 2)'),
  ).action(
    action(
      async (
        o: { branch?: string; bead?: string; rig?: string; priority?: string },
        cmd: Command,
      ) => (await mqCmds()).submit(g(cmd), o),
    ),
  );
  json(
    mq
      .command('list')
      .description('waiting and in-flight requests, newest first')
      .option('--rig <name>', 'one rig')
      .option('--state <states>', 'comma-separated states')
      .option('--all', 'every request, merged and rejected too')
      .option('-n, --limit <n>', 'at most this many (default 100)'),
  ).action(
    action(
      async (o: { rig?: string; state?: string; all?: boolean; limit?: string }, cmd: Command) =>
        (await mqCmds()).list(g(cmd), o),
    ),
  );
  json(
    mq
      .command('status <id>')
      .description('one request: state, commits, failure detail')
      .option('--wait', 'wait until it leaves the queue (merged, needs-rebase, needs-fix, ...)')
      .option('--timeout <s>', 'with --wait: give up after this many seconds (exit 1)', '3600'),
  ).action(
    action(async (id: string, o: { wait?: boolean; timeout?: string }, cmd: Command) =>
      (await mqCmds()).status(g(cmd), id, o),
    ),
  );
  json(
    mq
      .command('reject <id>')
      .description('take a request out of the queue')
      .option('-r, --reason <text>', 'why'),
  ).action(
    action(async (id: string, o: { reason?: string }, cmd: Command) =>
      (await mqCmds()).reject(g(cmd), id, o),
    ),
  );
  json(mq.command('retry <id>').description('queue a failed or rejected request again')).action(
    action(async (id: string, _o: unknown, cmd: Command) => (await mqCmds()).retry(g(cmd), id)),
  );
  json(
    mq
      .command('stats')
      .description(
        'queue depth, in flight, merges per hour, conflict and gate failure rates, latencies',
      )
      .option('--rig <name>', 'one rig'),
  ).action(action(async (o: { rig?: string }, cmd: Command) => (await mqCmds()).stats(g(cmd), o)));

  // ---- convoys ----
  const convoyCmds = async () => import('./commands/convoy.js');
  const convoy = program
    .command('convoy')
    .description('groups of beads released together or in waves; closed when their beads are');
  json(
    convoy
      .command('create <title> [beads...]')
      .description('a convoy over beads (it becomes their parent)')
      .option(
        '--wave-size <n>',
        'release n beads at a time, in dependency order; the next wave goes when these have merged',
      )
      .option('--wave-timeout <duration>', 'release the next wave anyway after this (default 30m)')
      .option('--owned', 'never close it by itself (manual lifecycle: gc convoy land)')
      .option('--owner <actor>', 'who manages it (default: you)')
      .option('--notify <actor>', 'who is told by mail when it closes (besides the owner)')
      .option('--merge <strategy>', 'how its work merges: direct, mr or local')
      .option('--target <branch>', 'the branch its work targets'),
  ).action(
    action(async (title: string, beads: string[], o: ConvoyCommands.CreateArgs, cmd: Command) =>
      (await convoyCmds()).create(g(cmd), title, beads, o),
    ),
  );
  for (const land of [false, true]) {
    json(
      convoy
        .command(`${land ? 'land' : 'close'} <convoy>`)
        .description(
          land
            ? 'close an owned convoy once its beads are closed (--force: anyway); mails its owner and notify'
            : 'close a convoy once its beads are closed (--force: anyway); mails its owner and notify',
        )
        .option('--reason <text>', 'why (recorded on the convoy)')
        .option('--force', 'close it with beads still open'),
    ).action(
      action(async (id: string, o: { reason?: string; force?: boolean }, cmd: Command) =>
        (await convoyCmds()).close(g(cmd), id, o, land),
      ),
    );
  }
  json(
    convoy
      .command('target <convoy> <branch>')
      .description('set the branch its work targets ("" clears it)'),
  ).action(
    action(async (id: string, branch: string, _o: unknown, cmd: Command) =>
      (await convoyCmds()).target(g(cmd), id, branch),
    ),
  );
  json(
    convoy
      .command('delete <convoy>')
      .description('delete a convoy and its wave gates; its beads stay, out of any convoy')
      .option('--beads', 'delete its beads too')
      .option('--force', 'with --beads: even beads in progress'),
  ).action(
    action(async (id: string, o: { beads?: boolean; force?: boolean }, cmd: Command) =>
      (await convoyCmds()).remove(g(cmd), id, o),
    ),
  );
  json(
    convoy
      .command('check')
      .description('close finished convoys (not owned ones) and release due waves now'),
  ).action(action(async (_o: unknown, cmd: Command) => (await convoyCmds()).check(g(cmd))));
  json(
    convoy
      .command('stranded')
      .description('open convoys with open work nobody holds (work to sling)'),
  ).action(action(async (_o: unknown, cmd: Command) => (await convoyCmds()).stranded(g(cmd))));
  json(
    convoy
      .command('add <convoy> <beads...>')
      .description('add beads (with waves: after the waves already released)'),
  ).action(
    action(async (id: string, beads: string[], _o: unknown, cmd: Command) =>
      (await convoyCmds()).add(g(cmd), id, beads),
    ),
  );
  json(
    convoy
      .command('list')
      .description('open convoys and their progress')
      .option('--all', 'closed ones too')
      .option('-n, --limit <n>', 'at most this many (default 100)'),
  ).action(
    action(async (o: { all?: boolean; limit?: string }, cmd: Command) =>
      (await convoyCmds()).list(g(cmd), o),
    ),
  );
  json(
    convoy
      .command('status <convoy>')
      .description('its beads by wave: which are released, closed, and merged'),
  ).action(
    action(async (id: string, _o: unknown, cmd: Command) =>
      (await convoyCmds()).status(g(cmd), id),
    ),
  );

  // ---- mail ----
  const mailCmd = async () => import('./commands/mail.js');
  const mail = program.command('mail').description('messages between agents and humans');
  const sendOpts = (c: Command) =>
    c
      .option('-s, --subject <text>', 'subject')
      .option('-m, --message <text>', 'body')
      .option('-f, --file <path>', 'body from a file (- = stdin)')
      .option('-p, --priority <0-4>', 'priority (0 = urgent)')
      .option('--notify', "nudge the recipient's live sessions");
  json(
    sendOpts(mail.command('send <to>').description('send a message as yourself')).option(
      '--cc <names>',
      'comma-separated copies (recorded on the message)',
    ),
  ).action(
    action(async (to: string, o: Record<string, string | boolean>, cmd: Command) =>
      (await mailCmd()).send(g(cmd), to, o),
    ),
  );
  json(
    mail
      .command('inbox [name]')
      .description('unread mail, marked read as shown (NAME: whose mailbox; default: yours)')
      .option('--agent <name>', 'mailbox (humans and operators; default: yourself)')
      .option('-n, --limit <n>', 'at most this many')
      .option('--peek', 'do not mark anything read (same as check)'),
  ).action(
    action(
      async (
        name: string | undefined,
        o: { agent?: string; limit?: string; peek?: boolean },
        cmd: Command,
      ) => (await mailCmd()).inbox(g(cmd), o, name),
    ),
  );
  json(
    mail
      .command('check [name]')
      .description('list unread mail without marking it read (NAME: whose mailbox)')
      .option('--agent <name>', 'mailbox (default: yourself)')
      .option(
        '--inject',
        'for agent hooks: the unread mail as one <gc-mail> block, nothing when there is none',
      ),
  ).action(
    action(
      async (name: string | undefined, o: { agent?: string; inject?: boolean }, cmd: Command) =>
        (await mailCmd()).check(g(cmd), o, name),
    ),
  );
  json(
    mail
      .command('all')
      .description('every unarchived message, read or not')
      .option('--agent <name>', 'mailbox (default: yourself)')
      .option('--cursor <c>', 'next page'),
  ).action(
    action(async (o: { agent?: string; cursor?: string }, cmd: Command) =>
      (await mailCmd()).all(g(cmd), o),
    ),
  );
  json(
    mail
      .command('count')
      .description('total and unread messages')
      .option('--agent <name>', 'mailbox (default: yourself)'),
  ).action(
    action(async (o: { agent?: string }, cmd: Command) => (await mailCmd()).count(g(cmd), o)),
  );
  json(mail.command('peek <id>').description('show a message without marking it read')).action(
    action(async (id: string, _o: unknown, cmd: Command) => (await mailCmd()).peek(g(cmd), id)),
  );
  json(mail.command('read <id>').description('show a message and mark it read')).action(
    action(async (id: string, _o: unknown, cmd: Command) => (await mailCmd()).read(g(cmd), id)),
  );
  json(sendOpts(mail.command('reply <id>').description('answer the sender, same thread'))).action(
    action(async (id: string, o: Record<string, string | boolean>, cmd: Command) =>
      (await mailCmd()).reply(g(cmd), id, o),
    ),
  );
  json(mail.command('thread <id>').description('the whole conversation of a message')).action(
    action(async (id: string, _o: unknown, cmd: Command) => (await mailCmd()).thread(g(cmd), id)),
  );
  for (const [name, what] of [
    ['mark-read', 'mark messages read'],
    ['mark-unread', 'mark messages unread (back in the inbox)'],
    ['archive', 'archive messages (kept, out of the mailbox)'],
    ['delete', 'delete messages for good'],
  ] as const) {
    json(mail.command(`${name} <ids...>`).description(what)).action(
      action(async (ids: string[], _o: unknown, cmd: Command) =>
        (await mailCmd()).change(g(cmd), name, ids),
      ),
    );
  }

  // ---- sessions ----
  const sessions = async () => import('./commands/sessions.js');
  const session = program.command('session').description('agent sessions');
  json(
    session
      .command('list')
      .description('sessions and their state')
      .option('--template <agent>', 'only the sessions of this agent (AGENT or RIG/AGENT)'),
  ).action(
    action(async (o: { template?: string }, cmd: Command) => (await sessions()).list(g(cmd), o)),
  );
  json(
    session
      .command('peek <name>')
      .description('recent output')
      .option('-n, --lines <n>', 'lines (0 = all)', '50'),
  ).action(
    action(async (name: string, o: { lines?: string }, cmd: Command) =>
      (await sessions()).peek(g(cmd), name, o),
    ),
  );
  json(
    session.command('nudge <name> <text>').description('type text into the session, then Enter'),
  ).action(
    action(async (name: string, text: string, _o: unknown, cmd: Command) =>
      (await sessions()).nudge(g(cmd), name, text),
    ),
  );
  session
    .command('attach <name>')
    .description('attach your terminal (tmux)')
    .action(
      action(async (name: string, _o: unknown, cmd: Command) =>
        (await sessions()).attach(g(cmd), name),
      ),
    );
  json(session.command('kill <name>').description('stop the session now')).action(
    action(async (name: string, _o: unknown, cmd: Command) =>
      (await sessions()).kill(g(cmd), name),
    ),
  );
  json(
    session.command('reset <name>').description('clear its quarantine and restart count'),
  ).action(
    action(async (name: string, _o: unknown, cmd: Command) =>
      (await sessions()).reset(g(cmd), name),
    ),
  );
  session
    .command('logs <name>')
    .description('its output log (.gc/sessions/logs)')
    .option('-f, --follow', 'keep printing new output')
    .option('-n, --tail <n>', 'start with only the last N lines')
    .action(
      action(async (name: string, o: { follow?: boolean; tail?: string }, cmd: Command) =>
        (await sessions()).logs(g(cmd), name, o),
      ),
    );

  // ---- API keys and external agents ----
  const authCmds = async () => import('./commands/auth.js');
  const auth = program
    .command('auth')
    .description('API keys and external agents (needs the running city)');
  const key = auth.command('key').description('API keys');
  json(
    key
      .command('create')
      .description('create an admin or operator key (shown once)')
      .requiredOption('--kind <kind>', 'admin, operator or metrics (may only scrape GET /metrics)')
      .requiredOption('--name <name>', 'who the key is for')
      .option('--max-sessions <n>', 'operators: cap on concurrent sessions'),
  ).action(
    action(async (o: { kind: string; name: string; maxSessions?: string }, cmd: Command) =>
      (await authCmds()).keyCreate(g(cmd), o),
    ),
  );
  json(
    key
      .command('list')
      .description('keys in creation order')
      .option('--kind <kind>', 'admin, operator, agent or metrics')
      .option('--all', 'include revoked keys'),
  ).action(
    action(async (o: { kind?: string; all?: boolean }, cmd: Command) =>
      (await authCmds()).keyList(g(cmd), o),
    ),
  );
  json(key.command('revoke <key-id>').description('revoke a key at once')).action(
    action(async (id: string, _o: unknown, cmd: Command) =>
      (await authCmds()).keyRevoke(g(cmd), id),
    ),
  );
  const agentCmd = auth.command('agent').description('external agents');
  json(
    agentCmd
      .command('register <name>')
      .description('register an external agent; prints its key (shown once)')
      .option('--webhook <url>', 'https URL its mail is pushed to'),
  ).action(
    action(async (name: string, o: { webhook?: string }, cmd: Command) =>
      (await authCmds()).agentRegister(g(cmd), name, o),
    ),
  );
  json(agentCmd.command('list').description('registered agents, in registration order')).action(
    action(async (_o: unknown, cmd: Command) => (await authCmds()).agentList(g(cmd))),
  );
}
