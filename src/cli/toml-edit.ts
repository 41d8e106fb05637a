/**
 * Small in-place edits of city.toml that keep the rest of the file (its
 * comments and layout) as written: find the lines of an array-of-tables
 * entry (`[[rigs]]`, `[[agent]]`, `[[patches.agent]]`) and set one key in it.
 * Callers check that the edited file still loads before keeping it.
 */

export interface TableBlock {
  /** Line of the `[[table]]` header. */
  start: number;
  /** Line after its last line (sub-tables included). */
  end: number;
  /** Its `name` (or first of `nameKeys`) when written as a plain string. */
  name: string | undefined;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Line ranges of each `[[table]]` entry in `text`, with its sub-tables
 * (`[table.x]`, `[[table.x]]`), and the value of its first `nameKeys` key.
 */
export function tableBlocks(
  text: string,
  table: string,
  nameKeys: readonly string[] = ['name'],
): TableBlock[] {
  const lines = text.split('\n');
  const t = escape(table).replace(/\\\./g, '\\s*\\.\\s*');
  const header = new RegExp(`^\\[\\[\\s*${t}\\s*\\]\\]`);
  const sub = new RegExp(`^\\[\\[?\\s*${t}\\s*\\.`);
  const key = new RegExp(`^(${nameKeys.map(escape).join('|')})\\s*=\\s*"((?:[^"\\\\]|\\\\.)*)"`);
  const blocks: TableBlock[] = [];
  let cur: TableBlock | undefined;
  let inOwn = false;
  lines.forEach((line, i) => {
    const s = line.trim();
    if (s.startsWith('[')) {
      if (cur && !sub.test(s)) {
        cur.end = i;
        blocks.push(cur);
        cur = undefined;
      }
      inOwn = false;
      if (header.test(s)) {
        cur = { start: i, end: lines.length, name: undefined };
        inOwn = true;
      }
    } else if (cur && inOwn && cur.name === undefined) {
      const m = key.exec(s);
      if (m) cur.name = JSON.parse(`"${m[2]}"`) as string;
    }
  });
  if (cur) blocks.push(cur);
  return blocks;
}

/** `text` with `key = value` set in the table starting at `block.start` (added after its last key when absent). */
export function setKey(text: string, block: TableBlock, key: string, value: string): string {
  const lines = text.split('\n');
  let at = -1;
  let last = block.start;
  for (let i = block.start + 1; i < block.end; i++) {
    const s = lines[i]!.trim();
    if (s.startsWith('[')) break;
    if (new RegExp(`^${escape(key)}\\s*=`).test(s)) at = i;
    if (s && !s.startsWith('#')) last = i;
  }
  if (at >= 0) lines[at] = `${key} = ${value}`;
  else lines.splice(last + 1, 0, `${key} = ${value}`);
  return lines.join('\n');
}

/** `text` with `lines` inserted before line `at` (a blank line kept before them). */
export function insertLines(text: string, at: number, added: readonly string[]): string {
  const lines = text.split('\n');
  let i = at;
  while (i > 0 && lines[i - 1]!.trim() === '') i--;
  lines.splice(i, 0, '', ...added);
  return lines.join('\n');
}
