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
    const keys = await KeyRing.open(dir);
    const { token, principal } = await keys.create({ kind: 'agent', name: 'worker-1' });
    expect(keys.verify(token)?.name).toBe('worker-1');
    armFaults('keys.write:ENOSPC');
    const revoking = keys.revokeByName('agent', 'worker-1');
    // Dead before the write is even tried.
    expect(keys.verify(token)).toBeUndefined();
    await expect(revoking).rejects.toThrow(/is revoked, but recording it failed/);
    expect(keys.verify(token)).toBeUndefined();
    expect(keys.has('agent', 'worker-1')).toBe(false);
    armFaults('');
    await keys.close();
    const again = await KeyRing.open(dir);
    try {
      expect(again.verify(token)).toBeUndefined();
      expect(
        (await again.list({ includeRevoked: true })).items.find(
          (p) => p.key_id === principal.key_id,
        )?.revoked_at,
      ).not.toBeNull();
    } finally {
      await again.close();
    }
  });

  it('a wave of session keys whose write fails keeps none of its keys and all of its revocations', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gc-revoke-'));
    dirs.push(dir);
    const keys = await KeyRing.open(dir);
    const tokens = keys.sessionTokens();
    const old = await tokens.issue('w-1');
    expect(keys.verify(old)?.name).toBe('w-1');
    armFaults('keys.write:ENOSPC');
    await expect(tokens.issueMany(['w-1', 'w-2', 'w-3'])).rejects.toThrow(/ENOSPC/);
    armFaults('');
    expect(keys.verify(old)).toBeUndefined();
    for (const n of ['w-1', 'w-2', 'w-3']) expect(keys.has('agent', n)).toBe(false);
    // A wave that succeeds keeps everything, in one write.
    const ok = await tokens.issueMany(['w-4', 'w-5']);
    await keys.close();
    const again = await KeyRing.open(dir);
    try {
      // The failed wave's revocation of w-1's old key was written at close.
      expect(again.verify(old)).toBeUndefined();
      for (const [name, t] of ok) expect(again.verify(t)?.name).toBe(name);
      expect(again.has('agent', 'w-2')).toBe(false);
    } finally {
      await again.close();
    }
  });
});
