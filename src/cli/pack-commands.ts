/**
 * Pack commands: a composed pack's `commands/<w>/run.sh` runs as
 * `gc <binding> <w> [ARGS...]` (Gas City's convention), where `<binding>` is
 * a name the pack was imported under, or the pack's own name. gc's own
 * commands win over a binding of the same name. The script runs in the
 * caller's directory with the arguments as given (no shell), its terminal
 * the caller's, and GC_CITY, GC_CITY_ROOT and PACK_DIR in its environment;
 * its exit status is gc's. `gc <binding>` alone lists the pack's commands.
 */
import { existsSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startProcess } from '../core/index.js';
import type { ComposedPack } from '../config/index.js';
import { cityRoot } from './context.js';
import { printJson, printLine } from './output.js';

const GLOBAL_WITH_VALUE = new Set(['--city', '--actor']);

/** The command word after gc's global options, the city named, and what follows. */
function split(argv: readonly string[]): {
  city?: string;
  word: string | undefined;
  rest: string[];
} {
  let city: string | undefined;
  let i = 2;
  while (i < argv.length) {
    const a = argv[i]!;
    if (GLOBAL_WITH_VALUE.has(a) && i + 1 < argv.length) {
      if (a === '--city') city = argv[i + 1];
      i += 2;
    } else if (/^--(city|actor)=/.test(a)) {
      if (a.startsWith('--city=')) city = a.slice('--city='.length);
      i += 1;
    } else break;
  }
  return { ...(city ? { city } : {}), word: argv[i], rest: argv.slice(i + 1) };
}

function commandsOf(pack: ComposedPack): string[] {
  const dir = path.join(pack.dir, 'commands');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((w) => existsSync(path.join(dir, w, 'run.sh')))
    .sort();
}

/**
 * Run `argv` as a pack command when its word is not one of gc's (`known`)
 * and names a pack of the city; false when it is not one (gc goes on).
 */
export async function runPackCommand(
  argv: readonly string[],
  known: ReadonlySet<string>,
): Promise<boolean> {
  const { city, word, rest } = split(argv);
  if (!word || word.startsWith('-') || known.has(word)) return false;
  let root: string;
  let packs: ComposedPack[];
  let name: string;
  try {
    root = cityRoot(city ? { city } : {});
    const { loadCityConfig } = await import('../config/index.js');
    const loaded = await loadCityConfig(path.join(root, 'city.toml'));
    packs = loaded.packs ?? [];
    name = loaded.config.workspace.name;
  } catch {
    return false; // not in a city, or its config is broken: gc reports the unknown command
  }
  const matching = packs.filter((p) => p.bindings.includes(word) || p.name === word);
  // An import binding names its pack before a pack's own name does.
  matching.sort((a, b) => Number(b.bindings.includes(word)) - Number(a.bindings.includes(word)));
  const pack = matching.find((p) => commandsOf(p).length > 0);
  if (!pack) return false;
  const w = rest[0];
  if (w === undefined || w === '--help' || w === '-h' || w === '--json') {
    const commands = commandsOf(pack);
    if (w === '--json') printJson({ pack: pack.name, binding: word, commands });
    else {
      printLine(`Usage: gc ${word} <command> [args...]   (commands of pack ${pack.name})`);
      for (const c of commands) printLine(`  ${c}`);
    }
    return true;
  }
  const script = path.join(pack.dir, 'commands', w, 'run.sh');
  if (!existsSync(script)) {
    const commands = commandsOf(pack);
    process.stderr.write(
      `gc: pack ${pack.name} has no command ${JSON.stringify(w)} (no ${path.relative(root, script)}); its commands: ${commands.join(', ')}\n`,
    );
    process.exitCode = 2;
    return true;
  }
  const p = startProcess(script, rest.slice(1), {
    stdio: 'inherit',
    env: { ...process.env, GC_CITY: name, GC_CITY_ROOT: root, PACK_DIR: pack.dir },
  });
  const exit = await p.exited;
  if (exit.error) {
    process.stderr.write(`gc: cannot run ${script}: ${exit.error.message}\n`);
    process.exitCode = 1;
  } else {
    process.exitCode = exit.code ?? 128 + signalNumber(exit.signal);
  }
  return true;
}

function signalNumber(signal: NodeJS.Signals | null): number {
  const n = signal ? (os.constants.signals as Record<string, number>)[signal] : undefined;
  return n ?? 1;
}
