// Drives the admin console (/admin) in headless Chromium against a running gateway. Run by a Rust test that
// reads our stdout by lines: `STEP <what>`, `NEED live` (we then read `SENT <text>` from stdin), `DONE`, or
// `FAIL <why>` (exit 1). Other lines (`LOG ...`) are information only.
//
// Environment: ODD_ADMIN_URL, ODD_ADMIN_KEY, ODD_ADMIN_ROOM, ODD_ADMIN_USER, ODD_ADMIN_TEXT (holds markup such as
// `<script>alert(2)</script>` and `<img src=x onerror=alert(3)>`, which must show as text), ODD_ADMIN_SHOTS,
// ODD_KICK_REASON; optional: ODD_ADMIN_NICK (the user's nick, checked in the presence list when given) and
// ODD_PLAYWRIGHT (a directory whose node_modules holds playwright-core).
//
// More checks (the sign-in screen, stale overview figures, rooms named `.` and `..`, a room flooded with 60 KB
// messages, leaving the page) are in admin-checks.mjs, run from here on the same page.

import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import * as checks from './admin-checks.mjs';

const OVERALL_MS = 100000;

let browser = null;
let finished = false;
const problems = [];

function out(line) {
  process.stdout.write(`${line}\n`);
}

async function fail(why) {
  if (finished) return;
  finished = true;
  out(`FAIL ${String(why).replace(/\s+/g, ' ').slice(0, 2000)}`);
  try {
    if (browser) await Promise.race([browser.close(), new Promise((r) => setTimeout(r, 3000))]);
  } catch {
    // closing is best effort
  }
  process.exit(1);
}

const overall = setTimeout(() => fail(`timeout: not done within ${OVERALL_MS / 1000} s`), OVERALL_MS);

function env(name) {
  const v = process.env[name];
  if (v === undefined || v === '') {
    fail(`missing environment variable ${name}`);
    throw new Error(`missing ${name}`);
  }
  return v;
}

function step(what) {
  if (problems.length) throw new Error(problems.join(' | '));
  out(`STEP ${what}`);
}

function problem(what) {
  problems.push(what);
  out(`LOG problem: ${what}`);
}

async function loadPlaywright() {
  const dir = process.env.ODD_PLAYWRIGHT;
  const pick = (m) => (m && m.chromium ? m : m && m.default && m.default.chromium ? m.default : null);
  if (dir) {
    const req = createRequire(path.join(path.resolve(dir), 'package.json'));
    const m = pick(req('playwright-core'));
    if (!m) throw new Error(`playwright-core from ${dir} has no chromium`);
    return m;
  }
  const errors = [];
  try {
    const m = pick(await import('playwright-core'));
    if (m) return m;
  } catch (e) {
    errors.push(e.message);
  }
  // NODE_PATH (which ESM imports ignore) and the working directory's node_modules.
  for (const from of [import.meta.url, path.join(process.cwd(), 'package.json')]) {
    try {
      const m = pick(createRequire(from)('playwright-core'));
      if (m) return m;
    } catch (e) {
      errors.push(e.message);
    }
  }
  throw new Error(`cannot load playwright-core: ${errors.join('; ')}`);
}

// stdin, by lines (the Rust test answers NEED with one line).
const lines = [];
let waiter = null;
let stdinClosed = false;
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (l) => {
  if (waiter) {
    const w = waiter;
    waiter = null;
    w(l);
  } else lines.push(l);
});
rl.on('close', () => {
  stdinClosed = true;
  if (waiter) {
    const w = waiter;
    waiter = null;
    w(null);
  }
});

function nextLine(ms) {
  if (lines.length) return Promise.resolve(lines.shift());
  if (stdinClosed) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      waiter = null;
      reject(new Error(`no line on stdin within ${ms / 1000} s`));
    }, ms);
    waiter = (l) => {
      clearTimeout(t);
      resolve(l);
    };
  });
}

