import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { gcProgram } from './gc-program.js';
import { renderCliReference } from './reference.js';

describe('docs/cli.md', () => {
  it('matches the command tree (regenerate: npx tsx scripts/gen-cli-doc.ts > docs/cli.md)', () => {
    const page = readFileSync(path.join(import.meta.dirname, '..', '..', 'docs', 'cli.md'), 'utf8');
    expect(page).toBe(renderCliReference());
  });

  it('lists every gc command with its options', () => {
    const page = renderCliReference();
    const hidden = (s: ReturnType<typeof gcProgram>) =>
      (s as unknown as { _hidden?: boolean })._hidden === true;
    const walk = (c: ReturnType<typeof gcProgram>, p: string[]): string[] =>
      c.commands
        .filter((s) => !hidden(s))
        .flatMap((s) => [[...p, s.name()].join(' '), ...walk(s, [...p, s.name()])]);
    for (const name of walk(gcProgram(), ['gc'])) expect(page).toContain(`\`${name}`);
    // Plumbing stays out of the reference.
    expect(page).not.toContain('__complete');
    expect(page).toContain('`gc completion <shell>`');
    expect(page).toContain('| `--agents <n>` | coding agents in the pool (default 8) |');
  });
});
