// More checks of the admin console, run by tests/browser/admin.mjs on the same page: the sign-in screen, stale
// overview figures, the rooms page (open by id; rooms named `.` and `..`, which no URL path can carry; an id
// with bidi controls), a room
// flooded with 60 KB messages (nothing skipped, rows capped, hidden fields shown, a redaction of an older
// row, publish as a plain string, search hits with Redact, a property refreshing the header, rights paged
// past 200 and unban with a chosen mask, the "not shown" rows and "new messages below"), and leaving the page.
//
// `t`: {page, api, base, key, shots, flags, out}; `api(method, path, body)` calls the server API from node
// (not from the page) and resolves to {status, data}.

export const FLOOD = 'ops-flood';
const BIG = 60000;

const ok = (cond, why) => {
  if (!cond) throw new Error(why);
};

export function serverApi(base, key) {
  return async (method, path, body) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { 'X-API-Key': key, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, data: text ? JSON.parse(text) : null };
  };
}

const publish = async (api, data) => {
  const r = await api('POST', '/api/server/publish', { room: FLOOD, data });
  ok(r.status === 200, `publish answered ${r.status} ${JSON.stringify(r.data)}`);
  return r.data.mid;
};

/** The flood room, with 205 users holding rights in it (u203 banned); `.` and `..` are no room ids. */
export async function prepare(api) {
  for (const rid of ['.', '..']) {
    const r = await api('POST', '/api/server/rooms', { rid });
    ok(r.status === 400, `create ${rid}: ${r.status} (a path step is no room id)`);
  }
  const r = await api('POST', '/api/server/rooms', { rid: FLOOD });
  ok(r.status === 201 || r.status === 200, `create ${FLOOD}: ${r.status}`);
  for (let i = 0; i < 205; i += 15) {
    await Promise.all(Array.from({ length: Math.min(15, 205 - i) }, (_, k) => {
      const user = `u${String(i + k).padStart(3, '0')}`;
      return api('POST', '/api/server/chmod', { room: FLOOD, user, operator: '=', mask: user === 'u203' ? '' : 'r' });
    }));
  }
}

/** Before signing in: the skip link is the first Tab stop, the key field says where keys come from. */
export async function signinScreen({ page }) {
  await page.keyboard.press('Tab');
  ok(await page.evaluate(() => document.activeElement.getAttribute('data-test')) === 'skip-link',
    'on the sign-in screen the first Tab stop is not the skip link');
  const where = await page.textContent('[data-test=signin-where]');
  ok(/ODD_API_KEYS/.test(where) && /dev-secrets\.toml/.test(where), `the sign-in does not say where keys come from: ${where}`);
  const attrs = await page.evaluate(() => {
    const k = document.querySelector('[data-test=signin-key]');
    return [k.hasAttribute('name'), k.getAttribute('autocomplete')];
  });
  ok(!attrs[0] && attrs[1] === 'off', `the key field has name=${attrs[0]}, autocomplete=${attrs[1]}`);
}

/** The overview when the gateway does not answer: greyed out, "last read at", back to normal after. */
export async function overviewStale({ page, flags }) {
  ok(await page.locator('[data-test=connections] dt', { hasText: 'ws (and wss)' }).count() > 0, 'no "ws (and wss)" label');
  flags.netErrors = true;
  await page.route('**/api/server/nodes', (r) => r.abort());
  await page.waitForSelector('[data-test=nodes][data-stale=true]', { timeout: 6000 });
  const note = await page.textContent('[data-test=overview-updated]');
  ok(/last read at/.test(note) && /Not current/.test(note), `the stale overview says "${note}"`);
  const look = await page.evaluate(() => {
    const card = document.querySelector('[data-test=node-card]');
    const up = card.querySelector('[data-stat="store.up"]');
    return [getComputedStyle(card).filter, getComputedStyle(up).color, getComputedStyle(document.querySelector('[data-test=overview-updated]')).color];
  });
  ok(/grayscale/.test(look[0]), `a stale card is not greyed out (filter ${look[0]})`);
  await page.unroute('**/api/server/nodes');
  await page.waitForSelector('[data-test=nodes]:not([data-stale])', { timeout: 6000 });
  flags.netErrors = false;
}

