// A room's search (results newest first, each with its room, mid and a Redact button) and publishing as the
// system identity. The live list is live.js.

import { h, field, section, say, plural, errorSlot, idText, hold } from './dom.js';
import { makeRow, refill, roving } from './msgview.js';

const PAGE = 50;

/**
 * Search in room `rid`: results (newest first) under the box; "Older results" pages on with `before`.
 * `onRedact(mid)` redacts; returns `{el, redacted(mid, by)}` (a hit of a message redacted here turns into a
 * tombstone).
 */
export function searchPanel(ctx, rid, onRedact) {
  const input = h('input', { type: 'search', autocomplete: 'off', spellcheck: 'false', 'data-test': 'search-input' });
  const submit = h('button', { type: 'submit', class: 'btn', 'data-test': 'search-submit', text: 'Search' });
  const summary = h('p', { class: 'muted', 'data-test': 'search-summary', 'aria-live': 'polite' });
  const error = h('p', { class: 'form-error', role: 'alert', 'data-test': 'search-error', hidden: true });
  const results = h('ol', { class: 'msgs search-results', 'data-test': 'search-results', 'aria-label': 'Results, newest first' });
  const rv = roving(results, 'first');
  const hits = new Map();
  const opts = { onRedact, showRoom: true };
  const more = h('button', { type: 'button', class: 'btn btn-small', 'data-test': 'search-more', hidden: true, text: 'Older results' });
  let asked = 0;
  let query = '';
  let before = null;
  let count = 0;

  async function run(fresh) {
    asked += 1;
    const mine = asked;
    error.hidden = true;
    if (fresh) {
      query = input.value.trim();
      before = null;
      count = 0;
      results.replaceChildren();
      hits.clear();
      more.hidden = true;
      summary.textContent = 'Searching…';
    }
    try {
      const d = await ctx.get('/api/server/search', { room: rid, q: query, before: before === null ? undefined : before, limit: PAGE });
      if (!ctx.alive() || mine !== asked) return;
      const got = d && Array.isArray(d.messages) ? d.messages : [];
      for (const m of got) {
        if (!m || typeof m !== 'object') continue;
        const li = makeRow(m, 'search-hit', opts);
        hits.set(Number(m.mid), { li, m });
        results.append(li);
      }
      rv.sync();
      count += got.length;
      before = d && d.before !== undefined && d.before !== null ? d.before : null;
      more.hidden = !(d && d.more && before !== null);
      const q = idText(query);
      if (count === 0) summary.replaceChildren('No message matches “', q, '”.');
      else summary.replaceChildren(`${plural(count, 'message matches', 'messages match')} “`, q, `”${d.more ? ' (more older)' : ''}, newest first.`);
    } catch (e) {
      if (!ctx.alive() || mine !== asked || (e && e.name === 'AbortError')) return;
      summary.textContent = '';
      error.textContent = e && e.message ? e.message : String(e);
      error.hidden = false;
      if (e && e.status === 401) ctx.fail(e);
    }
  }

  const form = h('form', { class: 'form form-inline', role: 'search', novalidate: true },
    field('Words to find', input), h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    run(true);
  });
  more.addEventListener('click', () => run(false));

  function redacted(mid, by) {
    const hit = hits.get(Number(mid));
    if (!hit) return;
    hit.m = { ...hit.m, data: null, size: 0, redacted: true, redacted_by: by, redacted_at: Date.now() };
    refill(hit.li, hit.m, opts);
    rv.refresh(hit.li);
  }

  const el = section('Search this room', { 'data-test': 'search' }, form, error, summary, results, more);
  return { el, redacted };
}

/**
 * Publishing into room `rid` as the system identity: the text as a plain JSON string (what chat clients show,
 * and what `odd admin publish` sends), or, with "data is JSON", the JSON value typed. `after` runs once stored.
 */
export function publishPanel(ctx, rid, after) {
  const text = h('textarea', { rows: '3', 'data-test': 'publish-text' });
  const json = h('input', { type: 'checkbox', 'data-test': 'publish-json' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-test': 'publish-submit', text: 'Publish' });
  const error = errorSlot({ 'data-test': 'publish-error' });
  const form = h('form', { class: 'form', novalidate: true },
    field('Message', text, 'Sent as a plain string (as odd admin publish sends it) by the server’s publisher identity.'),
    h('label', { class: 'check' }, json, ' data is JSON (sent as the value typed, e.g. {"text": "…"})'),
    error,
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.clear();
    const value = text.value;
    if (!value.trim()) {
      error.show('Type the message to publish.');
      text.focus();
      return;
    }
    let data = value;
    if (json.checked) {
      try {
        data = JSON.parse(value);
      } catch (err) {
        error.show(`That is not JSON: ${err && err.message ? err.message : err}`);
        text.focus();
        return;
      }
    }
    const release = hold(submit);
    if (!release) return;
    const d = await ctx.act(() => ctx.post('/api/server/publish', { room: rid, data }), 'Publish', error);
    release();
    if (!d) return;
    say(`Published message ${d.mid}`);
    text.value = '';
    if (ctx.alive()) after();
  });
  return section('Publish as the system', { 'data-test': 'publish' }, form);
}
