/**
 * `gc session ...`: list, peek, nudge, attach, kill, reset, logs. Through the
 * running server when there is one; list/peek/logs/attach also work on a
 * stopped city by asking the provider directly.
 */
import { createReadStream, existsSync, statSync, watch } from 'node:fs';
import path from 'node:path';
import { GcError, NotFoundError, ValidationError, errorMessage } from '../../core/index.js';
import { cityRoot, connectServer, requireServer, type GlobalOptions } from '../context.js';
import { printJson, printLine, sessionReason, table } from '../output.js';

async function requireSession(
  p: Awaited<ReturnType<typeof provider>>,
  name: string,
): Promise<void> {
  const { requireSession: lookup } = await import('../../runtime/index.js');
  await lookup(p, name);
}

async function citySpecAt(root: string) {
  const { loadCityConfig } = await import('../../config/index.js');
  const { citySpec } = await import('../../controller/index.js');
  return citySpec(await loadCityConfig(path.join(root, 'city.toml')));
}

/**
 * The session `name` means: itself, or the session whose namepool alias it
 * is (`gc session peek Toast`). A session's own name wins over an alias.
 */
async function sessionName(g: GlobalOptions, name: string): Promise<string> {
  let spec: Awaited<ReturnType<typeof citySpecAt>>;
  try {
    spec = await citySpecAt(cityRoot(g));
  } catch {
    return name; // the command itself reports a missing or broken city
  }
  const { agentOfSession } = await import('../../controller/index.js');
  if (agentOfSession(spec, name)) return name;
  for (const a of spec.agents) {
    const i = a.namepool.indexOf(name);
    if (i >= 0) return a.pool ? `${a.name}-${i + 1}` : a.name;
  }
  return name;
}

async function provider(root: string, attaching?: string) {
  const { loadCityConfig } = await import('../../config/index.js');
  const { openProvider } = await import('../../runtime/index.js');
  const loaded = await loadCityConfig(path.join(root, 'city.toml'));
  if (attaching !== undefined) {
    const { agentOfSession, citySpec } = await import('../../controller/index.js');
    const agent = agentOfSession(citySpec(loaded), attaching);
    if (agent && !agent.attach) {
      throw new GcError('conflict', `agent ${agent.name} has attach = false`, {
        fix: `watch it with gc session peek ${attaching}, or set attach = true on the agent`,
      });
    }
  }
  return openProvider(loaded.config.session.provider, { cityRoot: root });
}

interface Row {
  name: string;
  alias?: string;
  agent?: string;
  state: string;
  reason?: string;
  start_error?: string;
  restarts_in_window?: number;
}

export async function list(g: GlobalOptions, o: { template?: string } = {}): Promise<void> {
  const { root, city } = await connectServer(g);
  let rows: Row[];
  if (city) rows = (await city.call<{ items: Row[] }>('GET', '/v0/sessions')).items;
  else {
    const p = await provider(root);
    rows = (await p.snapshot('')).map((s) => ({
      name: s.name,
      state: s.alive ? 'running' : 'dead',
    }));
  }
  // The city's agents: needed for --template (an error then), else only for aliases.
  const spec =
    o.template !== undefined
      ? await citySpecAt(root)
      : await citySpecAt(root).catch(() => undefined);
  const { agentOfSession, aliasOf } = await import('../../controller/index.js');
  if (o.template !== undefined && spec) {
    // The agent (template) the sessions come from: AGENT or RIG/AGENT.
    const { requireAgent } = await import('../names.js');
    const agent = requireAgent(spec.agents, o.template).name;
    for (const r of rows) {
      const a = r.agent ?? agentOfSession(spec, r.name)?.name;
      if (a !== undefined) r.agent = a;
    }
    rows = rows.filter((r) => r.agent === agent);
  }
  // Namepool aliases, where the agents have them.
  if (spec?.agents.some((a) => a.namepool.length)) {
    for (const r of rows) {
      const a = agentOfSession(spec, r.name);
      const alias = a ? aliasOf(a, r.name) : undefined;
      if (alias) r.alias = alias;
    }
  }
  const withAlias = rows.some((r) => r.alias);
  if (g.json) printJson(rows);
  else if (!rows.length) printLine('no sessions');
  else
    printLine(
      table(
        ['SESSION', ...(withAlias ? ['ALIAS'] : []), 'AGENT', 'STATE', 'RESTARTS', 'REASON'],
        rows.map((r) => [
          r.name,
          ...(withAlias ? [r.alias ?? ''] : []),
          r.agent ?? '',
          r.state,
          String(r.restarts_in_window ?? ''),
          sessionReason(r),
        ]),
      ),
    );
}

export async function peek(g: GlobalOptions, given: string, o: { lines?: string }): Promise<void> {
  const name = await sessionName(g, given);
  const { root, city } = await connectServer(g);
  const lines = o.lines ? Number(o.lines) : 50;
  const output = city
    ? (
        await city.call<{ output: string }>(
          'GET',
          `/v0/sessions/${encodeURIComponent(name)}/peek?lines=${lines}`,
        )
      ).output
    : await (async () => {
        const p = await provider(root);
        await requireSession(p, name);
        return p.peek(name, lines);
      })();
  if (g.json) printJson({ name, output });
  else printLine(output);
}