/** Rooms: the tools above the list, the pager below it, `..` refused with its reason, bidi text stays out of the title. */
export async function roomsPage({ page }) {
  const order = await page.evaluate(() => {
    const table = document.querySelector('[data-test=rooms-table]');
    const before = (s) => Boolean(document.querySelector(s).compareDocumentPosition(table) & Node.DOCUMENT_POSITION_FOLLOWING);
    return [before('[data-test=create-room]'), before('[data-test=open-room]'), Boolean(document.querySelector('[data-test=rooms-next-below]'))];
  });
  ok(order.every(Boolean), `rooms page layout (create above, open above, pager below): ${order}`);
  // `.` and `..` are steps in a URL path, so the gateway refuses them as room ids: the form says why, next
  // to itself.
  await page.fill('[data-test=create-rid]', '..');
  await page.click('[data-test=create-submit]');
  await page.waitForFunction(() => /not \. or \.\./.test((document.querySelector('[data-test=create-error]') || {}).textContent || ''),
    null, { timeout: 6000 }).catch(() => { throw new Error('creating room ".." did not say why it was refused'); });
  await page.evaluate(() => { location.hash = `#/rooms/${encodeURIComponent('\u202Eevil\u2066x')}`; });
  await page.waitForSelector('[data-test=room-missing], [data-test=room-error]');
  const bidi = await page.evaluate(() => [document.title, document.querySelector('[data-test=room-id]').tagName]);
  ok(!/evil/.test(bidi[0]) && bidi[1] === 'BDI', `a bidi room id: title "${bidi[0]}", shown in ${bidi[1]}`);
}

/** Searches (again, while the index catches up) until a hit shows `text`. */
async function searchFor(page, text, why) {
  const found = () => page.evaluate((x) => [...document.querySelectorAll('[data-test=search-hit] [data-test=message-text]')].some((e) => e.textContent === x), text);
  for (let i = 0; i < 12 && !(await found()); i += 1) {
    await page.click('[data-test=search-submit]');
    await page.waitForFunction(() => !/Searching/.test(document.querySelector('[data-test=search-summary]').textContent));
    if (!(await found())) await page.waitForTimeout(500);
  }
  ok(await found(), why);
}

const rowsShown = (page) => page.evaluate(() => document.querySelectorAll('[data-test=messages] [data-test=message]').length);
const hasRow = (page, mid, ms = 15000) => page.waitForSelector(`[data-test=message][data-mid="${mid}"]`, { timeout: ms, state: 'attached' });
const toBottom = (page) => page.evaluate(() => { const s = document.querySelector('.msg-scroll'); s.scrollTop = s.scrollHeight; });

