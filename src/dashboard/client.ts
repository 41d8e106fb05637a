/**
 * The dashboard's page script and style sheet, served by gc itself (no CDN,
 * no build step: src/ holds TypeScript only, so they live here as text).
 *
 * The script, on every page:
 * - follows the API's event stream (`/v0/events/stream?plain=true`, from
 *   the seq the page was drawn at; the browser resumes with Last-Event-ID
 *   after a drop, and the script opens a new stream from the last seq it
 *   saw if the browser gives up) and fetches a live region again
 *   (`?part=<id>`) when an event it follows arrives: no polling;
 * - adds matching events to the top of the events page's table;
 * - shows a session's output from its peek stream;
 * - sends action forms to the API as JSON with the page's CSRF token, and
 *   says what happened in a status region screen readers announce.
 * Text from the server goes in with textContent, never as markup, except
 * the live regions, which are HTML the server escaped.
 */

export const UI_JS = String.raw`'use strict';
(function () {
  var csrf = (document.querySelector('meta[name=gc-csrf]') || {}).content || '';
  var statusBox = document.getElementById('gc-status');
  var liveBox = document.getElementById('gc-live');
  function say(text, bad) {
    if (!statusBox) return;
    statusBox.textContent = text;
    statusBox.className = bad ? 'bad' : 'good';
  }
  function matches(patterns, type) {
    return patterns.some(function (p) {
      if (p === '*') return true;
      if (p.charAt(p.length - 1) === '*') return type.indexOf(p.slice(0, -1)) === 0;
      return type === p;
    });
  }

  // ---- live regions ----
  var parts = Array.prototype.slice.call(document.querySelectorAll('[data-part]'));
  var due = new Set();
  var timer = 0;
  var busy = false;
  var last = 0;
  // Soon after the first event, then at most twice a second however busy
  // the city is: a page costs the server two rounds of fetches a second.
  function schedule() {
    if (!timer) timer = setTimeout(refresh, Math.max(80, last + 500 - Date.now()));
  }
  function refresh() {
    timer = 0;
    last = Date.now();
    if (busy) {
      timer = setTimeout(refresh, 100);
      return;
    }
    var list = Array.from(due);
    due.clear();
    busy = true;
    Promise.all(
      list.map(function (el) {
        var u = new URL(location.href);
        u.searchParams.set('part', el.dataset.part);
        return fetch(u, { credentials: 'same-origin', headers: { accept: 'text/html' } })
          .then(function (r) {
            if (!r.ok) throw new Error('HTTP ' + r.status);
            return r.text();
          })
          .then(function (text) {
            var active = document.activeElement;
            if (active && el.contains(active) && /INPUT|SELECT|TEXTAREA/.test(active.tagName)) {
              due.add(el);
              return;
            }
            el.innerHTML = text;
            el.dispatchEvent(new CustomEvent('gc:updated', { bubbles: true }));
          })
          .catch(function () {
            due.add(el);
          });
      }),
    ).then(function () {
      busy = false;
      if (due.size && !timer) timer = setTimeout(refresh, 1000);
    });
  }

  // ---- events page tail ----
  var tail = document.querySelector('tbody[data-tail]');
  function addRow(e) {
    var type = tail.dataset.type;
    var actor = tail.dataset.actor;
    if (type && !matches([type], e.type)) return;
    if (actor && e.actor !== actor) return;
    var tr = document.createElement('tr');
    [String(e.seq), (e.ts || '').slice(11, 19), e.type, e.actor, e.subject || '', e.message || ''].forEach(
      function (text) {
        var td = document.createElement('td');
        td.textContent = text;
        tr.appendChild(td);
      },
    );
    tr.className = 'new';
    tail.insertBefore(tr, tail.firstChild);
    while (tail.rows.length > 500) tail.deleteRow(tail.rows.length - 1);
  }

  // ---- the event stream ----
  var lastSeq = Number(document.body.dataset.after || '0');
  function follow() {
    if (!parts.length && !tail) return;
    var es = new EventSource('/v0/events/stream?plain=true&after_seq=' + lastSeq);
    es.onopen = function () {
      if (liveBox) liveBox.textContent = 'live updates: on';
    };
    es.onmessage = function (m) {
      var e;
      try {
        e = JSON.parse(m.data);
      } catch (err) {
        return;
      }
      if (typeof e.seq === 'number') lastSeq = Math.max(lastSeq, e.seq);
      if (tail) addRow(e);
      parts.forEach(function (el) {
        if (matches((el.dataset.on || '*').split(' '), e.type)) due.add(el);
      });
      if (due.size) schedule();
    };
    es.onerror = function () {
      if (liveBox) liveBox.textContent = 'live updates: reconnecting';
      // The browser retries by itself unless the answer was not a stream
      // (a 401 after logout, a proxy page): then start again a bit later.
      if (es.readyState === EventSource.CLOSED) setTimeout(follow, 5000);
    };
  }
  follow();

  // ---- session output ----
  document.querySelectorAll('pre[data-peek]').forEach(function (pre) {
    var es = new EventSource(pre.dataset.peek);
    es.onmessage = function (m) {
      try {
        pre.textContent = JSON.parse(m.data).text;
        pre.scrollTop = pre.scrollHeight;
      } catch (err) {
        /* not ours */
      }
    };
  });

  // ---- actions ----
  document.addEventListener('submit', function (ev) {
    var form = ev.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.api) return;
    ev.preventDefault();
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    var body = {};
    new FormData(form).forEach(function (v, k) {
      body[k] = v;
    });
    var button = form.querySelector('button');
    var label = button ? button.textContent.trim() : 'Action';
    if (button) button.disabled = true;
    say(label + ': sending…');
    fetch(form.dataset.api, {
      method: form.dataset.method || 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', 'x-gc-csrf': csrf },
      body: JSON.stringify(body),
    })
      .then(function (r) {
        return r.text().then(function (text) {
          var data = {};
          try {
            data = JSON.parse(text);
          } catch (err) {
            data = {};
          }
          if (r.ok) {
            say(label + ': done.');
            return;
          }
          var e = data.error || {};
          say(label + ' refused (' + r.status + '): ' + (e.message || text) + (e.fix ? ' (' + e.fix + ')' : ''), true);
        });
      })
      .catch(function (err) {
        say(label + ' failed: ' + err.message, true);
      })
      .then(function () {
        if (button) button.disabled = false;
      });
  });
})();
`;

