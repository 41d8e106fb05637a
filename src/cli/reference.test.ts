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
    const walk = (c: ReturnType<typeof gcProgram>, p: string[]): string[] =>
      c.commands.flatMap((s) => [[...p, s.name()].join(' '), ...walk(s, [...p, s.name()])]);
    for (const name of walk(gcProgram(), ['gc'])) expect(page).toContain(`\`${name}`);
    expect(page).toContain('| `--agents <n>` | coding agents in the pool (default 8) |');
  });
});