/** The flood room: see the header comment. */
export async function floodRoom({ page, api, shots }) {
  await page.evaluate((r) => { location.hash = `#/rooms/${r}`; }, FLOOD);
  await page.waitForFunction(() => /^Live/.test((document.querySelector('[data-test=live-note]') || {}).textContent || ''));

  // 20 messages of 60 KB, one with hidden fields, 20 more: more than a 1 MiB page on each side of it.
  const big = (i) => publish(api, `big ${i} ${'x'.repeat(BIG)}`);
  const mids = await Promise.all(Array.from({ length: 20 }, (_, i) => big(i)));
  const needle = await publish(api, { text: 'nice day', body: 'HIDDEN-needle', attachments: [1, 2] });
  mids.push(needle, ...await Promise.all(Array.from({ length: 20 }, (_, i) => big(20 + i))));
  for (const mid of mids) await hasRow(page, mid).catch(() => { throw new Error(`message ${mid} of the 60 KB flood was skipped`); });
  const row = `[data-test=message][data-mid="${needle}"]`;
  ok(await page.textContent(`${row} [data-test=message-text]`) === 'nice day', 'the message with hidden fields does not show its text');
  ok(/\+ 2 other fields/.test(await page.textContent(`${row} [data-test=other-fields]`)), 'no "+ 2 other fields" marker');
  await page.click(`${row} [data-test=other-fields]`);
  ok(/HIDDEN-needle/.test(await page.textContent(`${row} [data-test=other-fields-json]`)), 'the other fields do not show the hidden body');
  const bigRow = await page.evaluate((mid) => {
    const li = document.querySelector(`[data-test=message][data-mid="${mid}"]`);
    return [li.querySelector('[data-test=message-text]').textContent.length, Boolean(li.querySelector('[data-test=show-all]')), li.getBoundingClientRect().height];
  }, mids[0]);
  ok(bigRow[0] <= 2001 && bigRow[1] && bigRow[2] < 450, `a 60 KB message renders ${bigRow[0]} characters, show-all ${bigRow[1]}, ${bigRow[2]} px tall`);

  // Redact it (it is not on the newest page): the row turns into a tombstone at once and keeps the focus.
  const redact = page.locator(`${row} [data-test=redact]`);
  await redact.click();
  await redact.click();
  await page.waitForSelector(`${row}[data-redacted=true]`, { timeout: 2500 })
    .catch(() => { throw new Error('an older redacted row kept its text'); });
  ok(await page.evaluate(() => document.activeElement.getAttribute('data-mid')) === String(needle), 'the focus left the redacted row');

  // Publish: a plain string by default; JSON when asked (and a bad one is refused next to the form).
  await page.fill('[data-test=publish-text]', 'searchable walrus words');
  await page.click('[data-test=publish-submit]');
  const said = await page.waitForFunction(() => {
    const e = [...document.querySelectorAll('[data-test=message]')].find((r) => r.querySelector('[data-test=message-text]').textContent === 'searchable walrus words');
    return e && e.getAttribute('data-mid');
  }, null, { timeout: 6000 }).then((h) => h.jsonValue());
  const stored = await api('GET', `/api/server/rooms/${FLOOD}/messages?before=${Number(said) + 1}&limit=1`);
  ok(stored.data.messages[0].data === 'searchable walrus words', `published as ${JSON.stringify(stored.data.messages[0].data)}`);
  // What the server publishes is marked as the server's (no member may hold its id).
  ok(await page.locator(`[data-test=message][data-mid="${said}"] [data-test=message-server]`).count() === 1,
    'a message the console published is not marked as the server\'s');
  // A right-to-left override inside a message is shown as a code, not obeyed.
  await page.fill('[data-test=publish-text]', 'bidi \u202e dlrow olleh \u202c end');
  await page.click('[data-test=publish-submit]');
  await page.waitForFunction(() => [...document.querySelectorAll('[data-test=message-text]')].some((t) => t.textContent === 'bidi [U+202E] dlrow olleh [U+202C] end'),
    null, { timeout: 6000 }).catch(() => { throw new Error('a bidirectional override in a message was not shown as a code'); });
  await page.check('[data-test=publish-json]');
  await page.fill('[data-test=publish-text]', '{"text": "json hello", "extra": 1');
  await page.click('[data-test=publish-submit]');
  await page.waitForSelector('[data-test=publish-error]:not([hidden])');
  await page.fill('[data-test=publish-text]', '{"text": "json hello", "extra": 1}');
  await page.click('[data-test=publish-submit]');
  await page.waitForFunction(() => [...document.querySelectorAll('[data-test=message]')].some((r) => r.querySelector('[data-test=message-text]').textContent === 'json hello'
    && /1 other field/.test((r.querySelector('[data-test=other-fields]') || {}).textContent)), null, { timeout: 6000 });
  await page.uncheck('[data-test=publish-json]');

  // A search hit names its room and mid and can be redacted, with the live row.
  await page.fill('[data-test=search-input]', 'walrus');
  await searchFor(page, 'searchable walrus words', 'the search did not find a published message');
  const hit = `[data-test=search-hit][data-mid="${said}"]`;
  await page.waitForSelector(hit);
  const head = await page.textContent(`${hit} .msg-head`);
  ok(head.includes(`#${said}`) && head.includes(`in ${FLOOD}`), `a search hit's header says "${head}"`);
  await page.click(`${hit} [data-test=redact]`);
  await page.click(`${hit} [data-test=redact]`);
  await page.waitForSelector(`${hit}[data-redacted=true]`, { timeout: 3000 });
  await page.waitForSelector(`[data-test=message][data-mid="${said}"][data-redacted=true]`, { timeout: 3000 });

  // A property change shows in the header.
  await page.fill('[data-test=prop-key]', 'default_rights');
  await page.fill('[data-test=prop-value]', 'r');
  await page.click('[data-test=prop-submit]');
  await page.waitForFunction(() => document.querySelector('[data-test=room-default-rights]').textContent === 'r', null, { timeout: 5000 })
    .catch(() => { throw new Error('the room header did not show the new default rights'); });

  // Rights past the first 200, and unban giving back "r".
  await page.click('[data-test=rights-more]');
  await page.waitForSelector('[data-test=right][data-user=u203] [data-test=unban]');
  ok(await page.locator('[data-test=right]').count() > 200, 'More did not add the rights past 200');
  await page.selectOption('[data-test=right][data-user=u203] [data-test=unban-mask]', 'r');
  await page.click('[data-test=right][data-user=u203] [data-test=unban]');
  await page.waitForFunction(() => {
    const c = document.querySelector('[data-test=right][data-user=u203] [data-test=right-mask]');
    return c && c.textContent === 'r';
  }, null, { timeout: 5000 }).catch(() => { throw new Error('unban with "r" did not show u203 with r'); });
  ok(await page.evaluate(() => document.querySelector('[data-test=status]').children.length) <= 1, 'results queue up in the status area');
  // Erase on the room page: u150 wrote nothing here.
  await page.fill('[data-test=room-erase-user]', 'u150');
  await page.click('[data-test=room-erase]');
  await page.click('[data-test=room-erase]');
  await page.waitForFunction(() => (document.querySelector('[data-test=room-erase-result]') || {}).textContent === 'Erased 0 messages of u150 in ops-flood',
    null, { timeout: 6000 }).catch(async () => {
    throw new Error(`erase on the room page said "${await page.textContent('[data-test=room-erase-result]')}"`);
  });
  // A ban through chmod ("=" with no letters) asks twice, as the Ban button does.
  await page.fill('[data-test=chmod-user]', 'u150');
  await page.selectOption('[data-test=chmod-operator]', '=');
  await page.fill('[data-test=chmod-mask]', '');
  await page.click('[data-test=chmod-submit]');
  ok(/Confirm/.test(await page.textContent('[data-test=chmod-submit]')), 'a ban by chmod did not ask for a second click');
  ok((await api('GET', `/api/server/rooms/${FLOOD}/rights?after=u149&limit=1`)).data.rights[0].mask === 'r', 'the first click banned already');
  await page.click('[data-test=chmod-submit]');
  const banned = async () => (await api('GET', `/api/server/rooms/${FLOOD}/rights?after=u149&limit=1`)).data.rights[0].mask === '';
  for (let i = 0; i < 50 && !(await banned()); i += 1) await page.waitForTimeout(100);
  ok(await banned(), 'the second click did not ban u150');

  // 330 more: at most 300 rows stay, with "older messages are not shown" on top.
  await toBottom(page);
  let last = 0;
  for (let i = 0; i < 330; i += 15) {
    const got = await Promise.all(Array.from({ length: Math.min(15, 330 - i) }, (_, k) => publish(api, `flood ${i + k}`)));
    last = Math.max(last, ...got);
  }
  await hasRow(page, last, 20000).catch(() => { throw new Error('the newest flood message did not show'); });
  const count = await rowsShown(page);
  ok(count <= 300, `${count} rows in the page`);
  ok(await page.isVisible('[data-test=messages-older-row]'), 'no "older messages are not shown" row');

  // Scrolled up at the cap: new messages wait, said so twice ("not shown yet" row, "below" button).
  await page.evaluate(() => { document.querySelector('.msg-scroll').scrollTop = 0; });
  const late = [];
  for (let i = 0; i < 3; i += 1) late.push(await publish(api, `late ${i}`));
  await page.waitForSelector('[data-test=new-below]:not([hidden])', { timeout: 6000 });
  ok(await page.isVisible('[data-test=messages-gap]'), 'no "newer messages are not shown" row while reading at the cap');
  await shots('room-flood');
  await page.evaluate(() => { document.querySelector('.msg-scroll').scrollTop = 0; });
  await page.click('[data-test=new-below]');
  await hasRow(page, late[2], 6000);
  await page.waitForSelector('[data-test=new-below]', { state: 'hidden' });
  ok(!(await page.isVisible('[data-test=messages-gap]')) && (await rowsShown(page)) <= 300, 'after "new messages below" the list is not caught up or over the cap');

  // Load older at the cap: older rows come, the newest make room (and say so).
  const oldest = await page.getAttribute('[data-test=messages] [data-test=message]', 'data-mid');
  await page.click('[data-test=messages-older]');
  await page.waitForFunction((o) => Number(document.querySelector('[data-test=messages] [data-test=message]').getAttribute('data-mid')) < o, Number(oldest));
  ok(await page.isVisible('[data-test=messages-gap]') && (await rowsShown(page)) <= 300, 'Load older at the cap');
  await page.click('[data-test=messages-newer]');
  await hasRow(page, late[2], 6000);
}

