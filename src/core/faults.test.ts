import { afterEach, describe, expect, it } from 'vitest';
import { armFaults, fault } from './faults.js';

afterEach(() => armFaults(''));

describe('fault injection', () => {
  it('an armed point throws its errno error as many times as asked, then passes', () => {
    armFaults('events.sync:EIO:2, store.write:ENOSPC');
    const err = (() => {
      try {
        fault('events.sync');
      } catch (e) {
        return e as NodeJS.ErrnoException;
      }
      return undefined;
    })();
    expect(err?.code).toBe('EIO');
    expect(err?.message).toMatch(/injected fault at events\.sync/);
    expect(() => fault('events.sync')).toThrow(/EIO/);
    expect(() => fault('events.sync')).not.toThrow();
    for (let i = 0; i < 5; i++) expect(() => fault('store.write')).toThrow(/ENOSPC/);
    expect(() => fault('other.point')).not.toThrow();
  });

  it('bad specs are refused with the part at fault; "" disarms', () => {
    expect(() => armFaults('events.sync')).toThrow(/point:ECODE\[:count\], got "events.sync"/);
    expect(() => armFaults('events.sync:eio')).toThrow(/got "events.sync:eio"/);
    expect(() => armFaults('events.sync:EIO:x')).toThrow(/count must be an integer/);
    armFaults('events.sync:EIO');
    armFaults('');
    expect(() => fault('events.sync')).not.toThrow();
  });
});
