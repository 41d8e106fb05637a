/**
 * Usage from the agent CLIs' own files, pure: Claude Code transcripts
 * (`<config>/projects/<dir>/*.jsonl`: each assistant line's
 * `message.usage`, one count per request id however many lines repeat it)
 * and Codex rollouts (`<home>/sessions/YYYY/MM/DD/rollout-*.jsonl`: each
 * `token_count` event's `last_token_usage`, the model from the last
 * `turn_context`). A line that is not JSON, or not a usage line, is
 * skipped; the caller reads only complete lines.
 */

export interface TokenUse {
  /** Unique for what it counts (dedup key without the file). */
  id: string;
  model: string;
  input_tokens: number;
  cached_input_tokens: number;
  cache_write_tokens: number;
  output_tokens: number;
  at: number;
  /** The working directory the CLI ran in, when the line says. */
  cwd?: string;
}

const int = (v: unknown): number =>
  typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.floor(v) : 0;

function parse(line: string): Record<string, unknown> | undefined {
  if (!line.trim()) return undefined;
  try {
    const v: unknown = JSON.parse(line);
    return v && typeof v === 'object' && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

const obj = (v: unknown): Record<string, unknown> | undefined =>
  v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;

const time = (v: unknown, fallback: number) => {
  const t = typeof v === 'string' ? Date.parse(v) : NaN;
  return Number.isFinite(t) ? t : fallback;
};

/** Claude Code transcript lines: the usage of each request, once. */
export function claudeUsage(lines: readonly string[], seen: Set<string>, now: number): TokenUse[] {
  const out: TokenUse[] = [];
  for (const line of lines) {
    const v = parse(line);
    if (v?.type !== 'assistant') continue;
    const m = obj(v.message);
    const u = obj(m?.usage);
    if (!m || !u) continue;
    const id =
      typeof v.requestId === 'string' && v.requestId
        ? v.requestId
        : typeof m.id === 'string'
          ? m.id
          : '';
    if (!id || seen.has(id)) continue;
    seen.add(id);
    out.push({
      id,
      model: typeof m.model === 'string' ? m.model : '',
      input_tokens: int(u.input_tokens),
      cached_input_tokens: int(u.cache_read_input_tokens),
      cache_write_tokens: int(u.cache_creation_input_tokens),
      output_tokens: int(u.output_tokens),
      at: time(v.timestamp, now),
      ...(typeof v.cwd === 'string' ? { cwd: v.cwd } : {}),
    });
  }
  return out;
}

/** What a Codex rollout reader carries from line to line. */
export interface CodexState {
  model: string;
  cwd?: string;
  /** Lines read so far (numbers the token_count events). */
  line: number;
}

/** Codex rollout lines: each token_count event's last usage, numbered by its line. */
export function codexUsage(lines: readonly string[], state: CodexState, now: number): TokenUse[] {
  const out: TokenUse[] = [];
  for (const line of lines) {
    state.line++;
    const v = parse(line);
    const payload = obj(v?.payload);
    if (!v || !payload) continue;
    if (v.type === 'session_meta' && typeof payload.cwd === 'string') state.cwd = payload.cwd;
    if (v.type === 'turn_context') {
      if (typeof payload.model === 'string') state.model = payload.model;
      if (typeof payload.cwd === 'string') state.cwd = payload.cwd;
    }
    if (v.type !== 'event_msg' || payload.type !== 'token_count') continue;
    const last = obj(obj(payload.info)?.last_token_usage);
    if (!last) continue;
    const cached = int(last.cached_input_tokens);
    out.push({
      id: String(state.line),
      model: state.model,
      // Codex counts cached tokens inside input_tokens.
      input_tokens: Math.max(0, int(last.input_tokens) - cached),
      cached_input_tokens: cached,
      cache_write_tokens: 0,
      output_tokens: int(last.output_tokens),
      at: time(v.timestamp, now),
      ...(state.cwd !== undefined ? { cwd: state.cwd } : {}),
    });
  }
  return out;
}
