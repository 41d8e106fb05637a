/** `gc costs` (usage totals and budgets) and `gc cost record` (an agent's Stop hook). */
import { ValidationError } from '../../core/index.js';
import { USAGE_BY, type UsageBy } from '../../costs/index.js';
import type { CostInput } from '../../client/index.js';
import { withCity, type GlobalOptions } from '../context.js';
import { printJson, printLine, table } from '../output.js';

const usd = (n: number) => `$${n.toFixed(n > 0 && n < 0.01 ? 4 : 2)}`;
const count = (n: number) =>
  n >= 1e9
    ? `${(n / 1e9).toFixed(2)}G`
    : n >= 1e6
      ? `${(n / 1e6).toFixed(2)}M`
      : n >= 1e4
        ? `${(n / 1e3).toFixed(1)}k`
        : String(n);

export async function costs(
  g: GlobalOptions,
  o: Record<string, string | undefined>,
): Promise<void> {
  if (o.by !== undefined && !USAGE_BY.includes(o.by as UsageBy)) {
    throw new ValidationError(
      `--by must be one of ${USAGE_BY.join(', ')}, not ${JSON.stringify(o.by)}`,
      {
        where: '--by',
      },
    );
  }
  await withCity(
    g,
    'costs',
    async (city) => {
      const v = await city.costs({
        ...(o.by ? { by: o.by as UsageBy } : {}),
        ...(o.since ? { since: o.since } : {}),
        ...(o.until ? { until: o.until } : {}),
        ...(o.agent ? { agent: o.agent } : {}),
        ...(o.rig ? { rig: o.rig } : {}),
      });
      if (g.json) {
        printJson(v);
        return;
      }
      const span = `${v.since ? ` since ${v.since}` : ''}${v.until ? ` until ${v.until}` : ''}`;
      if (!v.totals.length) printLine(`no usage recorded${span}`);
      else {
        printLine(
          table(
            [
              (v.by ?? 'all').toUpperCase(),
              'COST',
              'TOKENS',
              'INPUT',
              'CACHED',
              'CACHE WRITE',
              'OUTPUT',
              'RECORDS',
            ],
            v.totals.map((t) => [
              v.by ? t.key || '-' : 'all',
              usd(t.cost_usd) + (t.unpriced ? ` (+${t.unpriced} unpriced)` : ''),
              count(t.tokens),
              count(t.input_tokens),
              count(t.cached_input_tokens),
              count(t.cache_write_tokens),
              count(t.output_tokens),
              String(t.records),
            ]),
          ),
        );
      }
      if (!v.budgets.length) return;
      printLine('');
      printLine(
        table(
          ['BUDGET', 'SCOPE', 'WINDOW', 'SPENT', 'AMOUNT', 'LEFT', 'STATE', 'ACTION'],
          v.budgets.map((b) => {
            const f = b.unit === 'usd' ? usd : count;
            return [
              b.name,
              b.scope,
              b.window,
              f(b.spent),
              f(b.amount),
              f(b.remaining),
              b.tripped
                ? `tripped${b.holding.length ? ` (holding ${b.holding.join(', ')})` : ''}`
                : b.warned.length
                  ? `warned ${Math.max(...b.warned)}%`
                  : 'ok',
              b.action,
            ];
          }),
        ),
      );
    },
    { readonly: true },
  );
}

function tokens(v: string | undefined, flag: string): number {
  const n = Number(v ?? '0');
  if (!/^\d+$/.test(v ?? '0') || !Number.isSafeInteger(n)) {
    throw new ValidationError(
      `${flag} must be a whole number of tokens, not ${JSON.stringify(v)}`,
      {
        where: flag,
      },
    );
  }
  return n;
}

export async function record(
  g: GlobalOptions,
  o: Record<string, string | undefined>,
): Promise<void> {
  const input: CostInput = {
    model: o.model ?? '',
    input_tokens: tokens(o.input, '--input'),
    cached_input_tokens: tokens(o.cachedInput, '--cached-input'),
    cache_write_tokens: tokens(o.cacheWrite, '--cache-write'),
    output_tokens: tokens(o.output, '--output'),
  };
  if (o.cost !== undefined) {
    const c = Number(o.cost);
    if (!/^\d+(\.\d+)?$/.test(o.cost) || !Number.isFinite(c)) {
      throw new ValidationError(
        `--cost must be dollars such as 0.42, not ${JSON.stringify(o.cost)}`,
        {
          where: '--cost',
        },
      );
    }
    input.cost_usd = c;
  }
  for (const k of ['bead', 'provider', 'id', 'session', 'agent', 'rig'] as const) {
    if (o[k] !== undefined) input[k] = o[k];
  }
  if (o.at !== undefined) input.at = /^\d+$/.test(o.at) ? Number(o.at) : o.at;
  await withCity(g, 'cost record', async (city) => {
    const r = await city.recordCost(input);
    if (g.json) {
      printJson(r);
      return;
    }
    const what = `${r.record.model}: ${r.record.input_tokens + r.record.cached_input_tokens + r.record.cache_write_tokens + r.record.output_tokens} tokens, ${r.record.cost_usd === null ? 'no price' : usd(r.record.cost_usd)}`;
    printLine(r.added ? `recorded ${what}` : `already recorded (${what})`);
  });
}
