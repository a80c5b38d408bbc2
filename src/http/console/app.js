// The console's entry: sign-in, the hash router, and the per-page context (timers and requests that end when
// the operator leaves the page or signs out).

import { setKey, forgetKey, signedIn, get, post, ApiError, setPublisher } from './api.js';
import { h, replace, initStatus, say, clearStatus, idText, errorText } from './dom.js';
import * as overview from './overview.js';
import * as rooms from './rooms.js';
import * as room from './room.js';
import * as users from './users.js';
import * as media from './media.js';

const $ = (id) => document.getElementById(id);

const els = {
  signin: $('signin'),
  form: $('signin-form'),
  key: $('signin-key'),
  submit: $('signin-submit'),
  error: $('signin-error'),
  app: $('app'),
  main: $('main'),
  node: $('node-name'),
  signout: $('signout'),
  skip: $('skip-link'),
  announce: $('announce'),
  nav: document.querySelectorAll('[data-nav]'),
};

initStatus($('status'));

/** The page shown now: its context, closed on leaving. */
let current = null;

/** A page's context: requests made through it are aborted, and its timers cleared, when the page is left. */
function newContext() {
  const ac = new AbortController();
  const timers = new Set();
  const ctx = {
    signal: ac.signal,
    alive: () => !ac.signal.aborted,
    get: (path, params) => get(path, params, { signal: ac.signal }),
    // Actions are not aborted by leaving the page: the operator asked for them, and hears how they ended.
    post: (path, body) => post(path, body),
    /**
     * Runs an action; its error is said at once (even after the page was left) and, given `slot` (an
     * `errorSlot`), next to the action's own form too. Resolves to its result or undefined.
     */
    async act(fn, prefix, slot) {
      try {
        return await fn();
      } catch (e) {
        report(e, prefix);
        if (slot && !(e instanceof ApiError && e.status === 401) && !(e && e.name === 'AbortError')) slot.show(errorText(e));
        return undefined;
      }
    },
    /** Runs `fn` now and then every `ms` after each run ends, while the page is shown. */
    poll(ms, fn) {
      const tick = async () => {
        if (!ctx.alive()) return;
        try {
          await fn();
        } catch (e) {
          ctx.fail(e);
        }
        if (!ctx.alive()) return;
        const t = setTimeout(() => { timers.delete(t); tick(); }, ms);
        timers.add(t);
      };
      tick();
    },
    /** Runs `fn` once after `ms`, unless the page is left first. */
    later(ms, fn) {
      const t = setTimeout(() => {
        timers.delete(t);
        if (ctx.alive()) Promise.resolve().then(fn).catch((e) => ctx.fail(e));
      }, ms);
      timers.add(t);
    },
    /** Reports an error: ignored after leaving the page, a refused key signs out, anything else is said. */
    fail(e, prefix) {
      if (!ctx.alive() || (e && e.name === 'AbortError')) return;
      report(e, prefix, true);
    },
    close() {
      ac.abort();
      for (const t of timers) clearTimeout(t);
      timers.clear();
    },
  };
  return ctx;
}

/** Says what went wrong (`page`: a page's own read, forgotten when the page is left); a refused key signs out. */
function report(e, prefix, page = false) {
  if (e && e.name === 'AbortError') return;
  if (e instanceof ApiError && e.status === 401) {
    if (signedIn()) signOut('The key was refused: sign in again.');
    return;
  }
  // The server's text may carry ids someone else chose: isolated, like every id shown.
  say(prefix ? [idText(prefix), ': ', idText(errorText(e))] : [idText(errorText(e))], { error: true, page });
}

// Escape outside a form dismisses the status message.
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && !e.defaultPrevented && !(e.target instanceof Element && e.target.closest('form'))) clearStatus();
});

function leavePage() {
  if (current) current.close();
  current = null;
  // What the last page said (a result or an error) belongs to it: a new page starts clean.
  clearStatus();
}

/** The route parts of the location hash, decoded; null when a part does not decode. */
function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  if (!raw) return [];
  const parts = [];
  for (const p of raw.split('/')) {
    try {
      parts.push(decodeURIComponent(p));
    } catch {
      return null;
    }
  }
  return parts;
}

function notFound(main, text) {
  document.title = 'Not found · odd-gateway console';
  replace(main,
    h('h1', { tabindex: '-1', text: 'Not found' }),
    h('p', { text }),
    h('p', null, h('a', { route: ['overview'], text: 'Go to the overview' })));
}

/** Moves the focus to the top of the document (announcing `what`): the next Tab reaches the skip link. */
function focusTop(what) {
  els.announce.textContent = what;
  els.announce.focus({ preventScroll: true });
}

