// A room: its facts (re-read after a change), the live messages, search, publish, who is present (kick, ban),
// stored rights (chmod, unban), properties, and erasing a user's messages here. The room id comes from the
// address, so it is shown isolated (`<bdi>`) and never put in the document title.

import { seg, addressable, publisherId } from './api.js';
import { h, replace, field, section, time, fmtInt, showValue, confirmButton, say, pair, nextId, plural, idText, errorSlot, hold } from './dom.js';
import { livePanel } from './live.js';
import { searchPanel, publishPanel } from './messages.js';
import { presencePanel, rightsPanel, erase } from './people.js';

const KNOWN_PROPERTIES = ['default_rights', 'offline_notify', 'read_receipts', 'retention_age_s', 'retention_count'];

export function render(ctx, main, rid) {
  document.title = 'Room · odd-gateway console';
  const heading = h('h1', { tabindex: '-1', class: 'wrap-id' }, h('span', { class: 'muted', text: 'Room ' }),
    idText(rid, { 'data-test': 'room-id' }));
  const facts = h('dl', { class: 'facts', 'data-test': 'room-facts' });
  const body = h('div', { class: 'room-body' }, h('p', { class: 'muted', text: 'Loading…' }));
  const present = h('span', { class: 'num', 'data-test': 'room-present' });
  replace(main, h('div', { class: 'page-head' }, heading, facts), body);
  if (!addressable(rid)) {
    unaddressable(ctx, rid, facts, body);
    return;
  }

  // The room's default rights, as last read: what Unban offers first.
  let defaultRights = 'rw';
  const showFacts = (room) => {
    if (room && typeof room.default_rights === 'string') defaultRights = room.default_rights;
    factsOf(facts, present, room);
  };

  /** Re-reads the room's facts (after a property changed). */
  async function reloadFacts() {
    try {
      const room = await ctx.get(`/api/server/rooms/${seg(rid)}`);
      if (ctx.alive()) showFacts(room);
    } catch (e) {
      ctx.fail(e, 'Room');
    }
  }

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
      replace(body, h('p', { class: 'form-error', 'data-test': 'room-error' }, idText(e && e.message ? e.message : String(e))));
      ctx.fail(e, 'Room');
      return;
    }
    if (!ctx.alive()) return;
    showFacts(room);

    let search = null;
    async function redact(mid) {
      const d = await ctx.act(() => ctx.post('/api/server/redact', { mid }), `Redact message ${mid}`);
      if (!d) return;
      say(`Message ${mid} redacted`);
      // Shown as the stored tombstone will say it: redacted by the server's publisher identity.
      const by = publisherId() || 'the server API';
      search.redacted(mid, by);
      await live.redacted(mid, by);
    }
    const live = livePanel(ctx, rid, redact);
    search = searchPanel(ctx, rid, redact);
    const publish = publishPanel(ctx, rid, () => live.refresh().catch((e) => ctx.fail(e)));
    let presence = null;
    const rights = rightsPanel(ctx, rid, (masks) => presence && presence.mark(masks), { defaultMask: () => defaultRights });
    presence = presencePanel(ctx, rid, present, rights.load);
    const props = propertiesPanel(ctx, rid, room.properties, reloadFacts);
    const erase = erasePanel(ctx, rid, live.reload);
    const panels = [['Messages', live.el], ['Search', search.el], ['Publish', publish], ['Present', presence.el],
      ['Rights', rights.el], ['Properties', props], ['Erase', erase]];
    replace(body,
      h('nav', { class: 'jump', 'aria-label': 'On this page', 'data-test': 'jump' }, h('span', { class: 'muted', text: 'Jump to:' }),
        panels.map(([label, el]) => h('button', { type: 'button', class: 'btn-text', 'data-test': `jump-${label.toLowerCase()}`, text: label,
          on: { click: () => el.querySelector('h2').focus() } }))),
      h('div', { class: 'room-layout' },
        h('div', { class: 'col-main' }, live.el, search.el, publish),
        h('div', { class: 'col-side' }, presence.el, rights.el, props, erase)));
    presence.load();
    rights.load();
  })();
}

