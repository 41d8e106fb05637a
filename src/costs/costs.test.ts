/**
 * Costs, pure parts: transcript and rollout parsing (a request counted
 * once however many lines repeat it; junk lines skipped), the price table,
 * budget windows and budget steps on a fake clock.
 */
import { describe, expect, it } from 'vitest';
import {
  claudeUsage,
  codexUsage,
  costOf,
  priceOf,
  stepBudget,
  windowEnd,
  windowStart,
  type Budget,
  type BudgetState,
} from './index.js';

const assistant = (requestId: string, usage: Record<string, number>, extra = {}) =>
  JSON.stringify({
    type: 'assistant',
    sessionId: 's-1',
    cwd: '/w/app',
    requestId,
    timestamp: '2026-03-04T10:00:00.000Z',
    message: { id: `msg_${requestId}`, model: 'claude-sonnet-4-5-20250929', usage },
    ...extra,
  });

describe('Claude Code transcripts', () => {
  it('one count per request; user lines, junk and lines without usage skipped', () => {
    const u = {
      input_tokens: 10,
      cache_read_input_tokens: 2000,
      cache_creation_input_tokens: 300,
      output_tokens: 50,
    };
    const lines = [
      JSON.stringify({ type: 'user', message: { content: 'hi' } }),
      assistant('req_1', u),
      assistant('req_1', u),
      'not json {',
      '',
      JSON.stringify({ type: 'assistant', message: { model: 'x' } }),
      assistant('req_2', { input_tokens: 5, output_tokens: -3 }),
    ];
    const seen = new Set<string>();
    const got = claudeUsage(lines, seen, 0);
    expect(got).toEqual([
      {
        id: 'req_1',
        model: 'claude-sonnet-4-5-20250929',
        input_tokens: 10,
        cached_input_tokens: 2000,
        cache_write_tokens: 300,
        output_tokens: 50,
        at: Date.parse('2026-03-04T10:00:00.000Z'),
        cwd: '/w/app',
      },
      expect.objectContaining({ id: 'req_2', input_tokens: 5, output_tokens: 0 }),
    ]);
    // A later read of the same request (the file read again) adds nothing.
    expect(claudeUsage([assistant('req_1', u)], seen, 0)).toEqual([]);
  });
});

describe('Codex rollouts', () => {
  it('token_count events with the turn’s model and the session’s cwd; cached split out', () => {
    const state = { model: '', line: 0 };
    const lines = [
      JSON.stringify({ type: 'session_meta', payload: { id: 'r1', cwd: '/w/app' } }),
      JSON.stringify({ type: 'turn_context', payload: { model: 'gpt-5-codex', cwd: '/w/app' } }),
      JSON.stringify({
        timestamp: '2026-03-04T10:00:01.000Z',
        type: 'event_msg',
        payload: {
          type: 'token_count',
          info: {
            total_token_usage: {
              input_tokens: 9000,
              cached_input_tokens: 8000,
              output_tokens: 700,
            },
            last_token_usage: { input_tokens: 3000, cached_input_tokens: 2500, output_tokens: 200 },
          },
        },
      }),
      JSON.stringify({ type: 'event_msg', payload: { type: 'token_count', info: null } }),
      JSON.stringify({ type: 'event_msg', payload: { type: 'agent_message', message: 'done' } }),
    ];
    expect(codexUsage(lines, state, 0)).toEqual([
      {
        id: '3',
        model: 'gpt-5-codex',
        input_tokens: 500,
        cached_input_tokens: 2500,
        cache_write_tokens: 0,
        output_tokens: 200,
        at: Date.parse('2026-03-04T10:00:01.000Z'),
        cwd: '/w/app',
      },
    ]);
    expect(state.line).toBe(5);
  });
});