export const UI_CSS = String.raw`:root {
  --fg: #1b1f24;
  --muted: #4a525c;
  --bg: #ffffff;
  --panel: #f4f6f8;
  --line: #d0d7de;
  --link: #0b57b0;
  --good-bg: #dcf3e4;
  --good: #0b5a2a;
  --warn-bg: #fff1c7;
  --warn: #6a4a00;
  --bad-bg: #fde2e1;
  --bad: #8a1c14;
  font: 15px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif;
  color: var(--fg);
  background: var(--bg);
}
body { margin: 0; }
a { color: var(--link); }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, pre:focus-visible {
  outline: 3px solid #1f6feb;
  outline-offset: 2px;
}
.skip { position: absolute; left: -999px; }
.skip:focus { left: 8px; top: 8px; background: var(--bg); padding: 4px 8px; z-index: 2; }
header {
  display: flex; flex-wrap: wrap; align-items: center; gap: 8px 16px;
  padding: 8px 16px; background: var(--panel); border-bottom: 1px solid var(--line);
}
.brand { font-weight: 700; }
header nav ul, .tabs ul { display: flex; flex-wrap: wrap; gap: 4px 12px; list-style: none; margin: 0; padding: 0; }
header nav a[aria-current], .tabs a[aria-current] { font-weight: 700; text-decoration-thickness: 3px; }
.who { margin-left: auto; display: flex; gap: 8px; align-items: center; color: var(--muted); }
.who form { display: inline; }
main { padding: 8px 16px 32px; max-width: 1400px; }
main:focus { outline: none; }
h1 { font-size: 1.5rem; margin: 8px 0 12px; }
h2 { font-size: 1.15rem; margin: 20px 0 8px; }
h3 { font-size: 1rem; margin: 14px 0 6px; }
table { border-collapse: collapse; width: 100%; margin: 4px 0 12px; }
caption { text-align: left; color: var(--muted); padding: 4px 0; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--panel); }
tr.new { background: var(--warn-bg); }
.muted, .empty { color: var(--muted); }
.badge { display: inline-block; padding: 0 6px; border-radius: 8px; font-size: 0.85em; border: 1px solid var(--line); }
.badge.good { background: var(--good-bg); color: var(--good); }
.badge.warn { background: var(--warn-bg); color: var(--warn); }
.badge.bad { background: var(--bad-bg); color: var(--bad); }
.stats { display: flex; flex-wrap: wrap; gap: 8px; }
.stat {
  display: flex; flex-direction: column; min-width: 120px; padding: 8px 12px;
  border: 1px solid var(--line); border-radius: 6px; background: var(--panel); color: var(--fg); text-decoration: none;
}
.stat .n { font-size: 1.5rem; font-weight: 700; }
.stat .l { color: var(--muted); font-size: 0.9em; }
.stat.bad { background: var(--bad-bg); border-color: #e0a19c; }
.stat.bad .l, .stat.bad .n { color: var(--bad); }
.filters { display: flex; flex-wrap: wrap; gap: 8px 12px; align-items: end; margin: 0 0 8px; }
.filters label { display: flex; flex-direction: column; font-size: 0.9em; color: var(--muted); }
input, select, button { font: inherit; padding: 3px 6px; border: 1px solid #8c959f; border-radius: 4px; background: var(--bg); color: var(--fg); }
button { background: var(--panel); cursor: pointer; }
button.danger { border-color: var(--bad); color: var(--bad); }
button:disabled { opacity: 0.6; }
.actions { display: flex; flex-wrap: wrap; gap: 8px; align-items: end; }
form.act { display: inline-flex; gap: 6px; align-items: end; margin: 0; }
form.act label { display: flex; flex-direction: column; font-size: 0.9em; color: var(--muted); }
.board { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap: 12px; }
.column { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 0 8px 8px; }
.column h2 .count { color: var(--muted); font-weight: 400; }
.cards { list-style: none; margin: 0; padding: 0; }
.card { background: var(--bg); border: 1px solid var(--line); border-radius: 4px; padding: 6px; margin: 6px 0; }
.card .muted { display: block; font-size: 0.85em; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
pre.output, pre.text {
  background: #10141a; color: #e6edf3; padding: 8px; border-radius: 4px;
  overflow: auto; max-height: 420px; white-space: pre-wrap; word-break: break-word;
}
pre.text { background: var(--panel); color: var(--fg); max-height: 300px; }
.chart svg { width: 100%; max-width: 900px; height: auto; }
.graph svg { max-width: 100%; height: auto; }
.chart rect { fill: #2f6fbf; }
.chart text, .graph text { font-size: 10px; fill: var(--muted); }
.graph rect { fill: var(--panel); stroke: #8c959f; }
.graph .closed rect { fill: var(--good-bg); stroke: var(--good); }
.graph .in_progress rect { fill: var(--warn-bg); stroke: var(--warn); }
.graph text { fill: var(--fg); }
.graph .edges line { stroke: #8c959f; stroke-width: 1; }
figure { margin: 8px 0; }
figcaption { color: var(--muted); font-size: 0.9em; }
.two { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 16px; }
.pager { display: flex; gap: 16px; }
#gc-status { position: fixed; bottom: 8px; right: 8px; max-width: 480px; }
#gc-status:not(:empty) { padding: 8px 12px; border-radius: 6px; border: 1px solid var(--line); background: var(--bg); }
#gc-status.bad { color: var(--bad); border-color: var(--bad); }
footer { padding: 8px 16px; }
.message { border-bottom: 1px solid var(--line); }
.problems { margin: 8px 0; padding-left: 20px; }
.problems li { margin: 4px 0; }
progress { vertical-align: middle; }
@media (max-width: 640px) {
  main { padding: 8px; }
  th, td { padding: 3px 4px; }
  .who { margin-left: 0; }
  table { display: block; overflow-x: auto; }
}
`;
