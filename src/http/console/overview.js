// Overview: a card per node (this one first), refreshed every 2 s. Cards are built once and then only their
// figures change (text of fixed-width cells), so the layout does not move as numbers update. When a read
// fails the figures stay, greyed out and marked as of the last read, never as if they were current.

import { h, replace, fmtInt, fmtRate, fmtBytes, fmtDuration, fmtTime, idText, errorText } from './dom.js';

/** The order transports are listed in; any other the server reports follows, by name. */
const TRANSPORTS = ['tcp', 'tls', 'quic', 'ws', 'http', 'https'];
/** What a transport is called where its name alone says less than it counts. */
const TRANSPORT_LABELS = { ws: 'ws (and wss)' };

const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);

export function render(ctx, main) {
  document.title = 'Overview · odd-gateway console';
  const updated = h('p', { class: 'muted page-note', 'data-test': 'overview-updated', text: 'Loading…' });
  const grid = h('div', { class: 'cards', 'data-test': 'nodes' });
  replace(main,
    h('div', { class: 'page-head' },
      h('h1', { tabindex: '-1', text: 'Overview' }),
      updated),
    grid);

  const cards = new Map();
  let lastRead = null;
  ctx.poll(2000, async () => {
    let d;
    try {
      d = await ctx.get('/api/server/nodes');
    } catch (e) {
      if (!ctx.alive() || (e && e.name === 'AbortError')) throw e;
      grid.classList.add('stale');
      grid.setAttribute('data-stale', 'true');
      updated.replaceChildren(h('strong', { class: 'bad', text: 'Not current: ' }), idText(errorText(e)),
        lastRead === null ? '. ' : `. The figures below were last read at ${fmtTime(lastRead)}. `, 'Trying again every 2 s.');
      updated.classList.add('stale-note');
      throw e;
    }
    if (!ctx.alive()) return;
    lastRead = Date.now();
    grid.classList.remove('stale');
    grid.removeAttribute('data-stale');
    updated.classList.remove('stale-note');
    const nodes = d && Array.isArray(d.nodes) ? d.nodes : [];
    const self = d && typeof d.self === 'string' ? d.self : '';
    const seen = new Set();
    nodes.forEach((n, i) => {
      if (!n || typeof n !== 'object') return;
      const name = typeof n.node === 'string' && n.node ? n.node : `node ${i + 1}`;
      if (seen.has(name)) return;
      seen.add(name);
      let card = cards.get(name);
      if (!card) {
        card = makeCard(name, name === self);
        cards.set(name, card);
      }
      // Keep the server's order (this node first) without moving cards that are already in place.
      const at = grid.children[seen.size - 1];
      if (at !== card.el) grid.insertBefore(card.el, at || null);
      updateCard(card, n);
    });
    for (const [name, card] of cards) {
      if (!seen.has(name)) {
        card.el.remove();
        cards.delete(name);
      }
    }
    if (nodes.length === 0) updated.textContent = 'No node reported figures.';
    else updated.textContent = `${nodes.length === 1 ? '1 node' : `${nodes.length} nodes`} · updated ${fmtTime(Date.now())} · every 2 s`;
  });
}

/** A `<dl>` of named figures; returns it and its value cells by key. */
function stats(rows, cells) {
  const dl = h('dl', { class: 'stats' });
  for (const [key, label] of rows) {
    const dd = h('dd', { class: 'num', 'data-stat': key, text: '—' });
    cells[key] = dd;
    dl.append(h('dt', { text: label }), dd);
  }
  return dl;
}

function group(title, ...children) {
  return h('section', { class: 'group' }, h('h3', { text: title }), children);
}

