// A room: its facts, the live messages, search, publish, who is present (kick, ban), stored rights (chmod,
// unban) and properties.

import { seg } from './api.js';
import { h, replace, field, section, time, fmtInt, showValue, confirmButton, say, pair, nextId, plural } from './dom.js';
import { livePanel, searchPanel, publishPanel } from './messages.js';

const KNOWN_PROPERTIES = ['default_rights', 'offline_notify', 'read_receipts', 'retention_age_s', 'retention_count'];

export function render(ctx, main, rid) {
  document.title = `Room ${rid} · odd-gateway console`;
  const heading = h('h1', { tabindex: '-1', class: 'wrap-id' }, h('span', { class: 'muted', text: 'Room ' }),
    h('span', { 'data-test': 'room-id', text: rid }));
  const facts = h('dl', { class: 'facts', 'data-test': 'room-facts' });
  const body = h('div', { class: 'room-body' }, h('p', { class: 'muted', text: 'Loading…' }));
  replace(main, h('div', { class: 'page-head' }, heading, facts), body);

  (async () => {
    let room;
    try {
      room = await ctx.get(`/api/server/rooms/${seg(rid)}`);
    } catch (e) {
      if (!ctx.alive()) return;
      if (e && e.status === 404) {
        replace(body, h('p', { class: 'empty', 'data-test': 'room-missing', text: 'No such room.' }),
          h('p', null, h('a', { route: ['rooms'], text: 'Back to the rooms' })));
        return;
      }
      replace(body, h('p', { class: 'form-error', text: e && e.message ? e.message : String(e) }));
      ctx.fail(e, 'Room');
      return;
    }
    if (!ctx.alive()) return;
    const present = h('span', { class: 'num', 'data-test': 'room-present', text: fmtInt(room.present) });
    replace(facts,
      pair('owner', typeof room.owner === 'string' && room.owner
        ? h('a', { route: ['users', room.owner], text: room.owner }) : '—'),
      pair('created', time(room.created)),
      pair('present', present),
      pair('default rights', typeof room.default_rights === 'string' ? (room.default_rights || 'none') : '—'));

    const live = livePanel(ctx, rid);
    const rights = rightsPanel(ctx, rid);
    const presence = presencePanel(ctx, rid, present, rights.load);
    replace(body,
      h('div', { class: 'room-layout' },
        h('div', { class: 'col-main' },
          live.el,
          searchPanel(ctx, rid),
          publishPanel(ctx, rid, () => live.refresh().catch((e) => ctx.fail(e)))),
        h('div', { class: 'col-side' },
          presence.el,
          rights.el,
          propertiesPanel(ctx, rid, room.properties))));
    presence.load();
    rights.load();
  })();
}

// ---- presence ----

