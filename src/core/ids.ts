/**
 * Identifier helpers. Bead ids are `<prefix>-<base36>`; the random part grows
 * with the number of ids already issued so collisions stay rare (the caller
 * retries on the rare collision, with one more character).
 */
import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';

/**
 * Random bytes drawn 4 KiB at a time: one draw from the system generator
 * costs about as much as a hundred ids, so the pool is refilled only when
 * used up.
 */
const POOL_SIZE = 4096;
let pool = Buffer.alloc(0);
let poolAt = 0;

function randomByte(): number {
  if (poolAt >= pool.length) {
    pool = randomBytes(POOL_SIZE);
    poolAt = 0;
  }
  return pool[poolAt++]!;
}

/** Random base36 string of `length` characters. */
export function randomBase36(length: number): string {
  // Rejection sampling keeps every character uniform: 252 = 36 * 7.
  let out = '';
  while (out.length < length) {
    const b = randomByte();
    if (b < 252) out += ALPHABET[b % 36];
  }
  return out;
}

/**
 * Length of the random part for a store holding `count` ids. Chosen so that
 * 36^len >= count * 10_000: a new id collides with probability < 1/10,000.
 * Never shorter than 4 characters.
 */
export function idLengthFor(count: number): number {
  const needed = Math.log(Math.max(1, count) * 10_000) / Math.log(36);
  return Math.max(4, Math.ceil(needed));
}

export function newBeadId(prefix: string, count: number, extra = 0): string {
  return `${prefix}-${randomBase36(idLengthFor(count) + extra)}`;
}

const PREFIX_RE = /^[a-z][a-z0-9]{0,15}$/;

/** A bead prefix: lowercase letters and digits, starting with a letter. */
export function isValidPrefix(prefix: string): boolean {
  return PREFIX_RE.test(prefix);
}

/** Derive a default prefix from a city or rig name ("My City" -> "mc"). */
export function derivePrefix(name: string): string {
  const words = name
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
  let prefix = '';
  if (words.length > 1) prefix = words.map((w) => w[0]).join('');
  else prefix = (words[0] ?? 'gc').slice(0, 4);
  if (!/^[a-z]/.test(prefix)) prefix = `g${prefix}`;
  return prefix.slice(0, 16) || 'gc';
}
