#!/usr/bin/env node
/** `bd`: parse the command line and run the command. The tree is in bd-program.ts. */
import { bdProgram } from './bd-program.js';
import { runProgram } from './run.js';

await runProgram('bd', bdProgram(), process.argv);
