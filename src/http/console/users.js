// Users: a lookup box, and a user's page: where they are, Disconnect, and Erase in a room.

import { seg } from './api.js';
import { erase } from './people.js';
import { h, replace, field, section, time, fmtInt, confirmButton, say, pair, nextId, plural, route, idText, errorSlot } from './dom.js';

export function render(ctx, main, uid) {
  // The user id comes from the address: never in the title, and isolated where it is shown.
  document.title = uid ? 'User · odd-gateway console' : 'Users · odd-gateway console';
  const heading = uid
    ? h('h1', { tabindex: '-1', class: 'wrap-id' }, h('span', { class: 'muted', text: 'User ' }), idText(uid, { 'data-test': 'user-id' }))
    : h('h1', { tabindex: '-1', text: 'Users' });
  const lookup = lookupForm(uid);
  if (!uid) {
    replace(main, h('div', { class: 'page-head' }, heading,
      h('p', { class: 'muted page-note', text: 'Look a user up by id: where they are, and what to do about them.' })),
    section('Find a user', { 'data-test': 'user-lookup' }, lookup));
    return;
  }

  const facts = h('dl', { class: 'facts', 'data-test': 'user-facts' }, h('dt', { text: 'state' }), h('dd', { text: 'Loading…' }));
  const roomsList = h('ul', { class: 'chips', 'data-test': 'user-rooms' });
  const roomsNote = h('p', { class: 'muted' });
  const roomChoices = h('datalist', { id: nextId('rooms') });
  const refresh = h('button', { type: 'button', class: 'btn btn-small btn-quiet', 'data-test': 'user-refresh', text: 'Refresh' });

  async function load() {
    try {
      const d = await ctx.get(`/api/server/users/${seg(uid)}`);
      if (!ctx.alive()) return;
      const rooms = d && Array.isArray(d.rooms) ? d.rooms.filter((r) => typeof r === 'string') : [];
      replace(facts,
        pair('connections on this node', h('span', { class: 'num', 'data-test': 'user-connections', text: fmtInt(d.connections) })),
        pair('parked sessions', h('span', { class: 'num', 'data-test': 'user-parked', text: fmtInt(d.parked) })),
        pair('present in', h('span', { class: 'num', text: plural(rooms.length, 'room', 'rooms') })),
        seenFacts(d ? d.seen : undefined));
      roomsList.replaceChildren(...rooms.map((r) => h('li', null, h('a', { route: ['rooms', r] }, idText(r)))));
      roomsNote.textContent = rooms.length ? '' : 'Not present in any room.';
      roomChoices.replaceChildren(...rooms.map((r) => h('option', { value: r })));
    } catch (e) {
      if (!ctx.alive()) return;
      replace(facts, h('dt', { text: 'state' }), h('dd', { class: 'form-error' }, idText(e && e.message ? e.message : String(e))));
      ctx.fail(e, `User ${uid}`);
    }
  }
  refresh.addEventListener('click', load);

  replace(main,
    h('div', { class: 'page-head' }, heading),
    h('div', { class: 'user-layout' },
      h('div', { class: 'col-main' },
        section('Where', { 'data-test': 'user-where' }, h('div', { class: 'panel-bar' }, h('span', { class: 'muted', text: 'Sessions as counted on this node; rooms on every node.' }), refresh), facts,
          h('h3', { text: 'Rooms present in' }), roomsList, roomsNote),
        disconnectPanel(ctx, uid, load),
        erasePanel(ctx, uid, roomChoices)),
      h('div', { class: 'col-side' }, section('Find another user', { 'data-test': 'user-lookup' }, lookup))));
  load();
}

/** What the gateway stored when the id last connected (`seen`; null: it never connected). */
function seenFacts(seen) {
  if (seen === undefined) return null;
  if (seen === null || typeof seen !== 'object') {
    return pair('known', h('span', { 'data-test': 'user-seen', text: 'never connected (no profile stored)' }));
  }
  return [
    pair('nick stored', typeof seen.nick === 'string' && seen.nick ? idText(seen.nick, { 'data-test': 'user-seen' }) : h('span', { class: 'muted', 'data-test': 'user-seen', text: '(none)' })),
    typeof seen.avatar === 'string' && seen.avatar ? pair('avatar stored', idText(seen.avatar)) : null,
    pair('first connected', time(seen.first_connect)),
    pair('last recorded', time(seen.last_recorded)),
  ];
}

function lookupForm(uid) {
  const input = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', 'data-test': 'user-lookup-input', value: uid || '' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-test': 'user-lookup-submit', text: 'Look up' });
  const error = errorSlot({ 'data-test': 'user-lookup-error' });
  const form = h('form', { class: 'form form-inline', role: 'search', novalidate: true },
    field('User id', input), h('div', { class: 'actions' }, submit), error);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    error.clear();
    const id = input.value.trim();
    if (!id) {
      error.show('Type a user id.');
      input.focus();
      return;
    }
    location.hash = route('users', id);
  });
  return form;
}

function disconnectPanel(ctx, uid, reload) {
  const reason = h('input', { type: 'text', maxlength: '256', autocomplete: 'off', 'data-test': 'disconnect-reason' });
  const error = errorSlot({ 'data-test': 'disconnect-error' });
  const btn = confirmButton('Disconnect', 'Confirm disconnect?', async () => {
    error.clear();
    const body = { user: uid };
    if (reason.value.trim()) body.reason = reason.value.trim();
    const d = await ctx.act(() => ctx.post('/api/server/disconnect', body), `Disconnect ${uid}`, error);
    if (!d) return;
    const n = typeof d.disconnected === 'number' ? d.disconnected : 0;
    say([idText(uid), ` disconnected (${plural(n, 'session', 'sessions')} on this node)`]);
    if (ctx.alive()) ctx.later(400, reload);
  }, { class: 'btn-danger', 'data-test': 'disconnect' });
  return section('Disconnect', { 'data-test': 'user-disconnect' },
    h('p', { class: 'muted', text: 'Ends every session of this user, on every node; the reason is told to the client. The client may reconnect unless its token is refused.' }),
    h('div', { class: 'form' }, field('Reason (optional)', reason), error, h('div', { class: 'actions' }, btn)));
}

function erasePanel(ctx, uid, choices) {
  const room = h('input', { type: 'text', list: choices.id, autocomplete: 'off', spellcheck: 'false', 'data-test': 'erase-room' });
  const result = h('p', { class: 'form-result', 'data-test': 'erase-result', hidden: true });
  const error = errorSlot({ 'data-test': 'erase-error' });
  const btn = confirmButton('Erase in room', 'Confirm erase?', async () => {
    error.clear();
    const rid = room.value.trim();
    if (!rid) {
      error.show('Pick or type the room to erase in.');
      room.focus();
      return;
    }
    await erase(ctx, rid, uid, error, result, [' (', h('a', { route: ['rooms', rid], text: 'open the room' }), ')']);
  }, { class: 'btn-danger', 'data-test': 'erase' });
  return section('Erase in a room', { 'data-test': 'user-erase' },
    h('p', { class: 'muted', text: 'The right to erasure: redacts every message this user sent in the room and blanks the nick and avatar stored with them.' }),
    h('div', { class: 'form' }, choices, field('Room', room, 'One of the rooms above, or any room id.'), error, h('div', { class: 'actions' }, btn)),
    result);
}
