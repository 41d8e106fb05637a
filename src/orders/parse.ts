/**
 * Reading one order file (`orders/<name>.toml`, or the legacy
 * `<name>.order.toml`): an `[order]` table. Every mistake is an OrderError
 * issue at its file, line and column; a key gc does not know is an error,
 * and the Gas City keys gc reads without acting on are warnings.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { parseDuration } from '../core/index.js';
import { ConfigError, formatPath, keyPositions, type ConfigIssue } from '../config/index.js';
import { parseCron } from './cron.js';
import {
  CHECK_TIMEOUT_MS,
  EXEC_TIMEOUT_MS,
  FORMULA_TIMEOUT_MS,
  GATES,
  type Gate,
  type OrderSpec,
} from './types.js';

export type Raw = Record<string, unknown>;

/** An order is invalid; `issues` lists every problem with its position. */
export class OrderError extends ConfigError {
  constructor(issues: ConfigIssue[]) {
    super(issues, 'edit the order at the positions shown, then run `gc order show NAME`');
  }
}

/** The order's name from its file: `digest.toml` and `digest.order.toml` are both `digest`. */
export function orderName(file: string): string {
  return path.basename(file).replace(/(\.order)?\.toml$/, '');
}

const KEYS = new Set([
  'description',
  'formula',
  'exec',
  'gate',
  'trigger',
  'interval',
  'schedule',
  'tz',
  'check',
  'check_timeout',
  'on',
  'pool',
  'timeout',
  'enabled',
  'env',
  'scope',
]);
/** Newer Gas City keys: accepted, not acted on. */
const NOT_ACTED_ON = new Set(['idempotent', 'no_work_gate', 'params', 'skip_aliases']);

/** Which keys each gate reads; the others are ignored with a warning. */
const GATE_KEYS: Record<Gate, readonly string[]> = {
  cooldown: ['interval'],
  cron: ['schedule', 'tz'],
  condition: ['check', 'check_timeout'],
  event: ['on'],
  manual: [],
};
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Set by the runner for every exec order: an order's env may not replace them. */
export const RESERVED_ENV = new Set([
  'GC_CITY',
  'GC_CITY_PATH',
  'GC_CITY_ROOT',
  'GC_RIG',
  'GC_ORDER',
  'GC_ORDER_RUN',
  'GC_PACK_DIR',
  'GC_PACK_NAME',
  'GC_EVENT_SEQ',
  'GC_TOKEN',
  'GC_API',
  'ORDER_DIR',
  'PACK_DIR',
]);

export interface OrderSource {
  name: string;
  file: string;
  pack: string;
  packDir: string;
  /** Where it runs (default: the pack's folder). */
  workDir?: string;
  /** [orders] max_timeout: caps every timeout. */
  maxTimeoutMs?: number;
}

export interface RawOrder {
  raw: Raw;
  positions: Map<string, { line: number; col: number }>;
}

/** Parse the file's TOML; syntax errors and a missing [order] table are issues. */
export function readOrderRaw(file: string, issues: ConfigIssue[]): RawOrder | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    issues.push({ file, path: '', message: `cannot read: ${(e as Error).message}` });
    return undefined;
  }
  let doc: Raw;
  try {
    doc = parse(text);
  } catch (e) {
    if (!(e instanceof TomlError)) throw e;
    issues.push({
      file,
      path: '',
      line: e.line,
      col: e.column,
      message: `TOML syntax error: ${e.message.split('\n')[0]?.replace(/^Invalid TOML document: /, '') ?? ''}`,
    });
    return undefined;
  }
  const positions = keyPositions(text);
  for (const k of Object.keys(doc)) {
    if (k !== 'order') {
      const p = positions.get(k);
      issues.push({
        file,
        path: k,
        ...(p ? { line: p.line, col: p.col } : {}),
        message: `unknown table or key "${k}": an order file holds one [order] table`,
      });
    }
  }
  const raw = doc.order;
  if (raw === undefined || raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    issues.push({ file, path: 'order', message: 'no [order] table' });
    return undefined;
  }
  return { raw: raw as Raw, positions };
}

/** Where a key's value came from, when not the order file (an [orders] override). */
export type KeyOrigin = Map<string, ConfigIssue>;

const durationOf = (s: string): number | undefined => {
  try {
    const ms = parseDuration(s);
    return ms >= 0 ? ms : undefined;
  } catch {
    return undefined;
  }
};

