/**
 * Prompt templates as Gas City writes them: a subset of Go's text/template.
 *
 *   {{.Name}}                     a variable; unknown ones are left as written
 *   {{if .Name}}..{{else}}..{{end}}  on a non-empty variable
 *   {{template "name" .}}         a fragment (template-fragments/ of any pack,
 *                                 or a {{define}} in the same text)
 *   {{define "name"}}..{{end}}    a fragment, defined in place (renders nothing)
 *   {{/* comment *\/}}            nothing
 *   {{- and -}}                   trim the whitespace before / after
 *
 * Anything else between braces is left as written, so a prompt that shows
 * template syntax as an example survives.
 */

type Node =
  | { kind: 'text'; text: string }
  | { kind: 'var'; name: string; raw: string }
  | { kind: 'if'; name: string; then: Node[]; else: Node[] }
  | { kind: 'template'; name: string; raw: string };

interface Token {
  text?: string;
  body?: string;
  raw?: string;
}

export type Fragments = Map<string, Node[]>;

const ACTION = /\{\{(-?)\s*([\s\S]*?)\s*(-?)\}\}/g;

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let last = 0;
  let trimNext = false;
  for (const m of src.matchAll(ACTION)) {
    let text = src.slice(last, m.index);
    if (trimNext) text = text.replace(/^\s+/, '');
    if (m[1] === '-') text = text.replace(/\s+$/, '');
    if (text) out.push({ text });
    out.push({ body: m[2]!, raw: m[0] });
    trimNext = m[3] === '-';
    last = m.index + m[0].length;
  }
  let tail = src.slice(last);
  if (trimNext) tail = tail.replace(/^\s+/, '');
  if (tail) out.push({ text: tail });
  return out;
}

const VAR = /^\.(\w+)$/;
const IF = /^if\s+\.(\w+)$/;
const TEMPLATE = /^template\s+"([^"]+)"(?:\s+\.)?$/;
const DEFINE = /^define\s+"([^"]+)"$/;

/** Parse tokens from `i` until `{{end}}`/`{{else}}` (returned as `stop`). */
function parse(
  tokens: Token[],
  i: number,
  defines: Fragments,
): { nodes: Node[]; next: number; stop?: 'end' | 'else' } {
  const nodes: Node[] = [];
  while (i < tokens.length) {
    const t = tokens[i++]!;
    if (t.text !== undefined) {
      nodes.push({ kind: 'text', text: t.text });
      continue;
    }
    const body = t.body!;
    if (body === 'end' || body === 'else') return { nodes, next: i, stop: body };
    if (/^\/\*[\s\S]*\*\/$/.test(body)) continue;
    let m: RegExpExecArray | null;
    if ((m = VAR.exec(body))) nodes.push({ kind: 'var', name: m[1]!, raw: t.raw! });
    else if ((m = TEMPLATE.exec(body))) nodes.push({ kind: 'template', name: m[1]!, raw: t.raw! });
    else if ((m = IF.exec(body))) {
      const then = parse(tokens, i, defines);
      let otherwise: Node[] = [];
      i = then.next;
      if (then.stop === 'else') {
        const e = parse(tokens, i, defines);
        otherwise = e.nodes;
        i = e.next;
      }
      nodes.push({ kind: 'if', name: m[1]!, then: then.nodes, else: otherwise });
    } else if ((m = DEFINE.exec(body))) {
      const d = parse(tokens, i, defines);
      defines.set(m[1]!, d.nodes);
      i = d.next;
    } else nodes.push({ kind: 'text', text: t.raw! });
  }
  return { nodes, next: i };
}

/** The fragments a file defines: its {{define}} blocks, or (with none) its whole text under `name`. */
export function parseFragments(src: string, name: string, into: Fragments = new Map()): Fragments {
  const defines: Fragments = new Map();
  const { nodes } = parse(tokenize(src), 0, defines);
  if (defines.size) for (const [k, v] of defines) into.set(k, v);
  else into.set(name, nodes);
  return into;
}

function render(
  nodes: Node[],
  vars: Record<string, string>,
  fragments: Fragments,
  depth: number,
): string {
  let out = '';
  for (const n of nodes) {
    if (n.kind === 'text') out += n.text;
    else if (n.kind === 'var') out += vars[n.name] ?? n.raw;
    else if (n.kind === 'if') out += render(vars[n.name] ? n.then : n.else, vars, fragments, depth);
    else {
      const f = fragments.get(n.name);
      // A missing fragment (or a loop of them) is left as written.
      out += f && depth < 16 ? render(f, vars, fragments, depth + 1) : n.raw;
    }
  }
  return out;
}

/** Render `src` with `vars` and the packs' `fragments` (its own {{define}}s win). */
export function renderTemplate(
  src: string,
  vars: Record<string, string>,
  fragments: Fragments = new Map(),
): string {
  const own = new Map(fragments);
  const { nodes } = parse(tokenize(src), 0, own);
  return render(nodes, vars, own, 0);
}
