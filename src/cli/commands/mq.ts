/**
 * `gc mq ...`: submit, list, status, reject, retry, stats. Through the
 * running server when there is one (agents always, as themselves); on the
 * city files otherwise, where a submission waits until the server runs.
 */
import { GcError, ValidationError } from '../../core/index.js';
import { Git } from '../../git/index.js';
import type { MergeRequest, MrState, RigStats } from '../../refinery/index.js';
import { withCity, type GlobalOptions } from '../context.js';
import { clip, printJson, printLine, table } from '../output.js';

export interface SubmitOptions {
  branch?: string;
  bead?: string;
  rig?: string;
  priority?: string;
}

const when = (ms: number | null) =>
  ms ? new Date(ms).toISOString().slice(0, 19).replace('T', ' ') : '-';

function priorityOf(p: string | undefined): number | undefined {
  if (p === undefined) return undefined;
  const n = Number(p.replace(/^P/i, ''));
  if (!Number.isInteger(n) || n < 0 || n > 4) {
    throw new ValidationError('must be 0..4', { where: '--priority' });
  }
  return n;
}

export async function submit(g: GlobalOptions, o: SubmitOptions): Promise<void> {
  let branch = o.branch;
  let head: string | undefined;
  if (!branch) {
    // The caller's current branch, at the commit checked out here.
    const here = new Git(process.cwd());
    branch = await here.currentBranch().catch(() => undefined);
    if (!branch) {
      throw new GcError(
        'invalid',
        'no current branch here (detached HEAD, or not a git work tree)',
        {
          fix: 'pass --branch NAME',
        },
      );
    }
    head = await here.resolve('HEAD');
  }
  const priority = priorityOf(o.priority);
  const rig = o.rig ?? (process.env.GC_RIG || undefined);
  await withCity(g, 'mq submit', async (city) => {
    let bead = o.bead;
    if (bead === undefined) {
      // Default: the one bead the caller holds.
      const held = await city.listBeads({ assignee: city.actor, status: 'in_progress', limit: 2 });
      if (held.items.length === 1) bead = held.items[0]!.id;
    }
    const r = await city.mqSubmit({
      branch,
      ...(head ? { head } : {}),
      ...(rig ? { rig } : {}),
      ...(bead ? { bead } : {}),
      ...(priority !== undefined ? { priority } : {}),
    });
    if (g.json) {
      printJson(r);
      return;
    }
    printLine(
      r.created
        ? `submitted ${r.id}: ${r.branch} at ${r.head.slice(0, 10)} to rig ${r.rig}${r.bead ? ` (bead ${r.bead})` : ''}`
        : `already submitted as ${r.id} (${r.state}): same branch and commit`,
    );
    if (r.superseded.length) printLine(`replaces ${r.superseded.join(', ')}`);
  });
}

export async function list(
  g: GlobalOptions,
  o: { rig?: string; state?: string; limit?: string; all?: boolean },
): Promise<void> {
  const states = o.state
    ? (o.state.split(',').map((s) => s.trim()) as MrState[])
    : o.all
      ? undefined
      : (['queued', 'testing', 'merging', 'needs-rebase', 'needs-fix'] as MrState[]);
  const limit = o.limit ? Number(o.limit) : 100;
  if (!Number.isInteger(limit) || limit < 1) {
    throw new ValidationError('must be a positive integer', { where: '--limit' });
  }
  await withCity(g, 'mq list', async (city) => {
    const page = await city.mqList({
      ...(o.rig ? { rig: o.rig } : {}),
      ...(states ? { states } : {}),
      limit,
    });
    if (g.json) {
      printJson(page.items);
      return;
    }
    if (!page.items.length) {
      printLine(o.all || o.state ? 'no merge requests' : 'the queue is empty');
      return;
    }
    printLine(
      table(
        ['ID', 'RIG', 'STATE', 'P', 'BRANCH', 'AUTHOR', 'BEAD', 'SUBMITTED'],
        page.items.map((m) => [
          m.id,
          m.rig,
          m.state,
          String(m.priority),
          clip(m.branch, 40),
          m.author,
          m.bead || '-',
          when(m.submitted_at),
        ]),
      ),
    );
  });
}

