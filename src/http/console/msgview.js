// One message as a list row, for the live list and the search results. The row's header (mid, time, nick, user
// id, type, size) is set apart from the text (its own band), and the text is capped (its first TEXT_CAP
// characters, "Show all" for the rest; CSS bounds its height with its own scroll), so no message can fill the
// page or draw rows of its own. Fields besides `text` are never hidden: "+ N other fields" shows the JSON.

import { h, replace, time, fmtTime, fmtInt, idText, confirmButton, showValue, reveal } from './dom.js';
import { publisherId } from './api.js';

export const TEXT_CAP = 2000;

const isObject = (d) => d !== null && typeof d === 'object' && !Array.isArray(d);

/** What a message shows: `{text, note}` (`note`: a placeholder, not the sender's words) and, for an object with
 * a string `text` and more, `others` (how many other fields) and `json` (the whole data as indented JSON). */
export function view(m) {
  if (m.redacted) {
    const by = typeof m.redacted_by === 'string' && m.redacted_by ? m.redacted_by : 'unknown';
    return { text: `(redacted by ${by})`, note: true };
  }
  if (m.unreadable) return { text: '(unreadable)', note: true };
  const d = m.data;
  if (d === null || d === undefined) return { text: '(no data)', note: true };
  if (typeof d === 'string') return { text: d };
  if (isObject(d) && typeof d.text === 'string') {
    const others = Object.keys(d).filter((k) => k !== 'text').length;
    // An empty text beside other fields says so: the fields are the message.
    if (d.text === '' && others) return { text: '(no text: see its other fields)', note: true, others, data: d };
    return { text: d.text, others, data: others ? d : null };
  }
  return { text: showValue(d), isJson: true };
}

/** Compact JSON above this many characters is shown compact: indenting a deeply nested array of a 60 KB message
 * makes megabytes of text (each level adds its indent to every line). */
const PRETTY_MAX = 20000;

/** The whole data as JSON text, made only when the operator opens it. */
function pretty(d) {
  try {
    const compact = JSON.stringify(d);
    return compact.length > PRETTY_MAX ? compact : JSON.stringify(d, null, 2);
  } catch {
    return String(d);
  }
}

/**
 * What a row shows, as one short string: a row is rebuilt only when this changes. A message's data never
 * changes but to nothing (a redaction), so its length stands for it (a 64 KB message is not copied).
 */
export function signature(m) {
  const u = isObject(m.user) ? m.user : {};
  let len;
  try {
    len = m.data === undefined ? -1 : JSON.stringify(m.data).length;
  } catch {
    len = -2;
  }
  return JSON.stringify([m.redacted === true, m.redacted_by, m.redacted_at, m.unreadable === true, len,
    u.id, u.nick, u.avatar, m.type, m.timestamp, m.size, isObject(m.room) ? m.room.id : null]);
}

/** After a text box changed size: in the active row (see `roving`) it is a Tab stop when it scrolls. */
function retab(box) {
  const li = box.closest('li[data-key]');
  if (li && li.dataset.roving === 'on') box.tabIndex = box.scrollHeight > box.clientHeight + 1 ? 0 : -1;
}

/** A text block capped at TEXT_CAP characters with a Show all / Show less toggle; returns the nodes. */
function capped(text, props, what) {
  const p = h('p', props);
  text = reveal(text);
  if (text.length <= TEXT_CAP) {
    p.textContent = text;
    return [p];
  }
  let open = false;
  const toggle = h('button', { type: 'button', class: 'btn-text', 'data-test': 'show-all', 'aria-expanded': 'false' });
  const show = () => {
    p.textContent = open ? text : `${text.slice(0, TEXT_CAP)}…`;
    toggle.textContent = open ? 'Show less' : `Show all ${fmtInt(text.length)} characters${what ? ` of ${what}` : ''}`;
    toggle.setAttribute('aria-expanded', String(open));
  };
  toggle.addEventListener('click', () => {
    open = !open;
    show();
    retab(p);
  });
  show();
  return [p, toggle];
}

/**
 * Fills `li` (kept, its children replaced) with message `m`. `opts.onRedact(mid)` adds a Redact button;
 * `opts.showRoom` names the room in the header (search results).
 */
