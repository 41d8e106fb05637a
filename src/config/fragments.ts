/**
 * city.toml `include = ["agents.toml", ...]`: fragments, TOML files (paths
 * from the city root) holding more of the city's own `[[agent]]` tables. They
 * count as city.toml's own agents, after its inline ones: they win over pack
 * agents of the same name, and every mistake in one is reported at its file
 * and line. A fragment holds agents only in this build; any other key in it
 * is an error saying to move it to city.toml (nothing is dropped silently),
 * and fragments do not include further fragments.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { issueAt, type ExtraAgent, type PackIssue } from './pack.js';
import { keyPositions, type Position } from './toml-positions.js';

type Raw = Record<string, unknown>;

export async function readFragments(
  root: string,
  cityRaw: Raw,
  file: string,
  positions: Map<string, Position>,
): Promise<{ agents: ExtraAgent[]; errors: PackIssue[] }> {
  const agents: ExtraAgent[] = [];
  const errors: PackIssue[] = [];
  const list = cityRaw.include;
  if (list === undefined) return { agents, errors };
  if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) {
    errors.push(issueAt(file, positions, ['include'], 'expected a list of TOML file paths'));
    return { agents, errors };
  }
  for (const [i, rel] of list.entries()) {
    const frag = path.resolve(root, rel);
    let source: string;
    try {
      source = await readFile(frag, 'utf8');
    } catch (e) {
      errors.push({
        ...issueAt(file, positions, ['include', i], ''),
        message: `cannot read fragment ${rel}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; fix the path (from the city root) or remove it`,
      });
      continue;
    }
    let raw: Raw;
    try {
      raw = parse(source);
    } catch (e) {
      if (!(e instanceof TomlError)) throw e;
      errors.push({
        file: frag,
        path: '',
        line: e.line,
        col: e.column,
        message: `TOML syntax error: ${e.message.split('\n')[0]?.replace(/^Invalid TOML document: /, '') ?? ''}`,
      });
      continue;
    }
    const at = keyPositions(source);
    for (const key of Object.keys(raw)) {
      if (key === 'agent') continue;
      errors.push(
        issueAt(
          frag,
          at,
          Array.isArray(raw[key]) ? [key, 0] : [key],
          `a fragment holds [[agent]] tables only in this build; move ${key} to city.toml`,
        ),
      );
    }
    const list = raw.agent;
    if (list === undefined) continue;
    if (!Array.isArray(list)) {
      errors.push(issueAt(frag, at, ['agent'], 'expected [[agent]] tables'));
      continue;
    }
    list.forEach((a, j) => {
      if (a && typeof a === 'object' && !Array.isArray(a)) {
        agents.push({ raw: a as Raw, file: frag, prefix: ['agent', j], positions: at });
      } else errors.push(issueAt(frag, at, ['agent', j], 'expected an [[agent]] table'));
    });
  }
  return { agents, errors };
}
