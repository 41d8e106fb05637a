/**
 * Ingestion from real files: only complete lines are read (a line being
 * written is read once it is whole), each file from where the last pass
 * stopped; Codex rollouts are matched to a session by their cwd, others'
 * are left alone; a second ingester (a new leader) adds nothing twice.
 */
import { appendFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SqliteUsage, UsageIngest, claudeProjectDir, type Place } from './index.js';

describe('usage ingestion', () => {
  it('Claude and Codex files, partial lines, other folders, a second reader', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'gc-ingest-'));
    const records = new SqliteUsage(path.join(root, 'usage.db'));
    const place: Place = {
      dir: path.join(root, 'work', 'app.x'),
      agent: 'coder',
      rig: 'app',
      session: 'coder-1',
      bead: 'gc-7',
      claudeDir: path.join(root, 'claude'),
      codexDir: path.join(root, 'codex'),
    };
    const project = path.join(root, 'claude', 'projects', claudeProjectDir(place.dir));
    expect(path.basename(project)).toMatch(/-work-app-x$/);
    mkdirSync(project, { recursive: true });
    const line = (id: string) =>
      JSON.stringify({
        type: 'assistant',
        requestId: id,
        message: { model: 'claude-haiku-4-5', usage: { input_tokens: 100, output_tokens: 10 } },
      });
    const file = path.join(project, 's.jsonl');
    const whole = line('req_a');
    writeFileSync(file, `${line('req_1')}\n${whole.slice(0, 40)}`);
    const now = new Date();
    const pad = (n: number) => String(n).padStart(2, '0');
    const day = path.join(
      root,
      'codex',
      'sessions',
      String(now.getFullYear()),
      pad(now.getMonth() + 1),
      pad(now.getDate()),
    );
    mkdirSync(day, { recursive: true });
    const codex = (cwd: string) =>
      [
        { type: 'session_meta', payload: { cwd } },
        { type: 'turn_context', payload: { model: 'gpt-5-codex' } },
        {
          type: 'event_msg',
          payload: {
            type: 'token_count',
            info: {
              last_token_usage: { input_tokens: 50, cached_input_tokens: 20, output_tokens: 5 },
            },
          },
        },
      ]
        .map((x) => JSON.stringify(x))
        .join('\n') + '\n';
    writeFileSync(path.join(day, 'rollout-ours.jsonl'), codex(place.dir));
    writeFileSync(path.join(day, 'rollout-theirs.jsonl'), codex('/somewhere/else'));
    writeFileSync(path.join(day, 'notes.jsonl'), codex(place.dir));
    const ingest = new UsageIngest({ records, prices: () => ({}), log: () => undefined });
    expect(await ingest.pass([place])).toBe(2);
    appendFileSync(file, `${whole.slice(40)}\n`);
    expect(await ingest.pass([place])).toBe(1);
    expect(await ingest.pass([place])).toBe(0);
    const by = await records.totals({ by: 'provider' });
    expect(by.map((t) => [t.key, t.records, t.input_tokens, t.cached_input_tokens])).toEqual([
      ['claude', 2, 200, 0],
      ['codex', 1, 30, 20],
    ]);
    // Priced from the built-in table: haiku 4.5 at $1 in, $5 out per million.
    expect(by[0]!.cost_usd).toBeCloseTo((200 * 1 + 20 * 5) / 1e6, 9);
    expect((await records.totals({ by: 'bead' }))[0]!.key).toBe('gc-7');
    const again = new UsageIngest({ records, prices: () => ({}), log: () => undefined });
    expect(await again.pass([place])).toBe(0);
    await records.close();
  });
});
