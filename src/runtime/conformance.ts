/**
 * Runtime conformance suite, run against every provider (fake, subprocess,
 * tmux, exec). Each test uses its own unique name prefix and stops every
 * session it started, even when it fails, so suites can run in parallel.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ValidationError, randomBase36 } from '../core/index.js';
import { SessionExistsError } from './errors.js';
import { pidAlive } from './proc.js';
import type { Provider } from './provider.js';
import { until } from '../../test/helpers/wait.js';

export interface RuntimeHarness {
  provider: Provider;
  /** Providers without processes (the fake): make a session's process exit. */
  kill?: (name: string, exitCode: number) => void;
  /** After the suite: stop servers, remove state. */
  teardown?: () => Promise<void>;
}

export type RuntimeHarnessFactory = () => Promise<RuntimeHarness>;

const LONG = 'sleep 600';

export function runRuntimeConformance(label: string, factory: RuntimeHarnessFactory): void {
  describe(`Runtime conformance: ${label}`, () => {
    let h: RuntimeHarness;
    let p: Provider;
    let prefix = '';
    let tmp = '';
    const started = new Set<string>();

    /** A unique session name for this test. */
    const n = (suffix: string) => {
      const name = `${prefix}${suffix}`;
      started.add(name);
      return name;
    };
    const start = async (name: string, command = LONG, extra: Record<string, unknown> = {}) => {
      await p.start(name, { command, work_dir: tmp, ...extra });
    };
    /** Make a session's process exit with `code`. */
    const exitSession = async (name: string, code: number) => {
      if (h.kill) {
        await start(name);
        h.kill(name, code);
      } else {
        await start(name, `exit ${code}`);
      }
      await until(
        `${name} to die`,
        () => p.isRunning(name),
        (v) => v === false,
      );
    };

    beforeAll(async () => {
      h = await factory();
      p = h.provider;
    });
    afterAll(async () => {
      await p.close();
      await h.teardown?.();
    });
    beforeEach(async () => {
      prefix = `c${randomBase36(6)}-`;
      tmp = await mkdtemp(path.join(os.tmpdir(), 'gc-rt-'));
    });
    afterEach(async () => {
      const names = new Set([...started, ...(await p.snapshot(prefix)).map((s) => s.name)]);
      started.clear();
      await Promise.all([...names].map((s) => p.stop(s).catch(() => undefined)));
      await rm(tmp, { recursive: true, force: true });
    });

    it('start creates a running session', async () => {
      const a = n('a');
      await start(a);
      expect(await p.isRunning(a)).toBe(true);
      expect(await p.listRunning(prefix)).toEqual([a]);
    });

    it('duplicate start is SessionExistsError', async () => {
      const a = n('a');
      await start(a);
      await expect(start(a)).rejects.toBeInstanceOf(SessionExistsError);
      expect(await p.isRunning(a)).toBe(true);
    });

    it('a dead session is replaced by a new start', async () => {
      const a = n('a');
      await exitSession(a, 3);
      await start(a);
      expect(await p.isRunning(a)).toBe(true);
    });

    it('concurrent starts of distinct names all run', async () => {
      const names = Array.from({ length: 6 }, (_, i) => n(`s${i}`));
      await Promise.all(names.map((x) => start(x)));
      expect(await p.listRunning(prefix)).toEqual([...names].sort());
    });

    it('stop makes it not running and is idempotent', async () => {
      const a = n('a');
      await p.stop(n('never'));
      await start(a);
      await p.stop(a);
      expect(await p.isRunning(a)).toBe(false);
      expect(await p.listRunning(prefix)).toEqual([]);
      await p.stop(a);
    });

    it('concurrent stops', async () => {
      const names = Array.from({ length: 5 }, (_, i) => n(`s${i}`));
      await Promise.all(names.map((x) => start(x)));
      await Promise.all([...names, ...names].map((x) => p.stop(x)));
      expect(await p.listRunning(prefix)).toEqual([]);
    });

    it('stopMany stops the named sessions only, idempotently', async () => {
      const names = Array.from({ length: 12 }, (_, i) => n(`w${i}`));
      const keep = n('keep');
      await Promise.all([...names, keep].map((x) => start(x)));
      const many = (xs: string[]) =>
        p.stopMany ? p.stopMany(xs) : Promise.all(xs.map((x) => p.stop(x))).then(() => undefined);
      await many([...names, n('never')]);
      expect(await p.listRunning(prefix)).toEqual([keep]);
      await many(names);
      expect(await p.listRunning(prefix)).toEqual([keep]);
    });

    it('startMany starts each session as start then setMeta would, failing only the bad ones', async (ctx) => {
      if (!p.startMany) ctx.skip();
      const real = p.capabilities.runsProcesses;
      const good = Array.from({ length: 12 }, (_, i) => n(`m${i}`));
      const live = n('live');
      const dead = n('dead');
      const missing = n('missing');
      await start(live);
      await exitSession(dead, 2);
      const req = (name: string, command = LONG) => ({
        name,
        config: {
          command:
            real && command === LONG ? `printf '%s' "$GC_X" > ${name}.env; ${command}` : command,
          work_dir: tmp,
          env: { GC_X: `x-${name}` },
        },
        meta: { GC_FP: `fp-${name}` },
      });
      const told = new Map<number, (Error | undefined)[]>();
      const results = await p.startMany!(
        [
          ...good.slice(0, 6).map((x) => req(x)),
          req(live),
          req(missing, 'gc-no-such-program-xyz --flag'),
          req(dead),
          ...good.slice(6).map((x) => req(x)),
          req(good[2]!), // twice in one wave: one of the two starts it
        ],
        (i, err) => told.set(i, [...(told.get(i) ?? []), err]),
      );
      // Each outcome told once, as the call returns it.
      expect([...told.keys()].sort((a, b) => a - b)).toEqual(results.map((_, i) => i));
      for (const [i, errs] of told) expect(errs).toEqual([results[i]]);
      const twice = [results[2], results.pop()].map((r) => r?.constructor.name ?? 'ok');
      expect(twice.sort()).toEqual(['SessionExistsError', 'ok']);
      results[2] = undefined;
      expect(results.map((r) => r?.constructor.name ?? 'ok')).toEqual([
        ...Array<string>(6).fill('ok'),
        'SessionExistsError',
        // Only providers that run processes look for the program (see the missing-command test).
        real ? 'ValidationError' : 'ok',
        'ok',
        ...Array<string>(6).fill('ok'),
      ]);
      expect(await p.listRunning(prefix)).toEqual(
        [...good, live, dead, ...(real ? [] : [missing])].sort(),
      );
      for (const x of [...good, dead]) expect(await p.getMeta(x, 'GC_FP')).toBe(`fp-${x}`);
      expect(await p.getMeta(live, 'GC_FP')).toBe('');
      if (real) {
        for (const x of [...good, dead]) {
          const file = path.join(tmp, `${x}.env`);
          await until(`${x} to write its env`, () => existsSync(file), Boolean);
          await until(
            `${x}'s env`,
            () => readFile(file, 'utf8'),
            (t) => t === `x-${x}`,
          );
        }
      }
    });

    it('interruptMany interrupts each named session that exists', async (ctx) => {
      if (!p.capabilities.runsProcesses || !p.interruptMany) ctx.skip();
      const names = [n('i1'), n('i2')];
      for (const x of names) {
        await start(x, `trap 'echo int >> ${x}.int' INT; while true; do sleep 0.2; done`);
      }
      await p.interruptMany!([...names, n('never')]);
      for (const x of names) {
        await until(
          `${x} to see the interrupt`,
          () => readFile(path.join(tmp, `${x}.int`), 'utf8').catch(() => ''),
          (v) => v.includes('int'),
        );
      }
    });

    it('nudgeMany types the text into each live session exactly once, skipping missing ones', async () => {
      const names = [n('n1'), n('n2'), n('n3')];
      const single = `one line $(touch x) ; C-c`;
      const multi = 'first\nsecond line';
      if (p.capabilities.runsProcesses) {
        for (const x of names) await start(x, `cat > ${x}.got`);
      } else {
        for (const x of names) await start(x);
      }
      // A missing session in the middle: a batch that trips on it still
      // reaches the ones after it, and the ones before it only once.
      const many = (ns: string[], text: string) =>
        p.nudgeMany ? p.nudgeMany(ns, text) : Promise.all(ns.map((x) => p.nudge(x, text)));
      await many([names[0]!, n('gone'), names[1]!, names[2]!], single);
      await many([...names, n('gone2')], multi);
      const want = `${single}\n${multi}\n`;
      for (const x of names) {
        if (p.capabilities.runsProcesses) {
          const got = await until(
            `${x} to get both nudges`,
            () => readFile(path.join(tmp, `${x}.got`), 'utf8').catch(() => ''),
            (v) => v.length >= want.length,
          );
          // Settle: a repeated nudge would arrive after the first.
          await new Promise((r) => setTimeout(r, 300));
          expect(await readFile(path.join(tmp, `${x}.got`), 'utf8')).toBe(want);
          expect(got.startsWith(single)).toBe(true);
        } else {
          expect(await p.peek(x, 0)).toContain(multi);
        }
      }
      if (p.nudgeMany) {
        await expect(p.nudgeMany(names, 'esc \u001b[2J')).rejects.toBeInstanceOf(ValidationError);
      }
    });

    it('interrupt reaches the program: one without a handler ends, one with a handler runs it', async (ctx) => {
      if (!p.capabilities.runsProcesses) ctx.skip();
      const plain = n('plain');
      const handled = n('handled');
      await start(plain, 'sleep 600');
      await start(
        handled,
        `trap 'echo int >> ${handled}.int' INT; touch ${handled}.ready; while true; do sleep 0.2; done`,
      );
      // An interrupt before the program runs (or sets its trap) is not what this checks.
      await until(`${plain} to run sleep`, () => p.processAlive(plain, ['sleep']), Boolean);
      await until(
        `${handled} to set its trap`,
        () => existsSync(path.join(tmp, `${handled}.ready`)),
        Boolean,
      );
      await p.interrupt(plain);
      await p.interrupt(handled);
      await until(
        `${plain} to end on the interrupt`,
        () => p.isRunning(plain),
        (v) => !v,
      );
      await until(
        `${handled} to see the interrupt`,
        () => readFile(path.join(tmp, `${handled}.int`), 'utf8').catch(() => ''),
        (v) => v.includes('int'),
      );
      expect(await p.isRunning(handled)).toBe(true);
    });

    it('missing sessions: isRunning false, and best-effort ops do not error', async () => {
      const m = n('missing');
      expect(await p.isRunning(m)).toBe(false);
      expect(await p.isAttached(m)).toBe(false);
      await p.interrupt(m);
      await p.nudge(m, 'hello');
      await p.sendKeys(m, ['Enter']);
      await p.clearScrollback(m);
      await p.copyTo(m, path.join(tmp, 'nope'), 'x');
      expect(await p.peek(m, 10)).toBe('');
      expect(await p.getLastActivity(m)).toBe(0);
      expect(await p.getMeta(m, 'K')).toBe('');
      await p.removeMeta(m, 'K');
      expect(await p.processAlive(m, ['sleep'])).toBe(false);
    });

    it('running sessions: peek, activity, scrollback, copy-to, keys, interrupt, nudge', async () => {
      const a = n('a');
      await start(a, 'cat');
      // cat echoes what it is given: the nudged line shows in the output.
      const marker = `hello-${randomBase36(6)}`;
      await p.nudge(a, marker);
      await until(
        'the nudged line in peek',
        () => p.peek(a, 5),
        (out) => out.includes(marker),
      );
      expect(await p.peek(a, 0)).toContain(marker);
      await p.sendKeys(a, ['x', 'Enter']);
      expect(await p.getLastActivity(a)).toBeGreaterThan(0);
      await p.clearScrollback(a);
      await p.copyTo(a, path.join(tmp, 'does-not-exist'), 'dst');
      await p.interrupt(a);
      await expect(p.copyTo(a, tmp, '../escape')).rejects.toBeInstanceOf(ValidationError);
    });

    it('list-running filters by prefix, excludes stopped, "" lists all', async () => {
      const one = n('one');
      const two = n('two');
      const gone = n('gone');
      await Promise.all([start(one), start(two), start(gone)]);
      await p.stop(gone);
      expect(await p.listRunning(prefix)).toEqual([one, two]);
      expect(await p.listRunning(one)).toEqual([one]);
      expect(await p.listRunning(`${prefix}zzz`)).toEqual([]);
      const all = await p.listRunning('');
      expect(all).toEqual(expect.arrayContaining([one, two]));
      expect(all).not.toContain(gone);
    });

    it('process-alive: true for no names, false after stop', async () => {
      const a = n('a');
      await start(a);
      expect(await p.processAlive(a, [])).toBe(true);
      if (p.capabilities.runsProcesses) {
        // The command's process appears once the shell has exec'd it.
        await until(
          'sleep in the session tree',
          () => p.processAlive(a, ['sleep']),
          (v) => v,
        );
        expect(await p.processAlive(a, ['no-such-proc-name'])).toBe(false);
      }
      await p.stop(a);
      expect(await p.processAlive(a, ['sleep'])).toBe(false);
      expect(await p.processAlive(a, [])).toBe(true);
    });

    it('meta: round trip, unset is "", remove, overwrite, several keys', async () => {
      const a = n('a');
      await start(a);
      expect(await p.getMeta(a, 'GC_DRAIN')).toBe('');
      await p.setMeta(a, 'GC_DRAIN', '1700000000');
      await p.setMeta(a, 'OTHER', 'va lue; $(x) `y` "q"');
      expect(await p.getMeta(a, 'GC_DRAIN')).toBe('1700000000');
      expect(await p.getMeta(a, 'OTHER')).toBe('va lue; $(x) `y` "q"');
      await p.setMeta(a, 'GC_DRAIN', 'again;');
      expect(await p.getMeta(a, 'GC_DRAIN')).toBe('again;');
      await p.removeMeta(a, 'GC_DRAIN');
      await p.removeMeta(a, 'GC_DRAIN');
      expect(await p.getMeta(a, 'GC_DRAIN')).toBe('');
      expect(await p.getMeta(a, 'OTHER')).toBe('va lue; $(x) `y` "q"');
      await expect(p.setMeta(n('missing'), 'K', 'v')).rejects.toMatchObject({ code: 'not_found' });
      await expect(p.setMeta(a, 'bad key', 'v')).rejects.toBeInstanceOf(ValidationError);
    });

    it('snapshot agrees with is-running and last-activity', async () => {
      const names = [n('a'), n('b'), n('c')];
      await Promise.all(names.map((x) => start(x)));
      await p.stop(names[2]!);
      const snap = await p.snapshot(prefix);
      expect(snap.map((s) => s.name)).toEqual([names[0], names[1]]);
      for (const s of snap) {
        expect(s.alive).toBe(await p.isRunning(s.name));
        expect(Math.abs(s.lastActivity - (await p.getLastActivity(s.name)))).toBeLessThanOrEqual(
          1000,
        );
        expect(s.attached).toBe(false);
      }
      expect(await p.snapshot(`${prefix}zzz`)).toEqual([]);
    });

    it('a session whose process exits shows alive=false with its exit status', async () => {
      const a = n('dies');
      const b = n('lives');
      await start(b);
      await exitSession(a, 3);
      const snap = await p.snapshot(prefix);
      const dead = snap.find((s) => s.name === a);
      expect(dead).toMatchObject({ name: a, alive: false, exitCode: 3 });
      expect(snap.find((s) => s.name === b)?.alive).toBe(true);
      expect(await p.listRunning(prefix)).toEqual([b]);
    });

    it('concurrent operations on distinct sessions', async () => {
      const names = Array.from({ length: 5 }, (_, i) => n(`s${i}`));
      await Promise.all(names.map((x) => start(x, 'cat')));
      await Promise.all(
        names.flatMap((x, i) => [
          p.setMeta(x, 'IDX', String(i)),
          p.nudge(x, `to ${x}`),
          p.peek(x, 5),
          p.isRunning(x),
        ]),
      );
      expect(await Promise.all(names.map((x) => p.getMeta(x, 'IDX')))).toEqual([
        '0',
        '1',
        '2',
        '3',
        '4',
      ]);
      await Promise.all(names.map((x) => p.stop(x)));
      expect(await p.listRunning(prefix)).toEqual([]);
    });

    it('nudge text arrives literally and runs nothing', async () => {
      const a = n('lit');
      const marker = path.join(tmp, 'pwned');
      const lines = [
        `-leading dash; echo hi; $(touch ${marker}) \`touch ${marker}\``,
        `quotes ' " \\ and C-c Enter and ends with;`,
        '',
        'tab\there and a unicode ✓ line',
      ];
      const text = lines.join('\n');
      const single = `-n $(touch ${marker}); C-c`;
      if (p.capabilities.runsProcesses) {
        await start(a, 'cat > received.txt');
        await p.nudge(a, single);
        await p.nudge(a, text);
        const want = `${single}\n${text}\n`;
        const got = await until(
          'nudged text in received.txt',
          () => readFile(path.join(tmp, 'received.txt'), 'utf8').catch(() => ''),
          (v) => v.length >= want.length,
        );
        expect(got).toBe(want);
      } else {
        await start(a);
        await p.nudge(a, text);
        expect(await p.peek(a, 0)).toContain(text);
      }
      expect(existsSync(marker)).toBe(false);
      await expect(p.nudge(a, 'bell \u0007')).rejects.toBeInstanceOf(ValidationError);
      await expect(p.nudge(a, 'esc \u001b[2J')).rejects.toBeInstanceOf(ValidationError);
    });

    it('session names that tools would mangle are refused before any call', async () => {
      for (const bad of ['', 'a b', 'x.y', 'a:b', '-x', '$(id)', 'a;b', 'é', 'x'.repeat(101)]) {
        await expect(p.start(bad, { command: LONG })).rejects.toBeInstanceOf(ValidationError);
        await expect(p.stop(bad)).rejects.toBeInstanceOf(ValidationError);
        await expect(p.isRunning(bad)).rejects.toBeInstanceOf(ValidationError);
      }
      await expect(p.listRunning('a.b')).rejects.toBeInstanceOf(ValidationError);
      await expect(p.sendKeys(n('k'), ['ok', ''])).rejects.toBeInstanceOf(ValidationError);
    });

    it('start with a missing command fails with a clear error, not a hang', async (ctx) => {
      if (!p.capabilities.runsProcesses) ctx.skip();
      const a = n('nocmd');
      // A hang would be caught by the test's own timeout; no elapsed-time assert.
      await expect(start(a, 'gc-no-such-command-x1 --flag')).rejects.toThrow(
        /gc-no-such-command-x1/,
      );
      expect(await p.isRunning(a)).toBe(false);
    });

    it('peek shows output; env (PATH too) and work dir reach the session', async (ctx) => {
      if (!p.capabilities.runsProcesses) ctx.skip();
      const a = n('out');
      const binDir = path.join(tmp, 'bin');
      await start(a, 'echo "marker:$GC_TEST_VAR:$(pwd):${PATH%%:*}"; sleep 600', {
        env: { GC_TEST_VAR: 'v;1', PATH: `${binDir}:${process.env.PATH ?? ''}` },
      });
      const want = `marker:v;1:${tmp}:${binDir}`;
      await until(
        'marker in peek',
        () => p.peek(a, 20),
        (v) => v.includes(want),
      );
      expect(await p.peek(a, 0)).toContain(want);
    });

    it('copy-to copies a file into the work dir', async (ctx) => {
      if (!p.capabilities.runsProcesses) ctx.skip();
      const a = n('cp');
      const src = path.join(os.tmpdir(), `gc-rt-src-${randomBase36(6)}`);
      await writeFile(src, 'payload');
      try {
        await start(a);
        await p.copyTo(a, src, 'sub/dir/file.txt');
        expect(await readFile(path.join(tmp, 'sub/dir/file.txt'), 'utf8')).toBe('payload');
      } finally {
        await rm(src, { force: true });
      }
    });

    it('stop leaves no process behind, even one ignoring SIGTERM and SIGHUP', async (ctx) => {
      if (!p.capabilities.runsProcesses) ctx.skip();
      const a = n('tree');
      await start(a, `(trap '' TERM HUP INT; exec sleep 777) & echo $! > child.pid; wait`);
      const pidText = await until(
        'child.pid',
        () => readFile(path.join(tmp, 'child.pid'), 'utf8').catch(() => ''),
        (v) => v.trim() !== '',
      );
      const pid = Number(pidText.trim());
      expect(await pidAlive(pid)).toBe(true);
      await p.stop(a);
      await until(
        'child to exit',
        () => pidAlive(pid),
        (v) => !v,
        3000,
      );
    });
  });
}
