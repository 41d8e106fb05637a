/**
 * Reading orders: every mistake at its file, line and column; discovery
 * across packs (a pack's orders count only beside its formulas/; higher
 * layers win); city.toml's [orders] skip, overrides and max_timeout.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadCityConfig } from '../config/index.js';
import { discoverOrders, OrderError, readOrder } from './index.js';

let root = '';
afterEach(() => {
  if (root) rmSync(root, { recursive: true, force: true });
  root = '';
});

function tree(files: Record<string, string>): string {
  root = mkdtempSync(path.join(tmpdir(), 'gc-orders-'));
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    writeFileSync(path.join(root, f), text);
  }
  return root;
}

function problems(text: string): string[] {
  const dir = tree({ 'orders/o.toml': text });
  try {
    readOrder({ name: 'o', file: path.join(dir, 'orders/o.toml'), pack: '', packDir: dir });
  } catch (e) {
    if (!(e instanceof OrderError)) throw e;
    return e.issues.map((i) => `${i.line ?? '-'}:${i.col ?? '-'} ${i.message}`);
  }
  return [];
}

describe('order files', () => {
  it.each([
    ['[order]\ngate = "manual"\n', ['1:1 an order needs formula or exec']],
    [
      '[order]\nexec = "x"\nformula = "f"\ngate = "manual"\n',
      ['3:1 formula and exec are exclusive: keep one'],
    ],
    [
      '[order]\nexec = "x"\n',
      ['1:1 an order needs a gate: cooldown, cron, condition, event, manual'],
    ],
    [
      '[order]\nexec = "x"\ngate = "hourly"\n',
      ['3:1 unknown gate "hourly" (one of cooldown, cron, condition, event, manual)'],
    ],
    [
      '[order]\nexec = "x"\ngate = "cooldown"\n',
      ['3:1 a cooldown gate needs interval (e.g. interval = "1h")'],
    ],
    [
      '[order]\nexec = "x"\ngate = "cooldown"\ninterval = "soon"\n',
      ['4:1 not a duration: "soon" (e.g. "90s", "5m", "1h")'],
    ],
    [
      '[order]\nexec = "x"\ngate = "cron"\nschedule = "0 25 * * *"\n',
      ['4:1 hour: 25 is outside 0-23'],
    ],
    [
      '[order]\nexec = "x"\ngate = "cron"\nschedule = "0 3 * * *"\ntz = "Nowhere/City"\n',
      ['5:1 unknown time zone "Nowhere/City"'],
    ],
    [
      '[order]\nexec = "x"\ngate = "event"\n',
      ['3:1 an event gate needs on (an event type, e.g. on = "bead.closed")'],
    ],
    [
      '[order]\nexec = "x"\ngate = "condition"\n',
      ['3:1 a condition gate needs check (a shell command; exit 0 = due)'],
    ],
    [
      '[order]\nexec = "x"\ngate = "manual"\npool = "w"\n',
      ['4:1 pool is for formula orders: an exec order runs in the city'],
    ],
    [
      '[order]\nformula = "f"\ngate = "manual"\n[order.env]\nA = "1"\n',
      ['4:1 env is for exec orders only'],
    ],
    [
      '[order]\nexec = "x"\ngate = "manual"\n[order.env]\nGC_CITY = "/x"\n',
      ['4:1 env: GC_CITY is set by gc for every run'],
    ],
    [
      '[order]\nexec = "x"\ngate = "manual"\nenabled = "yes"\n',
      ['4:1 expected true or false, got "yes"'],
    ],
    [
      '[order]\nexec = "x"\ngate = "manual"\nintreval = "1h"\n',
      ['4:1 unknown order key "intreval"'],
    ],
    ['[order]\nexec = "x"\ngate = "manual"\ntimeout = 30\n', ['4:1 expected a string, got 30']],
    [
      'exec = "x"\n',
      [
        '1:1 unknown table or key "exec": an order file holds one [order] table',
        '-:- no [order] table',
      ],
    ],
    ['[order\n', [expect.stringMatching(/^1:\d+ TOML syntax error/)]],
  ])('%j', (text, want) => {
    expect(problems(text)).toEqual(want);
  });

  it('reads every field, with defaults, and the newer Gas City keys as warnings', () => {
    const dir = tree({
      'orders/o.toml': [
        '[order]',
        'description = "nightly digest"',
        'exec = "scripts/digest.sh"',
        'trigger = "cron"',
        'schedule = "0 3 * * *"',
        'interval = "1h"',
        'idempotent = true',
        '[order.env]',
        'DEPTH = "2"',
      ].join('\n'),
    });
    const o = readOrder({
      name: 'o',
      file: path.join(dir, 'orders/o.toml'),
      pack: '',
      packDir: dir,
    });
    expect(o).toMatchObject({
      gate: 'cron',
      schedule: '0 3 * * *',
      timeoutMs: 300_000,
      checkTimeoutMs: 10_000,
      enabled: true,
      env: { DEPTH: '2' },
      warnings: ['idempotent: accepted, not acted on by gc', 'interval: not read by a cron gate'],
    });
    expect(o.interval).toBeUndefined();
  });
});

describe('discovering orders', () => {
  it('packs beside formulas/ only; the city wins; [orders] skips, overrides and caps', async () => {
    const dir = tree({
      'city.toml': [
        '[workspace]',
        'name = "c"',
        'includes = ["packs/ops", "packs/bare"]',
        '[[agent]]',
        'name = "mayor"',
        '[[rigs]]',
        'name = "app"',
        'path = "app"',
        'includes = ["packs/rigops"]',
        '[orders]',
        'skip = ["quiet", "feed"]',
        'max_timeout = "1m"',
        '[[orders.overrides]]',
        'name = "digest"',
        'interval = "2h"',
        '[[orders.overrides]]',
        'name = "sweep"',
        'rig = "app"',
        'interval = "10m"',
        '[[orders.overrides]]',
        'name = "ghost"',
        'enabled = false',
        '[[orders.overrides]]',
        'name = "quiet"',
        'gate = "cron"',
      ].join('\n'),
      'pack.toml': '[pack]\nname = "c"\nschema = 2\n',
      'orders/digest.toml': '[order]\nexec = "city digest"\ngate = "cooldown"\ninterval = "1h"\n',
      'packs/ops/pack.toml': '[pack]\nname = "ops"\nschema = 2\n',
      'packs/ops/formulas/f.toml': '[[steps]]\nid = "a"\n',
      'packs/ops/orders/digest.toml': '[order]\nexec = "pack digest"\ngate = "manual"\n',
      'packs/ops/orders/quiet.order.toml':
        '[order]\nexec = "q"\ngate = "cooldown"\ninterval = "5m"\n',
      'packs/ops/orders/old/order.toml': '[order]\nexec = "q"\ngate = "manual"\n',
      'packs/bare/pack.toml': '[pack]\nname = "bare"\nschema = 2\n',
      'packs/bare/orders/hidden.toml': '[order]\nexec = "h"\ngate = "manual"\n',
      'packs/rigops/pack.toml': '[pack]\nname = "rigops"\nschema = 2\n',
      'packs/rigops/formulas/f.toml': '[[steps]]\nid = "a"\n',
      'packs/rigops/orders/sweep.toml': '[order]\nexec = "s"\ngate = "cooldown"\ninterval = "5m"\n',
      'packs/rigops/orders/feed.toml':
        '[order]\nformula = "f"\ngate = "manual"\npool = "polecat"\n',
      'packs/rigops/orders/once.toml': '[order]\nexec = "o"\ngate = "manual"\nscope = "city"\n',
    });
    const loaded = await loadCityConfig(path.join(dir, 'city.toml'), {});
    const d = discoverOrders(loaded);
    expect(d.orders.map((o) => o.name)).toEqual([
      'digest',
      'feed:rig:app',
      'once',
      'sweep:rig:app',
    ]);
    const byName = new Map(d.orders.map((o) => [o.name, o]));
    // A rig's copy: its rig, its folder, its pool in the rig, the override made for it.
    expect(byName.get('sweep:rig:app')).toMatchObject({
      base: 'sweep',
      rig: 'app',
      workDir: path.join(dir, 'app'),
      intervalMs: 600_000,
      pack: 'rigops',
    });
    expect(byName.get('feed:rig:app')).toMatchObject({ pool: 'app/polecat', rig: 'app' });
    // scope = "city": once, for the city, in its folder.
    expect(byName.get('once')).toMatchObject({ rig: '', workDir: dir });
    const digest = d.orders[0]!;
    expect(digest).toMatchObject({
      exec: 'city digest',
      pack: '',
      intervalMs: 7_200_000,
      timeoutMs: 60_000,
      shadows: [path.join(dir, 'packs/ops/orders/digest.toml')],
    });
    expect(d.skipped).toEqual(['feed:rig:app']);
    const issues = d.issues.map(
      (i) => `${path.relative(dir, i.file)}:${i.line ?? '-'} ${i.message}`,
    );
    expect(issues).toEqual([
      'packs/ops/orders/old/order.toml:- the old folder layout: move it to orders/old.toml',
      'city.toml:25 a cron gate needs schedule (e.g. schedule = "0 3 * * *") (order quiet)',
      'city.toml:21 override of "ghost": no such order (digest, feed, once, quiet, sweep)',
    ]);
  });
});
