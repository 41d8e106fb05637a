/**
 * Input checks shared by every provider, run before any tool is called, so a
 * bad name or text fails the same way on tmux, subprocess, exec and fake.
 */
import path from 'node:path';
import { ValidationError } from '../core/index.js';

/** Longest session name. tmux accepts more; file names and pod names do not. */
export const MAX_SESSION_NAME = 100;
/** Nudge text cap: agents get prompts, not files. */
export const MAX_NUDGE_BYTES = 64 * 1024;

// Letters, digits, `_` and `-`, starting with a letter or digit. tmux treats
// `.` and `:` as target separators, shells split on spaces, and a leading `-`
// reads as an option to every tool.
const SESSION_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
const META_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function validateSessionName(name: string, where = 'session name'): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new ValidationError('must not be empty', { where });
  }
  if (name.length > MAX_SESSION_NAME) {
    throw new ValidationError(`is ${name.length} characters; the limit is ${MAX_SESSION_NAME}`, {
      where,
    });
  }
  if (!SESSION_NAME.test(name)) {
    throw new ValidationError(
      `${JSON.stringify(name)} may hold only letters, digits, "_" and "-", and must start with a letter or digit`,
      { where, fix: 'rename the agent or session (tmux reads "." and ":" as separators)' },
    );
  }
  return name;
}

/** A prefix is "" or a prefix of a valid name. */
export function validatePrefix(prefix: string): string {
  if (prefix === '') return prefix;
  if (prefix.length > MAX_SESSION_NAME || !/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(prefix)) {
    throw new ValidationError(`${JSON.stringify(prefix)} is not a valid session name prefix`, {
      where: 'prefix',
    });
  }
  return prefix;
}

export function validateMetaKey(key: string): string {
  if (!META_KEY.test(key) || key.length > 128) {
    throw new ValidationError(
      `${JSON.stringify(key)} must look like an environment variable name (letters, digits, "_")`,
      { where: 'meta key' },
    );
  }
  return key;
}

/**
 * Nudge text: tab and newline allowed, other control characters (C0, DEL,
 * C1) refused (a raw ^C, ESC or CSI would act on the agent instead of being
 * read by it). CRLF is read as a newline.
 */
export function validateNudgeText(text: string): string {
  const normalized = text.replace(/\r\n?/g, '\n');
  if (Buffer.byteLength(normalized) > MAX_NUDGE_BYTES) {
    throw new ValidationError(`is over ${MAX_NUDGE_BYTES} bytes`, { where: 'nudge text' });
  }
  // C0 (but tab and newline), DEL and C1: U+009B alone is a CSI to many terminals.
  // eslint-disable-next-line no-control-regex
  const bad = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/.exec(normalized);
  if (bad) {
    const code = bad[0].charCodeAt(0).toString(16).padStart(2, '0');
    throw new ValidationError(
      `contains control character 0x${code} at offset ${bad.index}; use sendKeys for keys`,
      { where: 'nudge text' },
    );
  }
  return normalized;
}

export function validateKeys(keys: readonly string[]): readonly string[] {
  for (const [i, k] of keys.entries()) {
    // eslint-disable-next-line no-control-regex
    if (typeof k !== 'string' || k.length === 0 || k.length > 64 || /[\u0000-\u001f]/.test(k)) {
      throw new ValidationError('must be a key name such as Enter, Down or C-c', {
        where: `keys[${i}]`,
      });
    }
  }
  return keys;
}

/** Resolve `relDst` under `workDir`, refusing anything that escapes it. */
export function resolveInside(workDir: string, relDst: string): string {
  if (path.isAbsolute(relDst)) {
    throw new ValidationError('must be relative to the session work dir', { where: 'rel_dst' });
  }
  const root = path.resolve(workDir);
  const dst = path.resolve(root, relDst);
  if (dst !== root && !dst.startsWith(root + path.sep)) {
    throw new ValidationError(`${JSON.stringify(relDst)} leaves the session work dir`, {
      where: 'rel_dst',
    });
  }
  return dst;
}
