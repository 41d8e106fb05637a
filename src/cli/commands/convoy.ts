/**
 * `gc convoy ...`: create, add, list, status. A convoy groups beads (it is
 * their parent) and can release them in waves: the next wave goes when the
 * work before it has merged, or after its timeout.
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

export async function create(
  g: GlobalOptions,
  title: string,
  beads: string[],
  o: { waveSize?: string; waveTimeout?: string; owned?: boolean },
): Promise<void> {
  const waveSize = whole(o.waveSize, '--wave-size');
  await withCity(g, 'convoy create', async (city) => {
    const st = await city.createConvoy({
      title,
      beads,
      ...(waveSize !== undefined ? { wave_size: waveSize } : {}),
      ...(o.waveTimeout !== undefined ? { wave_timeout: o.waveTimeout } : {}),
      ...(o.owned ? { owned: true } : {}),
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
