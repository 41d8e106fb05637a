/**
 * Conflicts that resolve themselves, against real git: both sides adding
 * lines to one list merge without the author; a request sent back comes
 * back by itself when its branch gets a new head or its conflict bead is
 * closed.
 */
import { describe, expect, it } from 'vitest';
import { branchWith, git } from '../../test/helpers/git.js';
import { setup } from '../../test/helpers/mq.js';
import { waitFor } from '../../test/helpers/wait.js';

const LIST = 'alpha\nbeta\n';

describe('conflicts that resolve themselves', () => {
  it('both sides appending to one list: merged with both lines, gated, no conflict bead', async () => {
    const s = await setup({ start: false });
    // A list file on main first.
    branchWith(s.repo, 'list', { 'list.txt': LIST });
    const list = await s.refinery.submit('a', { rig: 'app', branch: 'list' });
    await s.refinery.start();
    await s.refinery.idle();
    expect((await s.queue.get(list.request.id)).state).toBe('merged');
    branchWith(s.repo, 'x', { 'list.txt': `${LIST}gamma\n` });
    branchWith(s.repo, 'y', { 'list.txt': `${LIST}delta\n` });
    const x = await s.refinery.submit('alice', { rig: 'app', branch: 'x' });
    const y = await s.refinery.submit('bob', { rig: 'app', branch: 'y' });
    await s.refinery.idle();
    expect((await s.queue.get(x.request.id)).state).toBe('merged');
    expect((await s.queue.get(y.request.id)).state).toBe('merged');
    expect(git(s.repo, 'show', 'main:list.txt')).toBe('alpha\nbeta\ngamma\ndelta');
    const rebased = (await s.events.list({ type: 'mq.rebased', limit: 100 })).items.find(
      (e) => e.subject === y.request.id,
    );
    expect(rebased?.payload).toMatchObject({ auto_resolved: ['list.txt'] });
    // The merged state was gated.
    expect(s.tested()).toContain(git(s.repo, 'rev-parse', 'main'));
  });

  it.each([
    ['a line changed on both sides', true, 'hello from x\n', 'hello from y\n'],
    ['appends with merge_auto_resolve = false', false, 'hello\nx\n', 'hello\ny\n'],
  ])('%s goes back to the author', async (_what, auto, ours, theirs) => {
    const s = await setup({ start: false, autoResolve: auto });
    branchWith(s.repo, 'x', { 'README.md': ours });
    branchWith(s.repo, 'y', { 'README.md': theirs });
    await s.refinery.submit('alice', { rig: 'app', branch: 'x' });
    const y = await s.refinery.submit('bob', { rig: 'app', branch: 'y' });
    await s.refinery.start();
    await s.refinery.idle();
    expect(await s.queue.get(y.request.id)).toMatchObject({
      state: 'needs-rebase',
      detail: 'README.md',
    });
  });
});

/** x merges; y, editing the same line, is sent back to bob with a conflict bead. */
async function sentBack() {
  const s = await setup({ start: false });
  branchWith(s.repo, 'x', { 'README.md': 'from x\n' });
  branchWith(s.repo, 'y', { 'README.md': 'from y\n' });
  await s.refinery.submit('alice', { rig: 'app', branch: 'x' });
  const y = await s.refinery.submit('bob', { rig: 'app', branch: 'y' });
  await s.refinery.start();
  await s.refinery.idle();
  const sent = await s.queue.get(y.request.id);
  expect(sent.state).toBe('needs-rebase');
  return { s, y, sent };
}

describe('requests that come back by themselves', () => {
  it('a new head on the branch resubmits it', async () => {
    const { s, y, sent } = await sentBack();
    expect(sent.conflict_bead).not.toBe('');

    // Bob resolves by rebasing onto main and committing: a new head.
    branchWith(s.repo, 'y2', { 'README.md': 'from x\nand y\n' });
    git(s.repo, 'branch', '-f', 'y', 'y2');
    await waitFor(
      async () =>
        (await s.queue.list({ rig: 'app', states: ['merged'] })).some((m) => m.branch === 'y'),
      'the new head of y merged without a manual submit',
    );
    expect((await s.queue.get(y.request.id)).state).toBe('superseded');
    expect(git(s.repo, 'show', 'main:README.md')).toBe('from x\nand y');
    const auto = (await s.events.list({ type: 'mq.submitted', limit: 100 })).items.filter(
      (e) => (e.payload as { auto?: string }).auto === 'new head',
    );
    expect(auto).toHaveLength(1);
  });

  it('closing the conflict bead retries the same head (the target may have moved)', async () => {
    const { s, y, sent } = await sentBack();
    await s.store.close(sent.conflict_bead, { reason: 'looked at it' });
    await waitFor(
      async () => (await s.queue.get(y.request.id)).retries === 1,
      'the request was queued again when its conflict bead closed',
    );
    await s.refinery.idle();
    // Same head, same conflict: back to bob with a fresh conflict bead, once.
    const again = await s.queue.get(y.request.id);
    expect(again.state).toBe('needs-rebase');
    expect(again.conflict_bead).not.toBe(sent.conflict_bead);
    await new Promise((r) => setTimeout(r, 600));
    expect((await s.queue.get(y.request.id)).retries).toBe(1);
  });
});