function route(focus) {
  if (!signedIn()) return;
  leavePage();
  const parts = parseHash();
  const main = els.main;
  main.replaceChildren();
  const ctx = newContext();
  current = ctx;
  const section = parts && parts.length ? parts[0] : 'overview';
  for (const a of els.nav) {
    if (a.dataset.nav === section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (parts === null) {
    notFound(main, 'That address does not decode.');
  } else if (parts.length === 0 || (parts.length === 1 && parts[0] === 'overview')) {
    overview.render(ctx, main);
  } else if (parts[0] === 'rooms' && parts.length === 1) {
    rooms.render(ctx, main);
  } else if (parts[0] === 'rooms' && parts.length === 2 && parts[1]) {
    room.render(ctx, main, parts[1]);
  } else if (parts[0] === 'users' && parts.length === 1) {
    users.render(ctx, main, null);
  } else if (parts[0] === 'users' && parts.length === 2 && parts[1]) {
    users.render(ctx, main, parts[1]);
  } else if (parts[0] === 'media' && parts.length === 1) {
    media.render(ctx, main);
  } else {
    notFound(main, 'The console has no such page.');
  }
  if (focus) {
    const heading = main.querySelector('h1');
    focusTop(heading ? heading.textContent : document.title);
    window.scrollTo(0, 0);
  }
}

function showSignin(message, focus = true) {
  els.app.hidden = true;
  els.signin.hidden = false;
  els.key.value = '';
  els.error.textContent = message || '';
  els.error.hidden = !message;
  els.submit.disabled = false;
  // The skip link stays the first Tab stop here too: focus goes to the top, not into the key field.
  if (focus) focusTop(message ? `Sign in. ${message}` : 'Sign in');
}

function signOut(message, focus = true) {
  forgetKey();
  leavePage();
  els.main.replaceChildren();
  els.node.textContent = '';
  clearStatus();
  rooms.reset();
  showSignin(message, focus);
}

/**
 * The key as typed or pasted: surrounding blanks, an `api_key =` in front (a line of dev-secrets.toml) and
 * surrounding quotes are not part of it.
 */
function cleanKey(typed) {
  let k = typed.trim();
  const line = /^api_key\s*=\s*(.*)$/i.exec(k);
  if (line) k = line[1].trim();
  if (k.length >= 2 && (k[0] === '"' || k[0] === "'") && k[k.length - 1] === k[0]) k = k.slice(1, -1).trim();
  return k;
}

els.form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const typed = cleanKey(els.key.value);
  els.error.hidden = true;
  if (!typed) {
    els.error.textContent = 'Type the API key.';
    els.error.hidden = false;
    return;
  }
  els.submit.disabled = true;
  setKey(typed);
  let answer;
  try {
    answer = await get('/api/server/nodes');
  } catch (err) {
    forgetKey();
    els.submit.disabled = false;
    els.error.textContent = err instanceof ApiError && err.status === 401
      ? 'That key was refused.'
      : `Could not sign in: ${err && err.message ? err.message : err}`;
    els.error.hidden = false;
    els.key.focus();
    els.key.select();
    return;
  }
  els.key.value = '';
  els.submit.disabled = false;
  els.node.textContent = answer && typeof answer.self === 'string' ? answer.self : '';
  setPublisher(answer && answer.publisher ? answer.publisher.id : null);
  els.signin.hidden = true;
  els.app.hidden = false;
  const parts = parseHash();
  if (!parts || parts.length === 0) {
    // Replacing the hash fires hashchange, which routes.
    if (location.hash !== '#/overview') {
      location.replace('#/overview');
      return;
    }
  }
  route(true);
});

els.signout.addEventListener('click', () => signOut('Signed out.'));

// Leaving the page forgets the key and the view, so Back cannot bring a signed-in console out of the
// back/forward cache; a page restored from it anyway shows the sign-in.
window.addEventListener('pagehide', () => {
  els.key.value = '';
  if (signedIn()) signOut('', false);
});
window.addEventListener('pageshow', (e) => {
  if (!e.persisted) return;
  if (signedIn()) signOut('', false);
  showSignin('You left the page, so the key was forgotten: sign in again.');
});

window.addEventListener('hashchange', () => route(true));

// The skip link moves focus to the content without touching the hash (the router owns it).
els.skip.addEventListener('click', (e) => {
  e.preventDefault();
  if (!signedIn()) {
    els.key.focus();
    return;
  }
  const target = els.main.querySelector('h1') || els.main;
  target.focus();
});

showSignin('', false);
