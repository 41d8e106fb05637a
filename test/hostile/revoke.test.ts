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

  it('a batch of session keys that fails part-way keeps none of its keys and all of its revocations', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gc-revoke-'));
    dirs.push(dir);
    const keys = KeyRing.open(dir);
    const old = keys.create({ kind: 'agent', name: 'w-1' }).token;
    const issued: string[] = [];
    const issue = (name: string) => {
      keys.revokeByName('agent', name);
      issued.push(keys.create({ kind: 'agent', name }).token);
    };
    expect(() =>
      keys.batch(() => {
        issue('w-1');
        issue('w-2');
        armFaults('keys.write:ENOSPC');
        issue('w-3');
      }),
    ).toThrow(/ENOSPC/);
    armFaults('');
    expect(issued).toHaveLength(2);
    for (const t of [old, ...issued]) expect(keys.verify(t)).toBeUndefined();
    expect(keys.has('agent', 'w-1')).toBe(false);
    expect(keys.has('agent', 'w-2')).toBe(false);
    // A batch that succeeds keeps everything, in one write.
    const ok = keys.batch(() => ['w-4', 'w-5'].map((n) => keys.create({ kind: 'agent', name: n })));
    keys.close();
    const again = KeyRing.open(dir);
    try {
      expect(again.verify(old)).toBeUndefined();
      for (const t of issued) expect(again.verify(t)).toBeUndefined();
      for (const k of ok) expect(again.verify(k.token)?.name).toBe(k.principal.name);
    } finally {
      again.close();
    }
  });
});
