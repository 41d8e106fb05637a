#!/usr/bin/env node
/**
 * `gc`: parse the command line and run the command. The tree is in
 * gc-program.ts; an agent's hot commands skip building it (fast.ts).
 */
import { runFast } from './fast.js';

if (!(await runFast(process.argv))) {
  const { gcProgram } = await import('./gc-program.js');
  const { runProgram } = await import('./run.js');
  await runProgram('gc', gcProgram(), process.argv);
}
