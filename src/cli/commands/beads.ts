/**
 * Bead command handlers, shared by `gc bead ...` and the `bd` entry point.
 * Each takes already-parsed options, talks to a CityClient, and renders.
 */
import { ValidationError } from '../../core/index.js';
import type {
  Bead,
  BeadStatus,
  Dependency,
  ListQuery,
  ReadyQuery,
  UpdateBeadInput,
} from '../../store/index.js';
import { ROUTED_TO } from '../../store/index.js';
import type { MoleculeProgress } from '../../dispatch/index.js';
import { withCity, type GlobalOptions } from '../context.js';
import { clip, printJson, printLine, table } from '../output.js';

export function parsePriority(value: string, where = '--priority'): number {
  const m = /^[Pp]?([0-4])$/.exec(value.trim());
  if (!m)
    throw new ValidationError(`expected 0-4 (or P0-P4), got ${JSON.stringify(value)}`, { where });
  return Number(m[1]);
}

export function parseStatus(value: string, where = '--status'): BeadStatus {
  const v = value.trim().replace('-', '_');
  if (v === 'open' || v === 'in_progress' || v === 'closed') return v;
  throw new ValidationError(`expected open, in_progress or closed, got ${JSON.stringify(value)}`, {
    where,
  });
}

export function parseKeyValues(
  pairs: string[] | undefined,
  where: string,
): Record<string, string> | undefined {
  if (!pairs || pairs.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const i = p.indexOf('=');
    if (i <= 0)
      throw new ValidationError(`expected key=value, got ${JSON.stringify(p)}`, { where });
    out[p.slice(0, i)] = p.slice(i + 1);
  }
  return out;
}

