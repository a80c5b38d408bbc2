// A room's people: who is present (kick, ban, their page; banned ones marked) and the stored rights (chmod,
// unban with the rights given back). Both page on with "More" (`after=` the last id shown), so users past the
// first page can be acted on; a reload reads as many as are shown.

import { seg } from './api.js';
import { h, replace, field, section, fmtInt, confirmButton, say, plural, idText, errorSlot, keepFocus, hold } from './dom.js';

const PAGE = 200;
const MAX = 1000;

/** A list that pages on with `after=`: `load()` (re)reads as many rows as shown, `more()` appends a page. */
function paged(ctx, url, pick, keyOf) {
  const state = { items: [], more: false, extra: null };
  return Object.assign(state, {
    async load() {
      const limit = Math.min(MAX, Math.max(PAGE, state.items.length));
      const d = await ctx.get(url, { limit });
      state.items = pick(d).filter((x) => keyOf(x) !== null);
      state.more = Boolean(d && d.more);
      state.extra = d;
    },
    async next() {
      const last = state.items.length ? keyOf(state.items[state.items.length - 1]) : undefined;
      const d = await ctx.get(url, { after: last, limit: PAGE });
      state.items = state.items.concat(pick(d).filter((x) => keyOf(x) !== null));
      state.more = Boolean(d && d.more);
    },
  });
}

function moreButton(ctx, list, render, label) {
  const btn = h('button', { type: 'button', class: 'btn btn-small', 'data-test': `${label}-more`, hidden: true, text: 'More' });
  btn.addEventListener('click', async () => {
    const release = hold(btn);
    if (!release) return;
    try {
      await list.next();
      if (ctx.alive()) render();
    } catch (e) {
      ctx.fail(e, 'More');
    } finally {
      release();
    }
  });
  return btn;
}

// ---- presence ----

/**
 * Erases what `uid` sent in room `rid` (the right to erasure) and says so, in the status area and in `result`
 * (with `more` after the sentence); an error goes to `error`. Resolves to whether it was done.
 */
export async function erase(ctx, rid, uid, error, result, more = []) {
  const d = await ctx.act(() => ctx.post('/api/server/erase', { room: rid, user: uid }), `Erase ${uid} in ${rid}`, error);
  if (!d) return false;
  const n = typeof d.redacted === 'number' ? d.redacted : 0;
  const said = () => [`Erased ${plural(n, 'message', 'messages')} of `, idText(uid), ' in ', idText(rid)];
  say(said());
  replace(result, ...said(), ...more);
  result.hidden = false;
  return true;
}