function presencePanel(ctx, rid, presentCell, afterBan) {
  const list = h('ul', { class: 'people', 'data-test': 'presence' });
  const summary = h('p', { class: 'muted', 'data-test': 'presence-summary', text: 'Loading…' });
  const refresh = h('button', { type: 'button', class: 'btn btn-small btn-quiet', 'data-test': 'presence-refresh', text: 'Refresh' });

  async function load() {
    try {
      const d = await ctx.get(`/api/server/rooms/${seg(rid)}/presence`, { limit: 200 });
      if (!ctx.alive()) return;
      const users = d && Array.isArray(d.users) ? d.users : [];
      list.replaceChildren(...users.filter((u) => u && typeof u.id === 'string').map(person));
      const count = typeof d.count === 'number' ? d.count : users.length;
      presentCell.textContent = fmtInt(count);
      summary.textContent = count === 0 ? 'Nobody is present.'
        : `${plural(count, 'user', 'users')} present${d.more ? `, the first ${users.length} shown` : ''}.`;
    } catch (e) {
      ctx.fail(e, 'Presence');
    }
  }

  function person(u) {
    const uid = u.id;
    const nick = typeof u.nick === 'string' ? u.nick : '';
    const avatar = typeof u.avatar === 'string' ? u.avatar : '';
    const reason = h('input', { type: 'text', maxlength: '256', autocomplete: 'off', 'data-test': 'kick-reason' });
    const confirm = h('button', { type: 'submit', class: 'btn btn-small btn-danger', 'data-test': 'kick-confirm', text: 'Confirm kick' });
    const cancel = h('button', { type: 'button', class: 'btn btn-small', 'data-test': 'kick-cancel', text: 'Cancel' });
    const kickForm = h('form', { class: 'form kick-form', hidden: true, novalidate: true },
      field(`Reason told to ${uid} (optional)`, reason),
      h('div', { class: 'actions' }, confirm, cancel));
    const kick = h('button', { type: 'button', class: 'btn btn-small', 'data-test': 'kick', 'aria-expanded': 'false', text: 'Kick' });
    const ban = confirmButton('Ban', 'Confirm ban?', async () => {
      const d = await ctx.act(() => ctx.post('/api/server/ban', { room: rid, user: uid }), `Ban ${uid}`);
      if (!d) return;
      say(`${uid} banned from ${rid}`);
      if (ctx.alive()) afterBan();
    }, { class: 'btn-small btn-danger', 'data-test': 'ban', 'aria-label': `Ban ${uid} from this room` });
    kick.setAttribute('aria-label', `Kick ${uid}`);

    const toggle = (open) => {
      kickForm.hidden = !open;
      kick.setAttribute('aria-expanded', String(open));
      if (open) reason.focus();
      else kick.focus();
    };
    kick.addEventListener('click', () => toggle(kickForm.hidden));
    cancel.addEventListener('click', () => toggle(false));
    kickForm.addEventListener('submit', async (e) => {
      e.preventDefault();
      const body = { user: uid };
      if (reason.value.trim()) body.reason = reason.value.trim();
      confirm.disabled = true;
      const d = await ctx.act(() => ctx.post('/api/server/disconnect', body), `Kick ${uid}`);
      confirm.disabled = false;
      if (!d) return;
      const n = typeof d.disconnected === 'number' ? d.disconnected : 0;
      say(`${uid} disconnected (${plural(n, 'session', 'sessions')})`);
      kickForm.hidden = true;
      kick.setAttribute('aria-expanded', 'false');
      // Presence follows the disconnect a moment later, on every node.
      ctx.later(400, load);
      ctx.later(2000, load);
    });

    return h('li', { class: 'person', 'data-test': 'presence-user', 'data-uid': uid },
      h('div', { class: 'person-who' },
        h('span', { class: 'nick', 'data-test': 'presence-nick', text: nick || '(no nick)' }),
        h('span', { class: 'uid', 'data-test': 'presence-id', text: uid }),
        avatar ? h('span', { class: 'avatar-text muted', title: avatar, text: `avatar: ${avatar}` }) : null),
      h('div', { class: 'person-actions' },
        h('a', { class: 'btn btn-small btn-link', route: ['users', uid], 'data-test': 'user-link', 'aria-label': `User page of ${uid}`, text: 'User page' }),
        kick, ban),
      kickForm);
  }

  refresh.addEventListener('click', load);
  const el = section('Present', { 'data-test': 'presence-panel' },
    h('div', { class: 'panel-bar' }, summary, refresh), list);
  return { el, load };
}

// ---- rights ----