/** Split repeatable and comma-separated list options (`--label a --label b,c`). */
export function splitList(values: string[] | string | undefined): string[] | undefined {
  if (values === undefined) return undefined;
  const list = (Array.isArray(values) ? values : [values])
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter(Boolean);
  return list.length ? list : undefined;
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function beadRows(beads: Bead[]): string {
  return table(
    ['ID', 'P', 'STATUS', 'TYPE', 'ASSIGNEE', 'TITLE'],
    beads.map((b) => [
      b.id,
      `P${b.priority}`,
      b.status,
      b.issue_type,
      b.assignee || '-',
      clip(b.title),
    ]),
  );
}

export function renderBead(b: Bead): string {
  const lines = [`${b.id}  [P${b.priority} ${b.issue_type}]  ${b.status}`, `Title:     ${b.title}`];
  if (b.assignee)
    lines.push(
      `Assignee:  ${b.assignee}${b.status === 'in_progress' ? ` (attempt ${b.attempt}, lease until ${b.lease_expires_at ?? '-'})` : ''}`,
    );
  if (b.from) lines.push(`From:      ${b.from}`);
  if (b.parent) lines.push(`Parent:    ${b.parent}`);
  if (b.ref) lines.push(`Ref:       ${b.ref}`);
  if (b.labels.length) lines.push(`Labels:    ${b.labels.join(', ')}`);
  for (const [k, v] of Object.entries(b.metadata)) lines.push(`Meta:      ${k}=${v}`);
  for (const d of b.dependencies) lines.push(`Needs:     ${d.type} ${d.depends_on_id}`);
  const held = (b as Bead & { held?: string }).held;
  if (held) lines.push(`Held:      ${held}`);
  lines.push(`Created:   ${b.created_at}`);
  if (b.closed_at)
    lines.push(`Closed:    ${b.closed_at}${b.close_reason ? ` (${b.close_reason})` : ''}`);
  if (b.description) lines.push('', b.description);
  return lines.join('\n');
}

export interface CreateArgs {
  title: string;
  type?: string;
  priority?: string;
  description?: string;
  parent?: string;
  needs?: string[];
  labels?: string[];
  meta?: string[];
  assignee?: string;
  routedTo?: string;
}

/**
 * A --routed-to value as stored: an agent composed from a pack is routed by
 * its session name, so its Gas City name (`rig/name`, `binding.name`) is
 * resolved; anything else (a pool, a name not in city.toml) is kept.
 */
async function routedName(g: GlobalOptions, ref: string | undefined): Promise<string | undefined> {
  if (ref === undefined || !/[/.]/.test(ref)) return ref;
  const { agentRef } = await import('../names.js');
  try {
    return await agentRef(g, ref);
  } catch {
    return ref;
  }
}

export async function createBead(g: GlobalOptions, a: CreateArgs): Promise<void> {
  const metadata = parseKeyValues(a.meta, '--meta') ?? {};
  const routed = await routedName(g, a.routedTo);
  if (routed) metadata[ROUTED_TO] = routed;
  await withCity(g, 'bead create', async (city) => {
    const bead = await city.createBead({
      title: a.title,
      ...(a.type ? { type: a.type } : {}),
      ...(a.priority !== undefined ? { priority: parsePriority(a.priority) } : {}),
      ...(a.description !== undefined ? { description: a.description } : {}),
      ...(a.parent ? { parent: a.parent } : {}),
      ...(a.needs ? { needs: a.needs } : {}),
      ...(a.labels ? { labels: a.labels } : {}),
      ...(Object.keys(metadata).length ? { metadata } : {}),
      ...(a.assignee ? { assignee: a.assignee } : {}),
    });
    if (g.json) printJson(bead);
    else printLine(`created ${bead.id}: ${bead.title}`);
  });
}

export async function showBeads(g: GlobalOptions, ids: string[]): Promise<void> {
  const { MOL, MOLECULE, moleculeProgress } = await import('../../dispatch/index.js');
  await withCity(g, 'bead show', async (city) => {
    const shown: (Bead & { molecule?: MoleculeProgress })[] = [];
    for (const id of ids) {
      const b = await city.getBead(id);
      const key = b.metadata[MOL.key];
      if (b.issue_type !== MOLECULE || !key) {
        shown.push(b);
        continue;
      }
      // A molecule's root: its steps' progress, read through the client.
      const steps: Bead[] = [];
      let cursor: string | undefined;
      do {
        const p = await city.listBeads({
          metadata: { [MOL.key]: key },
          limit: 1000,
          ...(cursor ? { cursor } : {}),
        });
        steps.push(...p.items.filter((x) => x.id !== b.id));
        cursor = p.next_cursor ?? undefined;
      } while (cursor);
      shown.push({ ...b, molecule: moleculeProgress([b, ...steps]) });
    }
    if (g.json) printJson(shown.length === 1 ? shown[0] : shown);
    else printLine(shown.map((b) => renderBead(b) + progressText(b.molecule)).join('\n\n'));
  });
}

function progressText(m: MoleculeProgress | undefined): string {
  if (!m) return '';
  const ref = new Map(m.steps.map((s) => [s.id, s.ref.slice(m.formula.length + 1) || s.id]));
  const rows = m.steps.map((s) => [
    `  ${s.id}`,
    s.status,
    s.assignee || '-',
    ref.get(s.id)!,
    s.needs.map((n) => ref.get(n) ?? n).join(',') || '-',
    clip(s.title, 50),
  ]);
  return (
    `\n\nProgress:  ${m.closed}/${m.total} step(s) closed, ${m.in_progress} in progress\n` +
    table(['  ID', 'STATUS', 'ASSIGNEE', 'STEP', 'NEEDS', 'TITLE'], rows)
  );
}

export interface ListArgs {
  status?: string[];
  assignee?: string;
  type?: string;
  label?: string;
  parent?: string;
  meta?: string[];
  all?: boolean;
  allTypes?: boolean;
  limit?: string;
  cursor?: string;
}

export function parseLimit(value: string | undefined, where = '--limit'): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new ValidationError(`expected a positive integer, got ${JSON.stringify(value)}`, {
      where,
    });
  return n;
}

