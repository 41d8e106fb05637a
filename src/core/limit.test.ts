import { describe, expect, it } from 'vitest';
import { SerialBatcher } from './limit.js';

describe('SerialBatcher', () => {
  it('batches what arrives together, works a late item without waiting for others', async () => {
    const calls: number[][] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const b = new SerialBatcher<number>(async (items) => {
      calls.push(items);
      if (items.includes(1)) await gate;
    });
    b.add(1);
    b.add(2);
    await new Promise((r) => setTimeout(r, 5));
    b.add(3);
    b.add(4);
    expect(calls).toEqual([[1, 2]]); // one call at a time
    release();
    await b.idle();
    expect(calls).toEqual([
      [1, 2],
      [3, 4],
    ]);
    b.add(5);
    await b.idle();
    expect(calls.at(-1)).toEqual([5]);
  });

  it("idle rejects with fn's error", async () => {
    const b = new SerialBatcher<number>(() => Promise.reject(new Error('boom')));
    b.add(1);
    await expect(b.idle()).rejects.toThrow('boom');
  });
});
