/**
 * Conflict-aware release, as pure decisions. A bead's paths are the globs
 * it declares (`gc.paths`, comma or newline separated) and the files its
 * earlier merge requests changed (`gc.touched`, written by the merge
 * queue). A ready bead whose paths overlap those of a bead in flight
 * (claimed, or waiting in the merge queue) is held back, unless nothing
 * else is ready.
 */

export const PATHS = 'gc.paths';
export const TOUCHED = 'gc.touched';

/** The paths (globs) a bead will touch, from its metadata. */
export function beadPaths(metadata: Readonly<Record<string, string>>): string[] {
  const out = new Set<string>();
  for (const key of [PATHS, TOUCHED]) {
    for (const p of (metadata[key] ?? '').split(/[,\n]/)) {
      const t = p.trim().replace(/^\.\//, '');
      if (t) out.add(t);
    }
  }
  return [...out];
}

const WILD = /[*?[]/;

function globRegex(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        re += '.*';
        i++;
        if (glob[i + 1] === '/') i++;
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}(/.*)?$`);
}

/**
 * Whether two globs can match a common path. A literal path matches a glob
 * as usual (a directory covers what is under it); two globs overlap when
 * the literal part before the first wildcard of one is a prefix of the
 * other's (conservative: it may see an overlap that no file has).
 */
export function globsOverlap(a: string, b: string): boolean {
  const aw = WILD.test(a);
  const bw = WILD.test(b);
  if (!aw && !bw) return a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`);
  if (!aw) return globRegex(b).test(a);
  if (!bw) return globRegex(a).test(b);
  const pa = a.slice(0, a.search(WILD));
  const pb = b.slice(0, b.search(WILD));
  return pa.startsWith(pb) || pb.startsWith(pa);
}

/** The overlapping pairs of two path lists, as "a ~ b" (or "a" when equal). */
export function overlapping(a: readonly string[], b: readonly string[]): string[] {
  const out: string[] = [];
  for (const x of a)
    for (const y of b) if (globsOverlap(x, y)) out.push(x === y ? x : `${x} ~ ${y}`);
  return out;
}

export interface PathBead {
  id: string;
  paths: readonly string[];
}

export interface Hold {
  /** The bead in flight it overlaps. */
  with: string;
  paths: string[];
}

/** Why `bead` is held back: the beads in flight its paths overlap (empty: not held). */
export function holdsOf(bead: PathBead, inFlight: readonly PathBead[]): Hold[] {
  if (!bead.paths.length) return [];
  const out: Hold[] = [];
  for (const f of inFlight) {
    if (f.id === bead.id) continue;
    const paths = overlapping(bead.paths, f.paths);
    if (paths.length) out.push({ with: f.id, paths });
  }
  return out;
}

/**
 * The order to try claiming ready beads in: those that overlap nothing in
 * flight first (in their ready order), then the held ones (when nothing
 * else is ready, held work still goes).
 */
export function claimOrder<T extends PathBead>(
  ready: readonly T[],
  inFlight: readonly PathBead[],
): { order: T[]; held: Map<string, Hold[]> } {
  const held = new Map<string, Hold[]>();
  const free: T[] = [];
  const later: T[] = [];
  for (const b of ready) {
    const h = holdsOf(b, inFlight);
    if (h.length) {
      held.set(b.id, h);
      later.push(b);
    } else free.push(b);
  }
  return { order: [...free, ...later], held };
}

/** One line for humans: why a bead is held. */
export function holdText(holds: readonly Hold[]): string {
  return `held back: overlaps ${holds.map((h) => `${h.with} (${h.paths.slice(0, 3).join(', ')})`).join('; ')}`;
}
