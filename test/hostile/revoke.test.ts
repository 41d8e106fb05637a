/** A revoked key stops working at once, even when the write recording it fails (a full disk). */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { KeyRing } from '../../src/city/index.js';
import { armFaults } from '../../src/core/index.js';

const dirs: string[] = [];
afterEach(async () => {
  armFaults('');
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('revoking on a full disk', () => {
  it('denies the key in memory first, and records the revocation once the disk has room', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gc-revoke-'));
    dirs.push(dir);
    const keys = KeyRing.open(dir);
    const { token, principal } = keys.create({ kind: 'agent', name: 'worker-1' });
    expect(keys.verify(token)?.name).toBe('worker-1');
    armFaults('keys.write:ENOSPC');
    expect(() => keys.revokeByName('agent', 'worker-1')).toThrow(
      /is revoked, but recording it failed/,
    );
    expect(keys.verify(token)).toBeUndefined();
    expect(keys.has('agent', 'worker-1')).toBe(false);
    armFaults('');
    keys.close();
    const again = KeyRing.open(dir);
    try {
      expect(again.verify(token)).toBeUndefined();
      expect(
        again.list({ includeRevoked: true }).items.find((p) => p.key_id === principal.key_id)
          ?.revoked_at,
      ).not.toBeNull();
    } finally {
      again.close();
    }
  });
});