function factsOf(facts, present, room) {
  present.textContent = fmtInt(room.present);
  replace(facts,
    pair('owner', typeof room.owner === 'string' && room.owner
      ? h('a', { route: ['users', room.owner] }, idText(room.owner)) : '—'),
    pair('created', time(room.created)),
    pair('present', present),
    pair('default rights', h('span', { 'data-test': 'room-default-rights',
      text: typeof room.default_rights === 'string' ? (room.default_rights || 'none') : '—' })));
}

/** `.` and `..` are no room ids (the gateway refuses them: a URL path would resolve them as steps). */
function unaddressable(ctx, rid, facts, body) {
  replace(facts, pair('state', 'not a room id'));
  replace(body,
    h('p', { class: 'empty', 'data-test': 'room-unaddressable' },
      '“', idText(rid), '” is not a room id: the gateway refuses “.” and “..”, which a URL path would resolve as steps.'),
    h('p', null, h('a', { route: ['rooms'], text: 'Back to the rooms' })));
}

// ---- properties ----

function propertiesPanel(ctx, rid, initial, changed) {
  const dl = h('dl', { class: 'facts props', 'data-test': 'properties' });
  const none = h('p', { class: 'muted', 'data-test': 'properties-none', text: 'No properties set: the gateway’s defaults apply.' });
  const show = (props) => {
    const entries = props && typeof props === 'object' && !Array.isArray(props) ? Object.entries(props) : [];
    none.hidden = entries.length > 0;
    dl.hidden = entries.length === 0;
    replace(dl, entries.map(([k, v]) => [h('dt', null, idText(k)), h('dd', { 'data-prop': k }, idText(showValue(v)))]));
  };
  show(initial);

  const listId = nextId('props');
  const key = h('input', { type: 'text', list: listId, autocomplete: 'off', spellcheck: 'false', 'data-test': 'prop-key' });
  const value = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', 'data-test': 'prop-value' });
  const submit = h('button', { type: 'submit', class: 'btn', 'data-test': 'prop-submit', text: 'Set' });
  const error = errorSlot({ 'data-test': 'prop-error' });
  const form = h('form', { class: 'form form-grid', novalidate: true },
    h('datalist', { id: listId }, KNOWN_PROPERTIES.map((k) => h('option', { value: k }))),
    field('Property', key), field('Value', value, 'JSON (true, 1000, "rw") or plain text.'),
    h('div', { class: 'actions' }, submit), error);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.clear();
    const k = key.value.trim();
    if (!k) {
      error.show('Type the property to set.');
      key.focus();
      return;
    }
    let v = value.value;
    try {
      v = JSON.parse(v);
    } catch {
      // not JSON: the text itself
    }
    const release = hold(submit);
    if (!release) return;
    const d = await ctx.act(() => ctx.post(`/api/server/rooms/${seg(rid)}/properties`, { [k]: v }), `Set ${k}`, error);
    release();
    if (!d) return;
    say(`Property ${k} set to ${showValue(v)}`);
    if (ctx.alive()) {
      show(d.properties);
      changed();
    }
  });
  return section('Properties', { 'data-test': 'properties-panel' }, none, dl, h('h3', { text: 'Set a property' }), form);
}

// ---- erase ----

function erasePanel(ctx, rid, reload) {
  const user = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', 'data-test': 'room-erase-user' });
  const error = errorSlot({ 'data-test': 'room-erase-error' });
  const result = h('p', { class: 'form-result', 'data-test': 'room-erase-result', hidden: true });
  const btn = confirmButton('Erase their messages', 'Confirm erase?', async () => {
    error.clear();
    const uid = user.value.trim();
    if (!uid) {
      error.show('Type the user whose messages to erase.');
      user.focus();
      return;
    }
    if (await erase(ctx, rid, uid, error, result) && ctx.alive()) reload().catch((e) => ctx.fail(e));
  }, { class: 'btn-danger', 'data-test': 'room-erase' });
  return section('Erase a user’s messages here', { 'data-test': 'room-erase-panel' },
    h('p', { class: 'muted', text: 'The right to erasure: redacts every message the user sent in this room and blanks the nick and avatar stored with them.' }),
    h('div', { class: 'form' }, field('User id', user), error, h('div', { class: 'actions' }, btn)),
    result);
}