/** Leaving the page forgets the key; a pasted `api_key = "..."` line signs in. */
export async function leaving({ page, key }) {
  await page.goto('about:blank');
  await page.goBack();
  await page.waitForSelector('[data-test=signin-key]', { state: 'visible' });
  ok(!(await page.isVisible('#app')) && (await page.inputValue('[data-test=signin-key]')) === '', 'Back brought a signed-in console');
  await page.fill('[data-test=signin-key]', `api_key = "${key}"`);
  await page.click('[data-test=signin-submit]');
  await page.waitForSelector('#app', { state: 'visible' }).catch(() => { throw new Error('a pasted api_key = "…" line did not sign in'); });
  await page.evaluate(() => window.dispatchEvent(new PageTransitionEvent('pagehide', { persisted: true })));
  ok(await page.isVisible('[data-test=signin-key]') && !(await page.isVisible('#app')), 'pagehide kept the console signed in');
}

/**
 * Media with a real publication: this page publishes Chromium's fake camera and microphone over WHIP (as
 * member bob, from the page's own origin), the media page lists it connected, and End (confirmed) ends it.
 */
export async function mediaLive({ page, shots }) {
  const status = await page.evaluate(async () => {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    const pc = new RTCPeerConnection();
    for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((done) => {
      if (pc.iceGatheringState === 'complete') return done();
      pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && done());
      setTimeout(done, 3000);
    });
    const res = await fetch('/whip/im', {
      method: 'POST',
      headers: { 'content-type': 'application/sdp', authorization: 'Bearer bob' },
      body: pc.localDescription.sdp,
    });
    const answer = await res.text();
    if (res.status === 201) await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    window.oddTestPeer = pc;
    return res.status;
  });
  ok(status === 201, `the WHIP publication answered ${status}`);
  await page.click('[data-test=nav-media]');
  await page.waitForFunction(() => [...document.querySelectorAll('[data-test=peer]')]
    .some((r) => /publisher/.test(r.textContent) && /whip/.test(r.textContent) && /connected/i.test(r.textContent) && !/not connected/i.test(r.textContent)),
  null, { timeout: 15000 }).catch(async () => {
    throw new Error(`no connected WHIP publisher listed: ${await page.textContent('[data-test=media]')}`);
  });
  const id = await page.getAttribute('[data-test=peer]', 'data-id');
  ok(/^http-[0-9a-f]{24}$/.test(id || ''), `a WHIP peer's id shows the resource number: ${id}`);
  await shots('media-live');
  const end = page.locator(`[data-test=peer][data-id="${id}"] [data-test=end]`);
  await end.click();
  await end.click();
  await page.waitForSelector('[data-test=media-empty]:not([hidden])', { timeout: 8000 })
    .catch(() => { throw new Error('the ended publication is still listed'); });
  await page.evaluate(() => window.oddTestPeer && window.oddTestPeer.close());
}

