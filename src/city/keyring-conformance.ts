/**
 * Key ring conformance suite, run on every key store (SQLite `.gc/`,
 * PostgreSQL, MariaDB). The factory gives a fresh, empty place; `open` opens
 * a ring on it, as a server (or a second server) of the city would.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { NotFoundError, ValidationError } from '../core/index.js';
import type { KeyRing } from './keyring.js';

export type KeyPlaceFactory = () => Promise<{ open(): Promise<KeyRing> }>;

export function runKeyRingConformance(name: string, factory: KeyPlaceFactory): void {
  describe(`Key ring conformance: ${name}`, () => {
    const opened: KeyRing[] = [];
    async function ring(place?: { open(): Promise<KeyRing> }) {
      const p = place ?? (await factory());
      const r = await p.open();
      opened.push(r);
      return { r, place: p };
    }
    afterEach(async () => {
      for (const r of opened.splice(0)) await r.close();
    });

    it('a key verifies; a tampered, unknown or revoked one does not', async () => {
      const { r } = await ring();
      const { token, principal } = await r.create({ kind: 'operator', name: 'op', maxSessions: 3 });
      expect(token).toMatch(/^gck_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/);
      expect(r.verify(token)).toEqual(principal);
      expect(principal).toMatchObject({ kind: 'operator', name: 'op', max_sessions: 3 });
      const last = token.at(-1) === 'A' ? 'B' : 'A';
      expect(r.verify(token.slice(0, -1) + last)).toBeUndefined();
      expect(r.verify('gck_000000000000_' + 'x'.repeat(43))).toBeUndefined();
      expect(r.verify('not a key')).toBeUndefined();
      const revoked = await r.revoke(principal.key_id);
      expect(revoked.revoked_at).not.toBeNull();
      expect(r.verify(token)).toBeUndefined();
      // Idempotent: the first revocation time stays.
      expect((await r.revoke(principal.key_id)).revoked_at).toBe(revoked.revoked_at);
      await expect(r.revoke('zzzzzzzzzzzz')).rejects.toBeInstanceOf(NotFoundError);
      await expect(r.create({ kind: 'agent', name: 'bad name' })).rejects.toBeInstanceOf(
        ValidationError,
      );
    });

    it('metrics keys are kept and verify as what they are', async () => {
      const { r, place } = await ring();
      const { token } = await r.create({ kind: 'metrics', name: 'prometheus' });
      expect(r.verify(token)).toMatchObject({ kind: 'metrics', name: 'prometheus' });
      const { r: other } = await ring(place);
      expect(other.verify(token)).toMatchObject({ kind: 'metrics' });
      expect((await other.list({ kind: 'metrics' })).items.map((p) => p.name)).toEqual([
        'prometheus',
      ]);
    });

    it('another ring on the same store knows the live keys and the same secret', async () => {
      const { r, place } = await ring();
      const kept = await r.create({ kind: 'agent', name: 'ext-1', webhookUrl: 'http://h/x' });
      const gone = await r.create({ kind: 'agent', name: 'ext-2' });
      await r.revoke(gone.principal.key_id);
      const { r: other } = await ring(place);
      expect(other.verify(kept.token)).toEqual(kept.principal);
      expect(other.verify(gone.token)).toBeUndefined();
      expect(other.find('agent', 'ext-1')?.webhook_url).toBe('http://h/x');
      // A key made by the second ring is one the first ring's store keeps.
      const made = await other.create({ kind: 'agent', name: 'ext-3' });
      const { r: third } = await ring(place);
      expect(third.verify(made.token)?.name).toBe('ext-3');
    });

    it('rings open together: a key one makes the other verifies at once (verifyFresh); a revocation reaches it at its refresh', async () => {
      const { r: a, place } = await ring();
      const { r: b } = await ring(place);
      const made = await a.create({ kind: 'agent', name: 'late' });
      expect(b.verify(made.token)).toBeUndefined();
      expect(await b.verifyFresh(made.token)).toEqual(made.principal);
      // Taken up: from now on the fast path knows it.
      expect(b.verify(made.token)).toEqual(made.principal);
      expect(b.find('agent', 'late')?.key_id).toBe(made.principal.key_id);
      await a.revoke(made.principal.key_id);
      expect(b.verify(made.token)).toEqual(made.principal);
      await b.refresh();
      expect(b.verify(made.token)).toBeUndefined();
      expect(await b.verifyFresh(made.token)).toBeUndefined();
      expect(b.find('agent', 'late')).toBeUndefined();
      // A key the store never had: looked up once, then remembered as missing.
      const bogus = `gck_${'q'.repeat(12)}_${'x'.repeat(43)}`;
      expect(await b.verifyFresh(bogus)).toBeUndefined();
      expect(b.verifyFresh(bogus)).toBeUndefined();
    });

    it('session tokens replace a session’s old key, a wave in one write', async () => {
      const { r } = await ring();
      const tokens = r.sessionTokens();
      const first = await tokens.issue('mayor');
      const second = await tokens.issue('mayor');
      expect(r.verify(first)).toBeUndefined();
      expect(r.verify(second)?.name).toBe('mayor');
      const wave = await tokens.issueMany(['w-1', 'w-2', 'mayor']);
      expect([...wave.keys()].sort()).toEqual(['mayor', 'w-1', 'w-2']);
      expect(r.verify(second)).toBeUndefined();
      for (const [n, t] of wave) expect(r.verify(t)?.name).toBe(n);
      tokens.revoke('w-1');
      expect(r.verify(wave.get('w-1')!)).toBeUndefined();
      expect(r.has('agent', 'w-1')).toBe(false);
      expect(r.has('agent', 'w-2')).toBe(true);
    });

    it('lists in creation order by page, by kind and owner, with revoked ones on request', async () => {
      const { r } = await ring();
      await r.create({ kind: 'operator', name: 'op-a' });
      for (let i = 0; i < 5; i++) {
        await r.create({ kind: 'agent', name: `a-${i}`, owner: i % 2 ? 'op-a' : '' });
      }
      const gone = await r.create({ kind: 'agent', name: 'a-9' });
      await r.revoke(gone.principal.key_id);
      const names: string[] = [];
      let after: number | undefined;
      for (;;) {
        const page = await r.list({ kind: 'agent', limit: 2, ...(after ? { after } : {}) });
        names.push(...page.items.map((p) => p.name));
        if (page.next_after === null) break;
        after = page.next_after;
      }
      expect(names).toEqual(['a-0', 'a-1', 'a-2', 'a-3', 'a-4']);
      expect((await r.list({ owner: 'op-a' })).items.map((p) => p.name)).toEqual(['a-1', 'a-3']);
      expect((await r.list({ includeRevoked: true, kind: 'agent' })).items).toHaveLength(6);
    });
  });
}
