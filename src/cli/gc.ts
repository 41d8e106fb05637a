#!/usr/bin/env node
/**
 * `gc`: parse the command line and run the command. The tree is in
 * gc-program.ts; an agent's hot commands skip building it (fast.ts);
 * `gc bd ARGS` is `bd ARGS` (bdArgv); `gc <binding> <w>` runs a pack's command.
 */
import { runFast } from './fast.js';
import { bdArgv } from './bd-pass.js';

const bd = bdArgv(process.argv);
if (bd) {
  const { bdProgram } = await import('./bd-program.js');
  const { runProgram } = await import('./run.js');
  await runProgram('bd', bdProgram(), bd);
} else if (!(await runFast(process.argv))) {
  const { gcProgram } = await import('./gc-program.js');
  const { runProgram } = await import('./run.js');
  const { runPackCommand } = await import('./pack-commands.js');
  const program = gcProgram();
  const known = new Set(program.commands.flatMap((c) => [c.name(), ...c.aliases()]));
  // `gc <binding> <w>`: a pack's commands/<w>/run.sh (pack-commands.ts).
  if (!(await runPackCommand(process.argv, known))) await runProgram('gc', program, process.argv);
}
