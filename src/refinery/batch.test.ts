/**
 * Batched merges against real git: a green batch lands with one gate run,
 * a red batch is bisected until only its culprits go back, a conflict
 * splits a batch around it, and merge order holds throughout.
 */
import { describe, expect, it } from 'vitest';
import { branchWith, git, subjects } from '../../test/helpers/git.js';
import { mainCommits, setup, type Setup } from '../../test/helpers/mq.js';
import { waitFor } from '../../test/helpers/wait.js';

async function submitAll(s: Setup, branches: Record<string, Record<string, string>>) {
  const ids: Record<string, string> = {};
  for (const [b, files] of Object.entries(branches)) {
    branchWith(s.repo, b, files);
    ids[b] = (await s.refinery.submit('polecat', { rig: 'app', branch: b })).request.id;
  }
  return ids;
}

/** Every position main's ref took after the start (its reflog), oldest first. */
function refPositions(repo: string): string[] {
  return git(repo, 'reflog', 'show', '--format=%H', 'refs/heads/main')
    .split('\n')
    .filter(Boolean)
    .reverse()
    .slice(1);
}

describe('batched merges', () => {
  it('a green batch lands every request in order with one gate run', async () => {
    const s = await setup({ start: false, batch: 4 });
    const ids = await submitAll(s, {
      a: { 'a.txt': 'a' },
      b: { 'b.txt': 'b' },
      c: { 'c.txt': 'c' },
      d: { 'd.txt': 'd' },
    });
    await s.refinery.start();
    await s.refinery.idle();
    expect(subjects(s.repo).slice(1)).toEqual([
      'a: change a.txt',
      'b: change b.txt',
      'c: change c.txt',
      'd: change d.txt',
    ]);
    expect(s.tested()).toHaveLength(1);
    const commits = mainCommits(s.repo);
    for (const [i, b] of ['a', 'b', 'c', 'd'].entries()) {
      const mr = await s.queue.get(ids[b]!);
      expect(mr.state).toBe('merged');
      // Each request's own commit, not the batch tip.
      expect(mr.merged_sha).toBe(commits[i]);
    }
    // The target moved once, to the tested tip.
    expect(refPositions(s.repo)).toEqual([commits[3]]);
    expect(new Set(s.tested())).toEqual(new Set(refPositions(s.repo)));
    expect(await s.queue.stats('app')).toMatchObject({
      merged_total: 4,
      builds: 1,
      gate_runs: 1,
      batch_size_max: 4,
    });
  });

  it('a red batch with one culprit: bisected, only the culprit goes back, the rest land in order', async () => {
    const s = await setup({ start: false, batch: 4 });
    const ids = await submitAll(s, {
      a: { 'a.txt': 'a' },
      b: { 'b.txt': 'b' },
      c: { broken: 'yes' },
      d: { 'd.txt': 'd' },
    });
    await s.refinery.start();
    await s.refinery.idle();
    expect(await s.queue.get(ids.c!)).toMatchObject({ state: 'needs-fix', reason: 'test' });
    for (const b of ['a', 'b', 'd']) expect((await s.queue.get(ids[b]!)).state).toBe('merged');
    expect(subjects(s.repo).slice(1)).toEqual([
      'a: change a.txt',
      'b: change b.txt',
      'd: change d.txt',
    ]);
    expect(git(s.repo, 'ls-tree', '--name-only', 'main')).not.toContain('broken');
    // Every ref position is a tested commit.
    const tested = new Set(s.tested());
    for (const p of refPositions(s.repo)) expect(tested.has(p)).toBe(true);
    const stats = await s.queue.stats('app');
    expect(stats.batch_splits).toBeGreaterThanOrEqual(2);
    expect(stats.bisect_depth_max).toBe(2);
    const splits = (await s.events.list({ type: 'mq.batch_split', limit: 100 })).items;
    expect(splits[0]!.payload).toMatchObject({ reason: 'failed', depth: 1 });
    // Only the culprit's author heard of a failure.
    const mail = (await s.mail.check('polecat')).items.map((m) => m.subject);
    expect(mail.filter((m) => !m.startsWith('Merged'))).toEqual(['Gate test failed: c']);
  });

  it('a red batch with two culprits sends both back and lands the rest', async () => {
    const s = await setup({ start: false, batch: 4 });
    const ids = await submitAll(s, {
      a: { broken: 'a' },
      b: { 'b.txt': 'b' },
      c: { 'c.txt': 'c' },
      d: { 'd/broken': 'd', broken: 'd' },
    });
    await s.refinery.start();
    await s.refinery.idle();
    expect((await s.queue.get(ids.a!)).state).toBe('needs-fix');
    expect((await s.queue.get(ids.d!)).state).toBe('needs-fix');
    expect((await s.queue.get(ids.b!)).state).toBe('merged');
    expect((await s.queue.get(ids.c!)).state).toBe('merged');
    expect(subjects(s.repo).slice(1)).toEqual(['b: change b.txt', 'c: change c.txt']);
    const tested = new Set(s.tested());
    for (const p of refPositions(s.repo)) expect(tested.has(p)).toBe(true);
  });

  it('a conflict with the candidate before splits a batch around the conflicting request', async () => {
    const s = await setup({ start: false, batch: 2, workers: 2 });
    // Batch 1 = [a, b]; c would conflict with a, so it leads batch 2 = [c, d],
    // which is built on batch 1's tip: c conflicts there, d goes on alone.
    const ids = await submitAll(s, {
      a: { 'README.md': 'from a\n' },
      b: { 'b.txt': 'b' },
      c: { 'README.md': 'from c\n' },
      d: { 'd.txt': 'd' },
    });
    await s.refinery.start();
    await s.refinery.idle();
    expect(await s.queue.get(ids.c!)).toMatchObject({ state: 'needs-rebase', detail: 'README.md' });
    for (const b of ['a', 'b', 'd']) expect((await s.queue.get(ids[b]!)).state).toBe('merged');
    const split = (await s.events.list({ type: 'mq.batch_split', limit: 10 })).items[0]!;
    expect(split.payload).toMatchObject({ reason: 'conflict' });
    expect((split.payload as { parts: string[][] }).parts).toEqual([[ids.c], [ids.d]]);
  });

  it('a request that conflicts with the target is sent back before it joins a batch', async () => {
    const s = await setup({ start: false, batch: 4 });
    branchWith(s.repo, 'c', { 'README.md': 'from c\n' });
    branchWith(s.repo, 'moved', { 'README.md': 'moved on\n' });
    git(s.repo, 'update-ref', 'refs/heads/main', 'moved');
    const ids = await submitAll(s, { a: { 'a.txt': 'a' }, b: { 'b.txt': 'b' } });
    const c = (await s.refinery.submit('polecat', { rig: 'app', branch: 'c', priority: 1 })).request
      .id;
    await s.refinery.start();
    await s.refinery.idle();
    expect(await s.queue.get(c)).toMatchObject({ state: 'needs-rebase', detail: 'README.md' });
    expect((await s.queue.get(ids.a!)).state).toBe('merged');
    expect((await s.queue.get(ids.b!)).state).toBe('merged');
    expect((await s.events.list({ type: 'mq.batch_split', limit: 10 })).items).toEqual([]);
    expect(await s.queue.stats('app')).toMatchObject({ gate_runs: 1, batch_size_max: 2 });
  });

  it('edits of distant lines of one file share a batch; adjacent ones do not', async () => {
    const lines = Array.from({ length: 40 }, (_, i) => `line ${i + 1}`);
    const edit = (n: number) =>
      lines.map((l, i) => (i + 1 === n ? `${l} changed` : l)).join('\n') + '\n';
    const s = await setup({ start: false, batch: 4 });
    branchWith(s.repo, 'base', { 'list.txt': lines.join('\n') + '\n' });
    git(s.repo, 'update-ref', 'refs/heads/main', 'base');
    const ids = await submitAll(s, {
      a: { 'list.txt': edit(5) },
      b: { 'list.txt': edit(30) },
      c: { 'list.txt': edit(6) },
    });
    await s.refinery.start();
    await s.refinery.idle();
    expect((await s.queue.get(ids.a!)).state).toBe('merged');
    expect((await s.queue.get(ids.b!)).state).toBe('merged');
    expect((await s.queue.get(ids.c!)).state).toBe('needs-rebase');
    // a and b were one candidate: one gate run for both; c was tested alone and conflicted.
    expect(await s.queue.stats('app')).toMatchObject({ batch_size_max: 2, batch_splits: 0 });
  });

  it('requests editing one file are not batched together', async () => {
    const s = await setup({ start: false, batch: 4 });
    const ids = await submitAll(s, {
      a: { 'shared.txt': 'a\n' },
      b: { 'b.txt': 'b' },
      c: { 'shared.txt': 'c\n' },
    });
    await s.refinery.start();
    await s.refinery.idle();
    expect((await s.queue.get(ids.a!)).state).toBe('merged');
    expect((await s.queue.get(ids.b!)).state).toBe('merged');
    // c conflicts with a on its own, not inside a's batch: no split.
    expect((await s.queue.get(ids.c!)).state).toBe('needs-rebase');
    expect((await s.events.list({ type: 'mq.batch_split', limit: 10 })).items).toEqual([]);
  });

  it('squash style: one commit per request, the ref moves only to tested tips', async () => {
    const s = await setup({ start: false, batch: 3, style: 'squash' });
    const ids = await submitAll(s, {
      a: { 'a.txt': 'a' },
      b: { 'b.txt': 'b' },
      c: { 'c.txt': 'c' },
    });
    await s.refinery.start();
    await s.refinery.idle();
    const commits = mainCommits(s.repo);
    expect(commits).toHaveLength(3);
    for (const [i, b] of ['a', 'b', 'c'].entries()) {
      expect((await s.queue.get(ids[b]!)).merged_sha).toBe(commits[i]);
    }
    expect(git(s.repo, 'ls-tree', '--name-only', 'main').split('\n')).toEqual(
      expect.arrayContaining(['a.txt', 'b.txt', 'c.txt']),
    );
    expect(s.tested()).toEqual([commits[2]]);
  });
});

describe('fail fast', () => {
  it('a request that conflicts with the target itself goes back without waiting for the train', async () => {
    const s = await setup({
      start: false,
      workers: 2,
      test: 'if [ -e slow ]; then sleep 3; fi; test ! -e broken',
    });
    branchWith(s.repo, 'b', { 'README.md': 'from b\n' });
    branchWith(s.repo, 'moved', { 'README.md': 'moved on\n' });
    git(s.repo, 'update-ref', 'refs/heads/main', 'moved');
    const ids = await submitAll(s, { a: { slow: 'yes' } });
    const b = (await s.refinery.submit('bob', { rig: 'app', branch: 'b' })).request.id;
    await s.refinery.start();
    await waitFor(async () => (await s.queue.get(b)).state === 'needs-rebase', 'b sent back');
    // a is still being tested: b did not wait for it.
    expect((await s.queue.get(ids.a!)).state).toBe('testing');
    await s.refinery.idle();
    expect((await s.queue.get(ids.a!)).state).toBe('merged');
  });
});
