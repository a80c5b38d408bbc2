// Rooms: a paged table (Next / Previous over a stack of `after` cursors) and a small "Create room" form.

import { call } from './api.js';
import { h, replace, field, section, time, fmtInt, say } from './dom.js';

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
  const refreshBtn = h('button', { type: 'button', class: 'btn btn-quiet', 'data-test': 'rooms-refresh', text: 'Refresh' });

  let nextAfter = null;
  let loading = false;

  async function load() {
    if (loading) return;
    loading = true;
    prevBtn.disabled = true;
    nextBtn.disabled = true;
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
      prevBtn.disabled = stack.length <= 1;
      const first = stack.length === 1 ? 'First page' : `Page ${stack.length}`;
      pageLabel.textContent = `${first} · ${list.length === 1 ? '1 room' : `${list.length} rooms`}`;
    } catch (e) {
      prevBtn.disabled = stack.length <= 1;
      ctx.fail(e, 'Rooms');
    } finally {
      loading = false;
    }
  }

  nextBtn.addEventListener('click', () => {
    if (nextAfter === null) return;
    stack.push(nextAfter);
    load();
  });
  prevBtn.addEventListener('click', () => {
    if (stack.length > 1) stack.pop();
    load();
  });
  refreshBtn.addEventListener('click', load);

  replace(main,
    h('div', { class: 'page-head' },
      h('h1', { tabindex: '-1', text: 'Rooms' }),
      h('p', { class: 'muted page-note', text: 'Every room the gateway knows, ascending by id.' })),
    h('div', { class: 'layout-rooms' },
      section('Rooms', { 'data-test': 'rooms' },
        h('div', { class: 'pager' }, prevBtn, nextBtn, pageLabel, refreshBtn),
        h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Rooms table' }, table),
        empty),
      createForm(ctx, load)));
  load();
}

function row(r) {
  const id = String(r && r.id !== undefined ? r.id : '');
  const owner = r && typeof r.owner === 'string' ? r.owner : '';
  return h('tr', { 'data-test': 'room-row', 'data-rid': id },
    h('td', { class: 'wrap-id', 'data-label': 'Room' }, h('a', { route: ['rooms', id], 'data-test': 'room-link', text: id })),
    h('td', { class: 'wrap-id', 'data-label': 'Owner' }, owner ? h('a', { route: ['users', owner], text: owner }) : h('span', { class: 'muted', text: '—' })),
    h('td', { class: 'nowrap', 'data-label': 'Created' }, time(r && r.created)),
    h('td', { class: 'num', 'data-label': 'Present' }, h('span', { text: fmtInt(r && r.present) })));
}

function createForm(ctx, reload) {
  const rid = h('input', { type: 'text', required: true, autocomplete: 'off', spellcheck: 'false', 'data-test': 'create-rid' });
  const owner = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', 'data-test': 'create-owner' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-test': 'create-submit', text: 'Create room' });
  const result = h('p', { class: 'form-result', 'data-test': 'create-result', hidden: true });
  const form = h('form', { class: 'form', novalidate: true },
    field('Room id', rid),
    field('Owner (optional)', owner, 'Defaults to the server’s publisher id; the owner holds rwx.'),
    h('div', { class: 'actions' }, submit),
    result);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const id = rid.value.trim();
    if (!id) {
      say('Type a room id.', { error: true });
      rid.focus();
      return;
    }
    const body = { rid: id };
    if (owner.value.trim()) body.owner = owner.value.trim();
    submit.disabled = true;
    const res = await ctx.act(() => call('POST', '/api/server/rooms', body), `Create room ${id}`);
    submit.disabled = false;
    if (!res) return;
    const made = res.status === 201;
    const text = made ? `Room ${id} created` : `Room ${id} already existed (unchanged)`;
    say(text);
    replace(result, `${text}. `, h('a', { route: ['rooms', id], text: 'Open it' }));
    result.hidden = false;
    if (made) rid.value = '';
    if (ctx.alive()) reload();
  });
  return section('Create a room', { class: 'panel-side', 'data-test': 'create-room' }, form);
}
