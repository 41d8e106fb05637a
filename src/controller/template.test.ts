import { describe, expect, it } from 'vitest';
import { parseFragments, renderTemplate } from './template.js';

const vars = { Agent: 'front/polecat', Rig: 'front', WorkDir: '/w', CityRoot: '/c', Empty: '' };

describe('prompt templates (the Go text/template subset Gas City prompts use)', () => {
  it('variables, unknown ones left as written, comments dropped', () => {
    expect(renderTemplate('I am {{.Agent}} in {{ .Rig }} at {{.WorkDir}}; {{.Nope}}', vars)).toBe(
      'I am front/polecat in front at /w; {{.Nope}}',
    );
    expect(renderTemplate('a{{/* a note */}}b', vars)).toBe('ab');
  });

  it('if/else on a non-empty variable, and trim markers', () => {
    const t = '{{if .Rig}}rig {{.Rig}}{{else}}no rig{{end}} / {{if .Empty}}x{{else}}empty{{end}}';
    expect(renderTemplate(t, vars)).toBe('rig front / empty');
    expect(renderTemplate('a  \n  {{- .Rig -}}  \n  b', vars)).toBe('afrontb');
    expect(renderTemplate('{{if .Nope}}never{{end}}!', vars)).toBe('!');
  });

  it('fragments: from files (their {{define}}s, or the whole file), in-text defines win, missing ones stay', () => {
    const fragments = parseFragments(
      '{{define "mail"}}Mail: gc mail check --agent {{.Agent}}{{end}}\n{{define "loop"}}Loop in {{.WorkDir}}. {{template "mail" .}}{{end}}',
      'ignored',
    );
    parseFragments('Whole file for {{.Rig}}.', 'rig-notes', fragments);
    expect(
      renderTemplate(
        '{{template "loop" .}} {{template "rig-notes"}} {{template "gone" .}}',
        vars,
        fragments,
      ),
    ).toBe(
      'Loop in /w. Mail: gc mail check --agent front/polecat Whole file for front. {{template "gone" .}}',
    );
    expect(
      renderTemplate('{{define "mail"}}mine{{end}}{{template "loop" .}}', vars, fragments),
    ).toBe('Loop in /w. mine');
    // A loop of fragments ends (left as written) instead of running forever.
    const loop = parseFragments(
      '{{define "a"}}{{template "b"}}{{end}}{{define "b"}}{{template "a"}}{{end}}',
      'x',
    );
    expect(renderTemplate('{{template "a"}}', vars, loop)).toContain('{{template');
  });
});
