/**
 * gc build-image: the context it writes (no Docker engine here, so the
 * images are not built): the files, the city without its .gc/ state, two
 * Dockerfiles whose every instruction is a Dockerfile instruction and whose
 * COPY sources exist, and an entrypoint that runs the baked gc.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { gcBuilt } from './helpers/cli.js';

const INSTRUCTIONS = new Set([
  'FROM',
  'RUN',
  'COPY',
  'ADD',
  'WORKDIR',
  'ENV',
  'ARG',
  'LABEL',
  'USER',
  'ENTRYPOINT',
  'CMD',
  'EXPOSE',
  'VOLUME',
  'STOPSIGNAL',
  'HEALTHCHECK',
  'SHELL',
  'ONBUILD',
]);

/** Dockerfile instructions, continuation lines joined, comments dropped; throws on a bad line. */
function parseDockerfile(text: string): { op: string; args: string }[] {
  const out: { op: string; args: string }[] = [];
  let cur = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!cur && (line === '' || line.startsWith('#'))) continue;
    cur += `${line.replace(/\\$/, '')} `;
    if (line.endsWith('\\')) continue;
    const m = /^([A-Za-z]+)\s+(.*)$/.exec(cur.trim());
    if (!m || !INSTRUCTIONS.has(m[1]!.toUpperCase())) throw new Error(`not an instruction: ${cur}`);
    const args = m[2]!.trim();
    if (/^(ENTRYPOINT|CMD)$/i.test(m[1]!) && args.startsWith('[')) JSON.parse(args);
    out.push({ op: m[1]!.toUpperCase(), args });
    cur = '';
  }
  if (cur) throw new Error('dangling continuation');
  if (out[0]?.op !== 'FROM') throw new Error('does not start with FROM');
  return out;
}

const dir = mkdtempSync(path.join(tmpdir(), 'gc-image-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('gc build-image', () => {
  it('writes a context with gc and the city baked in, and its entrypoint runs the baked gc', async () => {
    const city = path.join(dir, 'city');
    mkdirSync(path.join(city, 'agents', 'mayor'), { recursive: true });
    mkdirSync(path.join(city, '.gc'), { recursive: true });
    writeFileSync(
      path.join(city, 'city.toml'),
      '[workspace]\nname = "kube"\n[[agent]]\nname = "mayor"\n',
    );
    writeFileSync(path.join(city, 'agents', 'mayor', 'prompt.template.md'), 'You are the mayor.\n');
    writeFileSync(path.join(city, '.gc', 'beads.db'), 'state that must not be baked');
    const r = await gcBuilt(['build-image', '--json', '--tag', 'reg/agent:7'], { cwd: city });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as {
      context: string;
      tags: { agent: string; controller: string };
      built: boolean;
      commands: string[];
    };
    expect(out.context).toBe(path.join(city, '.gc', 'image'));
    expect(out.tags).toEqual({ agent: 'reg/agent:7', controller: 'gc-controller:latest' });
    expect(out.built).toBe(false);
    expect(out.commands[0]).toBe(
      `docker build -f ${out.context}/Dockerfile.agent -t reg/agent:7 ${out.context}`,
    );
    const ctx = out.context;
    for (const f of [
      'Dockerfile.agent',
      'Dockerfile.controller',
      'entrypoint.sh',
      'gc/package.json',
      'gc/dist/cli/gc.js',
      'city/city.toml',
      'city/agents/mayor/prompt.template.md',
    ]) {
      expect(existsSync(path.join(ctx, f)), f).toBe(true);
    }
    expect(existsSync(path.join(ctx, 'city', '.gc'))).toBe(false);
    for (const role of ['agent', 'controller']) {
      const steps = parseDockerfile(readFileSync(path.join(ctx, `Dockerfile.${role}`), 'utf8'));
      for (const s of steps.filter((x) => x.op === 'COPY')) {
        const src = s.args.split(/\s+/)[0]!;
        expect(existsSync(path.join(ctx, src)), `${role}: COPY ${src}`).toBe(true);
      }
      expect(steps.some((s) => s.op === 'COPY' && s.args === 'city/ /city/')).toBe(true);
      expect(steps.some((s) => s.op === 'RUN' && s.args.includes('tmux'))).toBe(true);
    }
    expect(() => parseDockerfile('FROM x\nFROB y\n')).toThrow(/not an instruction/);
    // The entrypoint runs the baked gc (no /usr/local/bin/gc needed).
    const version = execFileSync(path.join(ctx, 'entrypoint.sh'), ['--version'], {
      encoding: 'utf8',
      env: { ...process.env, PATH: process.env.PATH },
    });
    expect(version.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('--build without docker fails with the command to run elsewhere; no city is an error', async () => {
    const city = path.join(dir, 'city');
    const r = await gcBuilt(['build-image', '--build'], {
      cwd: city,
      env: { ...process.env, PATH: '/usr/bin:/bin' },
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/docker is not installed here/);
    expect(r.stderr).toMatch(/docker build -f/);
    const none = await gcBuilt(['build-image', '--city', path.join(dir, 'nowhere')]);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/nowhere/);
  });
});
