import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { gcBuilt } from '../../test/helpers/cli.js';
import { parseCityConfig } from '../config/index.js';
import { cityToml, demoPlan, indexJs, progressLine } from './commands/demo.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('gc demo plan', () => {
  it('every third bead builds on the one before; the others stand alone', () => {
    const plan = demoPlan(30);
    expect(plan).toHaveLength(30);
    expect(plan.map((b) => b.module)).toEqual(
      Array.from({ length: 30 }, (_, i) => `m${String(i).padStart(2, '0')}`),
    );
    for (const b of plan) {
      if (b.index % 3 === 2) {
        expect(b.requires).toBe(b.index - 1);
        expect(b.value).toBeUndefined();
        expect(b.description).toContain(`require('./${plan[b.index - 1]!.module}')`);
      } else {
        expect(b.requires).toBeUndefined();
        expect(b.value).toBe(b.index + 1);
      }
      expect(b.priority).toBeGreaterThanOrEqual(1);
      expect(b.priority).toBeLessThanOrEqual(3);
    }
    expect(plan.some((b) => b.pair !== undefined)).toBe(false);
    // Module names sort in bead order at any size.
    const big = demoPlan(120).map((b) => b.module);
    expect([...big].sort()).toEqual(big);
  });

  it('with two or more agents, the first two modules are a conflict pair', () => {
    const plan = demoPlan(30, { conflictPair: true });
    expect(plan.slice(0, 3).map((b) => b.pair)).toEqual(['m01', 'm00', undefined]);
    // Neighbours, both top priority and free of dependencies: both are
    // claimed first and touch adjacent lines of src/index.js.
    expect(plan.slice(0, 2).map((b) => [b.priority, b.requires])).toEqual([
      [1, undefined],
      [1, undefined],
    ]);
    expect(Math.min(...plan.map((b) => b.priority))).toBe(1);
    expect(demoPlan(1, { conflictPair: true })[0]!.pair).toBeUndefined();
  });

  it('the index lists every module in name order, the missing ones commented out', () => {
    expect(indexJs(['m01', 'base', 'm00'], new Set(['base', 'm01']))).toBe(
      [
        '// Every module of src/, in name order; modules not written yet are commented out.',
        'module.exports = {',
        "  base: require('./base'),",
        "  // m00: require('./m00'),",
        "  m01: require('./m01'),",
        '};',
        '',
      ].join('\n'),
    );
  });

  it('progress line', () => {
    expect(
      progressLine({
        beads_total: 30,
        beads_done: 12,
        beads_failed: 1,
        ready: 4,
        mq_depth: 3,
        mq_in_flight: 2,
        merges: 12,
        agents_running: 8,
        elapsed_s: 14.4,
      }),
    ).toBe(
      'beads 12/30 done, 4 ready, 1 FAILED | merge queue 3 waiting, 2 testing, 12 merged | 8 agent(s) running | 14s',
    );
  });

  it('the city it writes is a valid city.toml, for scripted agents and for an agent CLI', () => {
    const scripted = parseCityConfig(
      cityToml({
        provider: 'subprocess',
        agents: 8,
        agent: 'scripted',
        coder: "/opt/it's here/coder.mjs",
        workSeconds: 1,
      }),
      '/tmp/demo/city.toml',
    );
    expect(scripted.warnings).toEqual([]);
    const c = scripted.config;
    expect(c.session.provider).toBe('subprocess');
    expect(c.rigs[0]).toMatchObject({
      name: 'app',
      target: 'main',
      merge_workers: 2,
      merge_batch: 8,
    });
    expect(c.rigs[0]!.gates.test?.command).toBe('node test.js');
    expect(c.agent[0]).toMatchObject({ name: 'coder', dir: 'app', max_active_sessions: 8 });
    expect(c.agent[0]!.start_command).toContain(`'/opt/it'\\''s here/coder.mjs'`);

    const claude = parseCityConfig(
      cityToml({ provider: 'tmux', agents: 3, agent: 'claude', coder: '', workSeconds: 1 }),
      '/tmp/demo/city.toml',
    ).config;
    expect(claude.agent[0]).toMatchObject({
      provider: 'claude',
      prompt_template: 'prompts/coder.md',
    });
    expect(claude.agent[0]!.start_command).toBeUndefined();
  });
});

describe('gc demo options', () => {
  it('bad options are usage errors naming the option; a missing agent CLI is not found', async () => {
    const base = mkdtempSync(path.join(tmpdir(), 'gc-demo-opts-'));
    dirs.push(base);
    const cases: [string[], number, RegExp][] = [
      [['--agents', '0'], 2, /^gc: --agents: expected a whole number from 1 to 64, got "0"/m],
      [['--beads', 'lots'], 2, /--beads: expected a whole number/],
      [['--provider', 'docker'], 2, /--provider must be tmux or subprocess, not docker/],
      [['--agent', 'robot'], 2, /--agent must be scripted or an agent CLI preset \(claude, /],
      [
        ['--agent', 'claude', '--provider', 'tmux'],
        3,
        /the claude command is not on PATH[\s\S]*scripted agents/,
      ],
    ];
    for (const [args, code, message] of cases) {
      const r = await gcBuilt(['demo', '--dir', base, ...args], {
        // A PATH without any agent CLI on it.
        env: { PATH: '/usr/bin:/bin' },
      });
      expect(r.code, args.join(' ')).toBe(code);
      expect(r.stderr).toMatch(message);
    }
    // Nothing was made for a refused run.
    expect(existsSync(path.join(base, 'city'))).toBe(false);
  });
});
