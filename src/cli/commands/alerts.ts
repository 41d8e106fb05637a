/** `gc alerts`: the city's alert rules and what is pending or firing now (from the leader). */
import type { AlertRule } from '../../alerts/index.js';
import { withCity, type GlobalOptions } from '../context.js';
import { printJson, printLine, table } from '../output.js';

const span = (ms: number) =>
  ms >= 3_600_000 ? `${ms / 3_600_000}h` : ms >= 60_000 ? `${ms / 60_000}m` : `${ms / 1000}s`;

function rule(r: AlertRule): string[] {
  return [
    r.name,
    r.severity,
    `${r.metric} > ${r.above}`,
    span(r.forMs),
    span(r.clearForMs),
    r.route.join(', ') || '-',
  ];
}

export async function alerts(g: GlobalOptions): Promise<void> {
  await withCity(
    g,
    'alerts',
    async (city) => {
      const v = await city.alerts();
      if (g.json) {
        printJson(v);
        return;
      }
      if (!v.active.length) printLine('no alert pending or firing');
      else {
        printLine(
          table(
            ['ALERT', 'RIG', 'STATE', 'SINCE', 'VALUE', 'ABOVE', 'SEVERITY'],
            v.active.map((a) => [
              a.alert,
              a.rig || '-',
              a.state,
              new Date(a.since).toISOString().replace(/\.\d{3}Z$/, 'Z'),
              String(a.value),
              String(a.above),
              a.severity,
            ]),
          ),
        );
      }
      printLine('');
      if (!v.rules.length) printLine('no alert rules ([[alerts]] is empty in city.toml)');
      else {
        printLine(
          table(['RULE', 'SEVERITY', 'WHEN', 'FOR', 'CLEAR FOR', 'ROUTE'], v.rules.map(rule)),
        );
      }
    },
    { readonly: true },
  );
}