async function main() {
  const base = env('ODD_ADMIN_URL').replace(/\/+$/, '');
  const key = env('ODD_ADMIN_KEY');
  const rid = env('ODD_ADMIN_ROOM');
  const uid = env('ODD_ADMIN_USER');
  const text = env('ODD_ADMIN_TEXT');
  const shotsDir = env('ODD_ADMIN_SHOTS');
  const kickReason = env('ODD_KICK_REASON');
  const nick = process.env.ODD_ADMIN_NICK || '';
  const origin = new URL(base).origin;
  fs.mkdirSync(shotsDir, { recursive: true });
  const api = checks.serverApi(base, key);
  const flags = { netErrors: false };
  const preparing = checks.prepare(api);

  // 1. Chromium, with every way the page can misbehave recorded.
  const { chromium } = await loadPlaywright();
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-quic'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(10000);
  page.on('dialog', (d) => {
    problem(`a ${d.type()} dialog opened: ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  page.on('request', (r) => {
    const u = r.url();
    if (u.startsWith('data:')) return;
    let o = null;
    try {
      o = new URL(u).origin;
    } catch {
      // not a URL: foreign by definition
    }
    if (o !== origin) problem(`request outside ${origin}: ${u}`);
  });
  page.on('pageerror', (e) => problem(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const t = m.text();
    const at = (m.location() && m.location().url) || '';
    // Chromium logs every 4xx fetch; the API's error answers are part of the flow (the wrong key's 401).
    if (/^Failed to load resource: the server responded with a status of 4\d\d/.test(t) && at.startsWith(`${origin}/api/server/`)) {
      out(`LOG expected API error: ${t} (${at})`);
      return;
    }
    // While the check of an unreachable gateway cuts the overview's requests.
    if (flags.netErrors && /^Failed to load resource: net::/.test(t)) {
      out(`LOG expected network error: ${t}`);
      return;
    }
    problem(`console error: ${t}${at ? ` at ${at}` : ''}`);
  });

  const shot = (name) => page.screenshot({ path: path.join(shotsDir, `${name}.png`), fullPage: true });
  // A page at 1280x800 and 360x740, both full-page; at 360 the page must not scroll sideways.
  async function shots(name) {
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.waitForTimeout(150);
    await shot(`${name}-1280`);
    await page.setViewportSize({ width: 360, height: 740 });
    await page.waitForTimeout(250);
    const sw = await page.evaluate(() => document.documentElement.scrollWidth);
    if (sw > 360) throw new Error(`${name} at 360 px: the page is ${sw} px wide (scrolls sideways)`);
    await shot(`${name}-360`);
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.waitForTimeout(100);
  }
  const visibleText = (sel, want, timeout = 10000) => page.waitForFunction(([s, w]) => {
    const e = document.querySelector(s);
    return Boolean(e && e.checkVisibility() && e.textContent.includes(w));
  }, [sel, want], { timeout });
  const hash = () => page.evaluate(() => location.hash);

  await preparing;
  const t = { page, api, base, key, shots, flags, out };
  step('launched');

  // 2. Sign in: a wrong key first, then the right one.
  const res = await page.goto(`${base}/admin`);
  if (!res || !res.ok()) throw new Error(`GET /admin answered ${res ? res.status() : 'nothing'}`);
  const csp = res.headers()['content-security-policy'] || '';
  if (!csp.includes("default-src 'none'") || !csp.includes("script-src 'self'")) {
    throw new Error(`GET /admin has no strict Content-Security-Policy (got "${csp}")`);
  }
  await checks.signinScreen(t);
  step('sign-in screen');
  await page.fill('[data-test=signin-key]', `wrong-${key}`);
  await page.click('[data-test=signin-submit]');
  await visibleText('[data-test=signin-error]', 'That key was refused.');
  if (!(await page.isVisible('[data-test=signin-key]'))) throw new Error('the sign-in screen went away after a refused key');
  step('wrong key refused');

  await page.fill('[data-test=signin-key]', key);
  await page.click('[data-test=signin-submit]');
  await page.waitForSelector('[data-test=node-card]');
  const self = (await page.textContent('[data-test=node-name]')) || '';
  const firstCard = await page.getAttribute('[data-test=node-card]', 'data-node');
  if (!self || firstCard !== self) throw new Error(`overview: the first card is "${firstCard}", this node is "${self}"`);
  // In a cluster, a card for every node (the others' figures come with their heartbeats).
  const want = (process.env.ODD_ADMIN_NODES || self).split(',');
  await page.waitForFunction((names) => {
    const have = [...document.querySelectorAll('[data-test=node-card]')].map((c) => c.getAttribute('data-node'));
    return names.every((n) => have.includes(n)) && have.length === names.length;
  }, want, { timeout: 10000 }).catch(async () => {
    const have = await page.$$eval('[data-test=node-card]', (cs) => cs.map((c) => c.getAttribute('data-node')));
    throw new Error(`overview: cards for ${have.join(', ')}, expected ${want.join(', ')}`);
  });
  if ((await hash()) !== '#/overview') throw new Error(`after sign-in the hash is ${await hash()}`);
  const stored = await page.evaluate(() => JSON.stringify([localStorage.length, sessionStorage.length, document.cookie, location.href]));
  if (stored.includes(key)) throw new Error(`the key shows outside the page's memory: ${stored}`);
  // Rates need two samples, 2 s apart.
  await page.waitForFunction(() => {
    const c = document.querySelector('[data-test=node-card] [data-stat="rate.msgs"]');
    return c && c.textContent !== '—';
  }, null, { timeout: 6000 }).catch(() => out('LOG overview: no rate after 6 s'));
  await shots('overview');
  step('signed in');
  await checks.overviewStale(t);
  step('overview marks figures it could not refresh');

  // 3. Rooms: the test's room is listed (paging on if it is not on the first page).
  await page.click('[data-test=nav-rooms]');
  await page.waitForSelector('[data-test=room-row], [data-test=rooms-empty]:not([hidden])');
  let row = -1;
  for (let pageNo = 0; pageNo < 50; pageNo += 1) {
    await page.waitForFunction(() => document.querySelector('[data-test=rooms-page]').textContent !== '');
    row = await page.evaluate((r) => [...document.querySelectorAll('[data-test=room-row]')].findIndex((e) => e.getAttribute('data-rid') === r), rid);
    if (row >= 0) break;
    if (await page.isDisabled('[data-test=rooms-next]')) break;
    const before = await page.textContent('[data-test=rooms-page]');
    await page.click('[data-test=rooms-next]');
    await page.waitForFunction((b) => document.querySelector('[data-test=rooms-page]').textContent !== b, before);
  }
  if (row < 0) throw new Error(`room ${rid} is not in the rooms list`);
  await shots('rooms');
  step('rooms listed');

  // 4. The room: hostile message data and nick shown as text, no img, no foreign script.
  await page.locator('[data-test=room-row]').nth(row).locator('[data-test=room-link]').click();
  const roomHash = `#/rooms/${encodeURIComponent(rid)}`;
  if ((await hash()) !== roomHash) throw new Error(`the room link went to ${await hash()}, not ${roomHash}`);
  const hasMessage = (t) => [...document.querySelectorAll('[data-test=message] [data-test=message-text]')].some((e) => e.textContent === t);
  await page.waitForFunction(hasMessage, text).catch(() => { throw new Error(`the message "${text}" is not shown as text`); });
  await page.waitForFunction(([u, n]) => [...document.querySelectorAll('[data-test=presence-user]')].some((e) => {
    const shown = e.querySelector('[data-test=presence-nick]').textContent;
    return e.getAttribute('data-uid') === u && (n ? shown === n : shown !== '');
  }), [uid, nick]).catch(() => { throw new Error(`${uid}${nick ? ` with the nick ${nick}` : ''} is not in the presence list`); });
  const dom = await page.evaluate(() => ({
    imgs: document.querySelectorAll('img').length,
    scripts: [...document.querySelectorAll('script')].map((s) => s.src || `inline:${s.textContent.slice(0, 60)}`),
    iframes: document.querySelectorAll('iframe, object, embed').length,
  }));
  if (dom.imgs !== 0) throw new Error(`the page has ${dom.imgs} img element(s)`);
  if (dom.iframes !== 0) throw new Error('the page has an iframe, object or embed');
  if (dom.scripts.length !== 1 || dom.scripts[0] !== `${origin}/admin/app.js`) throw new Error(`unexpected scripts: ${dom.scripts.join(', ')}`);
  await shots('room');
  step('room shows hostile text as text');
  await page.click('[data-test=jump-search]');
  if (!(await page.evaluate(() => document.activeElement.closest('[data-test=search]') !== null))) throw new Error('"Jump to: Search" did not move the focus to the search');

  // 5. A live message appears without a reload, and the room search finds it.
  out('NEED live');
  const line = await nextLine(20000);
  const m = line === null ? null : /^SENT (.+)$/.exec(line);
  if (!m) throw new Error(`expected "SENT <text>" on stdin, got ${JSON.stringify(line)}`);
  const live = m[1];
  await page.waitForFunction(hasMessage, live, { timeout: 10000 })
    .catch(() => { throw new Error(`the live message "${live}" did not show within 10 s`); });
  const mid = await page.evaluate((t) => {
    const e = [...document.querySelectorAll('[data-test=message]')].find((r) => r.querySelector('[data-test=message-text]').textContent === t);
    return e.getAttribute('data-mid');
  }, live);
  step(`live message ${mid} shown`);
  const word = live.trim().split(/\s+/).pop();
  await page.fill('[data-test=search-input]', word);
  await page.click('[data-test=search-submit]');
  await page.waitForFunction(() => document.querySelectorAll('[data-test=search-hit]').length > 0
    || !document.querySelector('[data-test=search-error]').hidden
    || /No message/.test(document.querySelector('[data-test=search-summary]').textContent));
  const hits = await page.evaluate(() => ({
    error: document.querySelector('[data-test=search-error]').hidden ? '' : document.querySelector('[data-test=search-error]').textContent,
    texts: [...document.querySelectorAll('[data-test=search-hit] [data-test=message-text]')].map((e) => e.textContent),
  }));
  if (hits.error) throw new Error(`search for "${word}": ${hits.error}`);
  if (hits.texts.length !== 1 || hits.texts[0] !== live) throw new Error(`search for "${word}" found ${JSON.stringify(hits.texts)}`);
  await page.locator('[data-test=search]').scrollIntoViewIfNeeded();
  await shot('search-1280');
  step('search found it');

  // 6. Redact it, with the confirm step; the row turns redacted in place.
  const redact = page.locator(`[data-test=message][data-mid="${mid}"] [data-test=redact]`);
  await redact.click();
  const armed = (await redact.textContent()) || '';
  if (!/confirm/i.test(armed)) throw new Error(`the Redact button did not ask for confirmation (it says "${armed}")`);
  if (await page.locator(`[data-test=message][data-mid="${mid}"][data-redacted]`).count()) throw new Error('redacted before the confirmation');
  await redact.click();
  await page.waitForSelector(`[data-test=message][data-mid="${mid}"][data-redacted="true"]`, { timeout: 10000 })
    .catch(() => { throw new Error(`message ${mid} did not turn redacted`); });
  const redactedText = await page.textContent(`[data-test=message][data-mid="${mid}"] [data-test=message-text]`);
  if (!/redacted by/.test(redactedText || '')) throw new Error(`the redacted row says "${redactedText}"`);
  await visibleText('[data-test=status]', `Message ${mid} redacted`, 5000);
  const focused = await page.evaluate(() => (document.activeElement.closest('[data-test=message]') || document.activeElement).getAttribute('data-mid'));
  if (focused !== mid) throw new Error(`after the redaction the focus is not on its row (${focused})`);
  await page.keyboard.press('ArrowUp');
  const up = await page.evaluate(() => [document.activeElement.getAttribute('data-mid'), document.activeElement.previousElementSibling === null]);
  if (up[0] === mid || up[0] === null) throw new Error('ArrowUp on a message row did not move to the row above');
  step(`message ${mid} redacted`);

  // 7. Kick the test client from the presence list.
  const who = await page.evaluate((u) => [...document.querySelectorAll('[data-test=presence-user]')].findIndex((e) => e.getAttribute('data-uid') === u), uid);
  if (who < 0) throw new Error(`${uid} left the presence list before the kick`);
  const person = page.locator('[data-test=presence-user]').nth(who);
  await person.locator('[data-test=kick]').click();
  if (!/every session .* on every node/.test(await person.locator('[data-test=kick-scope]').textContent())) throw new Error('the kick form does not say it ends every session on every node');
  await page.keyboard.press('Escape');
  if (!(await person.locator('[data-test=kick-form]').isHidden())) throw new Error('Escape did not close the kick form');
  if ((await page.evaluate(() => document.activeElement.getAttribute('data-test'))) !== 'kick') throw new Error('after Escape the focus is not on Kick');
  await person.locator('[data-test=kick]').click();
  await person.locator('[data-test=kick-reason]').fill(kickReason);
  await person.locator('[data-test=kick-confirm]').click();
  await page.waitForFunction((u) => {
    const s = document.querySelector('[data-test=status]').textContent;
    return s.includes(`${u} disconnected`);
  }, uid, { timeout: 10000 }).catch(() => { throw new Error(`no status saying ${uid} was disconnected`); });
  step('kicked');

  // 8. The user's page and the media page, at both widths.
  await page.click('[data-test=nav-users]');
  await page.fill('[data-test=user-lookup-input]', uid);
  await page.click('[data-test=user-lookup-submit]');
  await page.waitForSelector('[data-test=user-connections]');
  if ((await hash()) !== `#/users/${encodeURIComponent(uid)}`) throw new Error(`the user lookup went to ${await hash()}`);
  await shots('users');
  // Erase what the user wrote in the room (asked twice): the result names the count and links the room.
  await page.fill('[data-test=erase-room]', rid);
  await page.click('[data-test=erase]');
  await page.click('[data-test=erase]');
  await page.waitForFunction((r) => {
    const e = document.querySelector('[data-test=erase-result]');
    return e && !e.hidden && /^Erased \d+ messages? of /.test(e.textContent) && e.querySelector('a') && e.textContent.includes(r);
  }, rid, { timeout: 6000 }).catch(async () => {
    throw new Error(`erase in a room said "${await page.textContent('[data-test=erase-result]')}"`);
  });
  step('user page');
  await page.click('[data-test=nav-media]');
  await page.waitForFunction(() => !/Loading/.test((document.querySelector('[data-test=media-updated]') || { textContent: 'Loading' }).textContent));
  await shots('media');
  step('media page');
  await checks.mediaLive(t);
  step('media page: a WHIP publication from this browser listed and ended');

  // 9. Keyboard: the nav links come in order after the skip link, and Enter on Rooms navigates.
  await page.click('[data-test=nav-overview]');
  await page.waitForSelector('[data-test=node-card]');
  await page.focus('[data-test=skip-link]');
  const skipBox = await page.locator('[data-test=skip-link]').boundingBox();
  if (!skipBox || skipBox.y < 0) throw new Error('the focused skip link is not on screen');
  const order = [];
  for (let i = 0; i < 4; i += 1) {
    await page.keyboard.press('Tab');
    order.push(await page.evaluate(() => {
      const e = document.activeElement;
      const outline = e ? getComputedStyle(e).outlineStyle : 'none';
      return `${e ? e.textContent.trim() : ''}${outline === 'none' ? ' (no outline)' : ''}`;
    }));
  }
  if (order.join('|') !== 'Overview|Rooms|Users|Media') throw new Error(`Tab from the skip link went ${order.join(' > ')}`);
  await page.keyboard.press('Shift+Tab');
  await page.keyboard.press('Shift+Tab');
  const on = await page.evaluate(() => document.activeElement.textContent.trim());
  if (on !== 'Rooms') throw new Error(`Shift+Tab back landed on "${on}"`);
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => location.hash === '#/rooms', null, { timeout: 5000 })
    .catch(async () => { throw new Error(`Enter on Rooms left the hash at ${await hash()}`); });
  await page.waitForSelector('[data-test=room-row]');
  await page.keyboard.press('Tab');
  if ((await page.evaluate(() => document.activeElement.getAttribute('data-test'))) !== 'skip-link') throw new Error('after going to a page the first Tab stop is not the skip link');
  step('keyboard');

  // More: the rooms page, the flood room, leaving the page.
  await checks.roomsPage(t);
  step('rooms page, room ".." refused with its reason, a bidi id');
  await checks.floodRoom(t);
  step('flooded room: nothing skipped, rows capped');
  await checks.leaving(t);
  step('leaving forgets the key');
  await checks.webPageWhip({ context, base });
  step('a page of another origin publishes over WHIP and ends it (CORS)');

  // 10. Nothing went wrong on the way.
  await page.waitForTimeout(300);
  if (problems.length) throw new Error(problems.join(' | '));
  finished = true;
  clearTimeout(overall);
  await browser.close();
  out('DONE');
  process.exit(0);
}

main().catch((e) => {
  const why = e && e.message ? e.message : String(e);
  const also = problems.filter((p) => !why.includes(p));
  fail(also.length ? `${why} (also: ${also.join(' | ')})` : why);
});
