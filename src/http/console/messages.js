// A room's messages: the live list (the newest page re-read every 1.5 s, rows keyed by mid and only touched
// when they change), the room search, and publishing as the system identity.

import { seg } from './api.js';
import { h, replace, field, section, time, fmtTime, messageText, confirmButton, say, plural } from './dom.js';

const LIVE_MS = 1500;
const PAGE = 50;

/** What a row shows, as one string: the row is rebuilt only when this changes. */
function signature(m) {
  const u = m.user && typeof m.user === 'object' ? m.user : {};
  return JSON.stringify([m.redacted === true, m.redacted_by, m.redacted_at, m.unreadable === true,
    messageText(m), u.id, u.nick, m.type, m.timestamp]);
}

/** Fills `li` (kept, its children replaced) with message `m`; `onRedact` adds a Redact button. */
function fillRow(li, m, onRedact) {
  const u = m.user && typeof m.user === 'object' ? m.user : {};
  const mid = String(m.mid);
  const redacted = m.redacted === true;
  li.classList.toggle('redacted', redacted);
  if (redacted) li.setAttribute('data-redacted', 'true');
  else li.removeAttribute('data-redacted');
  const nick = typeof u.nick === 'string' && u.nick ? u.nick : '';
  const uid = typeof u.id === 'string' ? u.id : '';
  const type = typeof m.type === 'string' ? m.type : '';
  const meta = h('div', { class: 'msg-meta' },
    h('span', { class: 'mid num', text: `#${mid}` }),
    time(m.timestamp),
    h('span', { class: 'nick', 'data-test': 'message-nick', text: nick || '(no nick)' }),
    uid ? h('a', { class: 'uid', route: ['users', uid], text: uid }) : null,
    type && type !== 'text' ? h('span', { class: 'badge', text: type }) : null);
  const text = h('p', { class: 'msg-text', 'data-test': 'message-text', text: messageText(m) });
  if (redacted && typeof m.redacted_at === 'number') {
    text.append(h('span', { class: 'muted', text: ` at ${fmtTime(m.redacted_at)}` }));
  }
  const actions = onRedact && !redacted
    ? h('div', { class: 'msg-actions' },
      confirmButton('Redact', 'Confirm redact?', () => onRedact(m.mid), {
        class: 'btn-small btn-danger', 'data-test': 'redact', 'aria-label': `Redact message ${mid}`,
      }))
    : null;
  replace(li, meta, text, actions);
}

/** The live message list of room `rid`. Returns `{el, refresh}`. */
export function livePanel(ctx, rid) {
  const rows = new Map();
  const mids = [];
  const list = h('ol', { class: 'msgs', 'data-test': 'messages' });
  const empty = h('p', { class: 'empty', 'data-test': 'messages-empty', hidden: true, text: 'No messages yet.' });
  const scroller = h('div', { class: 'msg-scroll', tabindex: '0', role: 'region', 'aria-label': 'Messages, oldest first' },
    list, empty);
  const olderBtn = h('button', { type: 'button', class: 'btn btn-small', 'data-test': 'messages-older', hidden: true, text: 'Load older' });
  const note = h('span', { class: 'muted live-note', 'data-test': 'live-note', text: 'Loading…' });
  let first = true;
  let oldest = null;
  let olderMore = false;

  async function redact(mid) {
    const d = await ctx.act(() => ctx.post('/api/server/redact', { mid }), `Redact message ${mid}`);
    if (!d) return;
    say(`Message ${mid} redacted`);
    if (ctx.alive()) refresh().catch((e) => ctx.fail(e));
  }

  function upsert(m) {
    if (!m || typeof m !== 'object') return;
    const mid = Number(m.mid);
    if (!Number.isFinite(mid)) return;
    const sig = signature(m);
    const have = rows.get(mid);
    if (have) {
      if (have.sig !== sig) {
        fillRow(have.li, m, redact);
        have.sig = sig;
      }
      return;
    }
    const li = h('li', { class: 'msg', 'data-test': 'message', 'data-mid': String(mid) });
    fillRow(li, m, redact);
    rows.set(mid, { li, sig });
    // Keep ascending mid order: binary search for the first mid above this one.
    let lo = 0;
    let hi = mids.length;
    while (lo < hi) {
      const k = (lo + hi) >> 1;
      if (mids[k] < mid) lo = k + 1;
      else hi = k;
    }
    const before = lo < mids.length ? rows.get(mids[lo]).li : null;
    mids.splice(lo, 0, mid);
    list.insertBefore(li, before);
  }

  function apply(messages) {
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 24;
    for (const m of messages) upsert(m);
    if (first || atBottom) scroller.scrollTop = scroller.scrollHeight;
    empty.hidden = rows.size > 0;
  }

  async function refresh() {
    const path = `/api/server/rooms/${seg(rid)}/messages`;
    const d = await ctx.get(path, { limit: PAGE });
    if (!ctx.alive()) return;
    let messages = d && Array.isArray(d.messages) ? d.messages : [];
    // More than a page arrived since the last read: catch up from the newest row we have (a few pages at most).
    const newest = mids.length ? mids[mids.length - 1] : null;
    if (newest !== null && d.more && messages.length && Number(messages[0].mid) > newest + 1) {
      let after = newest;
      for (let i = 0; i < 4; i += 1) {
        const gap = await ctx.get(path, { after, limit: PAGE });
        if (!ctx.alive()) return;
        const got = gap && Array.isArray(gap.messages) ? gap.messages : [];
        apply(got.filter((m) => Number(m.mid) < Number(messages[0].mid)));
        if (!gap.more || !got.length) break;
        after = Number(got[got.length - 1].mid);
        if (after >= Number(messages[0].mid)) break;
      }
    }
    apply(messages);
    if (first) {
      first = false;
      oldest = messages.length ? Number(messages[0].mid) : null;
      olderMore = Boolean(d.more);
      olderBtn.hidden = !olderMore;
    }
    note.textContent = `Live · updated ${fmtTime(Date.now())}`;
  }

  olderBtn.addEventListener('click', async () => {
    if (oldest === null) return;
    olderBtn.disabled = true;
    try {
      const d = await ctx.get(`/api/server/rooms/${seg(rid)}/messages`, { before: oldest, limit: PAGE });
      if (!ctx.alive()) return;
      const got = d && Array.isArray(d.messages) ? d.messages : [];
      const fromBottom = scroller.scrollHeight - scroller.scrollTop;
      for (const m of got) upsert(m);
      scroller.scrollTop = scroller.scrollHeight - fromBottom;
      if (got.length) oldest = Number(got[0].mid);
      olderMore = Boolean(d.more) && got.length > 0;
      olderBtn.hidden = !olderMore;
      empty.hidden = rows.size > 0;
    } catch (e) {
      ctx.fail(e, 'Older messages');
    } finally {
      olderBtn.disabled = false;
    }
  });

  ctx.poll(LIVE_MS, refresh);

  const el = section('Messages', { class: 'panel-messages', 'data-test': 'messages-panel' },
    h('div', { class: 'panel-bar' }, note, olderBtn),
    scroller);
  return { el, refresh };
}

