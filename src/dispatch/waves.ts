/**
 * Staggered release, as pure decisions: a convoy's work split into waves in
 * dependency order (Kahn's algorithm), and when the next wave may go.
 *
 * The next wave is released when every bead of the waves released so far
 * has landed (closed, with no merge request of it still waiting: merged,
 * not merely closed by its agent), or when the current wave has been out
 * longer than the timeout, so one stuck bead does not hold the rest forever.
 */

export interface WaveItem {
  id: string;
  /** Ids this one depends on; ids outside the set are ignored. */
  needs: readonly string[];
}

/**
 * Items in dependency order, layer by layer (each layer in input order),
 * cut into waves of `size`. Items in a cycle (which the store refuses) go
 * last, in input order.
 */
export function planWaves(items: readonly WaveItem[], size: number): string[][] {
  if (!Number.isInteger(size) || size < 1) throw new RangeError('wave size must be 1 or more');
  const ids = new Set(items.map((i) => i.id));
  const indegree = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  for (const it of items) {
    const needs = [...new Set(it.needs)].filter((n) => ids.has(n) && n !== it.id);
    indegree.set(it.id, needs.length);
    for (const n of needs) dependents.set(n, [...(dependents.get(n) ?? []), it.id]);
  }
  const order: string[] = [];
  const index = new Map(items.map((it, i) => [it.id, i]));
  let layer = items.filter((it) => indegree.get(it.id) === 0).map((it) => it.id);
  while (layer.length) {
    order.push(...layer);
    const next: string[] = [];
    for (const id of layer) {
      for (const d of dependents.get(id) ?? []) {
        const left = indegree.get(d)! - 1;
        indegree.set(d, left);
        if (left === 0) next.push(d);
      }
    }
    layer = next.sort((a, b) => index.get(a)! - index.get(b)!);
  }
  const placed = new Set(order);
  order.push(...items.filter((it) => !placed.has(it.id)).map((it) => it.id));
  const waves: string[][] = [];
  for (let i = 0; i < order.length; i += size) waves.push(order.slice(i, i + size));
  return waves;
}

export interface WaveProgress {
  /** Waves released so far (1 = the first wave only). */
  released: number;
  /** When the last wave was released (epoch ms). */
  releasedAt: number;
}

export type Release = { wave: number; reason: 'landed' | 'timeout' };

/**
 * Whether the next wave (1-based index `released + 1`) goes now: all beads of
 * the released waves landed, or the last release is older than `timeoutMs`.
 */
export function nextRelease(
  waves: readonly (readonly string[])[],
  p: WaveProgress,
  landed: (id: string) => boolean,
  now: number,
  timeoutMs: number,
): Release | undefined {
  if (p.released >= waves.length) return undefined;
  const out = waves.slice(0, p.released).flat();
  if (out.every(landed)) return { wave: p.released + 1, reason: 'landed' };
  if (timeoutMs > 0 && now - p.releasedAt >= timeoutMs) {
    return { wave: p.released + 1, reason: 'timeout' };
  }
  return undefined;
}
