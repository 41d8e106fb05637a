import { describe, expect, it } from 'vitest';
import { boundedStatus, type ControllerStatus, type SessionStatus } from './status.js';

const session = (name: string, state: SessionStatus['state']): SessionStatus => ({
  name,
  agent: 'w',
  state,
  last_activity: 0,
  attached: false,
  restarts_in_window: 0,
});

function status(sessions: SessionStatus[]): ControllerStatus {
  return {
    state: 'running',
    ticks: 1,
    last_tick_ms: 1,
    last_tick_at: 0,
    sessions,
    capped: [],
    pools: [],
    workspace_cap: 10,
    config_error: undefined,
    last_error: undefined,
    failing: [],
  };
}

describe('boundedStatus', () => {
  it('a small city: every session, counted, nothing truncated', () => {
    const b = boundedStatus(status([session('b', 'running'), session('a', 'quarantined')]), 10);
    expect(b.sessions.map((s) => s.name)).toEqual(['a', 'b']);
    expect(b).toMatchObject({
      sessions_total: 2,
      session_counts: { running: 1, quarantined: 1 },
      sessions_truncated: false,
    });
  });

  it('a big city: at most the limit, those needing attention first, all counted', () => {
    const all = [
      ...Array.from({ length: 500 }, (_, i) =>
        session(`r${String(i).padStart(3, '0')}`, 'running'),
      ),
      session('z-dead', 'dead'),
      session('q', 'quarantined'),
      session('d', 'draining'),
    ];
    const b = boundedStatus(status(all), 100);
    expect(b.sessions).toHaveLength(100);
    expect(b.sessions.slice(0, 3).map((s) => s.name)).toEqual(['d', 'q', 'z-dead']);
    expect(b.sessions[3]!.name).toBe('r000');
    expect(b).toMatchObject({
      sessions_total: 503,
      session_counts: { running: 500, dead: 1, quarantined: 1, draining: 1 },
      sessions_truncated: true,
    });
  });
});