/** Search in room `rid`: results (newest first) under the box; "Older results" pages on with `before`. */
export function searchPanel(ctx, rid) {
  const input = h('input', { type: 'search', autocomplete: 'off', spellcheck: 'false', 'data-test': 'search-input' });
  const submit = h('button', { type: 'submit', class: 'btn', 'data-test': 'search-submit', text: 'Search' });
  const summary = h('p', { class: 'muted', 'data-test': 'search-summary', 'aria-live': 'polite' });
  const error = h('p', { class: 'form-error', role: 'alert', 'data-test': 'search-error', hidden: true });
  const results = h('ol', { class: 'msgs search-results', 'data-test': 'search-results' });
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
      more.hidden = true;
      summary.textContent = 'Searching…';
    }
    try {
      const d = await ctx.get('/api/server/search', { room: rid, q: query, before: before === null ? undefined : before, limit: PAGE });
      if (!ctx.alive() || mine !== asked) return;
      const got = d && Array.isArray(d.messages) ? d.messages : [];
      for (const m of got) {
        if (!m || typeof m !== 'object') continue;
        const li = h('li', { class: 'msg', 'data-test': 'search-hit', 'data-mid': String(m.mid) });
        fillRow(li, m, null);
        results.append(li);
      }
      count += got.length;
      before = d && d.before !== undefined && d.before !== null ? d.before : null;
      more.hidden = !(d && d.more && before !== null);
      summary.textContent = count === 0
        ? `No message matches “${query}”.`
        : `${plural(count, 'message matches', 'messages match')} “${query}”${d.more ? ' (more older)' : ''}, newest first.`;
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
  return section('Search this room', { 'data-test': 'search' }, form, error, summary, results, more);
}

/** Publishing a text message into room `rid` as the system identity; `after` runs once it is stored. */
export function publishPanel(ctx, rid, after) {
  const text = h('textarea', { rows: '3', 'data-test': 'publish-text' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-test': 'publish-submit', text: 'Publish' });
  const form = h('form', { class: 'form', novalidate: true },
    field('Message text', text, 'Sent as {"text": …} by the server’s publisher identity.'),
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const value = text.value;
    if (!value.trim()) {
      say('Type the message to publish.', { error: true });
      text.focus();
      return;
    }
    submit.disabled = true;
    const d = await ctx.act(() => ctx.post('/api/server/publish', { room: rid, data: { text: value } }), 'Publish');
    submit.disabled = false;
    if (!d) return;
    say(`Published message ${d.mid}`);
    text.value = '';
    if (ctx.alive()) after();
  });
  return section('Publish as the system', { 'data-test': 'publish' }, form);
}
