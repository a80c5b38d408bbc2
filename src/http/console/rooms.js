// Rooms: "Open a room by id" and "Create a room" above a paged table (Previous / Next above and below it, over
// a stack of `after` cursors).

import { call } from './api.js';
import { h, replace, field, section, time, fmtInt, say, idText, errorSlot, route, hold } from './dom.js';

const PAGE = 50;

/** The `after` cursor of each page seen, the current page last. Kept while signed in. */
let stack = [''];

export function reset() {
  stack = [''];
}

export function render(ctx, main) {
  document.title = 'Rooms · odd-gateway console';

  const tbody = h('tbody', { 'data-test': 'rooms-body' });
  const table = h('table', { class: 'table table-stack', 'data-test': 'rooms-table' },
    h('caption', { class: 'sr-only', text: 'Rooms, ascending by id' }),
    h('thead', null, h('tr', null,
      h('th', { scope: 'col', text: 'Room' }),
      h('th', { scope: 'col', text: 'Owner' }),
      h('th', { scope: 'col', text: 'Created' }),
      h('th', { scope: 'col', class: 'num', text: 'Present' }))),
    tbody);
  const empty = h('p', { class: 'empty', 'data-test': 'rooms-empty', hidden: true, text: 'No rooms.' });
  const pageLabel = h('span', { class: 'muted pager-label', 'aria-live': 'polite', 'data-test': 'rooms-page' });
  const prevBtn = h('button', { type: 'button', class: 'btn', 'data-test': 'rooms-prev', text: 'Previous' });
  const nextBtn = h('button', { type: 'button', class: 'btn', 'data-test': 'rooms-next', text: 'Next' });
  const prevLow = h('button', { type: 'button', class: 'btn', 'data-test': 'rooms-prev-below', text: 'Previous' });
  const nextLow = h('button', { type: 'button', class: 'btn', 'data-test': 'rooms-next-below', text: 'Next' });
  const lowLabel = h('span', { class: 'muted pager-label' });
  for (const b of [prevBtn, nextBtn, prevLow, nextLow]) b.disabled = true;
  const refreshBtn = h('button', { type: 'button', class: 'btn btn-quiet', 'data-test': 'rooms-refresh', text: 'Refresh' });

  let nextAfter = null;
  let loading = false;

  async function load() {
    if (loading) return;
    loading = true;
    // The buttons stay enabled while the page loads (a disabled button drops the focus); `loading` guards.
    const pager = [prevBtn, nextBtn, prevLow, nextLow];
    const focused = pager.find((b) => b === document.activeElement);
    try {
      const after = stack[stack.length - 1];
      const d = await ctx.get('/api/server/rooms', { after: after || undefined, limit: PAGE });
      if (!ctx.alive()) return;
      const list = d && Array.isArray(d.rooms) ? d.rooms : [];
      tbody.replaceChildren(...list.map(row));
      empty.hidden = list.length > 0;
      table.hidden = list.length === 0;
      nextAfter = list.length ? String(list[list.length - 1].id) : null;
      nextBtn.disabled = !(d && d.more && nextAfter !== null);
      nextLow.disabled = nextBtn.disabled;
      prevBtn.disabled = stack.length <= 1;
      prevLow.disabled = prevBtn.disabled;
      const first = stack.length === 1 ? 'First page' : `Page ${stack.length}`;
      pageLabel.textContent = `${first} · ${list.length === 1 ? '1 room' : `${list.length} rooms`}`;
      lowLabel.textContent = pageLabel.textContent;
    } catch (e) {
      prevBtn.disabled = stack.length <= 1;
      prevLow.disabled = prevBtn.disabled;
      ctx.fail(e, 'Rooms');
    } finally {
      loading = false;
      // A button that can no longer be used hands the focus to the other one of its pager.
      if (focused && focused.disabled) {
        const other = { [prevBtn.dataset.test]: nextBtn, [nextBtn.dataset.test]: prevBtn, [prevLow.dataset.test]: nextLow, [nextLow.dataset.test]: prevLow }[focused.dataset.test];
        (other && !other.disabled ? other : refreshBtn).focus();
      }
    }
  }

  const next = () => {
    if (loading || nextAfter === null) return;
    stack.push(nextAfter);
    load();
  };
  const prev = () => {
    if (loading) return;
    if (stack.length > 1) stack.pop();
    load();
  };
  nextBtn.addEventListener('click', next);
  prevBtn.addEventListener('click', prev);
  // The pager below the list also brings the view back to the top of the new page.
  nextLow.addEventListener('click', () => {
    next();
    pageLabel.scrollIntoView({ block: 'nearest' });
  });
  prevLow.addEventListener('click', () => {
    prev();
    pageLabel.scrollIntoView({ block: 'nearest' });
  });
  refreshBtn.addEventListener('click', load);

  replace(main,
    h('div', { class: 'page-head' },
      h('h1', { tabindex: '-1', text: 'Rooms' }),
      h('p', { class: 'muted page-note', text: 'Every room the gateway knows, ascending by id.' })),
    h('div', { class: 'rooms-tools' }, openForm(), createForm(ctx, load)),
    section('Rooms', { 'data-test': 'rooms' },
      h('div', { class: 'pager' }, prevBtn, nextBtn, pageLabel, refreshBtn),
      h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Rooms table' }, table),
      empty,
      h('div', { class: 'pager pager-below' }, prevLow, nextLow, lowLabel)));
  load();
}

