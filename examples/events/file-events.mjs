#!/usr/bin/env node
// Reference events script for gc's exec events protocol ([events] provider =
// "exec:examples/events/file-events.mjs"). Appends one JSON line per event to
// $GC_EVENTS_FILE (default ./.gc/exec-events.jsonl); the next seq is kept
// beside it in <file>.seq, both guarded by a lock directory so concurrent
// writers stay gap-free. Node only, no dependencies.
//
//   ensure-running                          create the folder
//   record      stdin event JSON            print the stored event
//   list        stdin {Type,Actor,Since,AfterSeq}   print a JSON array
//   latest-seq                              print the highest seq
//   watch AFTER_SEQ                         print NDJSON events, then follow the file
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';

const [op, arg] = process.argv.slice(2);
const file = process.env.GC_EVENTS_FILE || path.join(process.cwd(), '.gc', 'exec-events.jsonl');
const seqFile = `${file}.seq`;
const lock = `${file}.lock`;

function sleep(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function locked(fn) {
  for (let i = 0; ; i++) {
    try {
      mkdirSync(lock);
      break;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
      // A lock left by a killed writer is broken after 10 s.
      try {
        if (Date.now() - statSync(lock).mtimeMs > 10_000) rmdirSync(lock);
      } catch {
        // gone already
      }
      if (i > 2000) throw new Error('events lock is busy');
      sleep(5);
    }
  }
  try {
    return fn();
  } finally {
    rmdirSync(lock);
  }
}

function readStdin() {
  try {
    const text = readFileSync(0, 'utf8').trim();
    return text ? JSON.parse(text) : {};
  } catch (e) {
    process.stderr.write(`bad JSON on stdin: ${e.message}\n`);
    process.exit(1);
  }
}

function latest() {
  return existsSync(seqFile) ? Number(readFileSync(seqFile, 'utf8').trim() || 0) : 0;
}

function events() {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line));
}

function matches(e, f) {
  if (f.Type && e.type !== f.Type) return false;
  if (f.Actor && e.actor !== f.Actor) return false;
  if (f.Since && Date.parse(e.ts) < Date.parse(f.Since)) return false;
  if (f.AfterSeq && e.seq <= f.AfterSeq) return false;
  return true;
}

switch (op) {
  case 'ensure-running':
    mkdirSync(path.dirname(file), { recursive: true });
    break;
  case 'record': {
    const input = readStdin();
    if (typeof input.type !== 'string' || !input.type) {
      process.stderr.write('record: an event needs a type\n');
      process.exit(1);
    }
    mkdirSync(path.dirname(file), { recursive: true });
    const event = locked(() => {
      const e = { seq: latest() + 1, ...input, ts: input.ts || new Date().toISOString() };
      appendFileSync(file, `${JSON.stringify(e)}\n`);
      writeFileSync(seqFile, String(e.seq));
      return e;
    });
    process.stdout.write(`${JSON.stringify(event)}\n`);
    break;
  }
  case 'list': {
    const filter = readStdin();
    process.stdout.write(`${JSON.stringify(events().filter((e) => matches(e, filter)))}\n`);
    break;
  }
  case 'latest-seq':
    process.stdout.write(`${latest()}\n`);
    break;
  case 'watch': {
    let after = Number(arg || 0);
    const emit = () => {
      for (const e of events()) {
        if (e.seq > after) {
          process.stdout.write(`${JSON.stringify(e)}\n`);
          after = e.seq;
        }
      }
    };
    emit();
    setInterval(emit, 200);
    process.on('SIGTERM', () => process.exit(0));
    break;
  }
  default:
    process.exit(2); // not supported
}
