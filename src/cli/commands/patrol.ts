/** `gc patrol`: the health patrol's view from the leader: rigs by tier, its last pass, what it found. */
import { withCity, type GlobalOptions } from '../context.js';
import { printJson, printLine, table } from '../output.js';

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

export async function patrol(g: GlobalOptions): Promise<void> {
  await withCity(
    g,
    'patrol',
    async (city) => {
      const r = await city.patrol();
      if (g.json) {
        printJson(r);
        return;
      }
      if (!r.enabled) printLine('the health patrol is off ([patrol] enabled = false)');
      if (!r.last) {
        printLine('no patrol pass yet (the patrol runs on the leader of a running city)');
        return;
      }
      printLine(
        `last pass ${iso(r.last.at)}: ${r.last.ms.toFixed(1)} ms (median ${r.ms_p50.toFixed(1)} ms); ` +
          `rigs hot ${r.last.tiers.hot}, warm ${r.last.tiers.warm}, cold ${r.last.tiers.cold}`,
      );
      printLine('');
      printLine(
        table(
          ['RIG', 'TIER', 'LOOKED AT'],
          r.tiers.map((t) => [
            t.rig || '(city)',
            t.tier,
            t.looked_at === null ? '-' : iso(t.looked_at),
          ]),
        ),
      );
      printLine('');
      if (!r.findings.length) {
        printLine('nothing found');
        return;
      }
      printLine(
        table(
          ['FINDING', 'RIG', 'SINCE', 'STEP', 'DETAIL'],
          r.findings.map((f) => [f.key, f.rig || '-', iso(f.since), f.step || '-', f.detail]),
        ),
      );
    },
    { readonly: true },
  );
}
