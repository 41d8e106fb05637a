/**
 * A formula slung to a pool of scripted agents (examples/agents/worker.sh,
 * real subprocess sessions, the gc CLI only): every step is done once, in
 * dependency order; containers close themselves, then the molecule's root,
 * then its convoy; the event log replays to the store.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replayBeads } from '../src/city/index.js';
import type { MoleculeProgress } from '../src/dispatch/index.js';
import type { GcEvent } from '../src/events/index.js';
import type { Bead } from '../src/store/index.js';
import { REPO, cityCli } from './helpers/cli.js';
import { until } from './helpers/wait.js';

const AGENTS = path.join(REPO, 'examples', 'agents');

/** prep; three builds in parallel after it; docs on its own; a test epic; ship last. */
const RELEASE = `description = "Release {{version}}"
[vars.version]
required = true
pattern = "[0-9]+\\\\.[0-9]+"

[[steps]]
id = "prep"
title = "Prepare {{version}}"

[[steps]]
id = "build-a"
needs = ["prep"]
[[steps]]
id = "build-b"
needs = ["prep"]
[[steps]]
id = "build-c"
needs = ["prep"]

[[steps]]
id = "docs"
title = "Write the notes for {{version}}"

[[steps]]
id = "test"
needs = ["build-a", "build-b", "build-c"]
[[steps.children]]
id = "unit"
[[steps.children]]
id = "e2e"
needs = ["unit"]

[[steps]]
id = "ship"
title = "Ship {{version}}"
needs = ["test", "docs"]
`;

let root = '';
const { g, json } = cityCli(() => root);

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'gc-molecule-'));
  await mkdir(path.join(root, 'formulas'));
  await writeFile(path.join(root, 'formulas', 'release.toml'), RELEASE);
  await writeFile(
    path.join(root, 'city.toml'),
    `[workspace]
name = "mol"
prefix = "mol"
[session]
provider = "subprocess"
[daemon]
patrol_interval = "500ms"
shutdown_timeout = "2s"
[[agent]]
name = "w"
start_command = "${AGENTS}/worker.sh"
max_active_sessions = 4
env = { GC_WORK_SECONDS = "1", GC_IDLE_SECONDS = "1" }
`,
  );
  const r = await g('start');
  expect(r.code, r.stderr).toBe(0);
}, 60_000);

afterAll(async () => {
  if (!root) return;
  await g('stop');
  await rm(root, { recursive: true, force: true });
});

describe('a formula slung to a pool', { timeout: 240_000 }, () => {
  it('does every step once, in dependency order; the root and the convoy close; the log replays', async () => {
    const bad = await g('sling', 'w', 'release', '--formula', '--var', 'version=one');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/release\.toml:\d+:\d+: vars\.version: version=one does not match/);
    expect((await json<Bead[]>('bead', 'list', '--type', 'molecule')).length).toBe(0);

    const r = await json<{ root: Bead; steps: Bead[]; convoy: string; target: string }>(
      'sling',
      'w',
      'release',
      '--formula',
      '--var',
      'version=2.1',
    );
    expect(r.target).toBe('w');
    const refs = r.steps.map((s) => s.metadata['gc.step_ref']);
    expect(refs.sort()).toEqual(
      [
        'build-a',
        'build-b',
        'build-c',
        'docs',
        'prep',
        'ship',
        'test',
        'test.e2e',
        'test.unit',
      ].map((x) => `release.${x}`),
    );
    const byRef = new Map(r.steps.map((s) => [s.metadata['gc.step_ref']!, s]));
    expect(byRef.get('release.ship')!.title).toBe('Ship 2.1');
    expect(r.root.parent).toBe(r.convoy);

    // The root closes by itself once every step is closed; then the convoy.
    const done = await until(
      'the molecule to complete',
      () => json<Bead & { molecule: MoleculeProgress }>('bead', 'show', r.root.id),
      (b) => b.status === 'closed',
      180_000,
      500,
    );
    expect(done.molecule).toMatchObject({ total: 9, closed: 9, in_progress: 0 });
    await until(
      'the convoy to close',
      () => json<Bead>('bead', 'show', r.convoy),
      (c) => c.status === 'closed',
      30_000,
      250,
    );
    const text = await g('bead', 'show', r.root.id);
    expect(text.stdout).toMatch(/Progress: {2}9\/9 step\(s\) closed/);

    const events = await json<GcEvent[]>('events', '--limit', '10000');
    const claimedAt = new Map<string, number[]>();
    const closedAt = new Map<string, number[]>();
    for (const e of events) {
      const at = (m: Map<string, number[]>) =>
        m.set(e.subject!, [...(m.get(e.subject!) ?? []), e.seq]);
      if (e.type === 'bead.closed') at(closedAt);
      if (e.type === 'bead.updated' && (e.payload as { action?: string }).action === 'claim')
        at(claimedAt);
    }
    // Leaf steps: claimed by a worker and closed once each; containers: closed by the molecule.
    const containers = new Set(['release.test']);
    for (const s of r.steps) {
      const ref = s.metadata['gc.step_ref']!;
      expect(closedAt.get(s.id), ref).toHaveLength(1);
      if (!containers.has(ref)) expect(claimedAt.get(s.id)?.length ?? 0, ref).toBeGreaterThan(0);
    }
    // In dependency order: no step was claimed before what it needs was closed.
    const needs: [string, string][] = [
      ['build-a', 'prep'],
      ['build-b', 'prep'],
      ['build-c', 'prep'],
      ['test.unit', 'build-a'],
      ['test.unit', 'build-b'],
      ['test.unit', 'build-c'],
      ['test.e2e', 'test.unit'],
      ['ship', 'test.e2e'],
      ['ship', 'docs'],
    ];
    for (const [step, need] of needs) {
      const s = byRef.get(`release.${step}`)!.id;
      const n = byRef.get(`release.${need}`)!.id;
      expect(Math.min(...claimedAt.get(s)!), `${step} after ${need}`).toBeGreaterThan(
        closedAt.get(n)![0]!,
      );
    }
    // The builds ran side by side: more than one worker held a build at once.
    const workers = new Set(
      events
        .filter(
          (e) =>
            e.type === 'bead.updated' &&
            (e.payload as { action?: string }).action === 'claim' &&
            r.steps.some((s) => s.id === e.subject),
        )
        .map((e) => (e.payload as { assignee?: string }).assignee ?? e.actor),
    );
    expect(workers.size).toBeGreaterThan(1);

    const kinds = events.map((e) => e.type);
    expect(kinds).toContain('molecule.created');
    expect(kinds).toContain('molecule.completed');
    expect(events.filter((e) => e.type === 'convoy.closed').map((e) => e.subject)).toContain(
      r.convoy,
    );

    // The event log replays to the store's state.
    const replayed = replayBeads(events);
    for (const id of [r.root.id, r.convoy, ...r.steps.map((s) => s.id)]) {
      const b = await json<Bead>('bead', 'show', id);
      const rb = replayed.get(id);
      expect({ status: rb?.status, assignee: rb?.assignee, attempt: rb?.attempt }, id).toEqual({
        status: b.status,
        assignee: b.assignee,
        attempt: b.attempt,
      });
    }
  });
});
