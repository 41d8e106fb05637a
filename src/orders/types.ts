/** Orders: Gas City's scheduled and event-driven city work (REFERENCE.md 9.4). */

export const GATES = ['cooldown', 'cron', 'condition', 'event', 'manual'] as const;
export type Gate = (typeof GATES)[number];

/** Default time limits: an exec order's command, a formula order's pour, a condition's check. */
export const EXEC_TIMEOUT_MS = 300_000;
export const FORMULA_TIMEOUT_MS = 30_000;
export const CHECK_TIMEOUT_MS = 10_000;

export interface OrderSpec {
  /** `base`, or `base:rig:<rig>` for a rig's copy of a pack order. */
  name: string;
  /** The file's name (`digest.toml` is `digest`). */
  base: string;
  /** The rig of a rig copy ("" for the city's orders). */
  rig: string;
  /** Where exec orders and checks run: the city's folder, or the rig's. */
  workDir: string;
  file: string;
  /** The pack it comes from ("" for the city's own orders/). */
  pack: string;
  /** The pack's folder (PACK_DIR). */
  packDir: string;
  description: string;
  /** Exactly one of exec and formula. */
  exec?: string;
  formula?: string;
  gate: Gate;
  /** cooldown */
  interval?: string;
  intervalMs?: number;
  /** cron */
  schedule?: string;
  tz: string;
  /** condition: a shell command; exit 0 = due. */
  check?: string;
  checkTimeoutMs: number;
  /** event: the event type. */
  on?: string;
  /** formula: the agent or pool the molecule's steps go to. */
  pool?: string;
  timeoutMs: number;
  enabled: boolean;
  /** exec: added to the command's environment. */
  env: Record<string, string>;
  /** Lower layers' files of the same name, which this one replaces. */
  shadows: string[];
  /** Keys read but not acted on. */
  warnings: string[];
}

/** The labels and metadata of an order's tracking beads. */
export const ORDER_TRACKING = 'order-tracking';
export const runLabel = (name: string): string => `order-run:${name}`;
export const ORDER_META = {
  name: 'order.name',
  gate: 'order.gate',
  /** Scheduler clock at firing (epoch ms): the order's last run. */
  firedAt: 'order.fired_at',
  /** Why it fired (the gate's reason, or "run by <actor>"). */
  reason: 'order.reason',
  exit: 'order.exit_code',
  molecule: 'order.molecule',
  /** event gate: the newest event seq this run covers. */
  seq: 'order.seq',
} as const;
/** Gas City's cursor label on an event order's tracking bead. */
export const seqLabel = (seq: number): string => `seq:${seq}`;

/** An order as the API and `--json` show it (env values are not shown). */
export interface OrderView {
  name: string;
  rig: string;
  description: string;
  kind: 'exec' | 'formula';
  exec?: string;
  formula?: string;
  gate: Gate;
  interval?: string;
  schedule?: string;
  tz?: string;
  check?: string;
  check_timeout_ms?: number;
  on?: string;
  pool?: string;
  timeout_ms: number;
  enabled: boolean;
  skipped: boolean;
  env_keys: string[];
  pack: string;
  file: string;
  shadows: string[];
  warnings: string[];
}

export function orderView(o: OrderSpec, skipped: boolean): OrderView {
  return {
    name: o.name,
    rig: o.rig,
    description: o.description,
    kind: o.exec ? 'exec' : 'formula',
    ...(o.exec ? { exec: o.exec } : {}),
    ...(o.formula ? { formula: o.formula } : {}),
    gate: o.gate,
    ...(o.interval !== undefined ? { interval: o.interval } : {}),
    ...(o.schedule !== undefined ? { schedule: o.schedule } : {}),
    ...(o.gate === 'cron' && o.tz ? { tz: o.tz } : {}),
    ...(o.check !== undefined ? { check: o.check, check_timeout_ms: o.checkTimeoutMs } : {}),
    ...(o.on !== undefined ? { on: o.on } : {}),
    ...(o.pool !== undefined ? { pool: o.pool } : {}),
    timeout_ms: o.timeoutMs,
    enabled: o.enabled,
    skipped,
    env_keys: Object.keys(o.env).sort(),
    pack: o.pack,
    file: o.file,
    shadows: o.shadows,
    warnings: o.warnings,
  };
}