export async function listBeads(g: GlobalOptions, a: ListArgs): Promise<void> {
  const statuses = splitList(a.status)?.map((s) => parseStatus(s));
  const metadata = parseKeyValues(a.meta, '--meta');
  const limit = parseLimit(a.limit);
  const q: ListQuery = {
    ...(statuses ? { status: statuses } : {}),
    ...(a.assignee !== undefined ? { assignee: a.assignee } : {}),
    ...(a.type ? { type: a.type } : {}),
    // Work only, unless a type is asked for or every type is.
    ...(!a.type && !a.allTypes ? { work: true } : {}),
    ...(a.label ? { label: a.label } : {}),
    ...(a.parent ? { parent: a.parent } : {}),
    ...(metadata ? { metadata } : {}),
    ...(limit ? { limit } : {}),
    ...(a.cursor ? { cursor: a.cursor } : {}),
  };
  // Without a filter, list what is not closed; --all walks everything on purpose.
  if (a.all) q.scan = true;
  else if (!statuses) q.status = ['open', 'in_progress'];
  await withCity(g, 'bead list', async (city) => {
    const page = await city.listBeads(q);
    if (g.json) printJson(page.items);
    else {
      printLine(page.items.length ? beadRows(page.items) : 'no beads');
      if (page.next_cursor) printLine(`more: --cursor ${page.next_cursor}`);
    }
  });
}

export interface ReadyArgs {
  assignee?: string;
  unassigned?: boolean;
  type?: string;
  label?: string;
  routedTo?: string;
  /** KEY=VALUE metadata every bead must carry (repeatable). */
  metadataField?: string[];
  limit?: string;
  cursor?: string;
}

function readyQuery(
  a: Omit<ReadyArgs, 'routedTo'> & { routedTo?: string | undefined },
): ReadyQuery {
  const limit = parseLimit(a.limit);
  if (a.assignee !== undefined && a.unassigned) {
    throw new ValidationError('--assignee and --unassigned ask for opposite things: give one', {
      where: '--unassigned',
    });
  }
  const metadata = {
    ...parseKeyValues(a.metadataField, '--metadata-field'),
    ...(a.routedTo ? { [ROUTED_TO]: a.routedTo } : {}),
  };
  return {
    ...(a.assignee !== undefined ? { assignee: a.assignee } : {}),
    ...(a.unassigned ? { unassigned: true } : {}),
    ...(a.type ? { type: a.type } : {}),
    ...(a.label ? { label: a.label } : {}),
    ...(Object.keys(metadata).length ? { metadata } : {}),
    ...(limit ? { limit } : {}),
    ...(a.cursor ? { cursor: a.cursor } : {}),
  };
}

export async function readyBeads(g: GlobalOptions, a: ReadyArgs): Promise<void> {
  await withCity(g, 'bead ready', async (city) => {
    const page = await city.readyBeads(
      readyQuery({ ...a, routedTo: await routedName(g, a.routedTo) }),
    );
    if (g.json) printJson(page.items);
    else {
      printLine(page.items.length ? beadRows(page.items) : 'no ready work');
      if (page.next_cursor) printLine(`more: --cursor ${page.next_cursor}`);
    }
  });
}

export interface UpdateArgs {
  title?: string;
  status?: string;
  priority?: string;
  assignee?: string;
  description?: string;
  type?: string;
  parent?: string;
  addLabel?: string[];
  removeLabel?: string[];
  setMetadata?: string[];
  claim?: boolean;
}

export async function updateBead(g: GlobalOptions, id: string, a: UpdateArgs): Promise<void> {
  const patch: UpdateBeadInput = {
    ...(a.title !== undefined ? { title: a.title } : {}),
    ...(a.status !== undefined ? { status: parseStatus(a.status) } : {}),
    ...(a.priority !== undefined ? { priority: parsePriority(a.priority) } : {}),
    ...(a.assignee !== undefined ? { assignee: a.assignee } : {}),
    ...(a.description !== undefined ? { description: a.description } : {}),
    ...(a.type !== undefined ? { type: a.type } : {}),
    ...(a.parent !== undefined ? { parent: a.parent } : {}),
  };
  const labels = splitList(a.addLabel);
  if (labels) patch.labels = labels;
  const remove = splitList(a.removeLabel);
  if (remove) patch.remove_labels = remove;
  const metadata = parseKeyValues(a.setMetadata, '--set-metadata');
  if (metadata) patch.metadata = metadata;
  if (!a.claim && Object.keys(patch).length === 0) {
    throw new ValidationError('nothing to update: pass at least one field option (see --help)', {
      where: 'update',
    });
  }
  await withCity(g, 'bead update', async (city) => {
    let bead: Bead | undefined;
    if (a.claim) bead = await city.claimBead(id);
    if (Object.keys(patch).length) bead = await city.updateBead(id, patch);
    if (g.json) printJson(bead);
    else printLine(`updated ${id}${a.claim ? ` (claimed by ${city.actor})` : ''}`);
  });
}