export function fillRow(li, m, opts = {}) {
  const u = isObject(m.user) ? m.user : {};
  const mid = String(m.mid);
  const redacted = m.redacted === true;
  li.classList.toggle('redacted', redacted);
  if (redacted) li.setAttribute('data-redacted', 'true');
  else li.removeAttribute('data-redacted');
  const nick = typeof u.nick === 'string' && u.nick ? u.nick : '';
  const uid = typeof u.id === 'string' ? u.id : '';
  const type = typeof m.type === 'string' ? m.type : '';
  const rid = isObject(m.room) && typeof m.room.id === 'string' ? m.room.id : '';
  const size = typeof m.size === 'number' && m.size > 0 ? m.size : 0;
  const v = view(m);
  const head = h('div', { class: 'msg-head' },
    h('span', { class: 'mid num', 'data-test': 'message-mid', text: `#${mid}` }),
    time(m.timestamp),
    opts.showRoom && rid ? h('span', { class: 'msg-room' }, 'in ', h('a', { route: ['rooms', rid] }, idText(rid))) : null,
    nick ? idText(nick, { class: 'nick', 'data-test': 'message-nick' }) : h('span', { class: 'nick muted', 'data-test': 'message-nick', text: '(no nick)' }),
    uid ? h('a', { class: 'uid', route: ['users', uid] }, idText(uid)) : null,
    uid && uid === publisherId() ? h('span', { class: 'badge badge-server', 'data-test': 'message-server', text: 'server' }) : null,
    type && type !== 'text' ? h('span', { class: 'badge', 'data-test': 'message-type', text: type }) : null,
    size ? h('span', { class: 'badge', 'data-test': 'message-size', text: `file: ${fmtInt(size)} bytes` }) : null);
  const body = h('div', { class: 'msg-body' },
    capped(v.text, { class: ['msg-text', v.isJson && 'msg-json-inline'], 'data-test': 'message-text' }));
  if (redacted && typeof m.redacted_at === 'number') {
    body.firstChild.append(h('span', { class: 'muted', text: ` at ${fmtTime(m.redacted_at)}` }));
  }
  if (v.others) {
    const btn = h('button', { type: 'button', class: 'btn-text msg-others', 'data-test': 'other-fields', 'aria-expanded': 'false',
      text: `+ ${v.others === 1 ? '1 other field' : `${fmtInt(v.others)} other fields`}` });
    const box = h('div', { class: 'msg-json', hidden: true, 'data-test': 'other-fields-json' });
    btn.addEventListener('click', () => {
      if (!box.firstChild) box.append(...capped(pretty(v.data), { class: 'msg-json-text' }, 'the JSON'));
      box.hidden = !box.hidden;
      btn.setAttribute('aria-expanded', String(!box.hidden));
      for (const t of box.querySelectorAll('.msg-json-text')) retab(t);
    });
    body.append(btn, box);
  }
  const actions = opts.onRedact && !redacted
    ? h('div', { class: 'msg-actions' },
      confirmButton('Redact', 'Confirm redact?', () => opts.onRedact(m.mid), {
        class: 'btn-small btn-danger', 'data-test': 'redact', 'aria-label': `Redact message ${mid}`,
      }))
    : null;
  replace(li, head, body, actions);
}

/** A row for message `m` in a list: an `li` keyed by mid. */
export function makeRow(m, testName, opts) {
  const li = h('li', { class: 'msg', 'data-test': testName, 'data-mid': String(m.mid), 'data-key': String(m.mid), tabindex: '-1' });
  fillRow(li, m, opts);
  return li;
}

/** Re-fills a row, keeping the focus in it: on the same control if it is still there, else on the row. */
export function refill(li, m, opts) {
  const active = document.activeElement;
  const had = active && li.contains(active) ? (active.getAttribute('data-test') || '') : null;
  fillRow(li, m, opts);
  if (had === null) return;
  const again = had && li.querySelector(`[data-test="${CSS.escape(had)}"]`);
  (again || li).focus({ preventScroll: true });
}


/**
 * One Tab stop for a whole list of rows: the active row (and the controls in it) can be tabbed to, the others
 * are reached with the arrow keys (Up, Down, Home, End). `sync()` after rows change; `pick` chooses the row
 * that takes the stop when the active one is gone (`'last'` or `'first'`).
 */
export function roving(list, pick) {
  let active = null;
  const rowsOf = () => [...list.children].filter((e) => e.matches('li[data-key]'));
  const set = (li, on) => {
    li.tabIndex = on ? 0 : -1;
    li.dataset.roving = on ? 'on' : 'off';
    for (const c of li.querySelectorAll('a[href], button')) c.tabIndex = on ? 0 : -1;
    // A text box that scrolls would be a Tab stop of its own (Chromium makes such boxes focusable): only in
    // the active row, and only when it does scroll.
    for (const c of li.querySelectorAll('.msg-text, .msg-json-text')) c.tabIndex = on && c.scrollHeight > c.clientHeight + 1 ? 0 : -1;
  };
  const activate = (li) => {
    if (active === li) {
      if (li) set(li, true);
      return;
    }
    if (active && active.isConnected) set(active, false);
    active = li;
    if (li) set(li, true);
  };
  list.addEventListener('focusin', (e) => {
    const li = e.target.closest('li[data-key]');
    if (li && li.parentElement === list && li !== active) activate(li);
  });
  list.addEventListener('keydown', (e) => {
    const li = e.target.closest('li[data-key]');
    // Arrows in a text box that scrolls scroll it.
    if (!li || e.altKey || e.ctrlKey || e.metaKey || (e.target !== li && !e.target.matches('a, button'))) return;
    const all = rowsOf();
    const i = all.indexOf(li);
    let to = null;
    if (e.key === 'ArrowDown') to = all[i + 1];
    else if (e.key === 'ArrowUp') to = all[i - 1];
    else if (e.key === 'Home' && e.target === li) to = all[0];
    else if (e.key === 'End' && e.target === li) to = all[all.length - 1];
    else return;
    e.preventDefault();
    if (to) {
      activate(to);
      to.focus();
    }
  });
  return {
    sync() {
      const all = rowsOf();
      if (!active || !active.isConnected || active.parentElement !== list) {
        active = null;
        activate(all.length ? (pick === 'first' ? all[0] : all[all.length - 1]) : null);
      } else {
        set(active, true);
      }
      for (const li of all) if (li !== active && li.dataset.roving !== 'off') set(li, false);
    },
    /** After a row was re-filled: its new controls follow its state. */
    refresh(li) {
      set(li, li === active);
    },
  };
}
