/** `gc dashboard`: a one-time login link to the city's web dashboard, opened in a browser if asked. */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ValidationError, startProcess } from '../../core/index.js';
import { withCity, type GlobalOptions } from '../context.js';
import { printJson, printLine } from '../output.js';

export interface DashboardOptions {
  role?: string;
  hours?: string;
  open?: boolean;
}

export async function dashboard(g: GlobalOptions, o: DashboardOptions): Promise<void> {
  const role = o.role ?? 'operator';
  if (role !== 'viewer' && role !== 'operator') {
    throw new ValidationError(`must be viewer or operator, not ${JSON.stringify(role)}`, {
      where: '--role',
    });
  }
  const hours = o.hours === undefined ? 12 : Number(o.hours);
  if (!Number.isInteger(hours) || hours < 1 || hours > 168) {
    throw new ValidationError(`must be a whole number of hours from 1 to 168, not ${o.hours}`, {
      where: '--hours',
    });
  }
  await withCity(g, 'dashboard', async (city) => {
    const link = await city.dashboardLink({ role, hours });
    let opened = '';
    if (o.open) opened = await openInBrowser(link.url);
    if (g.json) {
      printJson({ ...link, ...(o.open ? { opened } : {}) });
      return;
    }
    printLine(link.url);
    printLine(
      `one-time ${link.role} login link, good until ${link.expires_at}; the session lasts ${link.session_hours} h`,
    );
    if (opened) printLine(opened);
  });
}

const escapeAttr = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * Open the link without putting it in any program's arguments (it is a
 * secret until used): a private page that moves on to it is what the
 * browser opener is given.
 */
async function openInBrowser(url: string): Promise<string> {
  const file = path.join(tmpdir(), `gc-dashboard-${randomBytes(8).toString('hex')}.html`);
  writeFileSync(
    file,
    `<!doctype html><meta charset="utf-8"><meta name="referrer" content="no-referrer"><meta http-equiv="refresh" content="0; url=${escapeAttr(url)}"><title>gc dashboard</title>`,
    { mode: 0o600 },
  );
  const opener =
    process.env.BROWSER ||
    (process.platform === 'darwin'
      ? 'open'
      : process.platform === 'win32'
        ? 'explorer'
        : 'xdg-open');
  const p = startProcess(opener, [file], { detached: true, stdio: 'ignore' });
  try {
    await p.started;
    p.child?.unref();
    return `opened with ${opener} (through ${file})`;
  } catch (e) {
    return `could not open a browser with ${opener} (${e instanceof Error ? e.message : String(e)}): open the link yourself`;
  }
}
