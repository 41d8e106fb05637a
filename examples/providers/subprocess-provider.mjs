#!/usr/bin/env node
// Reference implementation of the Gas City exec session protocol, over plain
// subprocesses. Use it as `[session] provider = "exec:/path/to/this/file"`,
// or as the starting point of your own provider script (Docker, SSH, ...).
//
// Protocol: `script <op> <name> [args...]`; exit 0 ok, 1 error (stderr),
// 2 unknown op. Payloads on stdin: start config JSON, process-alive names,
// nudge text, set-meta value. Also implements gc's `snapshot PREFIX`
// extension (one JSON object per line).
//
// State: $GC_EXEC_STATE_DIR (default $TMPDIR/gc-exec-provider-<uid>), one
// directory per session: state.json, stdin (FIFO), log, exit, meta/<KEY>.
// Needs only Node.js and `mkfifo`; Linux for process-alive (/proc).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const STATE =
  process.env.GC_EXEC_STATE_DIR ||
  path.join(os.tmpdir(), `gc-exec-provider-${process.getuid?.() ?? 'user'}`);
const [op, name, ...args] = process.argv.slice(2);
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

function fail(message) {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}
const readStdin = () => fs.readFileSync(0, 'utf8');
const dir = (n) => path.join(STATE, n);
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