export function presencePanel(ctx, rid, presentCell, afterBan) {
  const list = h('ul', { class: 'people', 'data-test': 'presence' });
  const summary = h('p', { class: 'muted', 'data-test': 'presence-summary', text: 'Loading…' });
  const refresh = h('button', { type: 'button', class: 'btn btn-small btn-quiet', 'data-test': 'presence-refresh', text: 'Refresh' });
  const users = paged(ctx, `/api/server/rooms/${seg(rid)}/presence`, (d) => (d && Array.isArray(d.users) ? d.users : []),
    (u) => (u && typeof u.id === 'string' ? u.id : null));
  let masks = new Map();
  const more = moreButton(ctx, users, render, 'presence');
  let heading = null;

  function render() {
    keepFocus(list, () => list.replaceChildren(...users.items.map(person)), heading);
    const d = users.extra || {};
    const count = typeof d.count === 'number' ? d.count : users.items.length;
    presentCell.textContent = fmtInt(count);
    summary.textContent = count === 0 ? 'Nobody is present.'
      : `${plural(count, 'user', 'users')} present${users.more ? `, ${fmtInt(users.items.length)} shown` : ''}.`;
    more.hidden = !users.more;
  }

  async function load() {
    try {
      await users.load();
      if (ctx.alive()) render();
    } catch (e) {
      ctx.fail(e, 'Presence');
    }
  }

  /** The stored rights read by the rights panel: a user with none (`""`) is marked banned here. */
  function mark(m) {
    masks = m;
    for (const li of list.children) {
      const badge = li.querySelector('[data-test=banned]');
      if (badge) badge.hidden = masks.get(li.dataset.key) !== '';
    }
  }

  function person(u) {
    const uid = u.id;
    const nick = typeof u.nick === 'string' ? u.nick : '';
    const avatar = typeof u.avatar === 'string' ? u.avatar : '';
    const reason = h('input', { type: 'text', maxlength: '256', autocomplete: 'off', 'data-test': 'kick-reason' });
    const confirm = h('button', { type: 'submit', class: 'btn btn-small btn-danger', 'data-test': 'kick-confirm', text: 'Confirm kick' });
    const cancel = h('button', { type: 'button', class: 'btn btn-small', 'data-test': 'kick-cancel', text: 'Cancel' });
    const kickError = errorSlot({ 'data-test': 'kick-error' });
    const error = errorSlot({ 'data-test': 'person-error' });
    const kickForm = h('form', { class: 'form kick-form', hidden: true, novalidate: true, 'data-test': 'kick-form' },
      h('p', { 'data-test': 'kick-scope' }, 'Kick ends every session of ', idText(uid),
        ' on every node, not only in this room; each client is told the reason. Escape closes this.'),
      field('Reason told to the user (optional)', reason),
      kickError,
      h('div', { class: 'actions' }, confirm, cancel));
    const kick = h('button', { type: 'button', class: 'btn btn-small', 'data-test': 'kick', 'aria-expanded': 'false', text: 'Kick…' });
    const ban = confirmButton('Ban', 'Confirm ban?', async () => {
      error.clear();
      const d = await ctx.act(() => ctx.post('/api/server/ban', { room: rid, user: uid }), `Ban ${uid}`, error);
      if (!d) return;
      say([idText(uid), ' banned from ', idText(rid)]);
      if (ctx.alive()) afterBan();
    }, { class: 'btn-small btn-danger', 'data-test': 'ban', 'aria-label': `Ban ${uid} from this room` });
    kick.setAttribute('aria-label', `Kick ${uid} (every session, every node)`);

    const toggle = (open) => {
      kickForm.hidden = !open;
      kick.setAttribute('aria-expanded', String(open));
      if (open) reason.focus();
      else kick.focus();
    };
    kick.addEventListener('click', () => toggle(kickForm.hidden));
    cancel.addEventListener('click', () => toggle(false));
    kickForm.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        toggle(false);
      }
    });
    kickForm.addEventListener('submit', async (e) => {
      e.preventDefault();
      kickError.clear();
      const body = { user: uid };
      if (reason.value.trim()) body.reason = reason.value.trim();
      const release = hold(confirm);
      if (!release) return;
      const d = await ctx.act(() => ctx.post('/api/server/disconnect', body), `Kick ${uid}`, kickError);
      release();
      if (!d) return;
      const n = typeof d.disconnected === 'number' ? d.disconnected : 0;
      say([idText(uid), ` disconnected (${plural(n, 'session', 'sessions')} on this node)`]);
      toggle(false);
      // Presence follows the disconnect a moment later, on every node.
      ctx.later(400, load);
      ctx.later(2000, load);
    });

    return h('li', { class: 'person', 'data-test': 'presence-user', 'data-uid': uid, 'data-key': uid },
      h('div', { class: 'person-who' },
        nick ? idText(nick, { class: 'nick', 'data-test': 'presence-nick' }) : h('span', { class: 'nick', 'data-test': 'presence-nick', text: '(no nick)' }),
        idText(uid, { class: 'uid', 'data-test': 'presence-id' }),
        h('span', { class: 'badge badge-bad', 'data-test': 'banned', hidden: masks.get(uid) !== '', text: 'banned here' }),
        avatar ? h('span', { class: 'avatar-text muted' }, 'avatar: ', idText(avatar)) : null),
      h('div', { class: 'person-actions' },
        h('a', { class: 'btn btn-small btn-link', route: ['users', uid], 'data-test': 'user-link', 'aria-label': `User page of ${uid}`, text: 'User page' }),
        kick, ban),
      error,
      kickForm);
  }

  refresh.addEventListener('click', load);
  const el = section('Present', { 'data-test': 'presence-panel' },
    h('div', { class: 'panel-bar' }, summary, refresh), list, more);
  heading = el.querySelector('h2');
  return { el, load, mark };
}

// ---- rights ----

const UNBAN_MASKS = ['rw', 'r', 'rwx', 'w'];

