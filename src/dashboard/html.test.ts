/** The dashboard's HTML template: every value escaped, only its own Html kept as is. */
import { describe, expect, it } from 'vitest';
import { Html, ago, bars, escapeHtml, html, qs, table } from './html.js';

const h = html;

describe('dashboard html', () => {
  it('escapes every value, keeps nested Html, flattens arrays, drops empties', () => {
    const title = `<img src=x onerror="alert('x')"> & co`;
    // (`h`, not `html`: the formatter would reflow an html`` template.)
    const out = h`<p title="${title}">${title}</p>${[h`<b>${'<i>'}</b>`, 'a<b']}${undefined}${false}${0}`;
    expect(out.text).toBe(
      '<p title="&lt;img src=x onerror=&quot;alert(&#39;x&#39;)&quot;&gt; &amp; co">&lt;img src=x onerror=&quot;alert(&#39;x&#39;)&quot;&gt; &amp; co</p><b>&lt;i&gt;</b>a&lt;b0',
    );
    // A string that looks like markup is still a string.
    expect(html`${'<b>x</b>'}`.text).toBe('&lt;b&gt;x&lt;/b&gt;');
    expect(html`${new Html('<b>x</b>')}`.text).toBe('<b>x</b>');
    expect(escapeHtml(`"'<>&`)).toBe('&quot;&#39;&lt;&gt;&amp;');
  });

  it('tables, charts and query strings escape what they are given', () => {
    const t = table(
      'Cap <1>',
      ['A'],
      ['<x>'],
      (r) =>
        html`<tr>
          <td>${r}</td>
        </tr>`,
    );
    expect(t.text).toContain('Cap &lt;1&gt;');
    expect(t.text).toContain('<td>&lt;x&gt;</td>');
    expect(table('c', ['A'], [], () => html``, 'none <here>').text).toContain('none &lt;here&gt;');
    const chart = bars('Per <day>', [{ label: '<a>', value: 2 }]);
    expect(chart.text).toContain('aria-label="Per &lt;day&gt;, highest 2"');
    expect(chart.text).toContain('<title>&lt;a&gt;: 2</title>');
    expect(bars('Empty', []).text).toContain('No data yet');
    expect(qs({ a: 'x y&z', b: undefined, c: '' })).toBe('?a=x+y%26z');
    expect(qs({})).toBe('');
  });

  it('ages read epoch ms and RFC 3339, and say - for none', () => {
    const now = Date.parse('2026-12-03T12:00:00Z');
    expect(ago(now - 5_000, now)).toBe('5s ago');
    expect(ago('2026-12-03T11:00:00Z', now)).toBe('1h ago');
    expect(ago(null, now)).toBe('-');
    expect(ago('not a time', now)).toBe('-');
  });
});
