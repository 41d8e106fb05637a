/** Run `fn` over `items`, at most `limit` at once. */
export async function mapLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (t: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
