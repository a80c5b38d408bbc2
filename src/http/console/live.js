// A room's live message list. It shows one contiguous stretch of the room's history, never with a hole in it:
// new messages are read with `after=` the newest row shown, page after page (pages are cut at 1 MiB, so a
// page may hold few messages), a bounded number of pages per poll, going on at the next poll; nothing between
// two rows is ever skipped. At most CAP rows stay in the page: while the operator follows the bottom the
// oldest rows go ("Older messages are not shown · Load older" at the top); while they read further up, new
// rows stop at the cap ("Newer messages are not shown yet · Load newer" at the bottom, and a "new messages
// below" button), so what they read does not move away. Rows keep in step with redactions: the newest page is
// re-read at every poll, the older rows a page at a time every few polls, and a redaction made here at once.

import { seg } from './api.js';
import { h, section, fmtTime, plural, hold } from './dom.js';
import { makeRow, refill, roving, signature } from './msgview.js';

const LIVE_MS = 1500;
const PAGE = 50;
/** The most rows kept in the page. */
export const CAP = 300;
/** The most pages read in one poll to catch up (the rest at the next poll). */
const BUDGET = 6;
/** Every SWEEP-th poll re-reads one page of the older rows, for redactions made elsewhere. */
const SWEEP = 3;

const midOf = (m) => (m && typeof m === 'object' ? Number(m.mid) : NaN);
/** A message without its data: what a row keeps to redraw itself as a tombstone. */
const light = ({ data, ...rest }) => rest;
const pageOf = (d) => (d && Array.isArray(d.messages) ? d.messages.filter((m) => Number.isFinite(midOf(m))) : []);

/** The live list of room `rid`. `onRedact(mid)` redacts (the room page wires it). Returns
 * `{el, refresh, redacted(mid), reload()}`. */
