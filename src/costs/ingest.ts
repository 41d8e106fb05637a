/**
 * Automatic usage ingestion for the sessions gc started: each pass reads
 * what was appended to their agent CLIs' files since the last pass (only
 * complete lines) and adds usage records. Claude Code transcripts are found
 * by the session's working directory (`<config>/projects/<dir with every
 * character but letters and digits as '-'>/`, subagent transcripts in the
 * folders below included); Codex rollouts of the last two days are matched
 * to a session by the `cwd` they record. Records carry a dedup key, so a
 * new leader reading the files again adds nothing twice.
 */
import { open, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { errorMessage } from '../core/index.js';
import { costOf, type Price } from './prices.js';
import { claudeUsage, codexUsage, type CodexState, type TokenUse } from './transcripts.js';
import type { UsageRecord, UsageRecords } from './usage.js';

/** Where one session (or an agent's shared folder) works, and whose usage it is. */
export interface Place {
  dir: string;
  agent: string;
  rig: string;
  /** "" when several sessions share the folder. */
  session: string;
  bead?: string;
  /** Claude Code's config folder (CLAUDE_CONFIG_DIR, else ~/.claude). */
  claudeDir: string;
  /** Codex's home (CODEX_HOME, else ~/.codex). */
  codexDir: string;
}

interface FileState {
  offset: number;
  carry: string;
  seen: Set<string>;
  codex: CodexState;
}

/** Claude Code's folder name for a working directory. */
export const claudeProjectDir = (dir: string): string => dir.replace(/[^A-Za-z0-9]/g, '-');

const MAX_READ = 16 * 2 ** 20;

async function jsonlFiles(dir: string, depth: number): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isFile() && e.name.endsWith('.jsonl')) out.push(p);
    else if (e.isDirectory() && depth > 0) out.push(...(await jsonlFiles(p, depth - 1)));
  }
  return out;
}

export class UsageIngest {
  private readonly files = new Map<string, FileState>();

  constructor(
    private readonly o: {
      records: UsageRecords;
      prices: () => Readonly<Record<string, Price>>;
      log: (line: string) => void;
      now?: () => number;
    },
  ) {}

  /** New complete lines of a file since the last read. */
  private async fresh(file: string): Promise<{ lines: string[]; state: FileState }> {
    let st = this.files.get(file);
    if (!st) {
      st = { offset: 0, carry: '', seen: new Set(), codex: { model: '', line: 0 } };
      this.files.set(file, st);
    }
    const size = (await stat(file)).size;
    if (size < st.offset)
      Object.assign(st, { offset: 0, carry: '', codex: { model: '', line: 0 } });
    if (size === st.offset) return { lines: [], state: st };
    const len = Math.min(size - st.offset, MAX_READ);
    const buf = Buffer.alloc(len);
    const fh = await open(file, 'r');
    try {
      await fh.read(buf, 0, len, st.offset);
    } finally {
      await fh.close();
    }
    st.offset += len;
    const text = st.carry + buf.toString('utf8');
    const cut = text.lastIndexOf('\n');
    st.carry = cut < 0 ? text : text.slice(cut + 1);
    return { lines: cut < 0 ? [] : text.slice(0, cut).split('\n'), state: st };
  }

  private record(u: TokenUse, p: Place, source: 'claude' | 'codex', dedup: string): UsageRecord {
    const t = {
      input_tokens: u.input_tokens,
      cached_input_tokens: u.cached_input_tokens,
      cache_write_tokens: u.cache_write_tokens,
      output_tokens: u.output_tokens,
    };
    return {
      dedup,
      session: p.session,
      agent: p.agent,
      rig: p.rig,
      bead: p.bead ?? '',
      provider: source,
      model: u.model,
      ...t,
      cost_usd: costOf(u.model, t, this.o.prices()) ?? null,
      source,
      at: u.at,
    };
  }

  /** One pass over the places' files; resolves with how many records were new. */
  async pass(places: readonly Place[]): Promise<number> {
    const now = this.o.now?.() ?? Date.now();
    const out: UsageRecord[] = [];
    const claudeDirs = new Map<string, Place>();
    for (const p of places) {
      claudeDirs.set(path.join(p.claudeDir, 'projects', claudeProjectDir(p.dir)), p);
    }
    for (const [dir, p] of claudeDirs) {
      for (const file of await jsonlFiles(dir, 3)) {
        try {
          const { lines, state } = await this.fresh(file);
          for (const u of claudeUsage(lines, state.seen, now)) {
            out.push(this.record(u, p, 'claude', `claude:${u.id}`));
          }
        } catch (e) {
          this.o.log(`costs: reading ${file}: ${errorMessage(e)}`);
        }
      }
    }
    const byCwd = new Map(places.map((p) => [path.resolve(p.dir), p]));
    for (const home of new Set(places.map((p) => p.codexDir))) {
      const days = [now, now - 86_400_000].map((t) => {
        const d = new Date(t);
        const pad = (n: number) => String(n).padStart(2, '0');
        return path.join(
          home,
          'sessions',
          String(d.getFullYear()),
          pad(d.getMonth() + 1),
          pad(d.getDate()),
        );
      });
      for (const day of new Set(days)) {
        for (const file of await jsonlFiles(day, 0)) {
          if (!path.basename(file).startsWith('rollout-')) continue;
          try {
            const { lines, state } = await this.fresh(file);
            for (const u of codexUsage(lines, state.codex, now)) {
              const p = u.cwd ? byCwd.get(path.resolve(u.cwd)) : undefined;
              if (p) out.push(this.record(u, p, 'codex', `codex:${path.basename(file)}:${u.id}`));
            }
          } catch (e) {
            this.o.log(`costs: reading ${file}: ${errorMessage(e)}`);
          }
        }
      }
    }
    return out.length ? this.o.records.add(out) : 0;
  }
}
