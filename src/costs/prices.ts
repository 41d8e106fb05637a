/**
 * Dollars per million tokens by model, for records whose source does not
 * say what they cost. A model matches the longest listed prefix
 * (`claude-sonnet-4-5-20250929` matches `claude-sonnet-4`); `[costs.prices]`
 * in city.toml adds models or overrides these. The figures are the
 * vendors' published list prices when this table was written; a city that
 * pays otherwise (batch, discounts, another currency) sets its own.
 */

export interface Price {
  input: number;
  cached_input: number;
  cache_write: number;
  output: number;
}

const p = (input: number, output: number, cached = input / 10, write = input * 1.25): Price => ({
  input,
  cached_input: cached,
  cache_write: write,
  output,
});

export const DEFAULT_PRICES: Readonly<Record<string, Price>> = {
  'claude-opus-4-5': p(5, 25),
  'claude-opus-4-1': p(15, 75),
  'claude-opus-4': p(15, 75),
  'claude-sonnet-4': p(3, 15),
  'claude-3-7-sonnet': p(3, 15),
  'claude-haiku-4-5': p(1, 5),
  'claude-3-5-haiku': p(0.8, 4),
  'gpt-5-mini': p(0.25, 2, 0.025, 0.25),
  'gpt-5-nano': p(0.05, 0.4, 0.005, 0.05),
  'gpt-5': p(1.25, 10, 0.125, 1.25),
  'gpt-4.1': p(2, 8, 0.5, 2),
  'o4-mini': p(1.1, 4.4, 0.275, 1.1),
};

/** The price of a model: the longest matching prefix of the table (overrides first), if any. */
export function priceOf(
  model: string,
  overrides: Readonly<Record<string, Price>> = {},
): Price | undefined {
  const table = { ...DEFAULT_PRICES, ...overrides };
  let best: string | undefined;
  for (const k of Object.keys(table)) {
    if (model.startsWith(k) && (best === undefined || k.length > best.length)) best = k;
  }
  return best === undefined ? undefined : table[best];
}

/** Dollars for some tokens of a model; undefined when the model has no price. */
export function costOf(
  model: string,
  t: {
    input_tokens: number;
    cached_input_tokens: number;
    cache_write_tokens: number;
    output_tokens: number;
  },
  overrides?: Readonly<Record<string, Price>>,
): number | undefined {
  const price = priceOf(model, overrides);
  if (!price) return undefined;
  return (
    (t.input_tokens * price.input +
      t.cached_input_tokens * price.cached_input +
      t.cache_write_tokens * price.cache_write +
      t.output_tokens * price.output) /
    1e6
  );
}
