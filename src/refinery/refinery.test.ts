/**
 * The merge queue against real git repositories made by the tests: order,
 * conflicts, failing gates, supersede, restart in the middle of a merge,
 * and speculative workers.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { rigSchema } from '../config/index.js';
import { Git } from '../git/index.js';
import { branchWith, git, makeRepo, subjects } from '../../test/helpers/git.js';
import { dirs, mainCommits, setup } from '../../test/helpers/mq.js';
import { MergeQueue, SessionWorktrees, mergeOrder, score } from './index.js';

describe('merge order', () => {
  const r = (seq: number, priority: number, minutesAgo: number, retries = 0) => ({
    seq,
    priority,
    submitted_at: 1_000_000_000 - minutesAgo * 60_000,
    retries,
  });
  const now = 1_000_000_000;

  it('priority first, then age; FIFO on equal scores', () => {
    const order = mergeOrder([r(1, 2, 0), r(2, 1, 0), r(3, 2, 0), r(4, 2, 5)], now);
    expect(order.map((x) => x.seq)).toEqual([2, 4, 1, 3]);
  });

  it('retries push a request back; age always wins in the end', () => {
    expect(score(r(1, 2, 10, 1), now)).toBeLessThan(score(r(2, 2, 0), now));
    // A P4 request waiting four hours and a minute beats a brand-new P0 one.
    expect(mergeOrder([r(2, 0, 0), r(1, 4, 241)], now).map((x) => x.seq)).toEqual([1, 2]);
  });
});

describe('merge queue engine', () => {
  it('merges clean requests in queue order, closes their beads and mails the author', async () => {
    const s = await setup({ start: false });
    const bead = await s.store.create({ title: 'feature a' });
    const heads = ['a', 'b', 'c'].map((n) => branchWith(s.repo, `feat-${n}`, { [`${n}.txt`]: n }));
    const ids = [];
    for (const [i, n] of ['a', 'b', 'c'].entries()) {
      const r = await s.refinery.submit('polecat-1', {
        rig: 'app',
        branch: `feat-${n}`,
        ...(i === 0 ? { bead: bead.id } : {}),
      });
      expect(r.request.head).toBe(heads[i]);
      ids.push(r.request.id);
    }
    await s.refinery.start();
    await s.refinery.idle();
    expect(subjects(s.repo).slice(1)).toEqual([
      'feat-a: change a.txt',
      'feat-b: change b.txt',
      'feat-c: change c.txt',
    ]);
    for (const id of ids) expect((await s.queue.get(id)).state).toBe('merged');
    expect((await s.queue.get(ids[2]!)).merged_sha).toBe(git(s.repo, 'rev-parse', 'main'));
    expect((await s.store.get(bead.id)).status).toBe('closed');
    const inbox = await s.mail.check('polecat-1');
    expect(inbox.items.map((m) => m.subject)).toEqual([
      'Merged: feat-a',
      'Merged: feat-b',
      'Merged: feat-c',
    ]);
    // Every commit on main is one the gate tested.
    const tested = new Set(s.tested());
    for (const c of mainCommits(s.repo)) expect(tested.has(c)).toBe(true);
    const types = (await s.events.list({ limit: 100 })).items.map((e) => e.type);
    for (const t of ['mq.submitted', 'mq.rebased', 'mq.gated', 'mq.merged'])
      expect(types).toContain(t);
  });

  it('routes a conflict back: needs-rebase, a conflict bead for the author, mail with the files', async () => {
    const s = await setup({ start: false });
    branchWith(s.repo, 'one', { 'README.md': 'one\n' });
    branchWith(s.repo, 'two', { 'README.md': 'two\n', 'extra.txt': 'x' });
    const one = await s.refinery.submit('alice', { rig: 'app', branch: 'one' });
    const two = await s.refinery.submit('bob', { rig: 'app', branch: 'two' });
    await s.refinery.start();
    await s.refinery.idle();
    expect((await s.queue.get(one.request.id)).state).toBe('merged');
    const failed = await s.queue.get(two.request.id);
    expect(failed.state).toBe('needs-rebase');
    expect(failed.detail).toBe('README.md');
    const conflictBead = await s.store.get(failed.conflict_bead);
    expect(conflictBead).toMatchObject({ assignee: 'bob', status: 'open' });
    expect(conflictBead.description).toContain('README.md');
    expect(conflictBead.metadata['gc.paths']).toBe('README.md');
    const mail = (await s.mail.check('bob')).items;
    expect(mail.map((m) => m.subject)).toEqual(['Conflict: two']);
    expect(mail[0]!.body).toContain('README.md');
    expect(readFileSync(path.join(s.dir, 'repo', '.git', 'HEAD'), 'utf8')).toContain('work');
    expect(git(s.repo, 'show', 'main:README.md')).toBe('one');
    expect(await s.queue.stats('app')).toMatchObject({
      merged_total: 1,
      conflict_rate: 0.5,
      depth: 0,
    });
  });

  it('a failing gate never reaches the target; the author gets the gate and its output', async () => {
    const s = await setup({ start: false });
    branchWith(s.repo, 'bad', { broken: 'yes' });
    const bad = await s.refinery.submit('carol', { rig: 'app', branch: 'bad' });
    const before = git(s.repo, 'rev-parse', 'main');
    await s.refinery.start();
    await s.refinery.idle();
    const mr = await s.queue.get(bad.request.id);
    expect(mr).toMatchObject({ state: 'needs-fix', reason: 'test' });
    expect(git(s.repo, 'rev-parse', 'main')).toBe(before);
    const mail = (await s.mail.check('carol')).items;
    expect(mail[0]!.subject).toBe('Gate test failed: bad');
    // Tested twice: the gate is retried once before it counts as failing.
    expect(s.tested()).toHaveLength(2);
    // Retried as it is, the same commit fails the same way.
    await s.refinery.retry('carol', mr.id);
    await s.refinery.idle();
    expect(await s.queue.get(mr.id)).toMatchObject({ state: 'needs-fix', retries: 1 });
    expect(git(s.repo, 'rev-parse', 'main')).toBe(before);
    // Fixed on the branch (the author removes the file) and submitted again: it lands.
    const wt = path.join(s.dir, 'fix-wt');
    git(s.repo, 'worktree', 'add', '-q', wt, 'bad');
    git(wt, 'rm', '-q', 'broken');
    writeFileSync(path.join(wt, 'fine'), 'yes');
    git(wt, 'add', 'fine');
    git(wt, 'commit', '-q', '-m', 'bad: fixed');
    const fixedHead = git(wt, 'rev-parse', 'HEAD');
    git(s.repo, 'worktree', 'remove', '--force', wt);
    const fixed = await s.refinery.submit('carol', { rig: 'app', branch: 'bad' });
    expect(fixed.request.head).toBe(fixedHead);
    await s.refinery.idle();
    expect((await s.queue.get(fixed.request.id)).state).toBe('merged');
    expect(git(s.repo, 'show', 'main:fine')).toBe('yes');
    expect(git(s.repo, 'ls-tree', '--name-only', 'main')).not.toMatch(/^broken$/m);
  });

  it('a flaky gate is retried once', async () => {
    const s = await setup({
      start: false,
      test: 'if [ -e ../flaked ]; then exit 0; else touch ../flaked; exit 1; fi',
    });
    branchWith(s.repo, 'f', { 'f.txt': 'f' });
    const r = await s.refinery.submit('dave', { rig: 'app', branch: 'f' });
    await s.refinery.start();
    await s.refinery.idle();
    expect((await s.queue.get(r.request.id)).state).toBe('merged');
    const gated = (await s.events.list({ type: 'mq.gated', limit: 10 })).items;
    expect(gated[0]!.payload).toMatchObject({ flaky: ['test'] });
  });

  it('resubmitting the same head is idempotent; a newer one for the bead supersedes', async () => {
    const s = await setup({ start: false });
    const h1 = branchWith(s.repo, 'x1', { 'x.txt': '1' });
    const bead = (await s.store.create({ title: 'x' })).id;
    const first = await s.refinery.submit('erin', { rig: 'app', branch: 'x1', bead });
    const again = await s.refinery.submit('erin', { rig: 'app', branch: 'x1', bead });
    expect(again.created).toBe(false);
    expect(again.request.id).toBe(first.request.id);
    expect(again.request.head).toBe(h1);
    branchWith(s.repo, 'x2', { 'x.txt': '2' });
    const newer = await s.refinery.submit('erin', { rig: 'app', branch: 'x2', bead });
    expect(newer.superseded).toEqual([first.request.id]);
    expect((await s.queue.get(first.request.id)).state).toBe('superseded');
    await s.refinery.start();
    await s.refinery.idle();
    expect(git(s.repo, 'show', 'main:x.txt')).toBe('2');
    expect(subjects(s.repo)).toHaveLength(2);
    const bad = s.refinery.submit('erin', { rig: 'app', branch: 'nope' });
    await expect(bad).rejects.toThrow(/no branch nope/);
    await expect(s.refinery.submit('erin', { rig: 'zzz', branch: 'x2' })).rejects.toThrow(/rig/);
  });

  it('a merge cut off by a crash is finished on restart, once', async () => {
    // Recorded as merging, the ref never moved: the restart lands it.
    const s = await setup({ start: false });
    const head = branchWith(s.repo, 'r1', { 'r.txt': 'r' });
    const base = git(s.repo, 'rev-parse', 'main');
    const a = await s.refinery.submit('fay', { rig: 'app', branch: 'r1' });
    await s.queue.startTesting(a.request.id, base);
    await s.queue.markMerging(a.request.id, base, head);
    await s.refinery.start();
    await s.refinery.idle();
    expect(await s.queue.get(a.request.id)).toMatchObject({ state: 'merged', merged_sha: head });
    expect(mainCommits(s.repo)).toEqual([head]);

    // The ref moved, and the server died before recording it: the restart
    // only records it, without moving anything again.
    const t = await setup({ start: false });
    const head2 = branchWith(t.repo, 'r2', { 'r2.txt': 'r' });
    const base2 = git(t.repo, 'rev-parse', 'main');
    const b = await t.refinery.submit('fay', { rig: 'app', branch: 'r2' });
    await t.queue.startTesting(b.request.id, base2);
    await t.queue.markMerging(b.request.id, base2, head2);
    git(t.repo, 'update-ref', 'refs/heads/main', head2, base2);
    await t.refinery.start();
    await t.refinery.idle();
    expect(await t.queue.get(b.request.id)).toMatchObject({ state: 'merged', merged_sha: head2 });
    expect(mainCommits(t.repo)).toEqual([head2]);
    expect((await t.queue.stats('app')).merged_total).toBe(1);
    expect((await t.mail.check('fay')).items).toHaveLength(1);

    // Left testing: back in the queue, tested again, merged once.
    const u = await setup({ start: false });
    const head3 = branchWith(u.repo, 'r3', { 'r3.txt': 'r' });
    const c = await u.refinery.submit('fay', { rig: 'app', branch: 'r3' });
    await u.queue.startTesting(c.request.id, git(u.repo, 'rev-parse', 'main'));
    await u.refinery.start();
    await u.refinery.idle();
    expect((await u.queue.get(c.request.id)).state).toBe('merged');
    expect(mainCommits(u.repo)).toEqual([head3]);
  });

  it('K = 1 and K = 4 give the same history; a failing candidate is dropped without blocking', async () => {
    const histories: string[][] = [];
    for (const workers of [1, 4]) {
      const s = await setup({ workers, start: false });
      const ids: string[] = [];
      for (let i = 0; i < 8; i++) {
        branchWith(s.repo, `b${i}`, i === 2 ? { broken: 'x' } : { [`f${i}.txt`]: String(i) });
        ids.push((await s.refinery.submit('gus', { rig: 'app', branch: `b${i}` })).request.id);
      }
      await s.refinery.start();
      await s.refinery.idle();
      const states: string[] = [];
      for (const id of ids) states.push((await s.queue.get(id)).state);
      expect(states).toEqual([
        'merged',
        'merged',
        'needs-fix',
        'merged',
        'merged',
        'merged',
        'merged',
        'merged',
      ]);
      const tested = new Set(s.tested());
      for (const c of mainCommits(s.repo)) expect(tested.has(c)).toBe(true);
      histories.push(subjects(s.repo));
      // Trees are identical too, not just the messages.
      histories.push([git(s.repo, 'rev-parse', 'main^{tree}')]);
    }
    expect(histories[2]).toEqual(histories[0]);
    expect(histories[3]).toEqual(histories[1]);
    expect(histories[0]).not.toContain('b2: change broken');
  });

  it('squash style lands one tested commit per request', async () => {
    const s = await setup({ style: 'squash', start: false });
    const wt = path.join(s.dir, 'wt');
    git(s.repo, 'worktree', 'add', '-q', '-b', 'multi', wt, 'main');
    for (const n of ['1', '2', '3']) {
      writeFileSync(path.join(wt, `m${n}.txt`), n);
      git(wt, 'add', '-A');
      git(wt, 'commit', '-q', '-m', `step ${n}`);
    }
    const bead = (await s.store.create({ title: 'multi' })).id;
    const r = await s.refinery.submit('hal', { rig: 'app', branch: 'multi', bead });
    await s.refinery.start();
    await s.refinery.idle();
    expect((await s.queue.get(r.request.id)).state).toBe('merged');
    expect(mainCommits(s.repo)).toHaveLength(1);
    expect(subjects(s.repo)[1]).toBe(`${bead}: merge multi (${r.request.id})`);
    expect(new Set(s.tested()).has(git(s.repo, 'rev-parse', 'main'))).toBe(true);
    expect(await new Git(s.repo).isAncestor('multi', 'main')).toBe(false);
  });
});

describe('session worktrees', () => {
  it('made on a fresh branch from the target with copy_files, reused, pruned only without unmerged work', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gc-wt-'));
    dirs.push(dir);
    const repo = path.join(dir, 'repo');
    makeRepo(repo);
    writeFileSync(path.join(repo, '.env'), 'SECRET=1\n');
    const rig = rigSchema.parse({ name: 'app', path: 'repo', copy_files: ['.env', '../escape'] });
    const queue = MergeQueue.file(path.join(dir, '.gc', 'mq.db'));
    const wts = new SessionWorktrees(dir, path.join(dir, '.gc'), queue);
    const wt = await wts.prepare(rig, 'worker-1');
    expect(wt).toBe(path.join(dir, '.gc', 'worktrees', 'app', 'worker-1'));
    expect(readFileSync(path.join(wt, '.env'), 'utf8')).toBe('SECRET=1\n');
    expect(git(wt, 'rev-parse', 'HEAD')).toBe(git(repo, 'rev-parse', 'main'));
    const branch = git(wt, 'symbolic-ref', '--short', 'HEAD');
    expect(branch).toMatch(/^gc\/worker-1\//);
    expect(await wts.prepare(rig, 'worker-1')).toBe(wt);
    expect(git(wt, 'symbolic-ref', '--short', 'HEAD')).toBe(branch);

    // Uncommitted work: kept.
    writeFileSync(path.join(wt, 'draft.txt'), 'wip');
    expect((await wts.prune(rig, 'worker-1')).kept).toEqual(['1 uncommitted change(s)']);
    // Committed but not merged: kept.
    git(wt, 'add', 'draft.txt');
    git(wt, 'commit', '-qm', 'draft');
    expect((await wts.prune(rig, 'worker-1')).kept[0]).toMatch(/1 commit\(s\) not merged/);
    // Merged (as a rebased copy on main): removed, branch deleted.
    git(repo, 'checkout', '-q', 'main');
    writeFileSync(path.join(repo, 'other.txt'), 'o');
    git(repo, 'add', 'other.txt');
    git(repo, 'commit', '-qm', 'other');
    git(repo, 'cherry-pick', branch);
    git(repo, 'checkout', '-q', 'work');
    expect(await wts.prune(rig, 'worker-1')).toEqual({ removed: true, kept: [] });
    expect(git(repo, 'branch', '--list', branch)).toBe('');
    expect(git(repo, 'worktree', 'list')).not.toContain('worker-1');
    await queue.close();
  });

  it('a prune waits for the queue to decide on work it still has in hand', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gc-wt-'));
    dirs.push(dir);
    const repo = path.join(dir, 'repo');
    makeRepo(repo);
    const rig = rigSchema.parse({ name: 'app', path: 'repo' });
    const queue = MergeQueue.file(path.join(dir, '.gc', 'mq.db'));
    const wts = new SessionWorktrees(dir, path.join(dir, '.gc'), queue);
    const wt = await wts.prepare(rig, 'worker-2');
    writeFileSync(path.join(wt, 'done.txt'), 'done');
    git(wt, 'add', 'done.txt');
    git(wt, 'commit', '-qm', 'done');
    const head = git(wt, 'rev-parse', 'HEAD');
    const branch = git(wt, 'symbolic-ref', '--short', 'HEAD');
    const { request } = await queue.submit({ rig: 'app', branch, head, author: 'worker-2' });
    // The session stops while its request is queued; the queue merges it after.
    const pruned = wts.prune(rig, 'worker-2');
    let settled = false;
    pruned
      .finally(() => {
        settled = true;
      })
      .catch(() => undefined);
    await new Promise((r) => setTimeout(r, 50));
    expect(settled).toBe(false);
    git(repo, 'update-ref', 'refs/heads/main', head);
    await queue.markMerged(request.id, head);
    expect(await pruned).toEqual({ removed: true, kept: [] });
    await queue.close();
  });
});
