/**
 * Usage metrics keep their label sets bounded: model and agent names are
 * callers' text (gc cost record), so past 100 distinct values each the
 * rest count as "other" — tokens are never dropped.
 */
import { describe, expect, it } from 'vitest';
import { usage } from '../costs/usage-conformance.js';
import { CityMetrics } from './metrics.js';

describe('usage metrics', () => {
  it('cap the distinct models and agents; every token still counts', async () => {
    // Only the usage counters are read here: the host's parts are never reached.
    const m = new CityMetrics({} as unknown as ConstructorParameters<typeof CityMetrics>[0]);
    m.observeUsage(
      Array.from({ length: 150 }, (_, i) =>
        usage(i, { model: `model-${i}`, agent: i % 2 ? 'coder' : 'reviewer', output_tokens: 10 }),
      ),
    );
    const got = await m.registry.getSingleMetric('gc_usage_tokens_total')!.get();
    const output = got.values.filter((v) => v.labels.kind === 'output');
    const models = new Set(output.map((v) => v.labels.model));
    expect(models.size).toBe(101);
    expect(models.has('other')).toBe(true);
    expect(output.reduce((n, v) => n + v.value, 0)).toBe(1500);
    expect(
      output.find((v) => v.labels.model === 'other' && v.labels.agent === 'coder')?.value,
    ).toBe(250);
  });
});
