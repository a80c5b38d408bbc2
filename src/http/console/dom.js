// DOM helpers. Everything the server sends is attacker-controlled: it only ever reaches the page through
// text nodes (textContent, createTextNode) or setAttribute on attributes that cannot run code. There is no
// innerHTML anywhere in the console, and the only href the console builds is a fragment made by `route()`.

// Attributes `h` refuses to set: anything that loads or runs something.
const FORBIDDEN = /^(on|src$|srcset$|href$|action$|formaction$|style$|xlink:|srcdoc$|background$|poster$)/i;

/**
 * Creates an element. `props`: `class`, `text` (textContent), `on` ({event: handler}), `route` (an array of
 * route parts: sets a safe `#/...` href), `value`/`checked` (properties), and any other attribute (a value of
 * `true` sets it empty, `false`/`null`/`undefined` leaves it out). Children: nodes, strings (as text),
 * arrays, or null/false (skipped).
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = Array.isArray(v) ? v.filter(Boolean).join(' ') : v;
      else if (k === 'text') el.textContent = String(v);
      else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
      else if (k === 'route') el.setAttribute('href', route(...v));
      else if (k === 'value') el.value = String(v);
      else if (k === 'checked') el.checked = Boolean(v);
      else if (FORBIDDEN.test(k)) throw new Error(`h(): refusing attribute ${k}`);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

/** Appends children (nodes, strings as text, arrays; null/false skipped). */
export function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
  return el;
}

/** Replaces every child of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** A fragment URL: `#/` and each part through encodeURIComponent (so it can never be `javascript:`), dots too. */
export function route(...parts) {
  return '#/' + parts.map((p) => encodeURIComponent(String(p)).replace(/\./g, '%2E')).join('/');
}

/**
 * An id, nick or other text someone else chose, isolated from the text around it (`<bdi>`): a right-to-left
 * override inside it cannot reorder what follows it on the line.
 */
export function idText(s, props) {
  return h('bdi', props || null, reveal(String(s)));
}

/**
 * Characters that reorder the text around them or break a line (bidirectional marks, embeddings, overrides,
 * isolates, line and paragraph separators) shown as visible codes, so `\u202Edlrow olleh` reads as written,
 * not as "hello world" (`<bdi>` isolates a text from its neighbours, not from its own overrides).
 */
const STEERING = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069\u2028\u2029]/g;
export function reveal(s) {
  return s.replace(STEERING, (c) => `[U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}]`);
}

let uid = 0;
/** A fresh element id, for `<label for>`. */
export function nextId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** A label and its control, for a form row. `control` gets an id if it has none. */
export function field(labelText, control, hint) {
  if (!control.id) control.id = nextId('f');
  return h('div', { class: 'field' },
    h('label', { for: control.id, text: labelText }),
    control,
    hint ? h('span', { class: 'hint', text: hint }) : null);
}

// ---- formatting ----

const timeFmt = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
});

/** A `<time>` for unix milliseconds, shown in local time. */
export function time(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return h('span', { class: 'muted', text: '—' });
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return h('span', { class: 'muted', text: '—' });
  return h('time', { datetime: d.toISOString(), text: timeFmt.format(d) });
}

export function fmtTime(ms) {
  const d = new Date(ms);
  return typeof ms === 'number' && !Number.isNaN(d.getTime()) ? timeFmt.format(d) : '—';
}

const intFmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const rateFmt = new Intl.NumberFormat(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 });

export function fmtInt(n) {
  return typeof n === 'number' && Number.isFinite(n) ? intFmt.format(n) : '—';
}

export function fmtRate(n) {
  return typeof n === 'number' && Number.isFinite(n) ? rateFmt.format(n) : '—';
}