export async function nudge(g: GlobalOptions, given: string, text: string): Promise<void> {
  const name = await sessionName(g, given);
  const { city } = await connectServer(g);
  if (!city) throw new GcError('unavailable', 'the city is not running', { fix: 'gc start' });
  await city.call('POST', `/v0/sessions/${encodeURIComponent(name)}/nudge`, { text });
  if (g.json) printJson({ ok: true });
  else printLine(`nudged ${name}`);
}

export async function kill(g: GlobalOptions, given: string): Promise<void> {
  const name = await sessionName(g, given);
  const { root, city } = await connectServer(g);
  if (city) await city.call('POST', `/v0/sessions/${encodeURIComponent(name)}/kill`);
  else {
    const p = await provider(root);
    await requireSession(p, name);
    await p.stop(name);
  }
  if (g.json) printJson({ ok: true });
  else
    printLine(
      `killed ${name}${city ? ' (the controller restarts it if it is still desired)' : ''}`,
    );
}

export async function reset(g: GlobalOptions, given: string): Promise<void> {
  const name = await sessionName(g, given);
  const { city } = await connectServer(g);
  if (!city) throw new GcError('unavailable', 'the city is not running', { fix: 'gc start' });
  const r = await city.call<{ cleared: boolean }>(
    'POST',
    `/v0/sessions/${encodeURIComponent(name)}/reset`,
  );
  if (g.json) printJson(r);
  else
    printLine(
      r.cleared ? `${name}: quarantine and restart count cleared` : `${name}: nothing to clear`,
    );
}

export async function attach(g: GlobalOptions, given: string): Promise<void> {
  const name = await sessionName(g, given);
  const root = cityRoot(g);
  const p = await provider(root, name);
  // The provider says when it cannot attach at all (subprocess), before
  // anything is looked up.
  if (p.capabilities.canAttach) await requireSession(p, name);
  await p.attach(name);
}

export async function logs(
  g: GlobalOptions,
  given: string,
  o: { follow?: boolean; tail?: string },
): Promise<void> {
  const name = await sessionName(g, given);
  const tail = o.tail === undefined ? undefined : Number(o.tail);
  if (tail !== undefined && (!/^\d+$/.test(o.tail!) || !Number.isSafeInteger(tail))) {
    throw new ValidationError(`expected a number of lines, got ${JSON.stringify(o.tail)}`, {
      where: '--tail',
    });
  }
  const root = cityRoot(g);
  const file = path.join(root, '.gc', 'sessions', 'logs', `${name}.log`);
  if (!existsSync(file))
    throw new NotFoundError('session log', name, { fix: 'gc session list shows sessions' });
  let pos = tail === undefined ? 0 : await tailStart(file, tail);
  const pump = () =>
    new Promise<void>((resolve) => {
      const size = statSync(file).size;
      if (size < pos) pos = 0;
      if (size === pos) return resolve();
      const s = createReadStream(file, { start: pos, end: size - 1 });
      s.pipe(process.stdout, { end: false });
      s.on('end', () => {
        pos = size;
        resolve();
      });
      s.on('error', () => resolve());
    });
  await pump();
  if (!o.follow) return;
  // Until interrupted, or until the log goes away: always settles, so the
  // command ends with a status and a message, never by an empty event loop.
  await new Promise<void>((resolve, reject) => {
    let busy = false;
    const watcher = watch(file, () => {
      if (busy) return;
      busy = true;
      pump()
        .catch((e: unknown) => process.stderr.write(`gc: ${errorMessage(e)}\n`))
        .finally(() => (busy = false));
    });
    const stop = () => {
      watcher.close();
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    watcher.on('error', (e) => {
      watcher.close();
      reject(new GcError('unavailable', `following ${file} stopped: ${errorMessage(e)}`));
    });
  });
}

/** The byte offset where the last `lines` lines of `file` begin (read backwards in chunks). */
async function tailStart(file: string, lines: number): Promise<number> {
  const { open } = await import('node:fs/promises');
  const fh = await open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    if (lines === 0) return size;
    let end = size;
    let newlines = 0;
    const buf = Buffer.alloc(64 * 1024);
    while (end > 0) {
      const start = Math.max(0, end - buf.length);
      const { bytesRead } = await fh.read(buf, 0, end - start, start);
      for (let i = bytesRead - 1; i >= 0; i--) {
        // A final newline ends the last line; it does not start another.
        if (buf[i] !== 0x0a || start + i === size - 1) continue;
        newlines++;
        if (newlines === lines) return start + i + 1;
      }
      end = start;
    }
    return 0;
  } finally {
    await fh.close();
  }
}

/**
 * `gc runtime drain|undrain SESSION` (the operator's side; agents use
 * drain-check and drain-ack): ask a running session to wind down, or cancel
 * that. Needs the running city.
 */
export async function drain(g: GlobalOptions, given: string, on: boolean): Promise<void> {
  const name = await sessionName(g, given);
  const city = await requireServer(g);
  const r = await city.call<{ session: string; draining: boolean; changed: boolean }>(
    'POST',
    `/v0/sessions/${encodeURIComponent(name)}/${on ? 'drain' : 'undrain'}`,
  );
  if (g.json) printJson(r);
  else if (!r.changed) printLine(`${name} ${on ? 'is already draining' : 'is not draining'}`);
  else
    printLine(
      on
        ? `draining ${name}: it stops once it acks (gc runtime drain-ack) or at its drain_timeout, then starts again if still wanted`
        : `drain of ${name} cancelled`,
    );
}
