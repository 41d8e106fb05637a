#!/usr/bin/env node
// Reference beads script for gc's exec beads protocol ([beads] provider =
// "exec:examples/beads/file-beads.mjs"). Keeps every bead in one JSON file,
// $GC_BEADS_FILE (default $GC_STORE_ROOT/.gc/exec-beads.json, else
// ./.gc/exec-beads.json), in creation order. Writers take a lock directory
// and replace the file by rename, so readers never see half a write. Node
// only, no dependencies. Beads are printed the way Gas City scripts print
// them: `type` and `parent_id`, not `issue_type` and `parent`.
//
//   create                    stdin {title,type,priority,labels,parent_id,ref,needs,
//                                    description,assignee,from,metadata} -> bead
//   get ID                    -> bead ("not found" on stderr, exit 1, when missing)
//   update ID                 stdin {title,status,priority,description,parent_id,
//                                    assignee,labels,remove_labels,metadata,type,ref} -> bead
//   close ID                  -> bead
//   list [--status=S] [--assignee=A] [--type=T] [--limit=N]   -> [bead]
//   ready                     -> [bead] open, nothing open blocking it
//   children PARENT           -> [bead]
//   list-by-label LABEL LIMIT -> [bead] (LIMIT 0: all)
//   set-metadata ID KEY       stdin value
//   delete --force ID
//   dep-add ISSUE DEPENDS_ON TYPE
//   dep-remove ISSUE DEPENDS_ON
//   dep-list ID down|up       -> [{issue_id,depends_on_id,type}]
//   ensure-ready              create the folder
//   init DIR PREFIX           create the folder (the file goes in DIR/.gc)
//   health                    prints ok
//   shutdown                  exit 2: nothing to stop
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';

const [op, ...args] = process.argv.slice(2);
const root = process.env.GC_STORE_ROOT || process.cwd();
let file = process.env.GC_BEADS_FILE || path.join(root, '.gc', 'exec-beads.json');
const prefix = process.env.GC_BEADS_PREFIX || 'bd';

function fail(message, code = 1) {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

function sleep(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function load() {
  if (!existsSync(file)) return [];
  const text = readFileSync(file, 'utf8');
  return text.trim() ? JSON.parse(text) : [];
}

function save(beads) {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(beads));
  renameSync(tmp, file);
}

/** Run fn(beads) under the lock; it returns what to print. */
function write(fn) {
  mkdirSync(path.dirname(file), { recursive: true });
  const lock = `${file}.lock`;
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
      if (i > 4000) fail('beads lock is busy');
      sleep(5);
    }
  }
  try {
    const beads = load();
    const out = fn(beads);
    save(beads);
    return out;
  } finally {
    rmdirSync(lock);
  }
}

function stdin() {
  try {
    return readFileSync(0, 'utf8');
  } catch {
    return '';
  }
}

function request() {
  const text = stdin().trim();
  return text ? JSON.parse(text) : {};
}

function find(beads, id) {
  const b = beads.find((x) => x.id === id);
  if (!b) fail(`no issue found: ${id}`);
  return b;
}

function print(v) {
  if (v !== undefined) process.stdout.write(`${JSON.stringify(v)}\n`);
}

const now = () => new Date().toISOString();

function setParent(b, parent) {
  b.dependencies = b.dependencies.filter((d) => d.type !== 'parent-child');
  b.parent_id = parent || '';
  if (parent)
    b.dependencies.unshift({ issue_id: b.id, depends_on_id: parent, type: 'parent-child' });
}

function addDep(b, on, type) {
  const d = b.dependencies.find((x) => x.depends_on_id === on);
  if (d) d.type = type;
  else b.dependencies.push({ issue_id: b.id, depends_on_id: on, type });
}

function setStatus(b, status) {
  if (status === b.status) return;
  b.status = status;
  b.closed_at = status === 'closed' ? now() : null;
}

function flag(name) {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  return a === undefined ? undefined : a.slice(name.length + 3);
}

const BLOCKING = new Set(['blocks', 'waits-for', 'conditional-blocks']);