export function livePanel(ctx, rid, onRedact) {
  const path = `/api/server/rooms/${seg(rid)}/messages`;
  const rows = new Map();
  let mids = [];
  let hi = null;
  let olderMore = false;
  let newerMore = false;
  let first = true;
  let unseen = 0;
  let polls = 0;
  let sweepAfter = null;
  let busy = null;

  const opts = { onRedact };
  const list = h('ol', { class: 'msgs', 'data-test': 'messages', 'aria-label': 'Messages, oldest first' });
  const rv = roving(list, 'last');
  const empty = h('p', { class: 'empty', 'data-test': 'messages-empty', hidden: true, text: 'No messages yet.' });
  const olderBtn = h('button', { type: 'button', class: 'btn btn-small', 'data-test': 'messages-older', text: 'Load older' });
  const olderRow = h('div', { class: 'msg-gap', 'data-test': 'messages-older-row', hidden: true },
    h('span', { text: 'Older messages are not shown.' }), olderBtn);
  const newerText = h('span', { 'data-test': 'messages-gap-text' });
  const newerBtn = h('button', { type: 'button', class: 'btn btn-small', 'data-test': 'messages-newer', text: 'Load newer' });
  const newerRow = h('div', { class: 'msg-gap', 'data-test': 'messages-gap', hidden: true }, newerText, newerBtn);
  const scroller = h('div', { class: 'msg-scroll', role: 'region', 'aria-label': 'Messages' }, olderRow, list, newerRow, empty);
  const below = h('button', { type: 'button', class: 'btn btn-small new-below', 'data-test': 'new-below', hidden: true });
  const note = h('span', { class: 'muted live-note', 'data-test': 'live-note', text: 'Loading…' });

  const atBottom = () => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 24;
  // Whether the operator follows the bottom: set by scrolling only, so rows or notes appearing below the
  // view (which move the bottom away) do not turn a follower into a reader.
  let following = true;

  /** Runs `fn` (which changes rows) keeping the row at the top of the view where it is on screen. */
  function steady(fn) {
    const top = scroller.getBoundingClientRect().top;
    const anchor = [...list.children].find((li) => li.getBoundingClientRect().bottom > top);
    const was = anchor ? anchor.getBoundingClientRect().top : 0;
    fn();
    if (anchor && anchor.isConnected) scroller.scrollTop += anchor.getBoundingClientRect().top - was;
  }

  function show() {
    rv.sync();
    empty.hidden = rows.size > 0 || olderMore || newerMore;
    olderRow.hidden = !olderMore;
    newerRow.hidden = !newerMore;
    newerText.textContent = `Newer messages (after #${hi}) are not shown yet.`;
    if (following) {
      scroller.scrollTop = scroller.scrollHeight;
      unseen = 0;
    }
    below.hidden = following || (unseen === 0 && !newerMore);
    below.textContent = unseen > 0 ? `${plural(unseen, 'new message', 'new messages')} below` : 'Newer messages below';
  }

  /** Updates the row of `m` if it is shown; returns whether it is. */
  function update(m) {
    const have = rows.get(midOf(m));
    if (!have) return false;
    const sig = signature(m);
    if (have.sig !== sig) {
      have.sig = sig;
      have.m = light(m);
      refill(have.li, m, opts);
      rv.refresh(have.li);
    }
    return true;
  }

  /** Shows `m` in its place by mid (or updates it). */
  function insert(m) {
    if (update(m)) return;
    const mid = midOf(m);
    const li = makeRow(m, 'message', opts);
    rows.set(mid, { li, sig: signature(m), m: light(m) });
    let lo = 0;
    let up = mids.length;
    while (lo < up) {
      const k = (lo + up) >> 1;
      if (mids[k] < mid) lo = k + 1;
      else up = k;
    }
    list.insertBefore(li, lo < mids.length ? rows.get(mids[lo]).li : null);
    mids.splice(lo, 0, mid);
  }

  function drop(mid) {
    const r = rows.get(mid);
    if (r) r.li.remove();
    rows.delete(mid);
  }

  /** Drops rows beyond CAP: the oldest (`fromTop`) or the newest. */
  function trim(fromTop) {
    if (mids.length <= CAP) return;
    const gone = fromTop ? mids.slice(0, mids.length - CAP) : mids.slice(CAP);
    for (const mid of gone) drop(mid);
    mids = fromTop ? mids.slice(mids.length - CAP) : mids.slice(0, CAP);
    if (fromTop) olderMore = true;
    else {
      hi = mids[mids.length - 1];
      newerMore = true;
    }
  }

  /**
   * Adds messages newer than `hi` (ascending, adjacent to it). `follow`: the oldest rows make room; else rows
   * stop at the cap. Returns whether all of them were shown.
   */
  function addNewer(got, follow) {
    let add = got.filter((m) => midOf(m) > hi);
    let all = true;
    if (!follow && mids.length + add.length > CAP) {
      add = add.slice(0, Math.max(0, CAP - mids.length));
      all = false;
    }
    if (!add.length) return all;
    const apply = () => {
      for (const m of add) insert(m);
      hi = Math.max(hi, midOf(add[add.length - 1]));
      trim(true);
    };
    if (following) {
      apply();
      scroller.scrollTop = scroller.scrollHeight;
    } else {
      steady(apply);
      unseen += add.length;
    }
    return all;
  }

  /** Reads `after=hi` pages until caught up, at most BUDGET of them; `follow` as for addNewer. */
  async function catchUp(follow) {
    for (let n = 0; n < BUDGET; n += 1) {
      if (!follow && mids.length >= CAP) {
        newerMore = true;
        return;
      }
      const d = await ctx.get(path, { after: hi, limit: PAGE });
      if (!ctx.alive()) return;
      const got = pageOf(d);
      const all = addNewer(got, follow);
      newerMore = !all || (Boolean(d && d.more) && got.length > 0);
      if (!newerMore) return;
      show();
    }
  }

  async function initial() {
    const d = await ctx.get(path, { limit: PAGE });
    if (!ctx.alive()) return;
    const got = pageOf(d);
    for (const m of got) insert(m);
    trim(true);
    hi = mids.length ? mids[mids.length - 1] : 0;
    olderMore = Boolean(d && d.more) && got.length > 0;
    first = false;
    show();
    scroller.scrollTop = scroller.scrollHeight;
  }

  /** Re-reads `after=` pages over the rows shown from `from` (a mid below the first), updating them only. */
  async function reread(from, maxPages) {
    let after = from;
    for (let n = 0; n < maxPages && after < hi; n += 1) {
      const d = await ctx.get(path, { after, limit: PAGE });
      if (!ctx.alive()) return null;
      const got = pageOf(d);
      for (const m of got) update(m);
      if (!got.length || !(d && d.more)) return null;
      after = midOf(got[got.length - 1]);
    }
    return after < hi ? after : null;
  }

  async function poll() {
    if (first) {
      await initial();
      if (ctx.alive()) note.textContent = `Live · updated ${fmtTime(Date.now())}`;
      return;
    }
    polls += 1;
    const follow = following;
    // The newest page: the tail's redactions, and whether anything is newer than the last row shown.
    const d = await ctx.get(path, { limit: PAGE });
    if (!ctx.alive()) return;
    const got = pageOf(d);
    for (const m of got) update(m);
    const newest = got.length ? midOf(got[got.length - 1]) : null;
    if (newest !== null && newest > hi) {
      // The page reaches back to what is shown (or holds the whole room): it has every new message.
      if (!(d && d.more) || midOf(got[0]) <= hi) newerMore = !addNewer(got, follow);
      else await catchUp(follow);
    } else if (newest !== null && newest <= hi) newerMore = false;
    if (ctx.alive() && polls % SWEEP === 0 && mids.length > PAGE) {
      sweepAfter = await reread(sweepAfter === null ? mids[0] - 1 : sweepAfter, 1);
    }
    if (!ctx.alive()) return;
    show();
    note.textContent = `Live · updated ${fmtTime(Date.now())}${newerMore && follow ? ' · catching up' : ''}`;
  }

  /** One read at a time: a button's read waits for the poll's and the other way round. */
  function serial(fn) {
    const run = (busy || Promise.resolve()).then(fn);
    // `busy` never rejects (the caller of `run` hears of its failure), so nothing is left unhandled.
    const done = run.catch(() => {});
    busy = done;
    done.then(() => {
      if (busy === done) busy = null;
    });
    return run;
  }

  const refresh = () => serial(poll);

  async function loadOlder() {
    if (!mids.length) return;
    const d = await ctx.get(path, { before: mids[0], limit: PAGE });
    if (!ctx.alive()) return;
    const got = pageOf(d);
    const focused = document.activeElement === olderBtn;
    steady(() => {
      for (const m of got) insert(m);
      trim(false);
    });
    olderMore = Boolean(d && d.more) && got.length > 0;
    show();
    if (olderRow.hidden && focused && mids.length) rows.get(mids[0]).li.focus();
  }

  async function loadNewer() {
    await catchUp(true);
    show();
  }

  function button(btn, fn, label) {
    btn.addEventListener('click', async () => {
      const release = hold(btn);
      if (!release) return;
      try {
        await serial(fn);
      } catch (e) {
        ctx.fail(e, label);
      } finally {
        release();
      }
    });
  }
  button(olderBtn, loadOlder, 'Older messages');
  button(newerBtn, loadNewer, 'Newer messages');
  below.addEventListener('click', async () => {
    following = true;
    show();
    try {
      if (newerMore) await serial(loadNewer);
    } catch (e) {
      ctx.fail(e, 'Newer messages');
    }
    show();
    const last = mids.length ? rows.get(mids[mids.length - 1]).li : null;
    if (last) last.focus({ preventScroll: true });
  });
  scroller.addEventListener('scroll', () => {
    const was = following;
    following = atBottom();
    if (following !== was || (following && !below.hidden)) show();
  }, { passive: true });

  /** Message `mid` was redacted from this console: its row turns into a tombstone at once, then the stored one. */
  async function redacted(mid, by) {
    const have = rows.get(Number(mid));
    if (!have) return;
    update({ ...have.m, data: null, size: 0, redacted: true, redacted_by: by, redacted_at: Date.now() });
    try {
      const d = await ctx.get(path, { before: Number(mid) + 1, limit: 1 });
      const m = pageOf(d)[0];
      if (ctx.alive() && m && midOf(m) === Number(mid) && m.redacted) update(m);
    } catch (e) {
      ctx.fail(e);
    }
  }

  /** Re-reads every row shown (after an erase). */
  const reload = () => serial(async () => {
    if (mids.length) await reread(mids[0] - 1, 1000);
  });

  ctx.poll(LIVE_MS, refresh);

  const el = section('Messages', { class: 'panel-messages', 'data-test': 'messages-panel' },
    h('div', { class: 'panel-bar' }, note,
      h('span', { class: 'muted hint', text: `The newest ${CAP} at most; arrow keys move between messages.` })),
    h('div', { class: 'msg-wrap' }, scroller, below));
  return { el, refresh, redacted, reload };
}
