/**
 * `gc auth ...`: API keys and external agents, through the running server
 * (admin only; operators may register agents).
 */
import type { RemoteCity } from '../../client/index.js';
import { requireServer, type GlobalOptions } from '../context.js';
import { printJson, printLine, table } from '../output.js';

interface PrincipalRow {
  key_id: string;
  kind: string;
  name: string;
  owner: string;
  max_sessions: number;
  webhook_url: string;
  created_at: string;
  revoked_at: string | null;
}

function showCreated(g: GlobalOptions, r: { token: string; principal: PrincipalRow }): void {
  if (g.json) return printJson(r);
  printLine(`${r.principal.kind} key ${r.principal.key_id} for ${r.principal.name}:`);
  printLine(r.token);
  printLine('(shown once: store it now; the city keeps only a keyed hash)');
}

export async function keyCreate(
  g: GlobalOptions,
  o: { kind: string; name: string; maxSessions?: string },
): Promise<void> {
  const city = await requireServer(g);
  const r = await city.call<{ token: string; principal: PrincipalRow }>('POST', '/v0/keys', {
    kind: o.kind,
    name: o.name,
    ...(o.maxSessions !== undefined ? { max_sessions: Number(o.maxSessions) } : {}),
  });
  showCreated(g, r);
}

function listRows(g: GlobalOptions, items: PrincipalRow[]): void {
  if (g.json) return printJson(items);
  if (!items.length) return printLine('none');
  printLine(
    table(
      ['KEY', 'KIND', 'NAME', 'OWNER', 'CREATED', 'REVOKED'],
      items.map((p) => [
        p.key_id,
        p.kind,
        p.name,
        p.owner || '-',
        p.created_at,
        p.revoked_at ?? '-',
      ]),
    ),
  );
}

async function allPages(city: RemoteCity, url: string): Promise<PrincipalRow[]> {
  const out: PrincipalRow[] = [];
  let after = 0;
  for (;;) {
    const sep = url.includes('?') ? '&' : '?';
    const page = await city.call<{ items: PrincipalRow[]; next_after: number | null }>(
      'GET',
      `${url}${sep}after=${after}&limit=500`,
    );
    out.push(...page.items);
    if (page.next_after === null) return out;
    after = page.next_after;
  }
}

export async function keyList(
  g: GlobalOptions,
  o: { kind?: string; all?: boolean },
): Promise<void> {
  const city = await requireServer(g);
  const q = [o.kind ? `kind=${encodeURIComponent(o.kind)}` : '', o.all ? 'revoked=true' : '']
    .filter(Boolean)
    .join('&');
  listRows(g, await allPages(city, `/v0/keys${q ? `?${q}` : ''}`));
}

export async function keyRevoke(g: GlobalOptions, id: string): Promise<void> {
  const city = await requireServer(g);
  const p = await city.call<PrincipalRow>('DELETE', `/v0/keys/${encodeURIComponent(id)}`);
  if (g.json) printJson(p);
  else printLine(`revoked ${p.kind} key ${p.key_id} (${p.name})`);
}

export async function agentRegister(
  g: GlobalOptions,
  name: string,
  o: { webhook?: string },
): Promise<void> {
  const city = await requireServer(g);
  const r = await city.call<{ token: string; principal: PrincipalRow }>('POST', '/v0/agents', {
    name,
    ...(o.webhook ? { webhook_url: o.webhook } : {}),
  });
  showCreated(g, r);
}

export async function agentList(g: GlobalOptions): Promise<void> {
  const city = await requireServer(g);
  listRows(g, await allPages(city, '/v0/agents'));
}