/**
 * A web page of another origin (an app's page, as odd.js v2.5.08 publishes from) publishes Chromium's fake
 * camera over WHIP and ends it: Chromium makes the CORS preflight itself, the page reads the exposed,
 * absolute `Location` and sends its DELETE there. The page is the gateway's `/healthz` under `localhost`
 * while the calls go to `127.0.0.1`: another origin, and still a secure context for the camera.
 */
export async function webPageWhip({ context, base }) {
  const gw = new URL(base);
  if (gw.hostname !== '127.0.0.1') throw new Error(`the cross-origin check needs a 127.0.0.1 gateway, not ${base}`);
  const other = await context.newPage();
  try {
    await other.goto(`http://localhost:${gw.port}/healthz`);
    const got = await other.evaluate(async (target) => {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
      const pc = new RTCPeerConnection();
      for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise((done) => {
        if (pc.iceGatheringState === 'complete') return done();
        pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && done());
        setTimeout(done, 3000);
      });
      let res;
      try {
        // As member bob (this gateway takes no guests): the preflight covers Authorization too.
        res = await fetch(`${target}/whip/live`, { method: 'POST', headers: { 'content-type': 'application/sdp', authorization: 'Bearer bob' }, body: pc.localDescription.sdp });
      } catch (e) {
        return { error: `the POST failed: ${e}` };
      }
      const location = res.headers.get('location');
      const answer = await res.text();
      if (res.status === 201) await pc.setRemoteDescription({ type: 'answer', sdp: answer });
      let deleted = null;
      if (location) {
        try {
          deleted = (await fetch(location, { method: 'DELETE' })).status;
        } catch (e) {
          deleted = `failed: ${e}`;
        }
      }
      pc.close();
      stream.getTracks().forEach((t) => t.stop());
      return { origin: location ? window.origin : '', status: res.status, location, deleted };
    }, gw.origin);
    ok(!got.error, `a page of another origin: ${got.error}`);
    ok(got.status === 201, `a page of another origin: WHIP answered ${got.status}`);
    ok(typeof got.location === 'string' && got.location.startsWith(`${gw.origin}/rtc/resources/`),
      `a page of another origin (${got.origin}) read the Location ${got.location}`);
    ok(got.deleted === 200, `a page of another origin: DELETE on the Location answered ${got.deleted}`);
  } finally {
    await other.close();
  }
}
