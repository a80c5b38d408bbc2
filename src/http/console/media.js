// Media: publications and players on this node, refreshed every 3 s; rows keyed by peer id (an opaque string,
// such as `http-<hex>` for a WHIP/WHEP peer) and updated in place (so a half-confirmed End button survives a
// refresh).

import { h, replace, section, fmtTime, fmtDuration, confirmButton, say, idText } from './dom.js';

const COLUMNS = ['Peer', 'Role', 'Stream', 'Via', 'State', 'Age', ''];

export function render(ctx, main) {
  document.title = 'Media · odd-gateway console';
  const tbody = h('tbody', { 'data-test': 'peers' });
  const table = h('table', { class: 'table table-stack', hidden: true },
    h('caption', { class: 'sr-only', text: 'Publications and players' }),
    h('thead', null, h('tr', null, COLUMNS.map((c) => h('th', { scope: 'col' }, c ? c : h('span', { class: 'sr-only', text: 'Actions' }))))),
    tbody);
  const empty = h('p', { class: 'empty', 'data-test': 'media-empty', hidden: true, text: 'No publications or players.' });
  const note = h('p', { class: 'muted page-note', 'data-test': 'media-updated', text: 'Loading…' });
  replace(main,
    h('div', { class: 'page-head' }, h('h1', { tabindex: '-1', text: 'Media' }),
      h('p', { class: 'muted page-note', 'data-test': 'media-about', text: 'The SFU’s publications and players on this node; this page refreshes itself every 3 s.' }),
      note),
    section('Publications and players', { 'data-test': 'media' },
      h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Publications and players' }, table),
      empty));

  const rows = new Map();

  async function end(id) {
    const d = await ctx.act(() => ctx.post('/api/server/media/end', { id }), `End ${id}`);
    if (d) say(['Peer ', idText(id), ' ended']);
    if (ctx.alive()) load().catch((e) => ctx.fail(e));
  }

  function makeRow(id) {
    const cells = {};
    const td = (k, label, cls) => {
      const cell = h('td', { class: cls, 'data-label': label });
      cells[k] = h('span');
      cell.append(cells[k]);
      return cell;
    };
    const tr = h('tr', { 'data-test': 'peer', 'data-id': id },
      td('id', 'Peer', 'wrap-id'), td('role', 'Role'), td('stream', 'Stream', 'wrap-id'), td('via', 'Via'),
      td('state', 'State'), td('age', 'Age', 'nowrap num'),
      h('td', { class: 'cell-actions', 'data-label': '' }, confirmButton('End', 'Confirm end?', () => end(id), {
        class: 'btn-small btn-danger', 'data-test': 'end', 'aria-label': `End peer ${id}`,
      })));
    return { tr, cells, sig: '' };
  }

  function fill(row, p) {
    // How long ago the peer was set up: `age_ms`, or from a `since` timestamp.
    let age = null;
    if (typeof p.age_ms === 'number') age = p.age_ms / 1000;
    else if (typeof p.since === 'number') age = Math.max(0, (Date.now() - p.since) / 1000);
    const ageText = fmtDuration(age === null ? NaN : age);
    const sig = JSON.stringify([p.role, p.stream, p.via, p.connected, ageText]);
    if (sig === row.sig) return;
    row.sig = sig;
    const str = (v) => (typeof v === 'string' && v ? v : '—');
    replace(row.cells.id, idText(p.id));
    row.cells.role.textContent = str(p.role);
    replace(row.cells.stream, idText(str(p.stream)));
    row.cells.via.textContent = str(p.via);
    replace(row.cells.state, h('span', { class: p.connected ? 'ok' : 'bad', text: p.connected ? 'connected' : 'connecting' }));
    row.cells.age.textContent = ageText;
  }

  async function load() {
    const d = await ctx.get('/api/server/media');
    if (!ctx.alive()) return;
    const peers = (d && Array.isArray(d.peers) ? d.peers : []).filter((p) => p && typeof p.id === 'string');
    const seen = new Set();
    peers.forEach((p) => {
      if (seen.has(p.id)) return;
      seen.add(p.id);
      let row = rows.get(p.id);
      if (!row) {
        row = makeRow(p.id);
        rows.set(p.id, row);
      }
      const at = tbody.children[seen.size - 1];
      if (at !== row.tr) tbody.insertBefore(row.tr, at || null);
      fill(row, p);
    });
    for (const [id, row] of rows) {
      if (!seen.has(id)) {
        // A peer that ended: the focus in its row goes to the row now in its place, else the heading.
        const had = row.tr.contains(document.activeElement);
        const next = row.tr.nextElementSibling || row.tr.previousElementSibling;
        row.tr.remove();
        rows.delete(id);
        if (had) {
          const to = next && next.isConnected ? next.querySelector('button') : null;
          (to || main.querySelector('h2')).focus();
        }
      }
    }
    table.hidden = rows.size === 0;
    empty.hidden = rows.size > 0;
    const pubs = peers.filter((p) => p.role === 'publisher').length;
    note.textContent = `${pubs} publishing, ${peers.length - pubs} playing · updated ${fmtTime(Date.now())} · every 3 s`;
  }

  ctx.poll(3000, load);
}