export function fmtBytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${i === 0 ? intFmt.format(v) : rateFmt.format(v)} ${units[i]}`;
}

export function fmtDuration(s) {
  if (typeof s !== 'number' || !Number.isFinite(s) || s < 0) return '—';
  s = Math.floor(s);
  const d = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = s % 60;
  if (d > 0) return `${d}d ${hh}h ${mm}m`;
  if (hh > 0) return `${hh}h ${mm}m ${ss}s`;
  if (mm > 0) return `${mm}m ${ss}s`;
  return `${ss}s`;
}

export function plural(n, one, many) {
  return `${fmtInt(n)} ${n === 1 ? one : many}`;
}

/** A JSON value shown as text (strings without quotes). */
export function showValue(v) {
  if (typeof v === 'string') return v;
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

// ---- status area ----

let statusEl = null;

export function initStatus(el) {
  statusEl = el;
}

/**
 * Shows `what` (a string, or an array of strings and nodes such as `idText`) in the status area (`role=status`)
 * at once, replacing whatever it showed: the latest result is the one that counts, never a queue of old ones.
 * `error` styles it as one; `page` marks what a page's own reads said, cleared when the page is left. The same
 * error again (a poll failing repeatedly) only keeps it up longer.
 */
export function say(what, { error = false, page = false } = {}) {
  if (!statusEl) return;
  const parts = Array.isArray(what) ? what : [String(what)];
  const have = statusEl.firstElementChild;
  const plain = parts.map((x) => (x instanceof Node ? x.textContent : String(x))).join('');
  if (have && have.dataset.text === plain && have.classList.contains('toast-error') === error) {
    clearTimeout(Number(have.dataset.timer));
  } else {
    const close = h('button', { type: 'button', class: 'toast-close', 'data-test': 'status-close', 'aria-label': 'Dismiss', text: '×' });
    const item = h('p', { class: ['toast', error && 'toast-error'], 'data-test': error ? 'status-error' : 'status-message' },
      error ? h('span', { class: 'sr-only', text: 'Error: ' }) : null, h('span', null, parts), close);
    close.addEventListener('click', () => item.remove());
    item.dataset.text = plain;
    if (page) item.dataset.page = 'true';
    statusEl.replaceChildren(item);
  }
  const item = statusEl.firstElementChild;
  item.dataset.timer = String(setTimeout(() => item.remove(), error ? 8000 : 5000));
}

/** Clears the status area; `pageOnly`: only what the page left behind said (its reads failing), not a result. */
export function clearStatus(pageOnly = false) {
  if (!statusEl) return;
  for (const item of [...statusEl.children]) if (!pageOnly || item.dataset.page) item.remove();
}

/** The text of an error, for the status area or a form. */
export function errorText(e) {
  return e && e.message ? String(e.message) : String(e);
}

/**
 * A form's own error line (`role=alert`), shown next to the form that failed: `show(text)`, `clear()`. The
 * status area says it too; this one stays by the form until the next attempt.
 */
export function errorSlot(props) {
  const el = h('p', { class: 'form-error', role: 'alert', hidden: true, ...props });
  el.show = (text) => {
    el.textContent = '';
    el.append(idText(text));
    el.hidden = false;
  };
  el.clear = () => {
    el.hidden = true;
    el.textContent = '';
  };
  return el;
}

// ---- focus ----

/**
 * Runs `rebuild`, which replaces the children of `container` (rows carrying `data-key`), and puts the focus
 * back where it was: the same control (by `data-test`) in the row with the same key, else that row's first
 * control, else the row now at the same place (the next one), else `fallback`. Without focus inside, just runs.
 */
export function keepFocus(container, rebuild, fallback) {
  const active = document.activeElement;
  if (!active || !container.contains(active)) {
    rebuild();
    return;
  }
  const row = active.closest('[data-key]');
  const key = row ? row.dataset.key : null;
  const test = active.getAttribute('data-test');
  const rows = [...container.querySelectorAll('[data-key]')];
  const index = row ? rows.indexOf(row) : -1;
  rebuild();
  const FOCUSABLE = 'a[href], button:not([disabled]), input, select, textarea, [tabindex]';
  const now = [...container.querySelectorAll('[data-key]')];
  const same = key === null ? null : now.find((r) => r.dataset.key === key);
  let target = null;
  if (same) target = (test && same.querySelector(`[data-test="${CSS.escape(test)}"]`)) || same.querySelector(FOCUSABLE);
  if (!target && index >= 0 && now.length) {
    const next = now[Math.min(index, now.length - 1)];
    target = (test && next.querySelector(`[data-test="${CSS.escape(test)}"]`)) || next.querySelector(FOCUSABLE);
  }
  target = target || fallback;
  if (target) target.focus({ preventScroll: true });
}

// ---- busy buttons ----

/**
 * Marks `btn` busy while its action runs, without `disabled` (a disabled button drops the keyboard focus to the
 * top of the page). Returns a function that ends it, or null when the button is busy already.
 */
export function hold(btn) {
  if (btn.getAttribute('aria-disabled') === 'true') return null;
  btn.setAttribute('aria-disabled', 'true');
  return () => btn.removeAttribute('aria-disabled');
}

// ---- confirmation ----

/**
 * A button that asks before it acts: the first activation turns it into `confirmLabel` for 5 s, a second one
 * within that time runs `action` (the button is busy while it runs, see `hold`). Returns the button.
 */
export function confirmButton(label, confirmLabel, action, props = {}) {
  let armed = null;
  const btn = h('button', { type: 'button', ...props, class: ['btn', props.class], text: label });
  const disarm = () => {
    if (armed) clearTimeout(armed);
    armed = null;
    btn.textContent = label;
    btn.classList.remove('confirming');
    btn.removeAttribute('aria-describedby');
  };
  btn.addEventListener('click', async () => {
    if (btn.getAttribute('aria-disabled') === 'true') return;
    if (!armed) {
      btn.textContent = confirmLabel;
      btn.classList.add('confirming');
      armed = setTimeout(disarm, 5000);
      return;
    }
    disarm();
    const release = hold(btn);
    try {
      await action();
    } finally {
      release();
    }
  });
  return btn;
}

/** A section with a heading (h2) and an optional heading-level action. */
export function section(title, props, ...children) {
  const hid = nextId('h');
  return h('section', { class: ['panel', props && props.class], 'aria-labelledby': hid, 'data-test': props && props['data-test'] },
    h('h2', { id: hid, tabindex: '-1', text: title }),
    children);
}

/** A `<dl>` row pair. */
export function pair(term, value) {
  return [h('dt', { text: term }), h('dd', null, value)];
}
