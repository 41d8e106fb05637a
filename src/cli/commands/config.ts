/** `gc config validate|show` and `gc init`. */
import { join } from 'node:path';
import { ValidationError } from '../../core/index.js';
import type { ConfigIssue, ValueSource } from '../../config/index.js';
import { cityRoot, type GlobalOptions } from '../context.js';
import { printJson, printLine } from '../output.js';

export async function validate(g: GlobalOptions): Promise<number> {
  const { loadCityConfig, formatIssue, ConfigError } = await import('../../config/index.js');
  const root = cityRoot(g);
  const file = join(root, 'city.toml');
  try {
    const loaded = await loadCityConfig(file);
    // What can be checked before anything runs: rigs are repositories,
    // commands resolve, prompt templates can be read.
    const { preflight } = await import('../../controller/index.js');
    const pre = await preflight(loaded);
    const warnings = [...loaded.warnings, ...pre.warnings];
    if (g.json) printJson({ valid: pre.errors.length === 0, file, errors: pre.errors, warnings });
    else {
      for (const w of warnings) process.stderr.write(`warning: ${formatIssue(w)}\n`);
      for (const e of pre.errors) process.stderr.write(`error: ${formatIssue(e)}\n`);
      if (pre.errors.length === 0) {
        printLine(
          `${file}: valid (${loaded.config.agent.length} agents, ${loaded.config.rigs.length} rigs)`,
        );
      }
    }
    return pre.errors.length ? 2 : 0;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    if (g.json)
      printJson({ valid: false, file, errors: err.issues, warnings: [] as ConfigIssue[] });
    else for (const i of err.issues) process.stderr.write(`error: ${formatIssue(i)}\n`);
    return 2;
  }
}

function describeSource(s: ValueSource | undefined): string {
  if (!s) return 'default';
  if (s.kind === 'file') return s.line ? `${s.file}:${s.line}` : `${s.file} (discovered)`;
  if (s.kind === 'env') return `env ${s.name}`;
  return 'default';
}

export async function show(g: GlobalOptions): Promise<void> {
  const { loadCityConfig, formatIssue, redactConfig } = await import('../../config/index.js');
  const root = cityRoot(g);
  const loaded = await loadCityConfig(join(root, 'city.toml'));
  for (const w of loaded.warnings) process.stderr.write(`warning: ${formatIssue(w)}\n`);
  // Secrets (env values, keys naming them, a URL's password) are never printed.
  const shown = redactConfig(loaded.config);
  if (g.json) {
    printJson({
      file: loaded.file,
      config: shown,
      // Where each agent came from: city.toml, a pack's pack.toml or agents/ folder,
      // and every layer (patch, [global], named session, rig stamping) that shaped it.
      agents: loaded.config.agent.map((a, i) => {
        const s = loaded.sources.get(`agent[${i}].name`);
        const o = loaded.origins[i];
        return {
          name: a.name,
          qualified: o?.qualified ?? a.name,
          ...(a.dir ? { rig: a.dir } : {}),
          ...(o?.pack ? { pack: o.pack } : {}),
          from: s?.kind === 'file' ? s.file : 'default',
          layers: o?.layers ?? [],
        };
      }),
      sources: Object.fromEntries(loaded.sources),
    });
    return;
  }
  const entries = [...loaded.sources.entries()];
  const width = Math.max(...entries.map(([k]) => k.length));
  for (const [key, source] of entries) {
    const value = key
      .split(/\.|\[(\d+)\]/)
      .filter(Boolean)
      .reduce<unknown>((v, seg) => (v as Record<string, unknown>)?.[seg], shown);
    printLine(
      `${key.padEnd(width)} = ${JSON.stringify(value) ?? '(unset)'}  # ${describeSource(source)}`,
    );
  }
}

/** `gc config explain AGENT`: one composed agent's layers and each of its fields with its source. */
export async function explain(g: GlobalOptions, ref: string): Promise<void> {
  const { loadCityConfig, formatIssue, redactConfig } = await import('../../config/index.js');
  const { requireAgent } = await import('../names.js');
  const loaded = await loadCityConfig(join(cityRoot(g), 'city.toml'));
  for (const w of loaded.warnings) process.stderr.write(`warning: ${formatIssue(w)}\n`);
  const agents = loaded.config.agent.map((a, i) => ({
    name: a.name,
    rig: a.dir,
    qualified: loaded.origins[i]?.qualified ?? a.name,
    i,
  }));
  const { i } = requireAgent(agents, ref);
  const shown = (redactConfig(loaded.config) as { agent: Record<string, unknown>[] }).agent[i]!;
  const origin = loaded.origins[i]!;
  const prefix = `agent[${i}].`;
  const fields = [...loaded.sources.entries()]
    .filter(([k]) => k.startsWith(prefix))
    .map(([k, source]) => {
      const key = k.slice(prefix.length);
      const value = key
        .split(/\.|\[(\d+)\]/)
        .filter(Boolean)
        .reduce<unknown>((v, seg) => (v as Record<string, unknown>)?.[seg], shown);
      return { key, value, source };
    });
  const name = shown.name as string;
  const rig = typeof shown.dir === 'string' ? shown.dir : undefined;
  if (g.json) {
    printJson({
      agent: origin.qualified,
      name,
      ...(rig ? { rig } : {}),
      ...(origin.pack ? { pack: origin.pack } : {}),
      layers: origin.layers,
      fields,
    });
    return;
  }
  printLine(
    `agent ${origin.qualified}${origin.qualified !== name ? ` (session name ${name})` : ''}${rig ? ` in rig ${rig}` : ''}`,
  );
  printLine('layers, first to last:');
  for (const l of origin.layers) printLine(`  ${l}`);
  printLine('fields:');
  const width = Math.max(...fields.map((f) => f.key.length));
  for (const f of fields) {
    printLine(
      `  ${f.key.padEnd(width)} = ${JSON.stringify(f.value) ?? '(unset)'}  # ${describeSource(f.source)}`,
    );
  }
}