export async function claimBead(
  g: GlobalOptions,
  id: string | undefined,
  a: ReadyArgs & { lease?: string; wait?: string },
): Promise<void> {
  const waitS = a.wait === undefined ? 0 : Number(a.wait);
  if (!Number.isFinite(waitS) || waitS < 0 || waitS > 30) {
    throw new ValidationError(`expected seconds from 0 to 30, got ${JSON.stringify(a.wait)}`, {
      where: '--wait',
    });
  }
  let leaseMs: number | undefined;
  if (a.lease) {
    const { parseDuration } = await import('../../core/index.js');
    try {
      leaseMs = parseDuration(a.lease);
    } catch (err) {
      throw new ValidationError((err as Error).message, { where: '--lease' });
    }
  }
  await withCity(g, 'bead claim', async (city) => {
    const bead = id
      ? await city.claimBead(id, leaseMs !== undefined ? { leaseMs } : {})
      : await city.claimNext({
          ...readyQuery({ ...a, routedTo: await routedName(g, a.routedTo) }),
          ...(leaseMs !== undefined ? { leaseMs } : {}),
          ...(waitS ? { waitMs: waitS * 1000 } : {}),
        });
    if (g.json) printJson(bead);
    else
      printLine(
        bead
          ? `claimed ${bead.id} as ${city.actor} (attempt ${bead.attempt}): ${bead.title}`
          : 'no ready work to claim',
      );
  });
}

export async function unclaimBead(
  g: GlobalOptions,
  id: string,
  a: { force?: boolean },
): Promise<void> {
  await withCity(g, 'bead unclaim', async (city) => {
    const bead = await city.unclaimBead(id, a.force ? { force: true } : {});
    if (g.json) printJson(bead);
    else if (!bead.changed)
      printLine(`${id} was not claimed (it is ${bead.status}); nothing changed`);
    else printLine(`unclaimed ${id}; it is open again`);
  });
}

export async function closeBeads(
  g: GlobalOptions,
  ids: string[],
  a: { reason?: string },
): Promise<void> {
  await withCity(g, 'bead close', async (city) => {
    const out: Bead[] = [];
    for (const id of ids) {
      const r = await city.closeBead(id, a.reason);
      out.push(r.bead);
      if (!g.json) printLine(r.changed ? `closed ${id}` : `${id} was already closed`);
    }
    if (g.json) printJson(out.length === 1 ? out[0] : out);
  });
}

export async function depAdd(
  g: GlobalOptions,
  issue: string,
  dependsOn: string,
  a: { type?: string },
): Promise<void> {
  await withCity(g, 'bead dep add', async (city) => {
    await city.addDependency(issue, dependsOn, a.type ?? 'blocks');
    const dep: Dependency = { issue_id: issue, depends_on_id: dependsOn, type: a.type ?? 'blocks' };
    if (g.json) printJson(dep);
    else printLine(`${issue} now depends on ${dependsOn} (${dep.type})`);
  });
}

export async function depRemove(g: GlobalOptions, issue: string, dependsOn: string): Promise<void> {
  await withCity(g, 'bead dep remove', async (city) => {
    const removed = await city.removeDependency(issue, dependsOn);
    if (g.json) printJson({ issue_id: issue, depends_on_id: dependsOn, removed });
    else if (!removed) printLine(`${issue} does not depend on ${dependsOn}; nothing changed`);
    else printLine(`removed ${issue} -> ${dependsOn}`);
  });
}

export async function depList(g: GlobalOptions, id: string, a: { up?: boolean }): Promise<void> {
  await withCity(g, 'bead dep list', async (city) => {
    const deps = await city.listDependencies(id, a.up ? 'up' : 'down');
    if (g.json) printJson(deps);
    else if (deps.length === 0)
      printLine(a.up ? `nothing depends on ${id}` : `${id} depends on nothing`);
    else
      printLine(
        table(
          ['ISSUE', 'TYPE', 'DEPENDS ON'],
          deps.map((d) => [d.issue_id, d.type, d.depends_on_id]),
        ),
      );
  });
}