describe('prices', () => {
  it('the longest prefix wins; overrides first; unknown models have none', () => {
    expect(priceOf('claude-sonnet-4-5-20250929')).toMatchObject({ input: 3, output: 15 });
    expect(priceOf('gpt-5-mini-2025')).toMatchObject({ input: 0.25 });
    expect(priceOf('gpt-5-codex')).toMatchObject({ input: 1.25 });
    expect(priceOf('llama-3')).toBeUndefined();
    const own = { 'claude-sonnet-4-5': { input: 1, output: 2, cached_input: 0, cache_write: 0 } };
    expect(priceOf('claude-sonnet-4-5-20250929', own)).toEqual(own['claude-sonnet-4-5']);
    const t = {
      input_tokens: 1e6,
      cached_input_tokens: 1e6,
      cache_write_tokens: 1e6,
      output_tokens: 1e6,
    };
    expect(costOf('claude-sonnet-4', t)).toBeCloseTo(3 + 0.3 + 3.75 + 15, 9);
    expect(costOf('llama-3', t)).toBeUndefined();
  });
});

describe('budget windows (UTC)', () => {
  it.each([
    ['day', '2026-03-04T23:59:59.999Z', '2026-03-04T00:00:00.000Z', '2026-03-05T00:00:00.000Z'],
    ['week', '2026-03-04T10:00:00.000Z', '2026-03-02T00:00:00.000Z', '2026-03-09T00:00:00.000Z'],
    ['week', '2026-03-08T23:00:00.000Z', '2026-03-02T00:00:00.000Z', '2026-03-09T00:00:00.000Z'],
    ['week', '2026-03-09T00:00:00.000Z', '2026-03-09T00:00:00.000Z', '2026-03-16T00:00:00.000Z'],
    ['month', '2026-12-31T12:00:00.000Z', '2026-12-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z'],
    ['month', '2028-02-29T12:00:00.000Z', '2028-02-01T00:00:00.000Z', '2028-03-01T00:00:00.000Z'],
  ] as const)('%s at %s: %s .. %s', (w, at, start, end) => {
    const t = Date.parse(at);
    expect(new Date(windowStart(w, t)).toISOString()).toBe(start);
    expect(new Date(windowEnd(w, t)).toISOString()).toBe(end);
  });
});

describe('budget steps', () => {
  const b: Budget = {
    name: 'daily',
    scope: 'city',
    window: 'day',
    usd: 10,
    warn: [50, 80],
    action: 'suspend',
  };
  const day = Date.parse('2026-03-04T00:00:00.000Z');
  const walk = (steps: [number, number][], budget = b) => {
    let s: BudgetState | undefined;
    const out: string[] = [];
    for (const [at, spent] of steps) {
      const r = stepBudget(budget, s, spent, day + at);
      s = r.next;
      out.push(
        r.changes
          .map((c) =>
            c.kind === 'warned'
              ? `warned ${c.threshold}`
              : c.kind === 'reset'
                ? `reset ${c.why}`
                : c.kind,
          )
          .join('+') || '-',
      );
    }
    return out;
  };
  const H = 3_600_000;

  it('warns once per threshold, trips once, resets when the window rolls', () => {
    expect(
      walk([
        [0, 1],
        [H, 5],
        [2 * H, 6],
        [3 * H, 8.5],
        [4 * H, 9],
        [5 * H, 10],
        [6 * H, 12],
        [25 * H, 0],
        [26 * H, 5.5],
      ]),
    ).toEqual([
      '-',
      'warned 50',
      '-',
      'warned 80',
      '-',
      'tripped',
      '-',
      'reset window',
      'warned 50',
    ]);
  });

  it('a jump past several thresholds warns the highest; straight to the amount only trips', () => {
    expect(walk([[0, 9]])).toEqual(['warned 80']);
    expect(walk([[0, 10]])).toEqual(['tripped']);
  });

  it('raising the amount above the spend resets a trip', () => {
    let s = stepBudget(b, undefined, 11, day).next;
    expect(s.tripped).toBe(true);
    const raised = stepBudget({ ...b, usd: 20 }, s, 11, day + 1000);
    expect(raised.changes).toEqual([{ kind: 'reset', why: 'raised' }]);
    s = raised.next;
    expect(s.tripped).toBe(false);
  });

  it('a tokens budget counts tokens', () => {
    const tokens: Budget = {
      name: 't',
      scope: 'city',
      window: 'day',
      tokens: 1000,
      warn: [],
      action: 'warn',
    };
    expect(
      walk(
        [
          [0, 400],
          [1, 1000],
        ],
        tokens,
      ),
    ).toEqual(['-', 'tripped']);
  });
});
