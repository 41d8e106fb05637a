/**
 * Small in-place edits of city.toml that keep the rest of the file (its
 * comments and layout) as written: find the lines of an array-of-tables
 * entry (`[[rigs]]`, `[[agent]]`, `[[patches.agent]]`) and set one key in
 * it; write a file only if the city still loads with it.
 */
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ForbiddenError, ValidationError } from '../core/index.js';

/** TOML basic string (JSON's escapes are a subset TOML accepts). */
export const tomlString = (s: string): string => JSON.stringify(s);

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;

/** A new agent's or rig's name, checked as city.toml will check it. */
export function checkNewName(name: string): void {
  if (!NAME_RE.test(name)) {
    throw new ValidationError(
      'letters, digits, - and _ (at most 63), starting with a letter or digit',
      { where: 'NAME' },
    );
  }
}

/** Agents (sessions with a token) cannot reconfigure the city. */
export function refuseAgents(what: string): void {
  if (process.env.GC_TOKEN && process.env.GC_API) {
    throw new ForbiddenError(
      `agents cannot reconfigure the city (${what} are changed by its operator)`,
    );
  }
}

/**
 * Write `text` to `file` of the city at `root` and keep it only if the city
 * still loads; otherwise the file is restored (or removed, if it was new)
 * and the load's problems are the error.
 */
export async function writeChecked(root: string, file: string, text: string): Promise<void> {
  const { loadCityConfig, ConfigError, formatIssue } = await import('../config/index.js');
  const before = existsSync(file) ? await readFile(file, 'utf8') : undefined;
  await writeFile(file, text);
  try {
    await loadCityConfig(path.join(root, 'city.toml'));
  } catch (e) {
    if (before === undefined) await rm(file, { force: true });
    else await writeFile(file, before);
    if (e instanceof ConfigError) {
      throw new ValidationError(
        `the change would make the city invalid, so it was not made: ${e.issues.map(formatIssue).join('; ')}`,
        { where: file },
      );
    }
    throw e;
  }
}

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