switch (op) {
  case 'create': {
    const r = request();
    print(
      write((beads) => {
        let id;
        do id = `${prefix}-${randomBytes(4).readUInt32BE(0).toString(36)}`;
        while (beads.some((b) => b.id === id));
        const t = now();
        const b = {
          id,
          title: String(r.title ?? ''),
          status: 'open',
          type: r.type || 'task',
          priority: r.priority ?? 2,
          created_at: t,
          updated_at: t,
          closed_at: null,
          assignee: r.assignee ?? '',
          from: r.from ?? '',
          parent_id: '',
          ref: r.ref ?? '',
          description: r.description ?? '',
          labels: [...new Set(r.labels ?? [])],
          metadata: { ...(r.metadata ?? {}) },
          dependencies: [],
        };
        if (r.parent_id) {
          find(beads, r.parent_id);
          setParent(b, r.parent_id);
        }
        for (const need of r.needs ?? []) {
          const at = need.lastIndexOf(':');
          const [type, on] = at > 0 ? [need.slice(0, at), need.slice(at + 1)] : ['blocks', need];
          find(beads, on);
          addDep(b, on, type);
        }
        beads.push(b);
        return b;
      }),
    );
    break;
  }
  case 'get':
    print(find(load(), args[0]));
    break;
  case 'update': {
    const r = request();
    print(
      write((beads) => {
        const b = find(beads, args[0]);
        for (const k of ['title', 'priority', 'description', 'assignee', 'type', 'ref']) {
          if (r[k] !== undefined) b[k] = r[k];
        }
        if (r.parent_id !== undefined) {
          if (r.parent_id) find(beads, r.parent_id);
          setParent(b, r.parent_id);
        }
        if (r.status !== undefined) setStatus(b, r.status);
        b.labels = [...new Set([...b.labels, ...(r.labels ?? [])])].filter(
          (l) => !(r.remove_labels ?? []).includes(l),
        );
        Object.assign(b.metadata, r.metadata ?? {});
        b.updated_at = now();
        return b;
      }),
    );
    break;
  }
  case 'close':
    print(
      write((beads) => {
        const b = find(beads, args[0]);
        setStatus(b, 'closed');
        b.updated_at = now();
        return b;
      }),
    );
    break;
  case 'list': {
    const [status, assignee, type, limit] = ['status', 'assignee', 'type', 'limit'].map(flag);
    const out = load().filter(
      (b) =>
        (status === undefined || b.status === status) &&
        (assignee === undefined || b.assignee === assignee) &&
        (type === undefined || b.type === type),
    );
    print(limit ? out.slice(0, Number(limit)) : out);
    break;
  }
  case 'ready': {
    const beads = load();
    const open = new Set(beads.filter((b) => b.status !== 'closed').map((b) => b.id));
    print(
      beads.filter(
        (b) =>
          b.status === 'open' &&
          !b.dependencies.some((d) => BLOCKING.has(d.type) && open.has(d.depends_on_id)),
      ),
    );
    break;
  }
  case 'children':
    print(load().filter((b) => b.parent_id === args[0]));
    break;
  case 'list-by-label': {
    const out = load().filter((b) => b.labels.includes(args[0]));
    const limit = Number(args[1] ?? 0);
    print(limit > 0 ? out.slice(0, limit) : out);
    break;
  }
  case 'set-metadata': {
    const value = stdin();
    write((beads) => {
      const b = find(beads, args[0]);
      b.metadata[args[1]] = value;
      b.updated_at = now();
    });
    break;
  }
  case 'delete': {
    const id = args.find((a) => !a.startsWith('--'));
    write((beads) => {
      find(beads, id);
      beads.splice(
        beads.findIndex((b) => b.id === id),
        1,
      );
      for (const b of beads) {
        b.dependencies = b.dependencies.filter((d) => d.depends_on_id !== id);
        if (b.parent_id === id) b.parent_id = '';
      }
    });
    break;
  }
  case 'dep-add':
    write((beads) => {
      find(beads, args[1]);
      addDep(find(beads, args[0]), args[1], args[2] || 'blocks');
    });
    break;
  case 'dep-remove':
    write((beads) => {
      const b = find(beads, args[0]);
      b.dependencies = b.dependencies.filter((d) => d.depends_on_id !== args[1]);
      if (b.parent_id === args[1]) b.parent_id = '';
    });
    break;
  case 'dep-list': {
    const beads = load();
    const b = find(beads, args[0]);
    print(
      args[1] === 'up'
        ? beads.flatMap((x) => x.dependencies.filter((d) => d.depends_on_id === b.id))
        : b.dependencies,
    );
    break;
  }
  case 'init':
    file = path.join(args[0] || root, '.gc', 'exec-beads.json');
    mkdirSync(path.dirname(file), { recursive: true });
    break;
  case 'ensure-ready':
    mkdirSync(path.dirname(file), { recursive: true });
    break;
  case 'health':
    process.stdout.write('ok\n');
    break;
  default:
    fail(`unsupported operation: ${op}`, 2);
}
