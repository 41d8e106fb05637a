/**
 * Store conformance, batches (`Store.createMany`): a tree of beads made in
 * one transaction, all or none. Run by `runStoreConformance` for every
 * backend.
 */
import { describe, expect, it } from 'vitest';
import { NotFoundError, ValidationError } from '../core/index.js';
import type { Store } from './store.js';
import { PARENT_CHILD } from './types.js';
import { batchRef } from './validate.js';

export interface BatchConformanceOptions {
  /**
   * Whether a reader outside the store's own writes never sees part of a
   * batch (false for exec: its script holds the beads and has no batch op,
   * so only claims through the store wait for the whole batch).
   */
  wholeToReaders?: boolean;
}

export function runBatchConformance(
  fresh: () => Promise<Store>,
  options: BatchConformanceOptions = {},
): void {
  describe('createMany', () => {
    it('makes a tree in order: #N names an earlier bead of the batch', async () => {
      const s = await fresh();
      const outside = await s.create({ title: 'existing blocker' });
      const made = await s.createMany([
        { title: 'root', type: 'molecule', metadata: { 'gc.formula': 'ship' } },
        { title: 'build', parent: batchRef(0), labels: ['step'] },
        { title: 'test', parent: batchRef(0), needs: [batchRef(1)] },
        { title: 'deploy', parent: batchRef(0), needs: [`waits-for:${batchRef(2)}`, outside.id] },
      ]);
      expect(made.map((b) => b.title)).toEqual(['root', 'build', 'test', 'deploy']);
      const [root, build, test, deploy] = made;
      expect(new Set(made.map((b) => b.id)).size).toBe(4);
      expect(root!.metadata).toEqual({ 'gc.formula': 'ship' });
      expect(build!.parent).toBe(root!.id);
      expect(build!.labels).toEqual(['step']);
      expect(test!.dependencies).toEqual(
        expect.arrayContaining([
          { issue_id: test!.id, depends_on_id: root!.id, type: PARENT_CHILD },
          { issue_id: test!.id, depends_on_id: build!.id, type: 'blocks' },
        ]),
      );
      expect(deploy!.dependencies.map((d) => [d.depends_on_id, d.type]).sort()).toEqual(
        [
          [root!.id, PARENT_CHILD],
          [test!.id, 'waits-for'],
          [outside.id, 'blocks'],
        ].sort(),
      );
      for (const b of made) expect(await s.get(b.id)).toEqual(b);
      const ready = (await s.ready({ limit: 100 })).items.map((b) => b.title).sort();
      expect(ready).toEqual(['build', 'existing blocker']);
      expect((await s.children(root!.id)).items.map((b) => b.title)).toEqual([
        'build',
        'test',
        'deploy',
      ]);
    });

    it('a batch under a blocked root is blocked all the way down', async () => {
      const s = await fresh();
      const gate = await s.create({ title: 'hold', type: 'gate' });
      const made = await s.createMany([
        { title: 'root', needs: [gate.id] },
        { title: 'step', parent: batchRef(0) },
        { title: 'child of step', parent: batchRef(1) },
      ]);
      expect((await s.ready({ limit: 100 })).items).toEqual([]);
      await s.close(gate.id);
      expect((await s.ready({ limit: 100 })).items.map((b) => b.id).sort()).toEqual(
        made.map((b) => b.id).sort(),
      );
    });

    it('all or none: a bad bead, a missing bead or a forward reference makes nothing', async () => {
      const s = await fresh();
      const before = await s.count();
      await expect(
        s.createMany([{ title: 'a' }, { title: 'b', parent: batchRef(0) }, { title: '' }]),
      ).rejects.toThrow(/bead \[2\].*title/);
      await expect(
        s.createMany([{ title: 'a' }, { title: 'b', needs: ['tc-missing'] }]),
      ).rejects.toBeInstanceOf(NotFoundError);
      await expect(
        s.createMany([{ title: 'a', parent: batchRef(1) }, { title: 'b' }]),
      ).rejects.toBeInstanceOf(ValidationError);
      await expect(s.createMany([{ title: 'a', needs: [batchRef(0)] }])).rejects.toThrow(
        /#0 is not an earlier bead/,
      );
      expect(await s.count()).toBe(before);
      expect(await s.createMany([])).toEqual([]);
    });

    it('a claimer never gets a step of a half-made batch', async () => {
      const s = await fresh();
      const gate = await s.create({ title: 'hold', type: 'gate' });
      const inputs = [
        { title: 'root', type: 'molecule', needs: [gate.id] },
        ...Array.from({ length: 30 }, (_, i) => ({
          title: `step ${i}`,
          parent: batchRef(0),
          metadata: { 'gc.routed_to': 'pool' },
        })),
      ];
      const making = s.createMany(inputs);
      const seen: number[] = [];
      const claims = Array.from({ length: 5 }, async (_, i) => {
        const got = await s.claimNextReady(`w${i}`, { metadata: { 'gc.routed_to': 'pool' } });
        if (got) seen.push(1);
      });
      await Promise.all([making, ...claims]);
      // The root waits for its gate: nothing under it is ready, whenever the claim ran.
      expect(seen).toEqual([]);
      await s.close(gate.id);
      expect(await s.countReady({ metadata: { 'gc.routed_to': 'pool' } })).toBe(30);
    });

    if (options.wholeToReaders !== false) {
      it('readers see the whole batch or none of it', async () => {
        const s = await fresh();
        const before = await s.count();
        const making = s.createMany(
          Array.from({ length: 40 }, (_, i) => ({
            title: `b${i}`,
            ...(i ? { parent: batchRef(0) } : {}),
          })),
        );
        const counts: number[] = [];
        let done = false;
        making.then(
          () => (done = true),
          () => (done = true),
        );
        while (!done) {
          counts.push((await s.count()) - before);
          await new Promise((r) => setImmediate(r));
        }
        await making;
        counts.push((await s.count()) - before);
        expect(counts.filter((c) => c !== 0 && c !== 40)).toEqual([]);
        expect(counts.at(-1)).toBe(40);
      });
    }
  });
}