function row(r) {
  const id = String(r && r.id !== undefined ? r.id : '');
  const owner = r && typeof r.owner === 'string' ? r.owner : '';
  return h('tr', { 'data-test': 'room-row', 'data-rid': id },
    h('td', { class: 'wrap-id', 'data-label': 'Room' }, h('a', { route: ['rooms', id], 'data-test': 'room-link' }, idText(id))),
    h('td', { class: 'wrap-id', 'data-label': 'Owner' }, owner ? h('a', { route: ['users', owner] }, idText(owner)) : h('span', { class: 'muted', text: '—' })),
    h('td', { class: 'nowrap', 'data-label': 'Created' }, time(r && r.created)),
    h('td', { class: 'num', 'data-label': 'Present' }, h('span', { text: fmtInt(r && r.present) })));
}

/** Goes to a room's page by its id (any id: the room page says when there is no such room). */
function openForm() {
  const rid = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', 'data-test': 'open-rid' });
  const error = errorSlot({ 'data-test': 'open-error' });
  const form = h('form', { class: 'form form-inline', novalidate: true },
    field('Room id', rid), h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn', 'data-test': 'open-submit', text: 'Open' })),
    error);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    error.clear();
    // Spaces may be part of an id: only an empty one is refused.
    if (!rid.value) {
      error.show('Type a room id.');
      rid.focus();
      return;
    }
    location.hash = route('rooms', rid.value);
  });
  return section('Open a room by id', { 'data-test': 'open-room' }, form);
}

function createForm(ctx, reload) {
  const rid = h('input', { type: 'text', required: true, autocomplete: 'off', spellcheck: 'false', 'data-test': 'create-rid' });
  const owner = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', 'data-test': 'create-owner' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-test': 'create-submit', text: 'Create room' });
  const result = h('p', { class: 'form-result', 'data-test': 'create-result', hidden: true });
  const error = errorSlot({ 'data-test': 'create-error' });
  const form = h('form', { class: 'form', novalidate: true },
    field('Room id', rid),
    field('Owner (optional)', owner, 'Defaults to the server’s publisher id; the owner holds rwx.'),
    h('div', { class: 'actions' }, submit),
    error,
    result);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.clear();
    result.hidden = true;
    const id = rid.value.trim();
    if (!id) {
      error.show('Type a room id.');
      rid.focus();
      return;
    }
    const body = { rid: id };
    if (owner.value.trim()) body.owner = owner.value.trim();
    const release = hold(submit);
    if (!release) return;
    const res = await ctx.act(() => call('POST', '/api/server/rooms', body), `Create room ${id}`, error);
    release();
    if (!res) return;
    const made = res.status === 201;
    const text = () => ['Room ', idText(id), made ? ' created' : ' already existed (unchanged)'];
    say(text());
    replace(result, ...text(), '. ', h('a', { route: ['rooms', id], 'data-test': 'create-open', text: 'Open it' }));
    result.hidden = false;
    if (made) rid.value = '';
    if (ctx.alive()) reload();
  });
  return section('Create a room', { 'data-test': 'create-room' }, form);
}
