/**
 * Where each key sits in a TOML document. smol-toml reports positions only
 * for syntax errors; this scanner maps every key path (e.g.
 * `agent[1].env.FOO`) to its line and column so validation errors and
 * unknown-key warnings can point at the text. It only has to be right for
 * documents that already parsed.
 */

export interface Position {
  line: number;
  col: number;
}

export type PathSegment = string | number;

export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out;
}

/** Parse a TOML key (bare, quoted, dotted) at `i`; returns segments and end index. */
function readKey(line: string, i: number): { keys: string[]; end: number } | undefined {
  const keys: string[] = [];
  let pos = i;
  for (;;) {
    while (line[pos] === ' ' || line[pos] === '\t') pos++;
    const ch = line[pos];
    if (ch === '"') {
      let j = pos + 1;
      let s = '';
      while (j < line.length && line[j] !== '"') {
        if (line[j] === '\\') {
          s += line[j + 1] ?? '';
          j += 2;
        } else s += line[j++];
      }
      keys.push(s);
      pos = j + 1;
    } else if (ch === "'") {
      const j = line.indexOf("'", pos + 1);
      if (j < 0) return undefined;
      keys.push(line.slice(pos + 1, j));
      pos = j + 1;
    } else {
      const m = /^[A-Za-z0-9_-]+/.exec(line.slice(pos));
      if (!m) return undefined;
      keys.push(m[0]);
      pos += m[0].length;
    }
    while (line[pos] === ' ' || line[pos] === '\t') pos++;
    if (line[pos] === '.') {
      pos++;
      continue;
    }
    return { keys, end: pos };
  }
}

/** Net bracket depth change of a value fragment, ignoring strings and comments. */
function scanValue(text: string, state: { depth: number; ml: string | null }): void {
  let i = 0;
  while (i < text.length) {
    if (state.ml) {
      const close = text.indexOf(state.ml, i);
      if (close < 0) return;
      i = close + 3;
      state.ml = null;
      continue;
    }
    const ch = text[i];
    if (ch === '#') return;
    if (text.startsWith('"""', i) || text.startsWith("'''", i)) {
      state.ml = text.slice(i, i + 3);
      i += 3;
      continue;
    }
    if (ch === '"') {
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      i++;
      continue;
    }
    if (ch === "'") {
      const close = text.indexOf("'", i + 1);
      i = close < 0 ? text.length : close + 1;
      continue;
    }
    if (ch === '[' || ch === '{') state.depth++;
    if (ch === ']' || ch === '}') state.depth--;
    i++;
  }
}

export function keyPositions(source: string): Map<string, Position> {
  const positions = new Map<string, Position>();
  const arrayCounts = new Map<string, number>();
  let table: PathSegment[] = [];
  const lines = source.split(/\r?\n/);
  const state = { depth: 0, ml: null as string | null };
  for (let n = 0; n < lines.length; n++) {
    const raw = lines[n] ?? '';
    if (state.ml || state.depth > 0) {
      scanValue(raw, state);
      continue;
    }
    const indent = raw.length - raw.trimStart().length;
    const line = raw.trimStart();
    if (line === '' || line.startsWith('#')) continue;
    const header = /^\[\[?/.exec(line);
    if (header) {
      const isArray = line.startsWith('[[');
      const k = readKey(line, isArray ? 2 : 1);
      if (!k) continue;
      const base = formatPath(resolveTablePath(k.keys, arrayCounts));
      if (isArray) {
        const idx = arrayCounts.get(base) ?? 0;
        arrayCounts.set(base, idx + 1);
        table = [...pathOf(base), idx];
      } else {
        table = pathOf(base);
      }
      const p = formatPath(table);
      if (!positions.has(p)) positions.set(p, { line: n + 1, col: indent + 1 });
      continue;
    }
    const k = readKey(line, 0);
    if (!k || line[k.end] !== '=') continue;
    const full = [...table, ...k.keys];
    for (let j = table.length + 1; j <= full.length; j++) {
      const p = formatPath(full.slice(0, j));
      if (!positions.has(p)) positions.set(p, { line: n + 1, col: indent + 1 });
    }
    scanValue(line.slice(k.end + 1), state);
  }
  return positions;
}

/** Dotted table keys resolve through the latest element of any array of tables. */
function resolveTablePath(keys: string[], arrayCounts: Map<string, number>): PathSegment[] {
  const out: PathSegment[] = [];
  for (const key of keys) {
    out.push(key);
    const count = arrayCounts.get(formatPath(out));
    if (count !== undefined && key !== keys[keys.length - 1]) out.push(count - 1);
  }
  return out;
}

function pathOf(formatted: string): PathSegment[] {
  const out: PathSegment[] = [];
  const re = /([^.[\]]+)|\[(\d+)\]/g;
  let m;
  while ((m = re.exec(formatted))) out.push(m[2] !== undefined ? Number(m[2]) : (m[1] as string));
  return out;
}

/** Position of a path, or of its nearest ancestor that has one. */
export function positionOf(
  positions: Map<string, Position>,
  path: readonly PathSegment[],
): Position | undefined {
  for (let n = path.length; n > 0; n--) {
    const p = positions.get(formatPath(path.slice(0, n)));
    if (p) return p;
  }
  return undefined;
}
