import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, parseCityConfig, formatIssue, loadCityConfig, findCityRoot } from './load.js';
import { initCity } from './init.js';
import { keyPositions } from './toml-positions.js';

function fails(source: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseCityConfig(source, 'city.toml', env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).issues.map(formatIssue);
  }
  throw new Error('expected a ConfigError');
}

describe('city.toml loading', () => {
  it('applies defaults to a minimal file', () => {
    const { config, warnings } = parseCityConfig('[workspace]\nname = "town"\n', 'city.toml');
    expect(warnings).toEqual([]);
    expect(config.workspace.name).toBe('town');
    expect(config.daemon.patrol_interval).toBe('30s');
    expect(config.daemon.max_wakes_per_tick).toBe(5);
    expect(config.session.provider).toBe('');
    expect(config.session.k8s.namespace).toBe('gc');
    expect(config.beads.provider).toBe('sqlite');
    expect(config.api).toEqual({
      port: 0,
      bind: '127.0.0.1',
      rate_per_s: 200,
      rate_burst: 400,
      max_runs: 32,
      agent_creates_per_s: 20,
      agent_creates_burst: 200,
      max_connections: 0,
    });
    expect(config.agent).toEqual([]);
  });

  it('syntax error: message with line and column', () => {
    expect(fails('[workspace]\nname = "town\n')).toEqual([
      expect.stringMatching(/^city\.toml:2:\d+: TOML syntax error: /),
    ]);
  });

  it('wrong type: file:line:col, key path, expected and got', () => {
    const src =
      '[workspace]\nname = "town"\n\n[[agent]]\nname = "a"\n\n[[agent]]\nname = "b"\nmax_active_sessions = "five"\n';
    expect(fails(src)).toEqual([
      'city.toml:9:1: agent[1].max_active_sessions: expected a number, got a string ("five")',
    ]);
  });

  it('bad duration: names the key and the expected form', () => {
    expect(fails('[workspace]\nname = "t"\n[daemon]\n  patrol_interval = "30 seconds"\n')).toEqual([
      'city.toml:4:3: daemon.patrol_interval: expected a Go-style duration such as "300ms", "30s", "5m" or "1h30m"',
    ]);
  });

  it('unknown key: a warning with "did you mean", never an error', () => {
    const src =
      '[workspace]\nname = "t"\n\n[[agent]]\nname = "w"\nmax_active_session = 3\nfrobnicate = true\n[daemon]\npatrol_intervall = "10s"\n[futurething]\nx = 1\n';
    const { warnings, config } = parseCityConfig(src, 'city.toml');
    expect(warnings.map(formatIssue)).toEqual([
      'city.toml:6:1: agent[0].max_active_session: unknown key (did you mean "max_active_sessions"?); ignored',
      'city.toml:7:1: agent[0].frobnicate: unknown key; ignored',
      'city.toml:9:1: daemon.patrol_intervall: unknown key (did you mean "patrol_interval"?); ignored',
      'city.toml:10:1: futurething: unknown key; ignored',
    ]);
    expect(config.daemon.patrol_interval).toBe('30s');
  });

  it('missing required key points at its table', () => {
    expect(fails('[workspace]\nprefix = "ab"\n')).toEqual([
      'city.toml:1:1: workspace.name: required key is missing',
    ]);
    expect(fails('[daemon]\n')).toEqual(['city.toml: workspace: required key is missing']);
  });

  it('cross-field checks: duplicates, min > max, unknown depends_on', () => {
    const src = [
      '[workspace]',
      'name = "t"',
      '[[agent]]',
      'name = "mayor"',
      '[[agent]]',
      'name = "mayor"',
      '[[agent]]',
      'name = "w"',
      'min_active_sessions = 5',
      'max_active_sessions = 2',
      'depends_on = ["mayr"]',
    ].join('\n');
    expect(fails(src)).toEqual([
      'city.toml:6:1: agent[1].name: duplicate agent name "mayor" (first at agent[0])',
      'city.toml:9:1: agent[2].min_active_sessions: min_active_sessions (5) is greater than max_active_sessions (2)',
      'city.toml:11:1: agent[2].depends_on[0]: unknown agent "mayr" (did you mean "mayor"?)',
    ]);
  });

  it('reports several problems at once', () => {
    const issues = fails(
      '[workspace]\nname = "t"\n[daemon]\nmax_restarts = -1\nshutdown_timeout = "soon"\n[api]\nport = 70000\n',
    );
    expect(issues).toHaveLength(3);
    expect(issues[2]).toMatch(/^city\.toml:7:1: api\.port: /);
  });

  it('env overrides win and are validated as env', () => {
    const src = '[workspace]\nname = "t"\n[session]\nprovider = "tmux"\n';
    const { config, sources } = parseCityConfig(src, 'city.toml', {
      GC_SESSION: 'subprocess',
      GC_K8S_IMAGE: 'reg/agent:1',
      GC_K8S_DOLT_PORT: '3307',
      GC_EVENTS: 'memory',
    });
    expect(config.session.provider).toBe('subprocess');
    expect(config.session.k8s.image).toBe('reg/agent:1');
    expect(config.session.k8s.dolt_port).toBe(3307);
    expect(config.events.provider).toBe('memory');
    expect(sources.get('session.provider')).toEqual({ kind: 'env', name: 'GC_SESSION' });
    expect(sources.get('workspace.name')).toEqual({
      kind: 'file',
      file: 'city.toml',
      line: 2,
      col: 1,
    });
    expect(sources.get('daemon.patrol_interval')).toEqual({ kind: 'default' });
    expect(fails(src, { GC_SESSION: 'docker' })).toEqual([
      expect.stringMatching(/^env GC_SESSION: session\.provider: expected "" \(tmux\)/),
    ]);
    const k8s = parseCityConfig(src, 'city.toml', {
      GC_K8S_PREBAKED: 'true',
      GC_K8S_NODE_SELECTOR: '{"pool":"agents"}',
      GC_K8S_SERVICE_ACCOUNT: 'gc-agent',
    }).config.session.k8s;
    expect(k8s).toMatchObject({
      prebaked: true,
      node_selector: { pool: 'agents' },
      service_account: 'gc-agent',
    });
    expect(fails(src, { GC_K8S_PREBAKED: 'yes' })).toEqual([
      'env GC_K8S_PREBAKED: session.k8s.prebaked: expected true or false, got "yes"',
    ]);
    expect(fails(src, { GC_K8S_NODE_SELECTOR: '{bad' })).toEqual([
      expect.stringMatching(
        /^env GC_K8S_NODE_SELECTOR: session\.k8s\.node_selector: expected a JSON object/,
      ),
    ]);
    expect(fails(src, { GC_K8S_DOLT_PORT: 'abc' })).toEqual([
      'env GC_K8S_DOLT_PORT: session.k8s.dolt_port: expected a port number, got "abc"',
    ]);
  });

  it('positions survive multi-line strings, arrays, inline tables and dotted keys', () => {
    const src = [
      '[workspace]',
      'name = "t"',
      'start_command = """',
      'x = 1',
      '"""',
      '[[agent]]',
      'name = "a"',
      'args = [',
      '  "--x", # comment with = sign',
      ']',
      'env = { FOO = "1" }',
      '"pre_start" = []',
      'session.k8s.image = "x"',
    ].join('\n');
    const p = keyPositions(src);
    expect(p.get('workspace.start_command')).toEqual({ line: 3, col: 1 });
    expect(p.has('workspace.x')).toBe(false);
    expect(p.get('agent[0].env')).toEqual({ line: 11, col: 1 });
    expect(p.get('agent[0].pre_start')).toEqual({ line: 12, col: 1 });
    expect(p.get('agent[0].session.k8s.image')).toEqual({ line: 13, col: 1 });
  });
});