/** The stored rights of room `rid` and chmod; `list: false` leaves the list out (a room no path reaches). */
export function rightsPanel(ctx, rid, onMasks, { list = true, defaultMask = () => 'rw' } = {}) {
  const tbody = h('tbody', { 'data-test': 'rights' });
  const note = h('p', { class: 'muted', 'data-test': 'rights-summary', text: 'Loading…' });
  const table = h('table', { class: 'table' },
    h('caption', { class: 'sr-only', text: 'Stored rights' }),
    h('thead', null, h('tr', null,
      h('th', { scope: 'col', text: 'User' }),
      h('th', { scope: 'col', text: 'Rights' }),
      h('th', { scope: 'col' }, h('span', { class: 'sr-only', text: 'Actions' })))),
    tbody);
  const rights = paged(ctx, list ? `/api/server/rooms/${seg(rid)}/rights` : '', (d) => (d && Array.isArray(d.rights) ? d.rights : []),
    (r) => (r && typeof r.user === 'string' ? r.user : null));
  const more = moreButton(ctx, rights, render, 'rights');
  const error = errorSlot({ 'data-test': 'rights-error' });
  let heading = null;

  async function unban(user, mask) {
    error.clear();
    const d = await ctx.act(() => ctx.post('/api/server/unban', { room: rid, user, mask }), `Unban ${user}`, error);
    if (!d) return;
    say([idText(user), ` unbanned in `, idText(rid), ` (rights “${mask}”)`]);
    if (ctx.alive()) load();
  }

  function row(r) {
    const mask = typeof r.mask === 'string' ? r.mask : JSON.stringify(r.mask);
    const banned = mask === '';
    let actions = null;
    if (banned) {
      // The room's default rights first: an unban gives back what a newcomer gets, not more.
      const first = defaultMask() || 'r';
      const masks = [first, ...UNBAN_MASKS.filter((m) => m !== first)];
      const pick = h('select', { class: 'select-small', 'data-test': 'unban-mask', 'aria-label': `Rights given back to ${r.user}` },
        masks.map((m) => h('option', { value: m, text: m === first ? `${m} (default)` : m })));
      actions = h('div', { class: 'unban' }, pick,
        h('button', { type: 'button', class: 'btn btn-small', 'data-test': 'unban', 'aria-label': `Unban ${r.user}`, text: 'Unban',
          on: { click: () => unban(r.user, pick.value) } }));
    }
    return h('tr', { 'data-test': 'right', 'data-user': r.user, 'data-key': r.user, class: banned ? 'banned' : null },
      h('td', { class: 'wrap-id' }, h('a', { route: ['users', r.user] }, idText(r.user))),
      h('td', { class: 'mask', 'data-test': 'right-mask' }, banned ? 'none (banned)' : mask),
      h('td', { class: 'cell-actions' }, actions));
  }

  function render() {
    keepFocus(tbody, () => tbody.replaceChildren(...rights.items.map(row)), heading);
    table.hidden = rights.items.length === 0;
    more.hidden = !rights.more;
    note.textContent = rights.items.length === 0 ? 'No rights stored for this room.'
      : `${plural(rights.items.length, 'user', 'users')} with stored rights${rights.more ? ' shown; more with “More”' : ''}.`;
    const masks = new Map();
    for (const r of rights.items) masks.set(r.user, typeof r.mask === 'string' ? r.mask : null);
    onMasks(masks);
  }

  async function load() {
    if (!list) return;
    try {
      await rights.load();
      if (ctx.alive()) render();
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
  const chmodError = errorSlot({ 'data-test': 'chmod-error' });
  const form = h('form', { class: 'form form-grid', novalidate: true },
    field('User', user), field('Operator', op), field('Rights (r w x)', mask, '= with nothing bans.'),
    h('div', { class: 'actions' }, submit), chmodError);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    chmodError.clear();
    const who = user.value.trim();
    const letters = mask.value.trim();
    if (!who) {
      chmodError.show('Type the user whose rights change.');
      user.focus();
      return;
    }
    if (!/^[rwx]*$/.test(letters)) {
      chmodError.show('Rights are letters r, w and x.');
      mask.focus();
      return;
    }
    // "= nothing" is a ban: asked twice, like the Ban button.
    const bans = op.value === '=' && letters === '';
    if (bans && submit.dataset.confirm !== `${who}`) {
      submit.dataset.confirm = who;
      submit.textContent = `Confirm: ban ${who}?`;
      setTimeout(() => {
        delete submit.dataset.confirm;
        submit.textContent = 'Apply';
      }, 5000);
      return;
    }
    delete submit.dataset.confirm;
    submit.textContent = 'Apply';
    const release = hold(submit);
    if (!release) return;
    const d = await ctx.act(() => ctx.post('/api/server/chmod', { room: rid, user: who, operator: op.value, mask: letters }), `chmod ${who}`, chmodError);
    release();
    if (!d) return;
    const now = d && typeof d.mask === 'string' ? d.mask : letters;
    say([idText(who), ` now has ${now ? `“${now}”` : 'no rights (banned)'} in `, idText(rid)]);
    if (ctx.alive()) load();
  });

  const el = section('Rights', { 'data-test': 'rights-panel' },
    list ? [note, error, h('div', { class: 'table-wrap rights-wrap', tabindex: '0', role: 'region', 'aria-label': 'Stored rights' }, table), more]
      : h('p', { class: 'muted', text: 'Unban: = with the rights to give back (rw).' }),
    h('h3', { text: 'Change rights (chmod)' }),
    form);
  heading = el.querySelector('h2');
  return { el, load };
}