function makeCard(name, isSelf) {
  const v = {};
  const sub = h('p', { class: 'card-sub muted', 'data-test': 'node-sub', text: '' });
  const meter = h('meter', { class: 'mem-meter', min: '0', max: '1', value: '0', 'aria-label': `Memory used on ${name}` });
  const hooks = h('dl', { class: 'stats', 'data-test': 'hooks' });
  const conns = h('dl', { class: 'stats', 'data-test': 'connections' });
  const single = h('p', { class: 'single-node', 'data-test': 'single-node', hidden: true, text: 'single node (no bus)' });
  const bus = stats([['bus.connected', 'bus'], ['bus.nodes', 'nodes alive']], v);
  const el = h('article', { class: 'card node-card', 'data-test': 'node-card', 'data-node': name },
    h('div', { class: 'card-head' },
      h('h2', { class: 'node-name' }, idText(name)),
      isSelf ? h('span', { class: 'badge', text: 'this node' }) : null),
    sub,
    h('div', { class: 'card-grid' },
      group('Connections', conns),
      group('Traffic', stats([
        ['rate.msgs', 'messages/s'],
        ['rate.rx', 'frames in/s'],
        ['rate.tx', 'frames out/s'],
        ['stored', 'messages stored'],
      ], v)),
      group('Rooms', stats([
        ['rooms', 'rooms in use'],
        ['members', 'member pipes'],
        ['parked', 'parked sessions'],
      ], v)),
      group('Store', stats([['store.backend', 'backend'], ['store.up', 'state']], v)),
      group('Memory', meter, stats([['mem.used', 'held now'], ['mem.budget', 'budget']], v),
        h('p', { class: 'hint', text: 'Bytes held now in queues and reassembly, against the memory budget.' })),
      group('Media', stats([['rtc.pub', 'publications'], ['rtc.play', 'players']], v)),
      group('Cluster', single, bus),
      group('Hook backlog', hooks)));
  return { el, v, sub, meter, hooks, conns, single, bus, prev: null, rates: null, hookCells: new Map(), hooksShown: false, connCells: null };
}

/** Rates from the previous sample of this node: counter differences over the time between the samples. */
function rates(card, n) {
  const frames = n.frames && typeof n.frames === 'object' ? n.frames : {};
  const cur = { at: num(n.at), msgs: num(n.messages_stored), rx: num(frames.received), tx: num(frames.sent) };
  const p = card.prev;
  if (cur.at === null) return card.rates;
  if (p && cur.at > p.at) {
    const dt = (cur.at - p.at) / 1000;
    const per = (a, b) => (a !== null && b !== null && a >= b ? (a - b) / dt : null);
    card.rates = { msgs: per(cur.msgs, p.msgs), rx: per(cur.rx, p.rx), tx: per(cur.tx, p.tx) };
  }
  if (!p || cur.at > p.at) card.prev = cur;
  return card.rates;
}

function set(cell, text, cls) {
  if (cell.textContent !== text) cell.textContent = text;
  if (cls !== undefined) {
    cell.classList.toggle('ok', cls === 'ok');
    cell.classList.toggle('bad', cls === 'bad');
  }
}