describe('init and files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gc-init-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('creates city.toml and .gc/, refuses to overwrite without force', async () => {
    const root = join(dir, 'my-town');
    const made = await initCity({ dir: root });
    expect(made.name).toBe('my-town');
    const loaded = await loadCityConfig(made.file, {});
    expect(loaded.config.workspace.prefix).toBe('mt');
    await expect(initCity({ dir: root })).rejects.toThrow(/already exists/);
    await initCity({ dir: root, force: true, name: 'renamed' });
    expect(readFileSync(made.file, 'utf8')).toContain('name = "renamed"');
    expect(findCityRoot(join(root, '.gc'))).toBe(root);
  });

  it('refuses a bad name and a missing file clearly', async () => {
    await expect(initCity({ dir: join(dir, 'x'), name: 'bad name!' })).rejects.toThrow(/--name/);
    await expect(loadCityConfig(join(dir, 'nope', 'city.toml'))).rejects.toMatchObject({
      message: expect.stringMatching(/cannot read .*nope\/city.toml/) as unknown,
      fix: expect.stringMatching(/gc init/) as unknown,
    });
  });
});

describe('docs/config.md', () => {
  it('matches the schema (regenerate: npx tsx scripts/gen-config-doc.ts > docs/config.md)', async () => {
    const { renderConfigReference } = await import('./reference.js');
    const committed = readFileSync(
      join(import.meta.dirname, '..', '..', 'docs', 'config.md'),
      'utf8',
    );
    expect(committed).toBe(renderConfigReference());
  });
});
