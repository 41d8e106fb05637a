/**
 * `gc order list|show|check|run|history`: the city's orders
 * (orders/<name>.toml of the city and of its packs), their gates' decisions
 * now, running one by hand, and their past runs.
 */
import { GcError, ValidationError } from '../../core/index.js';
import type { OrderView } from '../../orders/index.js';
import type { Bead } from '../../store/index.js';
import type { CityClient } from '../../client/index.js';
import { withCity, type GlobalOptions } from '../context.js';
import { clip, printJson, printLine, table } from '../output.js';

/** When the gate opens, in a word or two. */
function when(o: OrderView): string {
  switch (o.gate) {
    case 'cooldown':
      return `every ${o.interval}`;
    case 'cron':
      return `${o.schedule}${o.tz ? ` (${o.tz})` : ''}`;
    case 'event':
      return `on ${o.on}`;
    case 'condition':
      return `if ${clip(o.check ?? '', 30)}`;
    case 'manual':
      return 'by hand';
  }
}

function what(o: OrderView): string {
  return o.kind === 'exec'
    ? `exec ${clip(o.exec ?? '', 40)}`
    : `formula ${o.formula}${o.pool ? ` -> ${o.pool}` : ''}`;
}

function warnIssues(issues: string[]): void {
  for (const i of issues) process.stderr.write(`gc: warning: ${i}\n`);
}

const stamp = (b: Bead) => {
  const v = Number(b.metadata['order.fired_at']);
  return new Date(Number.isFinite(v) && v > 0 ? v : Date.parse(b.created_at))
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z');
};

function outcome(b: Bead): string {
  if (b.status !== 'closed') return 'running';
  return (b.close_reason ?? '').startsWith('failed: ') ? 'failed' : 'completed';
}

function runRows(runs: Bead[]): string[][] {
  return runs.map((b) => [
    b.id,
    b.metadata['order.name'] ?? b.title.replace(/^order:/, ''),
    stamp(b),
    outcome(b),
    clip((b.close_reason ?? '').replace(/^failed: /, '') || (b.metadata['order.reason'] ?? ''), 60),
  ]);
}

export async function list(g: GlobalOptions): Promise<void> {
  await withCity(
    g,
    'order list',
    async (city) => {
      const r = await city.listOrders();
      if (g.json) {
        printJson(r);
        return;
      }
      warnIssues(r.issues);
      if (!r.orders.length) {
        printLine(
          'no orders (add orders/NAME.toml to the city, or to a pack beside its formulas/)',
        );
        return;
      }
      printLine(
        table(
          ['ORDER', 'GATE', 'WHEN', 'RUNS', 'STATE', 'DESCRIPTION'],
          r.orders.map((o) => [
            o.name,
            o.gate,
            when(o),
            what(o),
            !o.enabled ? 'disabled' : o.skipped ? 'skipped' : 'on',
            clip(o.description, 50),
          ]),
        ),
      );
    },
    { readonly: true },
  );
}

export async function show(g: GlobalOptions, name: string, o: { check?: boolean }): Promise<void> {
  await withCity(
    g,
    'order show',
    async (city) => {
      const st = await city.orderStatus(name, o.check === true);
      if (g.json) {
        printJson(st);
        return;
      }
      const v = st.order;
      printLine(`${v.name}${v.description ? `  ${v.description}` : ''}`);
      printLine(`  file:     ${v.file}${v.pack ? ` (pack ${v.pack})` : ''}`);
      for (const s of v.shadows) printLine(`  shadows:  ${s}`);
      printLine(`  gate:     ${v.gate}: ${when(v)}`);
      printLine(`  runs:     ${what(v)}, time limit ${v.timeout_ms / 1000}s`);
      if (v.env_keys.length) printLine(`  env:      ${v.env_keys.join(', ')}`);
      printLine(`  state:    ${!v.enabled ? 'disabled' : v.skipped ? 'skipped' : 'on'}`);
      for (const w of v.warnings) printLine(`  warning:  ${w}`);
      printLine(`  now:      ${st.decision.due ? 'due' : 'not due'}: ${st.decision.reason}`);
      if (st.decision.next && !st.decision.due) {
        printLine(`  next:     ${new Date(st.decision.next).toISOString()}`);
      }
      if (st.runs.length) {
        printLine('');
        printLine(table(['RUN', 'ORDER', 'FIRED', 'STATUS', 'OUTCOME'], runRows(st.runs)));
      } else printLine('  never run');
    },
    { readonly: true },
  );
}

export async function check(g: GlobalOptions): Promise<void> {
  await withCity(
    g,
    'order check',
    async (city) => {
      const states = await city.checkOrders();
      if (g.json) {
        printJson(states);
        return;
      }
      if (!states.length) {
        printLine('no orders');
        return;
      }
      printLine(
        table(
          ['ORDER', 'GATE', 'DUE', 'WHY'],
          states.map((s) => [
            s.order.name,
            s.order.gate,
            s.decision.due ? 'yes' : 'no',
            s.decision.reason,
          ]),
        ),
      );
    },
    { readonly: true },
  );
}

const POLL_MS = 200;

/** Wait for a run the server started to end (a local run has ended already). */
async function waitFor(city: CityClient, name: string, run: Bead, limitMs: number): Promise<Bead> {
  const end = Date.now() + limitMs;
  let b = run;
  while (b.status !== 'closed') {
    if (Date.now() > end) {
      throw new GcError('unavailable', `run ${run.id} of order ${name} is still running`, {
        fix: `gc order history ${name}`,
      });
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
    b = (await city.orderHistory(name, 50)).find((x) => x.id === run.id) ?? {
      ...b,
      status: 'closed',
    };
  }
  return b;
}

export async function run(g: GlobalOptions, name: string, o: { wait?: boolean }): Promise<void> {
  if (!name.trim()) throw new ValidationError('name an order', { where: 'order' });
  await withCity(g, 'order run', async (city) => {
    const r = await city.runOrder(name);
    let b = r.run;
    if (o.wait) {
      const st = await city.orderStatus(name);
      b = await waitFor(city, name, b, st.order.timeout_ms + 30_000);
    }
    const failed = b.status === 'closed' && outcome(b) === 'failed';
    if (failed) process.exitCode = 1;
    if (g.json) {
      printJson({ ...r, run: b });
      return;
    }
    if (b.status !== 'closed')
      printLine(`order ${name} fired: run ${b.id} running (gc order history ${name})`);
    else
      printLine(
        `order ${name} ${outcome(b)}: run ${b.id}: ${(b.close_reason ?? '').replace(/^failed: /, '')}`,
      );
  });
}

export async function history(
  g: GlobalOptions,
  name: string | undefined,
  o: { limit?: string },
): Promise<void> {
  let limit = 20;
  if (o.limit !== undefined) {
    limit = Number(o.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new ValidationError(
        `expected a whole number from 1 to 1000, got ${JSON.stringify(o.limit)}`,
        {
          where: '--limit',
        },
      );
    }
  }
  await withCity(
    g,
    'order history',
    async (city) => {
      const runs = await city.orderHistory(name, limit);
      if (g.json) printJson(runs);
      else if (!runs.length) printLine(name ? `order ${name} has not run` : 'no order has run');
      else printLine(table(['RUN', 'ORDER', 'FIRED', 'STATUS', 'OUTCOME'], runRows(runs)));
    },
    { readonly: true },
  );
}
