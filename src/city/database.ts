/**
 * Where a city's database server is: `[database] url` (or GC_DATABASE_URL,
 * applied by the config loader), or the first line of `[database]
 * url_file`, a file only its owner may read. Empty when the city keeps its
 * state in `.gc/` (SQLite).
 */
import { statSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError, type LoadedConfig } from '../config/index.js';
import type { GcError } from '../core/index.js';
import { dialectOf, type Dialect } from '../db/index.js';

export interface DatabaseTarget {
  url: string;
  dialect: Dialect;
}

export function databaseTarget(loaded: LoadedConfig): DatabaseTarget | undefined {
  const { root, file: configFile } = loaded;
  const configError = (key: string, message: string): ConfigError =>
    new ConfigError([{ file: configFile, path: `database.${key}`, message }]);
  const { url, url_file: file } = loaded.config.database;
  let text = url.trim();
  if (text && file) throw configError('url_file', 'set url or url_file, not both');
  if (!text && file) {
    const path = resolve(root, file);
    let st;
    try {
      st = statSync(path);
    } catch (e) {
      throw configError('url_file', `cannot read ${path}: ${(e as NodeJS.ErrnoException).code}`);
    }
    if (st.mode & 0o077) {
      throw configError(
        'url_file',
        `${path} may be read by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`,
      );
    }
    text = (readFileSync(path, 'utf8').split('\n')[0] ?? '').trim();
    if (!text) throw configError('url_file', `${path} is empty`);
  }
  if (!text) return undefined;
  let dialect: Dialect;
  try {
    dialect = dialectOf(text);
  } catch (e) {
    throw configError(file ? 'url_file' : 'url', (e as GcError).message);
  }
  return { url: text, dialect };
}
