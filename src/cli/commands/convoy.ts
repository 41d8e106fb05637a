/**
 * `gc convoy ...`: create, add, list, status, close, land, target, delete,
 * check, stranded. A convoy groups beads (it is their parent) and can
 * release them in waves: the next wave goes when the work before it has
 * merged, or after its timeout.
 */
import { ValidationError } from '../../core/index.js';
import type { ConvoyStatus } from '../../dispatch/index.js';
import { withCity, type GlobalOptions } from '../context.js';
import { clip, printJson, printLine, table } from '../output.js';

function whole(v: string | undefined, where: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    throw new ValidationError(`expected a whole number of 1 or more, got ${JSON.stringify(v)}`, {
      where,
    });
  }
  return n;
}

function printStatus(st: ConvoyStatus): void {
  const c = st.convoy;
  printLine(`${c.id}  ${c.title}  [${c.status}]`);
  printLine(
    `  ${st.total} bead(s): ${st.closed} closed, ${st.landed} landed` +
      (c.metadata['convoy.wave_size']
        ? `; waves of ${c.metadata['convoy.wave_size']}, ${st.waves_released} of ${st.waves.length} released`
        : ''),
  );
  for (const w of st.waves) {
    if (st.waves.length > 1 || c.metadata['convoy.wave_size']) {
      printLine(
        `  wave ${w.wave}: ${w.released ? 'released' : `held${w.gate ? ` by ${w.gate}` : ''}`}`,
      );
    }
    if (!w.beads.length) continue;
    printLine(
      table(
        ['  ID', 'STATUS', 'LANDED', 'ASSIGNEE', 'TITLE'],
        w.beads.map((b) => [
          `  ${b.id}`,
          b.status,
          b.landed ? 'yes' : '-',
          b.assignee || '-',
          clip(b.title, 60),
        ]),
      ),
    );
  }
}

export interface CreateArgs {
  waveSize?: string;
  waveTimeout?: string;
  owned?: boolean;
  owner?: string;
  notify?: string;
  merge?: string;
  target?: string;
}

export async function create(
  g: GlobalOptions,
  title: string,
  beads: string[],
  o: CreateArgs,
): Promise<void> {
  const waveSize = whole(o.waveSize, '--wave-size');
  await withCity(g, 'convoy create', async (city) => {
    const st = await city.createConvoy({
      title,
      beads,
      ...(waveSize !== undefined ? { wave_size: waveSize } : {}),
      ...(o.waveTimeout !== undefined ? { wave_timeout: o.waveTimeout } : {}),
      ...(o.owned ? { owned: true } : {}),
      ...(o.owner ? { owner: o.owner } : {}),
      ...(o.notify ? { notify: o.notify } : {}),
      ...(o.merge ? { merge: o.merge } : {}),
      ...(o.target ? { target: o.target } : {}),
    });
    if (g.json) printJson(st);
    else printStatus(st);
  });
}

export async function add(g: GlobalOptions, id: string, beads: string[]): Promise<void> {
  if (!beads.length) throw new ValidationError('name at least one bead', { where: 'beads' });
  await withCity(g, 'convoy add', async (city) => {
    const st = await city.addToConvoy(id, beads);
    if (g.json) printJson(st);
    else printStatus(st);
  });
}

export async function list(g: GlobalOptions, o: { all?: boolean; limit?: string }): Promise<void> {
  const limit = whole(o.limit, '--limit');
  await withCity(
    g,
    'convoy list',
    async (city) => {
      const page = await city.listConvoys({
        ...(o.all ? { all: true } : {}),
        ...(limit !== undefined ? { limit } : {}),
      });
      if (g.json) {
        printJson(page.items);
        return;
      }
      if (!page.items.length) {
        printLine(o.all ? 'no convoys' : 'no open convoys (--all for closed ones)');
        return;
      }
      printLine(
        table(
          ['ID', 'STATUS', 'DONE', 'WAVES', 'OWNER', 'TITLE'],
          page.items.map((c) => [
            c.id,
            c.status,
            `${c.closed}/${c.total}`,
            c.wave_size ? `${c.waves_released} out, size ${c.wave_size}` : '-',
            c.owner,
            clip(c.title, 60),
          ]),
        ),
      );
    },
    { readonly: true },
  );
}

export async function status(g: GlobalOptions, id: string): Promise<void> {
  await withCity(
    g,
    'convoy status',
    async (city) => {
      const st = await city.convoyStatus(id);
      if (g.json) printJson(st);
      else printStatus(st);
    },
    { readonly: true },
  );
}

export async function close(
  g: GlobalOptions,
  id: string,
  o: { reason?: string; force?: boolean },
  land = false,
): Promise<void> {
  await withCity(g, land ? 'convoy land' : 'convoy close', async (city) => {
    const r = await city.closeConvoy(id, {
      ...(o.reason !== undefined ? { reason: o.reason } : {}),
      ...(o.force ? { force: true } : {}),
      ...(land ? { land: true } : {}),
    });
    if (g.json) printJson(r);
    else if (!r.changed) printLine(`${id} was closed already`);
    else
      printLine(
        `${id} ${land ? 'landed' : 'closed'}: ${r.total - r.open}/${r.total} bead(s) closed` +
          (r.forced ? ` (forced: ${r.open} open)` : '') +
          (r.notified.length ? `; told ${r.notified.join(', ')}` : ''),
      );
  });
}

export async function target(g: GlobalOptions, id: string, branch: string): Promise<void> {
  await withCity(g, 'convoy target', async (city) => {
    const b = await city.setConvoyTarget(id, branch);
    if (g.json) printJson(b);
    else printLine(branch ? `${id} targets ${branch}` : `${id} has no target`);
  });
}

export async function remove(
  g: GlobalOptions,
  id: string,
  o: { beads?: boolean; force?: boolean },
): Promise<void> {
  await withCity(g, 'convoy delete', async (city) => {
    const r = await city.deleteConvoy(id, {
      ...(o.beads ? { beads: true } : {}),
      ...(o.force ? { force: true } : {}),
    });
    if (g.json) printJson(r);
    else
      printLine(
        `${id} deleted; ` +
          (o.beads
            ? `${r.deleted.length} bead(s) deleted with it`
            : `${r.released.length} bead(s) kept, no longer in a convoy`),
      );
  });
}

export async function check(g: GlobalOptions): Promise<void> {
  await withCity(g, 'convoy check', async (city) => {
    const r = await city.checkConvoys();
    if (g.json) printJson(r);
    else if (!r.closed.length && !r.released.length) printLine('nothing to close or release');
    else {
      for (const c of r.closed) printLine(`closed ${c}`);
      for (const w of r.released) printLine(`${w.convoy}: wave ${w.wave} released (${w.reason})`);
    }
  });
}

export async function stranded(g: GlobalOptions): Promise<void> {
  await withCity(
    g,
    'convoy stranded',
    async (city) => {
      const list = await city.strandedConvoys();
      if (g.json) {
        printJson(list);
        return;
      }
      if (!list.length) {
        printLine('no stranded work');
        return;
      }
      printLine(
        table(
          ['CONVOY', 'BEAD', 'READY', 'ROUTED TO', 'TITLE'],
          list.flatMap((c) =>
            c.beads.map((b) => [
              c.id,
              b.id,
              b.ready ? 'yes' : 'no',
              b.routed_to || '-',
              clip(b.title, 60),
            ]),
          ),
        ),
      );
    },
    { readonly: true },
  );
}