function state(n) {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir(n), 'state.json'), 'utf8'));
  } catch {
    return undefined;
  }
}
function procStat(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return {
      state: f[0],
      ppid: +f[1],
      pgid: +f[2],
      sid: +f[3],
      start: f[19],
      comm: s.slice(s.indexOf('(') + 1, s.lastIndexOf(')')),
    };
  } catch {
    return undefined;
  }
}
function alive(st) {
  if (!st) return false;
  try {
    process.kill(st.pid, 0);
  } catch {
    return false;
  }
  const p = procStat(st.pid);
  if (!p) return process.platform !== 'linux';
  return p.state !== 'Z' && (!st.start || p.start === st.start);
}
function tree(root) {
  const procs = fs
    .readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map((pid) => ({ pid: +pid, ...procStat(+pid) }));
  const found = new Set(
    procs.filter((p) => p.pid === root || p.pgid === root || p.sid === root).map((p) => p.pid),
  );
  for (let grew = true; grew;) {
    grew = false;
    for (const p of procs) {
      if (!found.has(p.pid) && found.has(p.ppid)) {
        found.add(p.pid);
        grew = true;
      }
    }
  }
  return procs.filter((p) => found.has(p.pid) && p.state && p.state !== 'Z');
}
function names(p) {
  const out = [p.comm];
  try {
    const argv = fs.readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    for (const a of argv.slice(0, 2)) out.push(path.basename(a));
  } catch {
    // gone or unreadable
  }
  return out;
}
function writeFifo(n, text) {
  if (!alive(state(n))) return;
  let fd;
  try {
    fd = fs.openSync(path.join(dir(n), 'stdin'), fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  } catch {
    return;
  }
  let buf = Buffer.from(text);
  while (buf.length) {
    try {
      buf = buf.subarray(fs.writeSync(fd, buf));
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e;
      sleep(20);
    }
  }
  fs.closeSync(fd);
}
function tail(file, lines) {
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
  if (text.endsWith('\n')) text = text.slice(0, -1);
  return lines > 0 ? text.split('\n').slice(-lines).join('\n') : text;
}
function runHooks(kind, commands, cfg, env) {
  for (const c of commands ?? []) {
    const r = spawnSync('/bin/sh', ['-c', c], {
      cwd: cfg.work_dir,
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 60000,
    });
    if (r.status !== 0) fail(`${kind} failed: ${c}: ${String(r.stderr || '').trim()}`);
  }
}
function copyInto(workDir, src, rel) {
  const root = path.resolve(workDir);
  const dst = path.resolve(root, rel);
  if (path.isAbsolute(rel) || (dst !== root && !dst.startsWith(root + path.sep)))
    fail(`rel_dst ${rel} leaves the work dir`);
  if (!fs.existsSync(src)) return;
  fs.mkdirSync(path.dirname(dst), { recursive: true });
  fs.cpSync(src, dst, { recursive: true, force: true });
}
const KEYS = {
  Enter: '\n',
  Tab: '\t',
  Space: ' ',
  Escape: '\x1b',
  BSpace: '\x7f',
  Up: '\x1b[A',
  Down: '\x1b[B',
  Right: '\x1b[C',
  Left: '\x1b[D',
};
const rfc3339 = (ms) => (ms ? new Date(ms).toISOString() : '');
const mtime = (n) => {
  try {
    return fs.statSync(path.join(dir(n), 'log')).mtimeMs;
  } catch {
    return 0;
  }
};

const SHELL_WORDS = new Set(
  '! [ [[ . : alias bg builtin case cd command declare eval exec exit export fg for function if jobs let local read readonly return set shift source test time trap ulimit umask unset until wait while {'.split(
    ' ',
  ),
);
// The program of a simple command that is not on PATH (shell syntax is not checked).
function missingProgram(command, env, cwd) {
  const words = (command ?? '').trim().split(/\s+/).filter(Boolean);
  while (words.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[0])) words.shift();
  const prog = words[0];
  if (!prog || /[$`"'\\(){}[\]*?<>|;&~]/.test(prog) || SHELL_WORDS.has(prog)) return undefined;
  const dirs = prog.includes('/') ? [''] : (env.PATH ?? '').split(':');
  for (const d of dirs) {
    const file = prog.includes('/') ? path.resolve(cwd, prog) : path.join(d || '.', prog);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      if (fs.statSync(file).isFile()) return undefined;
    } catch {
      // gone or unreadable
    }
  }
  return prog;
}

function start() {
  const cfg = JSON.parse(readStdin() || '{}');
  fs.mkdirSync(STATE, { recursive: true });
  try {
    fs.mkdirSync(dir(name));
  } catch (e) {
    if (e.code !== 'EEXIST') throw e;
    if (alive(state(name)) || !state(name)) fail(`session ${name} already exists`);
    fs.rmSync(dir(name), { recursive: true, force: true });
    fs.mkdirSync(dir(name));
  }
  const env = { ...process.env, ...cfg.env };
  delete env.GC_EXEC_STATE_DIR;
  const workDir = cfg.work_dir || process.cwd();
  try {
    if (!fs.statSync(workDir).isDirectory()) throw new Error();
  } catch {
    fs.rmSync(dir(name), { recursive: true, force: true });
    fail(`work_dir ${workDir} is not a directory`);
  }
  if (cfg.overlay_dir && fs.existsSync(cfg.overlay_dir))
    fs.cpSync(cfg.overlay_dir, workDir, { recursive: true, force: true });
  for (const f of cfg.copy_files ?? []) copyInto(workDir, f.src, f.rel_dst);
  const missing = missingProgram(cfg.command, env, workDir);
  if (missing) {
    fs.rmSync(dir(name), { recursive: true, force: true });
    fail(`${missing}: command not found`);
  }
  runHooks('pre_start', cfg.pre_start, cfg, env);
  fs.mkdirSync(path.join(dir(name), 'meta'));
  const fifo = path.join(dir(name), 'stdin');
  execFileSync('mkfifo', ['-m', '600', fifo]);
  const stdin = fs.openSync(fifo, fs.constants.O_RDWR);
  const log = fs.openSync(path.join(dir(name), 'log'), 'w');
  const wrapper = '/bin/sh -c "$1"; code=$?; printf %s "$code" > "$2"; exit "$code"';
  const child = spawn(
    '/bin/sh',
    [
      '-c',
      wrapper,
      'gc-session',
      cfg.command?.trim() || 'exec /bin/sh',
      path.join(dir(name), 'exit'),
    ],
    {
      cwd: workDir,
      env,
      detached: true,
      stdio: [stdin, log, log],
    },
  );
  child.unref();
  fs.writeFileSync(
    path.join(dir(name), 'state.json'),
    JSON.stringify({ pid: child.pid, start: procStat(child.pid)?.start ?? '', work_dir: workDir }),
  );
  runHooks('session_setup', cfg.session_setup, cfg, env);
  if (cfg.session_setup_script)
    runHooks('session_setup_script', [`exec "$GC_SETUP_SCRIPT"`], cfg, {
      ...env,
      GC_SETUP_SCRIPT: cfg.session_setup_script,
    });
  runHooks('session_live', cfg.session_live, cfg, env);
  if (cfg.ready_prompt_prefix) {
    const until = Date.now() + 110000;
    while (
      !tail(path.join(dir(name), 'log'), 50)
        .split('\n')
        .some((l) => l.trimStart().startsWith(cfg.ready_prompt_prefix.trim()))
    ) {
      if (!alive(state(name)))
        fail(`session ${name} died during startup:\n${tail(path.join(dir(name), 'log'), 20)}`);
      if (Date.now() > until) fail(`session ${name} never showed its ready prompt`);
      sleep(100);
    }
  } else if (cfg.ready_delay_ms) sleep(cfg.ready_delay_ms);
  if (cfg.nudge) writeFifo(name, `${cfg.nudge}\n`);
}

function stop() {
  const st = state(name);
  if (alive(st)) {
    const kill = (sig) =>
      tree(st.pid).forEach((p) => {
        try {
          process.kill(p.pid, sig);
        } catch {
          // gone or unreadable
        }
      });
    kill('SIGTERM');
    for (let i = 0; i < 100 && tree(st.pid).length; i++) sleep(20);
    for (let i = 0; i < 5 && tree(st.pid).length; i++) {
      kill('SIGKILL');
      sleep(20);
    }
  }
  fs.rmSync(dir(name), { recursive: true, force: true });
}

if (op !== 'list-running' && op !== 'snapshot' && !NAME_RE.test(name ?? ''))
  fail(`invalid session name: ${name}`);
if (op === 'set-meta' || op === 'get-meta' || op === 'remove-meta') {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(args[0] ?? '')) fail(`invalid meta key: ${args[0]}`);
}
switch (op) {
  case 'start':
    start();
    break;
  case 'stop':
    stop();
    break;
  case 'interrupt': {
    const st = state(name);
    if (alive(st))
      try {
        process.kill(-st.pid, 'SIGINT');
      } catch {
        // gone or unreadable
      }
    break;
  }
  case 'is-running':
    process.stdout.write(alive(state(name)) ? 'true\n' : 'false\n');
    break;
  case 'is-attached':
    process.stdout.write('false\n');
    break;
  case 'process-alive': {
    const wanted = new Set(readStdin().split('\n').filter(Boolean));
    const st = state(name);
    const yes = alive(st) && tree(st.pid).some((p) => names(p).some((n) => wanted.has(n)));
    process.stdout.write(yes ? 'true\n' : 'false\n');
    break;
  }
  case 'nudge':
    writeFifo(name, `${readStdin()}\n`);
    break;
  case 'send-keys':
    for (const k of args) {
      if (k === 'C-c') {
        const st = state(name);
        if (alive(st))
          try {
            process.kill(-st.pid, 'SIGINT');
          } catch {
            // gone or unreadable
          }
      } else
        writeFifo(
          name,
          KEYS[k] ??
            (/^C-[a-z]$/i.test(k) ? String.fromCharCode(k[2].toLowerCase().charCodeAt(0) - 96) : k),
        );
    }
    break;
  case 'set-meta':
    if (!state(name)) fail(`session not found: ${name}`);
    fs.writeFileSync(path.join(dir(name), 'meta', args[0]), readStdin());
    break;
  case 'get-meta':
    try {
      process.stdout.write(fs.readFileSync(path.join(dir(name), 'meta', args[0]), 'utf8'));
    } catch {
      // gone or unreadable
    }
    break;
  case 'remove-meta':
    fs.rmSync(path.join(dir(name), 'meta', args[0]), { force: true });
    break;
  case 'peek': {
    const out = tail(path.join(dir(name), 'log'), Number(args[0] ?? 0));
    if (out) process.stdout.write(`${out}\n`);
    break;
  }
  case 'list-running':
  case 'snapshot': {
    const prefix = name ?? '';
    let entries = [];
    try {
      entries = fs
        .readdirSync(STATE)
        .filter((n) => n.startsWith(prefix) && NAME_RE.test(n))
        .sort();
    } catch {
      // gone or unreadable
    }
    for (const n of entries) {
      const st = state(n);
      if (!st) continue;
      const live = alive(st);
      if (op === 'list-running') {
        if (live) process.stdout.write(`${n}\n`);
        continue;
      }
      let code;
      try {
        code = Number(fs.readFileSync(path.join(dir(n), 'exit'), 'utf8'));
      } catch {
        // gone or unreadable
      }
      const row = { name: n, alive: live, last_activity: rfc3339(mtime(n)), attached: false };
      if (!live && Number.isInteger(code)) row.exit_code = code;
      process.stdout.write(`${JSON.stringify(row)}\n`);
    }
    break;
  }
  case 'get-last-activity':
    if (state(name)) process.stdout.write(`${rfc3339(mtime(name))}\n`);
    break;
  case 'clear-scrollback':
    if (state(name))
      try {
        fs.truncateSync(path.join(dir(name), 'log'), 0);
      } catch {
        // gone or unreadable
      }
    break;
  case 'copy-to': {
    const st = state(name);
    if (st) copyInto(st.work_dir, args[0], args[1]);
    break;
  }
  default:
    process.exit(2);
}