export interface InitArgs {
  name?: string;
  force?: boolean;
  /** The coordinating agent's CLI preset (default: asked on a terminal, else claude). */
  provider?: string;
  /** Start the city at the end: true/false; undefined asks on a terminal. */
  start?: boolean;
  /** A city or pack directory to start from. */
  from?: string;
}

/**
 * Ask one question on the terminal: the answer, the default when it is
 * empty, undefined at end of input (Ctrl-D, a closed terminal).
 */
async function ask(question: string, fallback: string): Promise<string | undefined> {
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  const closed = new Promise<undefined>((resolve) => rl.once('close', () => resolve(undefined)));
  const answer = rl.question(question);
  answer.catch(() => undefined); // rejected when the input closes first
  try {
    const a = await Promise.race([answer, closed]);
    return a === undefined ? undefined : a.trim() || fallback;
  } finally {
    rl.close();
  }
}

export async function init(g: GlobalOptions, dir: string | undefined, a: InitArgs): Promise<void> {
  const { initCity } = await import('../../config/index.js');
  const { PRESET_NAMES, mergePreset, findExecutable } = await import('../../runtime/index.js');
  // Questions only for a person at a terminal; scripts and agents get the defaults.
  const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY && !g.json);
  if (a.from !== undefined) return initFrom(g, dir, a);
  const provider =
    a.provider ??
    (interactive
      ? ((await ask(
          `Agent CLI for the coordinator (${PRESET_NAMES.join(', ')}) [claude]: `,
          'claude',
        )) ?? 'claude')
      : 'claude');
  const preset = mergePreset(provider); // an unknown name fails here, with a suggestion
  // The sample agent names this installation's scripted worker, when it ships one.
  const { existsSync, realpathSync } = await import('node:fs');
  const nodePath = await import('node:path');
  const cliDir = nodePath.dirname(realpathSync(process.argv[1]!));
  const worker = nodePath.resolve(cliDir, '..', '..', 'examples', 'agents', 'worker.sh');
  const made = await initCity({
    dir: dir ?? process.cwd(),
    ...(a.name ? { name: a.name } : {}),
    ...(a.force ? { force: true } : {}),
    ...(existsSync(worker) ? { workerScript: worker } : {}),
    scaffold: { provider },
  });
  const { openCityKeyRing, adminKeyPath } = await import('../../city/index.js');
  const ring = await openCityKeyRing(made.root);
  try {
    await ring.ensureAdminKey(made.root);
  } finally {
    await ring.close();
  }
  const adminKey = adminKeyPath(made.root);
  // Recorded machine-wide, so gc run in one of its rigs finds it.
  const { registerRoot } = await import('./cities.js');
  await registerRoot(made.root);
  const missing = (await findExecutable(preset.command, process.env.PATH ?? '')) === undefined;
  const warning = missing
    ? `${preset.command} is not on PATH: the ${made.coordinator} agent cannot start until it is installed (or run gc init --force --provider NAME)`
    : undefined;
  if (warning && !g.json) process.stderr.write(`warning: ${warning}\n`);
  // No answer (end of input) starts nothing.
  const start =
    a.start ??
    (interactive ? /^y/i.test((await ask('Start the city now? [Y/n] ', 'y')) ?? 'n') : false);
  if (g.json) {
    printJson({
      ...made,
      admin_key_file: adminKey,
      registered: true,
      ...(warning ? { warnings: [warning] } : {}),
      started: start,
    });
  } else {
    printLine(`created city "${made.name}" at ${made.root}`);
    if (made.made.length) printLine(`made: ${made.made.join(', ')}`);
    printLine(`coordinator: agent ${made.coordinator} on ${provider}`);
    printLine(`admin API key: ${adminKey} (mode 0600; agents get their own keys)`);
    if (!start) printLine(`next: cd ${made.root} && gc start`);
  }
  if (start) {
    const { start: startCity } = await import('./city.js');
    await startCity({ ...g, city: made.root, json: false }, {});
  }
}

/** `gc init [DIR] --from CITY_OR_PACK`: a copy of a city, or a city around a pack. */
async function initFrom(g: GlobalOptions, dir: string | undefined, a: InitArgs): Promise<void> {
  if (a.provider !== undefined) {
    throw new ValidationError(
      '--provider makes the coordinator of a new city; --from brings its own agents',
      {
        where: '--provider',
        fix: 'drop one of them',
      },
    );
  }
  const { initCity, loadCityConfig } = await import('../../config/index.js');
  const made = await initCity({
    dir: dir ?? process.cwd(),
    from: a.from!,
    ...(a.name ? { name: a.name } : {}),
    ...(a.force ? { force: true } : {}),
  });
  const { openCityKeyRing } = await import('../../city/index.js');
  const ring = await openCityKeyRing(made.root);
  try {
    await ring.ensureAdminKey(made.root);
  } finally {
    await ring.close();
  }
  const { registerRoot } = await import('./cities.js');
  await registerRoot(made.root);
  const loaded = await loadCityConfig(join(made.root, 'city.toml'));
  const agents = loaded.config.agent.map((x) => x.name);
  if (g.json) {
    printJson({ ...made, agents, registered: true, started: false });
    return;
  }
  printLine(`created city "${made.name}" at ${made.root} from ${made.from ?? ''}`);
  printLine(`copied: ${made.made.join(', ')}`);
  printLine(`agents: ${agents.length ? agents.join(', ') : '(none)'}`);
  printLine(`next: cd ${made.root} && gc start`);
}
