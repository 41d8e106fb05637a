#!/usr/bin/env node
/** `gc`: parse the command line and run the command. The tree is in gc-program.ts. */
import { gcProgram } from './gc-program.js';
import { runProgram } from './run.js';

await runProgram('gc', gcProgram(), process.argv);