function updateCard(card, n) {
  const { v } = card;
  const bits = [];
  if (typeof n.version === 'string') bits.push(`version ${n.version}`);
  if (num(n.uptime_s) !== null) bits.push(`up ${fmtDuration(n.uptime_s)}`);
  if (num(n.at) !== null) bits.push(`read ${fmtTime(n.at)}`);
  set(card.sub, bits.join(' · '));

  updateConnections(card, n.connections && typeof n.connections === 'object' && !Array.isArray(n.connections) ? n.connections : {});

  const r = rates(card, n);
  set(v['rate.msgs'], r ? fmtRate(r.msgs) : '—');
  set(v['rate.rx'], r ? fmtRate(r.rx) : '—');
  set(v['rate.tx'], r ? fmtRate(r.tx) : '—');
  set(v.stored, fmtInt(num(n.messages_stored)));

  set(v.rooms, fmtInt(num(n.rooms)));
  set(v.members, fmtInt(num(n.members)));
  set(v.parked, fmtInt(num(n.sessions_parked)));

  const store = n.store && typeof n.store === 'object' ? n.store : {};
  set(v['store.backend'], typeof store.backend === 'string' ? store.backend : '—');
  if (store.up === true) set(v['store.up'], 'up', 'ok');
  else if (store.up === false) set(v['store.up'], 'down', 'bad');
  else set(v['store.up'], '—', '');

  const mem = n.memory && typeof n.memory === 'object' ? n.memory : {};
  const used = num(mem.used_bytes);
  const budget = num(mem.budget_bytes);
  set(v['mem.used'], fmtBytes(used));
  set(v['mem.budget'], budget ? fmtBytes(budget) : 'none');
  if (budget && budget > 0) {
    card.meter.max = budget;
    card.meter.low = budget * 0.7;
    card.meter.high = budget * 0.9;
    card.meter.optimum = 0;
    card.meter.value = used === null ? 0 : Math.min(used, budget);
    card.meter.title = `${fmtBytes(used)} of ${fmtBytes(budget)}`;
  } else {
    card.meter.max = 1;
    card.meter.value = 0;
    card.meter.title = 'no memory budget';
  }

  const rtc = n.rtc && typeof n.rtc === 'object' ? n.rtc : {};
  set(v['rtc.pub'], fmtInt(num(rtc.publications)));
  set(v['rtc.play'], fmtInt(num(rtc.players)));

  // `cluster: false`: a single node without a bus, where bus figures mean nothing.
  card.single.hidden = n.cluster !== false;
  card.bus.hidden = n.cluster === false;
  const bus = n.bus && typeof n.bus === 'object' ? n.bus : {};
  if (bus.connected === true) set(v['bus.connected'], 'connected', 'ok');
  else if (bus.connected === false) set(v['bus.connected'], 'not connected', 'bad');
  else set(v['bus.connected'], '—', '');
  set(v['bus.nodes'], fmtInt(num(bus.nodes)));

  updateHooks(card, n.hooks && typeof n.hooks === 'object' && !Array.isArray(n.hooks) ? n.hooks : {});
}

/** Connections by transport (whichever the node reports, in a stable order) and their total. */
function updateConnections(card, conn) {
  const names = Object.keys(conn).sort((a, b) => {
    const ia = TRANSPORTS.indexOf(a);
    const ib = TRANSPORTS.indexOf(b);
    if (ia !== ib) return (ia < 0 ? TRANSPORTS.length : ia) - (ib < 0 ? TRANSPORTS.length : ib);
    return a < b ? -1 : a > b ? 1 : 0;
  });
  const cells = card.connCells;
  const same = cells && names.length === cells.size - 1 && names.every((k) => cells.has(k));
  if (!same) {
    card.connCells = new Map();
    card.conns.replaceChildren(
      ...[...names, ''].flatMap((name) => {
        const dd = h('dd', { class: 'num', 'data-stat': name ? `conn.${name}` : 'conn.total' });
        card.connCells.set(name, dd);
        return [h('dt', { text: name ? (TRANSPORT_LABELS[name] || name) : 'total' }), dd];
      }),
    );
  }
  let total = 0;
  for (const name of names) {
    const c = num(conn[name]);
    if (c !== null) total += c;
    set(card.connCells.get(name), fmtInt(c));
  }
  set(card.connCells.get(''), fmtInt(total));
}

function updateHooks(card, hooks) {
  const names = Object.keys(hooks).sort();
  const same = card.hooksShown && names.length === card.hookCells.size && names.every((k) => card.hookCells.has(k));
  if (!same) {
    card.hooksShown = true;
    card.hookCells.clear();
    card.hooks.replaceChildren();
    if (names.length === 0) {
      card.hooks.append(h('dt', { text: 'hooks' }), h('dd', { class: 'num', text: 'none' }));
    }
    for (const name of names) {
      const dd = h('dd', { class: 'num' });
      card.hookCells.set(name, dd);
      card.hooks.append(h('dt', { class: 'hook-name', text: name }), dd);
    }
  }
  for (const name of names) {
    const c = num(hooks[name]);
    set(card.hookCells.get(name), c === null ? '—' : fmtInt(c), c ? 'bad' : '');
  }
}