/** Turn the raw `[order]` table into a spec; problems go to `issues`. */
export function buildOrder(
  r: RawOrder,
  src: OrderSource,
  issues: ConfigIssue[],
  origin: KeyOrigin = new Map(),
): OrderSpec | undefined {
  const before = issues.length;
  const { raw } = r;
  const issue = (key: string, message: string) => {
    const o = origin.get(key);
    if (o) {
      issues.push({ ...o, message: `${message} (order ${src.name})` });
      return;
    }
    const at = ['order', key];
    const p = r.positions.get(formatPath(at)) ?? r.positions.get('order');
    issues.push({
      file: src.file,
      path: formatPath(at),
      ...(p ? { line: p.line, col: p.col } : {}),
      message,
    });
  };
  const warnings: string[] = [];
  for (const k of Object.keys(raw)) {
    if (NOT_ACTED_ON.has(k)) warnings.push(`${k}: accepted, not acted on by gc`);
    else if (!KEYS.has(k)) issue(k, `unknown order key "${k}"`);
  }
  const str = (k: string): string | undefined => {
    const v = raw[k];
    if (v === undefined) return undefined;
    if (typeof v === 'string') return v;
    issue(k, `expected a string, got ${JSON.stringify(v)}`);
    return undefined;
  };
  const dur = (k: string): number | undefined => {
    const s = str(k);
    if (s === undefined) return undefined;
    const ms = durationOf(s);
    if (ms === undefined) issue(k, `not a duration: "${s}" (e.g. "90s", "5m", "1h")`);
    return ms;
  };
  const exec = str('exec');
  const formula = str('formula');
  if (!exec && !formula) issue('exec', 'an order needs formula or exec');
  if (exec && formula) issue('formula', 'formula and exec are exclusive: keep one');
  const gateText = str('gate') ?? str('trigger');
  let gate: Gate | undefined;
  if (raw.gate !== undefined && raw.trigger !== undefined && raw.gate !== raw.trigger) {
    issue('trigger', 'gate and trigger name one thing: keep one');
  }
  if (gateText === undefined) issue('gate', `an order needs a gate: ${GATES.join(', ')}`);
  else if (!(GATES as readonly string[]).includes(gateText)) {
    issue(
      raw.gate !== undefined ? 'gate' : 'trigger',
      `unknown gate "${gateText}" (one of ${GATES.join(', ')})`,
    );
  } else gate = gateText as Gate;
  const intervalMs = dur('interval');
  const schedule = str('schedule');
  const tz = str('tz') ?? '';
  const check = str('check');
  const checkTimeoutMs = dur('check_timeout');
  if (checkTimeoutMs === 0) issue('check_timeout', 'check_timeout must be more than 0');
  const on = str('on');
  const pool = str('pool');
  const timeoutMs = dur('timeout');
  const scope = str('scope');
  if (scope !== undefined && !['city', 'rig'].includes(scope)) {
    issue('scope', `unknown scope "${scope}" (city or rig)`);
  }
  let enabled = true;
  if (raw.enabled !== undefined) {
    if (typeof raw.enabled === 'boolean') enabled = raw.enabled;
    else issue('enabled', `expected true or false, got ${JSON.stringify(raw.enabled)}`);
  }
  const env: Record<string, string> = {};
  if (raw.env !== undefined) {
    if (!raw.env || typeof raw.env !== 'object' || Array.isArray(raw.env)) {
      issue('env', 'expected a table of NAME = "value"');
    } else {
      for (const [k, v] of Object.entries(raw.env as Raw)) {
        if (!ENV_NAME.test(k)) issue('env', `env: "${k}" is not a variable name`);
        else if (RESERVED_ENV.has(k)) issue('env', `env: ${k} is set by gc for every run`);
        else if (typeof v !== 'string') issue('env', `env.${k}: expected a string`);
        else env[k] = v;
      }
    }
    if (!exec) issue('env', 'env is for exec orders only');
  }
  if (pool !== undefined && exec)
    issue('pool', 'pool is for formula orders: an exec order runs in the city');
  if (gate === 'cooldown' && intervalMs === undefined && raw.interval === undefined) {
    issue('gate', 'a cooldown gate needs interval (e.g. interval = "1h")');
  }
  if (gate === 'cron') {
    if (schedule === undefined)
      issue('gate', 'a cron gate needs schedule (e.g. schedule = "0 3 * * *")');
    else {
      try {
        parseCron(schedule, tz);
      } catch (e) {
        issue(
          raw.tz !== undefined && /time zone/.test((e as Error).message) ? 'tz' : 'schedule',
          (e as Error).message,
        );
      }
    }
  }
  if (gate === 'condition' && !check)
    issue('gate', 'a condition gate needs check (a shell command; exit 0 = due)');
  if (gate === 'event' && !on)
    issue('gate', 'an event gate needs on (an event type, e.g. on = "bead.closed")');
  if (gate) {
    const others = Object.values(GATE_KEYS)
      .flat()
      .filter((k) => !GATE_KEYS[gate].includes(k) && raw[k] !== undefined);
    for (const k of new Set(others)) warnings.push(`${k}: not read by a ${gate} gate`);
  }
  if (issues.length > before || !gate || (!exec && !formula)) return undefined;
  let timeout = timeoutMs ?? (exec ? EXEC_TIMEOUT_MS : FORMULA_TIMEOUT_MS);
  if (src.maxTimeoutMs !== undefined && src.maxTimeoutMs > 0)
    timeout = Math.min(timeout, src.maxTimeoutMs);
  return {
    name: src.name,
    base: src.name,
    rig: '',
    workDir: src.workDir ?? src.packDir,
    file: src.file,
    pack: src.pack,
    packDir: src.packDir,
    description: str('description') ?? '',
    ...(exec ? { exec } : {}),
    ...(formula ? { formula } : {}),
    gate,
    ...(gate === 'cooldown' && raw.interval !== undefined
      ? { interval: str('interval') ?? '', intervalMs: intervalMs ?? 0 }
      : {}),
    ...(gate === 'cron' && schedule !== undefined ? { schedule } : {}),
    tz,
    ...(gate === 'condition' && check ? { check } : {}),
    checkTimeoutMs: checkTimeoutMs ?? CHECK_TIMEOUT_MS,
    ...(gate === 'event' && on ? { on } : {}),
    ...(pool !== undefined ? { pool } : {}),
    timeoutMs: timeout,
    enabled,
    env,
    shadows: [],
    warnings,
  };
}

/** Read and check one order file; an OrderError lists every mistake. */
export function readOrder(src: OrderSource): OrderSpec {
  const issues: ConfigIssue[] = [];
  const r = readOrderRaw(src.file, issues);
  const spec = r ? buildOrder(r, src, issues) : undefined;
  if (!spec || issues.length) throw new OrderError(issues);
  return spec;
}