function showRequest(m: MergeRequest): void {
  printLine(`${m.id}  ${m.state}  rig ${m.rig}  priority ${m.priority}  retries ${m.retries}`);
  printLine(`branch ${m.branch} at ${m.head}`);
  printLine(`author ${m.author || '-'}${m.bead ? `  bead ${m.bead}` : ''}`);
  printLine(
    `submitted ${when(m.submitted_at)}  started ${when(m.started_at)}  finished ${when(m.finished_at)}`,
  );
  if (m.base) printLine(`base ${m.base}${m.tested ? `  tested ${m.tested}` : ''}`);
  if (m.merged_sha) printLine(`merged as ${m.merged_sha}`);
  if (m.reason)
    printLine(`reason: ${m.reason}${m.conflict_bead ? ` (conflict bead ${m.conflict_bead})` : ''}`);
  if (m.detail) {
    printLine();
    printLine(m.detail);
  }
}

/** States of a request still in the queue's hands. */
const IN_QUEUE = new Set(['queued', 'testing', 'merging']);

export async function status(
  g: GlobalOptions,
  id: string,
  o: { wait?: boolean; timeout?: string } = {},
): Promise<void> {
  const timeoutS = o.timeout === undefined ? 3600 : Number(o.timeout);
  if (!Number.isFinite(timeoutS) || timeoutS < 0) {
    throw new ValidationError(`expected seconds, got ${JSON.stringify(o.timeout)}`, {
      where: '--timeout',
    });
  }
  await withCity(
    g,
    'mq status',
    async (city) => {
      // --wait: until the request leaves the queue (merged, needs-rebase,
      // needs-fix, ...), one held request at a time, not a poll.
      const deadline = Date.now() + timeoutS * 1000;
      let m = await city.mqGet(id);
      if (o.wait && IN_QUEUE.has(m.state) && city.kind === 'local') {
        throw new GcError('unavailable', `${id} is ${m.state} and no city server runs to move it`, {
          fix: 'gc start',
        });
      }
      while (o.wait && IN_QUEUE.has(m.state) && Date.now() < deadline) {
        m = await city.mqGet(id, { waitMs: Math.min(deadline - Date.now(), 30_000) });
      }
      if (g.json) printJson(m);
      else showRequest(m);
      if (o.wait && IN_QUEUE.has(m.state)) process.exitCode = 1;
    },
    { readonly: true },
  );
}

export async function reject(g: GlobalOptions, id: string, o: { reason?: string }): Promise<void> {
  await withCity(g, 'mq reject', async (city) => {
    const m = await city.mqReject(id, o.reason);
    if (g.json) printJson(m);
    else printLine(`rejected ${m.id} (${m.branch})`);
  });
}

export async function retry(g: GlobalOptions, id: string): Promise<void> {
  await withCity(g, 'mq retry', async (city) => {
    const m = await city.mqRetry(id);
    if (g.json) printJson(m);
    else printLine(`queued ${m.id} again (retry ${m.retries})`);
  });
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;
const pctText = (x: number) => `${Math.round(x * 100)}%`;

export async function stats(g: GlobalOptions, o: { rig?: string }): Promise<void> {
  await withCity(
    g,
    'mq stats',
    async (city) => {
      const all: RigStats[] = await city.mqStats(o.rig);
      if (g.json) {
        printJson(all);
        return;
      }
      if (!all.length) {
        printLine('no rigs');
        return;
      }
      printLine(
        table(
          [
            'RIG',
            'DEPTH',
            'IN FLIGHT',
            'MERGED/H',
            'MERGED',
            'CONFLICTS',
            'GATE FAILS',
            'WAIT P50/P95',
            'MERGE P50/P95',
            'GATE RUNS',
            'BATCH MEAN/MAX',
            'BISECT',
            'WASTED',
          ],
          all.map((s) => [
            s.rig,
            String(s.depth),
            String(s.in_flight),
            String(s.merges_per_hour),
            String(s.merged_total),
            pctText(s.conflict_rate),
            pctText(s.gate_failure_rate),
            `${secs(s.wait_ms_p50)}/${secs(s.wait_ms_p95)}`,
            `${secs(s.merge_ms_p50)}/${secs(s.merge_ms_p95)}`,
            String(s.gate_runs),
            `${s.batch_size_mean}/${s.batch_size_max}`,
            s.batch_splits ? `${s.batch_splits} (depth ${s.bisect_depth_max})` : '0',
            String(s.wasted_builds),
          ]),
        ),
      );
    },
    { readonly: true },
  );
}