function rightsPanel(ctx, rid) {
  const tbody = h('tbody', { 'data-test': 'rights' });
  const note = h('p', { class: 'muted', 'data-test': 'rights-summary', text: 'Loading…' });
  const table = h('table', { class: 'table' },
    h('caption', { class: 'sr-only', text: 'Stored rights' }),
    h('thead', null, h('tr', null,
      h('th', { scope: 'col', text: 'User' }),
      h('th', { scope: 'col', text: 'Rights' }),
      h('th', { scope: 'col' }, h('span', { class: 'sr-only', text: 'Actions' })))),
    tbody);

  async function unban(user) {
    const d = await ctx.act(() => ctx.post('/api/server/unban', { room: rid, user }), `Unban ${user}`);
    if (!d) return;
    say(`${user} unbanned in ${rid}`);
    if (ctx.alive()) load();
  }

  async function load() {
    try {
      const d = await ctx.get(`/api/server/rooms/${seg(rid)}/rights`, { limit: 200 });
      if (!ctx.alive()) return;
      const rows = d && Array.isArray(d.rights) ? d.rights : [];
      tbody.replaceChildren(...rows.filter((r) => r && typeof r.user === 'string').map((r) => {
        const mask = typeof r.mask === 'string' ? r.mask : showValue(r.mask);
        const banned = mask === '';
        return h('tr', { 'data-test': 'right', 'data-user': r.user, class: banned ? 'banned' : null },
          h('td', { class: 'wrap-id' }, h('a', { route: ['users', r.user], text: r.user })),
          h('td', { class: 'mask' }, banned ? 'none (banned)' : mask),
          h('td', { class: 'cell-actions' }, banned
            ? h('button', { type: 'button', class: 'btn btn-small', 'data-test': 'unban', 'aria-label': `Unban ${r.user}`, text: 'Unban', on: { click: () => unban(r.user) } })
            : null));
      }));
      table.hidden = rows.length === 0;
      note.textContent = rows.length === 0 ? 'No rights stored for this room.'
        : `${plural(rows.length, 'user', 'users')} with stored rights${d.more ? ' (the first 200)' : ''}.`;
    } catch (e) {
      ctx.fail(e, 'Rights');
    }
  }

  const user = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', 'data-test': 'chmod-user' });
  const op = h('select', { 'data-test': 'chmod-operator' },
    h('option', { value: '+', text: '+ add' }),
    h('option', { value: '-', text: '− remove' }),
    h('option', { value: '=', text: '= set to' }));
  const mask = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', pattern: '[rwx]*', maxlength: '3', 'data-test': 'chmod-mask' });
  const submit = h('button', { type: 'submit', class: 'btn', 'data-test': 'chmod-submit', text: 'Apply' });
  const form = h('form', { class: 'form form-grid', novalidate: true },
    field('User', user), field('Operator', op), field('Rights (r w x)', mask, '= with nothing bans.'),
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const who = user.value.trim();
    const letters = mask.value.trim();
    if (!who) {
      say('Type the user whose rights change.', { error: true });
      user.focus();
      return;
    }
    if (!/^[rwx]*$/.test(letters)) {
      say('Rights are letters r, w and x.', { error: true });
      mask.focus();
      return;
    }
    submit.disabled = true;
    const d = await ctx.act(() => ctx.post('/api/server/chmod', { room: rid, user: who, operator: op.value, mask: letters }), `chmod ${who}`);
    submit.disabled = false;
    if (!d) return;
    const now = d && typeof d.mask === 'string' ? d.mask : letters;
    say(`${who} now has ${now ? `“${now}”` : 'no rights (banned)'} in ${rid}`);
    if (ctx.alive()) load();
  });

  const el = section('Rights', { 'data-test': 'rights-panel' },
    note,
    h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Stored rights' }, table),
    h('h3', { text: 'Change rights (chmod)' }),
    form);
  return { el, load };
}

// ---- properties ----

function propertiesPanel(ctx, rid, initial) {
  const dl = h('dl', { class: 'facts props', 'data-test': 'properties' });
  const none = h('p', { class: 'muted', 'data-test': 'properties-none', text: 'No properties set: the gateway’s defaults apply.' });
  const show = (props) => {
    const entries = props && typeof props === 'object' && !Array.isArray(props) ? Object.entries(props) : [];
    none.hidden = entries.length > 0;
    dl.hidden = entries.length === 0;
    replace(dl, entries.map(([k, v]) => [h('dt', { text: k }), h('dd', { 'data-prop': k, text: showValue(v) })]));
  };
  show(initial);

  const listId = nextId('props');
  const key = h('input', { type: 'text', list: listId, autocomplete: 'off', spellcheck: 'false', 'data-test': 'prop-key' });
  const value = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', 'data-test': 'prop-value' });
  const submit = h('button', { type: 'submit', class: 'btn', 'data-test': 'prop-submit', text: 'Set' });
  const form = h('form', { class: 'form form-grid', novalidate: true },
    h('datalist', { id: listId }, KNOWN_PROPERTIES.map((k) => h('option', { value: k }))),
    field('Property', key), field('Value', value, 'JSON (true, 1000, "rw") or plain text.'),
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const k = key.value.trim();
    if (!k) {
      say('Type the property to set.', { error: true });
      key.focus();
      return;
    }
    let v = value.value;
    try {
      v = JSON.parse(v);
    } catch {
      // not JSON: the text itself
    }
    submit.disabled = true;
    const d = await ctx.act(() => ctx.post(`/api/server/rooms/${seg(rid)}/properties`, { [k]: v }), `Set ${k}`);
    submit.disabled = false;
    if (!d) return;
    say(`Property ${k} set to ${showValue(v)}`);
    if (ctx.alive()) show(d.properties);
  });
  return section('Properties', { 'data-test': 'properties-panel' }, none, dl, h('h3', { text: 'Set a property' }), form);
}
