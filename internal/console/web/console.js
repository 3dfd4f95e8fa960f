// steward console: the pages' behaviour, plain JavaScript without a build
// step. Every page is rendered here from the JSON API (see api.go); text
// that comes from the fleet is only ever set with textContent.
'use strict';

(() => {
  // ---------------------------------------------------------------- helpers

  // h builds an element: attrs sets attributes (class, text for the text
  // content, on<event> for listeners; null/false leave one out); children
  // are nodes or strings (as text).
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'text') el.textContent = value;
      else if (key === 'class') el.className = value;
      else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, value === true ? '' : String(value));
    }
    append(el, children);
    return el;
  }

  function append(el, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  // setText changes an element's text only when it differs (cheap re-renders).
  function setText(el, text) {
    if (el.textContent !== text) el.textContent = text;
  }

  function setAttr(el, name, value) {
    if (value === null || value === undefined) {
      if (el.hasAttribute(name)) el.removeAttribute(name);
    } else if (el.getAttribute(name) !== value) {
      el.setAttribute(name, value);
    }
  }

  // throttle returns a function that runs fn at most once per ms, later
  // when called too soon (calls in between are folded into one).
  function throttle(fn, ms) {
    let timer = null;
    let last = -Infinity;
    const run = () => {
      timer = null;
      last = performance.now();
      fn();
    };
    return () => {
      if (timer !== null) return;
      timer = setTimeout(run, Math.max(0, last + ms - performance.now()));
    };
  }

  function debounce(fn, ms) {
    let timer = null;
    return () => {
      clearTimeout(timer);
      timer = setTimeout(fn, ms);
    };
  }

  // onFrame folds calls into one run of fn at the next animation frame.
  function onFrame(fn) {
    let pending = false;
    return () => {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        fn();
      });
    };
  }

  const utf8 = new TextEncoder();
  const byteLength = (s) => utf8.encode(s).length;

  function parseTime(iso) {
    if (!iso) return 0;
    const t = Date.parse(iso);
    return Number.isNaN(t) ? 0 : t;
  }

  // duration is a short, coarse length of time: 5s, 12m, 3h, 4d.
  function duration(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm';
    if (s < 48 * 3600) return Math.floor(s / 3600) + 'h';
    return Math.floor(s / 86400) + 'd';
  }

  const pad = (n, w = 2) => String(n).padStart(w, '0');

  // clock is a local date and time, 2026-11-29 17:03:05.
  function clock(ms, withMillis) {
    if (!ms) return '';
    const d = new Date(ms);
    const date = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
    const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    return `${date} ${time}${withMillis ? '.' + pad(d.getMilliseconds(), 3) : ''}`;
  }

  function timeEl(ms, text) {
    if (!ms) return h('span', { class: 'muted', text: '—' });
    return h('time', { datetime: new Date(ms).toISOString(), title: clock(ms, true), text: text || clock(ms) });
  }

  const query = () => new URLSearchParams(location.search);

  // keepQuery writes the view's settings into the address (no reload), so a
  // filtered view can be shared and survives a reload.
  function keepQuery(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
    const s = q.toString();
    history.replaceState(null, '', location.pathname + (s ? '?' + s : ''));
  }

  const validNode = (s) => /^[A-Za-z0-9_-]{1,64}$/.test(s);

  // ---------------------------------------------------------------- the API

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.error) || `the console answered ${status}`);
      this.status = status;
      this.code = body && body.code;
      this.body = body;
    }
  }

  // request calls the API; it returns {status, ok, body} for any answer
  // with a JSON body, and throws when there is none (network, not JSON).
  async function request(path, { method = 'GET', body } = {}) {
    const headers = { Accept: 'application/json' };
    if (method !== 'GET') {
      headers['X-Steward-Console'] = '1';
      headers['Content-Type'] = 'application/json';
    }
    let res;
    try {
      res = await fetch(path, { method, headers, body, credentials: 'same-origin' });
    } catch (err) {
      throw new ApiError(0, { error: 'the console cannot be reached: ' + err.message, code: 'unreachable' });
    }
    if (res.status === 401) {
      location.assign('/login');
      throw new ApiError(401, { error: 'the console needs its token', code: 'unauthorized' });
    }
    let data = null;
    try {
      data = await res.json();
    } catch {
      throw new ApiError(res.status, { error: `the console answered ${res.status} without JSON`, code: 'bad_answer' });
    }
    return { status: res.status, ok: res.ok, body: data };
  }

  async function getJSON(path) {
    const res = await request(path);
    if (!res.ok) throw new ApiError(res.status, res.body);
    return res.body;
  }

  // ---------------------------------------------------------------- live events

  const live = document.getElementById('live');

  function showLive(state) {
    if (!live) return;
    live.hidden = false;
    live.dataset.state = state;
    setText(live, { open: 'Live', connecting: 'Reconnecting…', closed: 'Not live: reload the page' }[state]);
  }

  // events opens the console's event stream; handlers maps an event name to
  // a function of its parsed data. reopened runs when the stream came back
  // after a break (events may have been missed: read the state again).
  function events(path, handlers, reopened) {
    const es = new EventSource(path);
    let opened = false;
    es.addEventListener('open', () => {
      showLive('open');
      if (opened && reopened) reopened();
      opened = true;
    });
    es.addEventListener('error', () => showLive(es.readyState === EventSource.CLOSED ? 'closed' : 'connecting'));
    for (const [name, fn] of Object.entries(handlers)) {
      es.addEventListener(name, (e) => {
        let data;
        try {
          data = JSON.parse(e.data);
        } catch {
          return;
        }
        fn(data);
      });
    }
    return es;
  }

  // ---------------------------------------------------------------- page scaffolding

  const main = document.getElementById('main');

  function clearMain() {
    main.replaceChildren();
  }

  function errorBox(err) {
    return h('p', { class: 'notice error', role: 'alert', text: err.message || String(err) });
  }

  // table builds a scrollable table; columns are {label, sort, class}.
  function table(id, caption, columns, onSort) {
    const headRow = h('tr');
    for (const col of columns) {
      const th = h('th', { scope: 'col', class: col.class || null });
      if (col.sort && onSort) {
        th.dataset.sort = col.sort;
        th.append(h('button', { type: 'button', class: 'sort', onclick: () => onSort(col.sort) }, col.label, h('span', { class: 'arrow', 'aria-hidden': 'true' })));
      } else {
        th.textContent = col.label;
      }
      headRow.append(th);
    }
    const tbody = h('tbody');
    const t = h('table', { id, class: 'grid' }, h('caption', { class: 'visually-hidden', text: caption }), h('thead', {}, headRow), tbody);
    const wrap = h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': caption }, t);
    return { wrap, table: t, thead: headRow, tbody };
  }

  // showSort marks the sorted column's header (aria-sort and its arrow).
  function showSort(headRow, key, dir) {
    for (const th of headRow.children) {
      if (!th.dataset.sort) continue;
      const on = th.dataset.sort === key;
      setAttr(th, 'aria-sort', on ? (dir > 0 ? 'ascending' : 'descending') : 'none');
      setText(th.querySelector('.arrow'), on ? (dir > 0 ? ' ▲' : ' ▼') : '');
    }
  }

  // syncRows makes tbody's rows those of items, in order, reusing the row of
  // a key it already shows: create(item) makes a row, update(row, item)
  // brings it up to date.
  function syncRows(tbody, items, key, create, update) {
    const old = new Map();
    for (const tr of tbody.children) if (tr.dataset.key !== undefined) old.set(tr.dataset.key, tr);
    let at = tbody.firstElementChild;
    for (const item of items) {
      const k = key(item);
      let tr = old.get(k);
      if (tr) old.delete(k);
      else {
        tr = create(item);
        tr.dataset.key = k;
      }
      update(tr, item);
      if (tr !== at) tbody.insertBefore(tr, at);
      else at = at.nextElementSibling;
    }
    for (const tr of old.values()) tr.remove();
    for (const tr of [...tbody.children]) if (tr.dataset.key === undefined) tr.remove();
  }

  function emptyRow(tbody, columns, text) {
    const existing = tbody.querySelector('tr.empty');
    if (text === null) {
      if (existing) existing.remove();
      return;
    }
    if (existing) {
      setText(existing.firstElementChild, text);
      return;
    }
    tbody.append(h('tr', { class: 'empty' }, h('td', { colspan: columns, text })));
  }

  function field(id, label, control, hint) {
    const hintEl = hint ? h('p', { class: 'hint', id: id + '-hint', text: hint }) : null;
    if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
    control.id = id;
    return h('div', { class: 'field' }, h('label', { for: id, text: label }), control, hintEl);
  }

  function statusBadge(st, text) {
    return h('span', { class: 'badge s-' + (st || 'unknown'), text: text || st || 'unknown' });
  }

  // The statuses in lifecycle order.
  const STATUSES = ['pending', 'delivered', 'running', 'succeeded', 'failed', 'execution_timed_out', 'delivery_timed_out', 'undeliverable', 'rejected', 'cancelled'];
  const TERMINAL = new Set(STATUSES.slice(3));

  // ---------------------------------------------------------------- fleet view

  const PAGE_ROWS = 300;

  const FLEET_COLUMNS = [
    { label: 'Node', sort: 'name' },
    { label: 'State', sort: 'state' },
    { label: 'Last seen', sort: 'lastSeen' },
    { label: 'Version', sort: 'version' },
    { label: 'Labels', sort: 'labels' },
    { label: 'Methods', sort: 'methods', class: 'num' },
    { label: 'Queue', sort: 'queue', class: 'num' },
    { label: 'Errors (1 h)', sort: 'errors', class: 'num' },
  ];

  // naturalKey sorts ship2 before ship10.
  const naturalKey = (s) => s.toLowerCase().replace(/\d+/g, (d) => d.padStart(12, '0'));

  // nodeEntry is a nodeView as the fleet view keeps it: times parsed, the
  // text the filter searches, the keys it sorts by.
  function nodeEntry(v) {
    const labels = Object.entries(v.labels || {})
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, val]) => `${k}=${val}`);
    const methods = (v.methods || []).slice().sort();
    const labelsText = labels.join(', ');
    return {
      name: v.name,
      sortName: naturalKey(v.name),
      serverOnline: !!v.online,
      online: !!v.online,
      since: parseTime(v.since),
      serverSince: parseTime(v.since),
      lastSeen: parseTime(v.lastSeen),
      windowMs: v.windowMs || 0,
      stopped: !!v.stopped,
      version: v.version || '',
      labelsText,
      methods,
      methodsText: methods.join(', '),
      queue: typeof v.queue === 'number' ? v.queue : null,
      errors1h: v.errors1h || 0,
      conflict: v.conflict || '',
      search: [v.name, v.version || '', ...labels].join('\n').toLowerCase(),
    };
  }

  const FLEET_SORTS = {
    name: () => 0,
    state: (a, b) => (b.online - a.online) || (a.since - b.since),
    lastSeen: (a, b) => b.lastSeen - a.lastSeen,
    version: (a, b) => cmp(a.version, b.version),
    labels: (a, b) => cmp(a.labelsText, b.labelsText),
    methods: (a, b) => a.methods.length - b.methods.length,
    queue: (a, b) => (a.queue ?? -1) - (b.queue ?? -1),
    errors: (a, b) => a.errors1h - b.errors1h,
  };
  const cmp = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

  function fleetPage() {
    const q = query();
    const state = {
      nodes: new Map(),
      offset: 0, // the console's clock minus this browser's
      filter: q.get('q') || '',
      show: ['online', 'offline'].includes(q.get('state')) ? q.get('state') : 'all',
      sort: FLEET_SORTS[q.get('sort')] ? q.get('sort') : 'name',
      dir: q.get('dir') === 'desc' ? -1 : 1,
      limit: PAGE_ROWS,
      list: [],
      dirty: true,
      loaded: false,
      online: 0,
    };
    const now = () => Date.now() + state.offset;

    // The toolbar: filter, state, count, the table, "show more".
    const filter = h('input', { type: 'search', autocomplete: 'off', spellcheck: 'false', placeholder: 'name, label or version' });
    filter.value = state.filter;
    const show = h('select', {}, ['all', 'online', 'offline'].map((s) => h('option', { value: s, text: s === 'all' ? 'All nodes' : s === 'online' ? 'Online' : 'Offline' })));
    show.value = state.show;
    const count = h('p', { id: 'fleet-count', class: 'count' });
    const summary = h('p', { id: 'fleet-summary', class: 'summary muted' });
    const t = table('fleet', 'Nodes of the fleet', FLEET_COLUMNS, sortBy);
    const more = h('button', { type: 'button', id: 'fleet-more', class: 'more', hidden: true, onclick: showMore });

    clearMain();
    append(main, [
      h('div', { class: 'title-row' }, h('h1', { text: 'Fleet' }), summary),
      h('form', { class: 'toolbar', role: 'search', 'aria-label': 'Filter nodes', onsubmit: (e) => e.preventDefault() },
        field('fleet-filter', 'Filter', filter),
        field('fleet-state', 'State', show),
        count),
      t.wrap,
      more,
    ]);

    const renderSoon = onFrame(render);
    const renderLive = throttle(render, 500);

    filter.addEventListener('input', () => {
      state.filter = filter.value;
      changed(true);
      renderSoon();
    });
    show.addEventListener('change', () => {
      state.show = show.value;
      changed(true);
      renderSoon();
    });

    function sortBy(key) {
      if (state.sort === key) state.dir = -state.dir;
      else {
        state.sort = key;
        state.dir = key === 'errors' || key === 'queue' || key === 'lastSeen' ? -1 : 1;
      }
      changed(true);
      renderSoon();
    }

    function showMore() {
      state.limit += PAGE_ROWS;
      render();
    }

    // changed marks the list for filtering and sorting again; byUser also
    // goes back to the first page and keeps the settings in the address.
    function changed(byUser) {
      state.dirty = true;
      if (byUser) {
        state.limit = PAGE_ROWS;
        keepQuery({ q: state.filter, state: state.show === 'all' ? '' : state.show, sort: state.sort === 'name' ? '' : state.sort, dir: state.dir < 0 ? 'desc' : '' });
      }
    }

    // recompute decides each node's state on this browser's clock (offset
    // to the console's): online while it said hello within its window and
    // did not say goodbye. It returns whether a node flipped.
    function recompute() {
      const t0 = now();
      let flipped = false;
      let online = 0;
      for (const n of state.nodes.values()) {
        const on = !n.stopped && n.lastSeen > 0 && t0 - n.lastSeen <= n.windowMs;
        if (on !== n.online) {
          n.online = on;
          flipped = true;
        }
        // The console's "since" holds while its verdict does; a node this
        // browser saw go quiet is offline since it was last seen.
        n.since = on === n.serverOnline ? n.serverSince : n.lastSeen;
        if (on) online++;
      }
      state.online = online;
      return flipped;
    }

    function filtered() {
      const terms = state.filter.toLowerCase().split(/\s+/).filter(Boolean);
      const out = [];
      for (const n of state.nodes.values()) {
        if (state.show === 'online' && !n.online) continue;
        if (state.show === 'offline' && n.online) continue;
        if (terms.length && !terms.every((term) => n.search.includes(term))) continue;
        out.push(n);
      }
      const by = FLEET_SORTS[state.sort];
      const dir = state.dir;
      out.sort((a, b) => dir * (by(a, b) || cmp(a.sortName, b.sortName)));
      return out;
    }

    // What a page's tests and a curious operator can read: each render's
    // duration (ms, the last 500) and how many node changes were applied.
    const stats = (window.stewardConsole = { renderTimes: [], applied: 0 });
    const renderTimes = stats.renderTimes;

    function render() {
      const started = performance.now();
      if (recompute() && (state.show !== 'all' || state.sort === 'state')) state.dirty = true;
      if (state.dirty) {
        state.list = filtered();
        state.dirty = false;
      }
      const visible = state.list.slice(0, state.limit);
      const t0 = now();
      syncRows(t.tbody, visible, (n) => n.name, fleetRow, (tr, n) => updateFleetRow(tr, n, t0));
      emptyRow(t.tbody, FLEET_COLUMNS.length, !state.loaded ? 'Loading…' : visible.length ? null : state.nodes.size ? 'No node matches the filter.' : 'No node has said hello yet.');
      showSort(t.thead, state.sort, state.dir);
      const total = state.nodes.size;
      setText(count, `${state.list.length} of ${total} nodes` + (visible.length < state.list.length ? ` · showing ${visible.length}` : ''));
      setText(summary, `${state.online} online · ${total - state.online} offline`);
      more.hidden = visible.length >= state.list.length;
      setText(more, `Show ${Math.min(PAGE_ROWS, state.list.length - visible.length)} more`);
      renderTimes.push(performance.now() - started);
      if (renderTimes.length > 500) renderTimes.splice(0, renderTimes.length - 500);
    }

    async function load() {
      const view = await getJSON('/api/fleet');
      performance.mark('fleet-parsed');
      state.offset = parseTime(view.now) - Date.now();
      state.nodes = new Map(view.nodes.map((v) => [v.name, nodeEntry(v)]));
      state.loaded = true;
      changed(false);
      performance.mark('fleet-fetched');
      render();
      performance.mark('fleet-rendered');
    }

    function applyNodes(list) {
      stats.applied += list.length;
      for (const v of list) {
        if (v.removed) state.nodes.delete(v.name);
        else state.nodes.set(v.name, nodeEntry(v));
      }
      changed(false);
      renderLive();
    }

    function applyQueues(depths) {
      for (const [name, depth] of Object.entries(depths)) {
        const n = state.nodes.get(name);
        if (n) n.queue = depth;
      }
      if (state.sort === 'queue') changed(false);
      renderLive();
    }

    render();
    load().then(
      () => {
        events('/api/events', { nodes: applyNodes, queues: applyQueues }, () => load().catch(() => {}));
        setInterval(render, 1000);
      },
      (err) => main.append(errorBox(err)),
    );
  }

  // fleetRow makes the row of one node; its cells are kept on the row.
  function fleetRow(n) {
    const link = h('a', { href: '/messages?node=' + encodeURIComponent(n.name), title: 'Messages to ' + n.name });
    const conflict = h('span', { class: 'badge warn', hidden: true, text: 'conflict' });
    const stateText = h('span');
    const methodsList = h('ul', { class: 'methods' });
    const methodsSummary = h('summary');
    const errorsLink = h('a', { href: '/errors?node=' + encodeURIComponent(n.name), title: 'Errors of ' + n.name });
    const cells = {
      name: h('th', { scope: 'row', class: 'name' }, link, ' ', conflict),
      state: h('td', { class: 'state' }, stateText),
      lastSeen: h('td', { class: 'last-seen' }),
      version: h('td', { class: 'version' }),
      labels: h('td', { class: 'labels' }),
      methods: h('td', { class: 'num methods' }, h('details', {}, methodsSummary, methodsList)),
      queue: h('td', { class: 'num queue' }),
      errors: h('td', { class: 'num errors' }, errorsLink),
    };
    const tr = h('tr', { 'data-node': n.name }, Object.values(cells));
    tr._cells = { ...cells, link, conflict, stateText, methodsList, methodsSummary, errorsLink, methodsKey: null };
    return tr;
  }

  function updateFleetRow(tr, n, now) {
    const c = tr._cells;
    setText(c.link, n.name);
    c.conflict.hidden = !n.conflict;
    setAttr(c.conflict, 'title', n.conflict || null);
    const st = n.online ? `online ${duration(now - n.since)}` : `offline since ${n.since ? duration(now - n.since) : '—'}${n.stopped ? ' · stopped' : ''}`;
    setText(c.stateText, st);
    setAttr(c.state, 'class', 'state ' + (n.online ? 'on' : 'off'));
    setAttr(c.state, 'title', n.since ? (n.online ? 'online since ' : 'offline since ') + clock(n.since) : null);
    setText(c.lastSeen, n.lastSeen ? duration(now - n.lastSeen) + ' ago' : 'never');
    setAttr(c.lastSeen, 'title', n.lastSeen ? clock(n.lastSeen, true) : null);
    setText(c.version, n.version || '—');
    setText(c.labels, n.labelsText || '—');
    if (c.methodsKey !== n.methodsText) {
      c.methodsKey = n.methodsText;
      setText(c.methodsSummary, String(n.methods.length));
      setAttr(c.methodsSummary, 'title', n.methodsText || 'no methods');
      setAttr(c.methodsSummary, 'aria-label', `${n.methods.length} methods`);
      c.methodsList.replaceChildren(...n.methods.map((m) => h('li', { text: m })));
    }
    setText(c.queue, n.queue === null ? '—' : String(n.queue));
    setAttr(c.queue, 'title', n.queue === null ? 'not known yet' : null);
    setText(c.errorsLink, String(n.errors1h));
    setAttr(c.errors, 'class', 'num errors' + (n.errors1h > 0 ? ' has-errors' : ''));
  }

  // ---------------------------------------------------------------- messages view

  const MESSAGE_COLUMNS = ['Message', 'Method', 'From', 'Nodes', 'Deliveries', 'Sent', 'Updated'];

  function messagesPage() {
    const q = query();
    const node = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: 'ship1' });
    node.value = q.get('node') || '';
    const method = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: 'REQCliCommand', list: 'method-names' });
    method.value = q.get('method') || '';
    const methodNames = h('datalist', { id: 'method-names' });
    const statusSel = h('select', {}, h('option', { value: '', text: 'Any' }), STATUSES.map((s) => h('option', { value: s, text: s })));
    statusSel.value = STATUSES.includes(q.get('status')) ? q.get('status') : '';
    const count = h('p', { class: 'count', id: 'messages-count' });
    const problem = h('div', { class: 'problem' });
    const t = table('messages', 'Recent messages', MESSAGE_COLUMNS.map((label) => ({ label })));

    clearMain();
    append(main, [
      h('div', { class: 'title-row' }, h('h1', { text: 'Messages' })),
      h('form', { class: 'toolbar', role: 'search', 'aria-label': 'Filter messages', onsubmit: (e) => { e.preventDefault(); refresh(); } },
        field('messages-node', 'Node', node), field('messages-method', 'Method', method), methodNames,
        field('messages-status', 'Status', statusSel), count),
      problem,
      t.wrap,
    ]);

    let seq = 0;
    async function refresh() {
      const params = { node: node.value.trim(), method: method.value.trim(), status: statusSel.value };
      keepQuery(params);
      const mine = ++seq;
      let view;
      try {
        view = await getJSON('/api/messages?' + new URLSearchParams({ ...params, limit: '200' }));
      } catch (err) {
        problem.replaceChildren(errorBox(err));
        return;
      }
      if (mine !== seq) return; // a newer query went out
      problem.replaceChildren();
      const list = view.messages || [];
      syncRows(t.tbody, list, (m) => m.id, messageRow, updateMessageRow);
      emptyRow(t.tbody, MESSAGE_COLUMNS.length, list.length ? null : 'No message matches.');
      setText(count, `${list.length} shown · ${view.total} known`);
      const names = new Set([...methodNames.children].map((o) => o.value));
      for (const m of list) if (m.method && !names.has(m.method)) { names.add(m.method); methodNames.append(h('option', { value: m.method })); }
    }

    const requery = debounce(refresh, 300);
    node.addEventListener('input', requery);
    method.addEventListener('input', requery);
    statusSel.addEventListener('change', refresh);
    emptyRow(t.tbody, MESSAGE_COLUMNS.length, 'Loading…');
    refresh().then(() => {
      events('/api/events', { deliveries: throttle(refresh, 1000) }, refresh);
      setInterval(() => ageCells(t.tbody), 1000);
    });
  }

  function messageRow(m) {
    const link = h('a', { href: '/messages/' + encodeURIComponent(m.id), class: 'mono' });
    const cells = {
      id: h('th', { scope: 'row' }, link),
      method: h('td'),
      from: h('td'),
      nodes: h('td', { class: 'nodes' }),
      counts: h('td', { class: 'counts' }),
      sent: h('td', { class: 'age' }),
      updated: h('td', { class: 'age' }),
    };
    const tr = h('tr', { 'data-id': m.id }, Object.values(cells));
    tr._cells = { ...cells, link, key: null };
    return tr;
  }

  function updateMessageRow(tr, m) {
    const c = tr._cells;
    const key = JSON.stringify([m.method, m.fromNode, m.nodes, m.counts, m.sentAt, m.updated]);
    if (c.key === key) return;
    c.key = key;
    setText(c.link, m.id);
    setText(c.method, m.method || '—');
    setText(c.from, m.fromNode || '—');
    const nodes = m.nodes || [];
    setText(c.nodes, nodes.length <= 3 ? nodes.join(', ') : `${nodes.slice(0, 3).join(', ')} +${nodes.length - 3}`);
    setAttr(c.nodes, 'title', nodes.length > 3 ? nodes.join(', ') : null);
    const counts = m.counts || {};
    c.counts.replaceChildren(...STATUSES.filter((s) => counts[s]).map((s) => statusBadge(s, `${counts[s]} ${s}`)));
    for (const [cell, at] of [[c.sent, parseTime(m.sentAt)], [c.updated, parseTime(m.updated)]]) {
      cell.dataset.at = at;
      cell.replaceChildren(timeEl(at, at ? duration(Date.now() - at) + ' ago' : ''));
    }
  }

  // ageCells brings the "… ago" of every cell with data-at up to date.
  function ageCells(root) {
    const t = Date.now();
    for (const cell of root.querySelectorAll('[data-at]')) {
      const at = Number(cell.dataset.at);
      const el = cell.querySelector('time');
      if (at && el) setText(el, duration(t - at) + ' ago');
    }
  }

  // ---------------------------------------------------------------- message page

  const STREAMING = new Set(['REQCliCommandCont', 'REQTailFile']);

  function messagePage() {
    const id = main.dataset.id;
    const heading = h('h1', {}, 'Message ', h('code', { class: 'mono', text: id }));
    const facts = h('dl', { class: 'facts' });
    const cancel = h('button', { type: 'button', id: 'cancel', class: 'danger', hidden: true, text: 'Cancel', onclick: doCancel });
    const cancelResult = h('div', { id: 'cancel-result', role: 'status', 'aria-live': 'polite' });
    const problem = h('div', { class: 'problem' });
    const list = h('div', { id: 'deliveries', class: 'deliveries' });
    clearMain();
    append(main, [heading, facts, h('div', { class: 'actions' }, cancel), cancelResult, problem, list]);

    const sections = new Map(); // node → its section's parts
    let view = null;
    let follow = null;

    async function load() {
      try {
        view = await getJSON('/api/messages/' + encodeURIComponent(id));
      } catch (err) {
        problem.replaceChildren(errorBox(err));
        return false;
      }
      problem.replaceChildren();
      render();
      if (!view.done && STREAMING.has(view.method)) followOutput();
      return true;
    }

    function render() {
      showFacts();
      cancel.hidden = view.done;
      cancel.disabled = false;
      const byNode = new Map();
      for (const r of view.records || []) {
        if (!byNode.has(r.node)) byNode.set(r.node, {});
        byNode.get(r.node)[r.reply ? 'reply' : 'delivery'] = r;
      }
      for (const [node, recs] of byNode) {
        let s = sections.get(node);
        if (!s) {
          s = deliverySection(id, node);
          sections.set(node, s);
          list.append(s.el);
        }
        updateDelivery(s, recs.delivery, recs.reply);
      }
    }

    function showFacts() {
      const trace = view.traceId
        ? view.traceUrl
          ? h('a', { href: view.traceUrl, target: '_blank', rel: 'noopener noreferrer', class: 'mono', text: view.traceId })
          : h('code', { class: 'mono', text: view.traceId })
        : h('span', { class: 'muted', text: 'not traced' });
      const deliveries = (view.records || []).filter((r) => !r.reply).length;
      const rows = [
        ['Method', h('span', { text: view.method || '—' })],
        ['From', h('span', { text: view.fromNode || '—' })],
        ['Deliveries', h('span', { text: String(deliveries) })],
        ['State', h('span', { id: 'message-state', class: view.done ? 'done' : 'active', text: view.done ? 'done' : 'in progress' })],
        ['Trace', trace],
      ];
      facts.replaceChildren(...rows.flatMap(([k, v]) => [h('dt', { text: k }), h('dd', {}, v)]));
    }

    async function doCancel() {
      cancel.disabled = true;
      cancelResult.replaceChildren(h('p', { text: 'Cancelling…' }));
      try {
        const res = await request('/api/messages/' + encodeURIComponent(id) + '/cancel', { method: 'POST', body: '{}' });
        if (!res.ok) throw new ApiError(res.status, res.body);
        const items = (res.body.cancelled || []).map((c) =>
          h('li', {}, h('strong', { text: c.node }), ': ', c.outcome, c.stopId ? ` (stop message ${c.stopId})` : '', c.detail ? ` — ${c.detail}` : ''));
        cancelResult.replaceChildren(h('p', { text: items.length ? 'Cancel:' : 'Nothing was left to cancel.' }), items.length ? h('ul', {}, items) : null);
      } catch (err) {
        cancelResult.replaceChildren(errorBox(err));
        cancel.disabled = false;
      }
      reload();
    }

    // followOutput appends the streamed output of a streaming method, part
    // by part, until the console says it ended.
    function followOutput() {
      if (follow) return;
      const url = '/api/messages/' + encodeURIComponent(id) + '/follow';
      follow = new EventSource(url);
      let restart = true; // the stream gives the output from its start
      follow.addEventListener('open', () => { restart = true; });
      follow.addEventListener('output', (e) => {
        let part;
        try {
          part = JSON.parse(e.data);
        } catch {
          return;
        }
        if (restart) {
          for (const s of sections.values()) if (s.out.source === 'follow') s.out.text = '';
          restart = false;
        }
        let s = sections.get(part.node);
        if (!s) {
          s = deliverySection(id, part.node);
          sections.set(part.node, s);
          list.append(s.el);
        }
        if (s.out.source !== 'follow') {
          s.out.source = 'follow';
          s.out.text = '';
          s.out.more = false; // the stream brings all of it
        }
        if (part.data) s.out.text += part.data;
        showOutput(s);
      });
      follow.addEventListener('end', () => {
        follow.close();
        for (const s of sections.values()) {
          if (s.out.source === 'follow') {
            s.out.source = 'followed';
            showOutput(s);
          }
        }
        reload();
      });
    }

    const reload = throttle(load, 500);
    // Live even when the first load found nothing yet: the message's
    // first record brings the page.
    load().then(() => {
      events('/api/events', {
        deliveries: (ds) => {
          if (ds.some((d) => d.id === id)) reload();
        },
      }, reload);
    });
  }

  // deliverySection makes the section of one node's delivery.
  function deliverySection(id, node) {
    const headingId = 'delivery-' + node;
    const status = h('span', { class: 'status badge' });
    const meta = h('span', { class: 'meta' });
    const timeline = h('ol', { class: 'timeline', 'aria-label': 'Timeline of ' + node });
    const error = h('p', { class: 'error-text', hidden: true });
    const output = h('pre', { class: 'output', tabindex: '0', 'aria-label': 'Output of ' + node });
    const outInfo = h('p', { class: 'hint output-info' });
    const more = h('button', { type: 'button', class: 'more-output', hidden: true, text: 'More output' });
    const stderrBox = h('div', { class: 'stderr-box', hidden: true },
      h('h3', { text: 'Standard error' }), h('pre', { class: 'stderr', tabindex: '0', 'aria-label': 'Standard error of ' + node }));
    const reply = h('p', { class: 'reply', hidden: true });
    const el = h('section', { class: 'delivery card', 'data-node': node, 'aria-labelledby': headingId },
      h('header', {}, h('h2', { id: headingId, text: node }), status, meta),
      timeline, error,
      h('h3', { text: 'Output' }), output, h('div', { class: 'output-bar' }, outInfo, more),
      stderrBox, reply);
    const s = { el, node, status, meta, timeline, error, output, outInfo, more, stderrBox, reply, out: { text: '', source: 'record', next: 0, total: 0, more: false } };
    more.addEventListener('click', () => moreOutput(id, s));
    return s;
  }

  function updateDelivery(s, d, reply) {
    if (d) {
      setText(s.status, d.status);
      s.status.className = 'status badge s-' + d.status;
      const meta = [];
      if (d.attempt) meta.push(`attempt ${d.attempt}`);
      if (d.exitCode !== undefined && d.exitCode !== null) meta.push(`exit code ${d.exitCode}`);
      setText(s.meta, meta.join(' · '));
      showTimeline(s.timeline, d.timeline || []);
      const err = d.error ? d.error + (d.errorCode ? ` (${d.errorCode})` : '') : '';
      setText(s.error, err);
      s.error.hidden = !err;
      if (s.out.source === 'record') {
        s.out.text = d.output || '';
        s.out.total = d.outputBytes || byteLength(s.out.text);
        s.out.more = !!d.outputTruncated;
        s.out.next = byteLength(s.out.text);
      }
      setText(s.stderrBox.querySelector('pre'), d.stderr || '');
      s.stderrBox.hidden = !d.stderr;
      showOutput(s);
    }
    if (reply) {
      s.reply.hidden = false;
      s.reply.replaceChildren('Reply handled on ', h('strong', { text: reply.fromNode || '?' }), ' (', reply.method || 'reply', '): ',
        statusBadge(reply.status), reply.error ? ` — ${reply.error}` : '',
        reply.file ? ' — written to ' : '', reply.file ? h('code', { class: 'reply-file', text: reply.file }) : '');
    }
  }

  function showTimeline(ol, steps) {
    let prev = 0;
    const items = steps.map((st) => {
      const at = parseTime(st.at);
      const delta = prev && at ? ` +${((at - prev) / 1000).toFixed(at - prev < 10000 ? 2 : 0)} s` : '';
      prev = at || prev;
      return h('li', { class: 's-' + st.status }, h('span', { class: 'step', text: st.status }), ' ', timeEl(at, clock(at, true)), h('span', { class: 'muted', text: delta }));
    });
    const key = JSON.stringify(steps);
    if (ol.dataset.steps === key) return;
    ol.dataset.steps = key;
    ol.replaceChildren(...items);
  }

  function showOutput(s) {
    setText(s.output, s.out.text);
    const shown = byteLength(s.out.text);
    let info = '';
    if (s.out.source === 'follow') info = `${shown} bytes, following`;
    else if (s.out.more) info = `${shown} of ${s.out.total} bytes`;
    else if (shown) info = `${shown} bytes`;
    setText(s.outInfo, info);
    s.more.hidden = !(s.out.source === 'record' || s.out.source === 'pages') || !s.out.more;
  }

  // moreOutput appends the next page of a node's whole output.
  async function moreOutput(id, s) {
    s.more.disabled = true;
    try {
      const page = await getJSON(`/api/messages/${encodeURIComponent(id)}/output?` + new URLSearchParams({ node: s.node, offset: String(s.out.next) }));
      s.out.source = 'pages';
      s.out.text += page.data || '';
      s.out.total = page.total;
      s.out.next = typeof page.next === 'number' ? page.next : page.offset + byteLength(page.data || '');
      s.out.more = !!page.more && s.out.next < page.total;
      showOutput(s);
    } catch (err) {
      setText(s.outInfo, err.message);
    } finally {
      s.more.disabled = false;
    }
  }

  // ---------------------------------------------------------------- send view

  // Which form control shows an error about a message field, when the
  // command form was used.
  const FORM_FIELDS = { toNode: 'send-targets', toNodes: 'send-targets', methodArgs: 'send-command', methodTimeout: 'send-timeout', method: 'send-method' };

  const EXAMPLE = JSON.stringify([{ toNodes: ['ship1'], method: 'REQCliCommand', methodArgs: ['bash', '-c', 'uptime'], methodTimeout: 10 }], null, 2);

  // targets splits the targets box: names and label selectors separated by
  // commas or spaces; key=value items next to each other make one selector
  // (all of them must match), and ";" or a space starts another.
  function targets(text) {
    const out = [];
    for (const group of text.split(/[;\s]+/)) {
      let selector = [];
      for (const item of group.split(',').map((s) => s.trim()).filter(Boolean)) {
        if (item.includes('=')) {
          selector.push(item);
          continue;
        }
        if (selector.length) out.push(selector.join(','));
        selector = [];
        out.push(item);
      }
      if (selector.length) out.push(selector.join(','));
    }
    return out;
  }

  function sendPage() {
    const targetsIn = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: 'ship1,ship2' });
    const commandIn = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: 'uptime', class: 'mono' });
    const methodIn = h('select', {}, h('option', { value: 'REQCliCommand', text: 'REQCliCommand: run, send the output when done' }),
      h('option', { value: 'REQCliCommandCont', text: 'REQCliCommandCont: stream the output as it comes' }));
    const timeoutIn = h('input', { type: 'number', step: '1', inputmode: 'numeric', placeholder: 'the method’s default' });
    const jsonIn = h('textarea', { rows: '14', spellcheck: 'false', class: 'mono', placeholder: EXAMPLE });
    const fileIn = h('input', { type: 'file', accept: '.json,application/json' });
    const jsonError = h('p', { class: 'field-error', id: 'send-json-error', role: 'alert', hidden: true });
    const result = h('section', { id: 'send-result', class: 'result', 'aria-live': 'polite', 'aria-label': 'Result' });

    const buttons = (form) => h('div', { class: 'actions' },
      h('button', { type: 'submit', value: 'dry', class: 'secondary', text: 'Dry run' }),
      h('button', { type: 'submit', value: 'send', class: 'primary', text: 'Send' }),
      form === 'command' ? h('button', { type: 'button', class: 'link-button', text: 'Copy to JSON', onclick: copyToJSON }) : null);

    const commandForm = h('form', { id: 'command-form', class: 'card', 'aria-labelledby': 'command-title', novalidate: true },
      h('h2', { id: 'command-title', text: 'Run a command' }),
      field('send-targets', 'Targets', targetsIn, 'Node names and label selectors, comma-separated: ship1,ship2 · role=db (a selector’s labels all match: role=db,site=north) · * for every node. A space or ; separates two selectors.'),
      field('send-command', 'Command line', commandIn, 'Runs as bash -c "<command line>" on each node.'),
      field('send-method', 'Method', methodIn),
      field('send-timeout', 'Method timeout (seconds)', timeoutIn, 'How long the command may run; empty: the method’s default.'),
      buttons('command'));
    const jsonForm = h('form', { id: 'json-form', class: 'card', 'aria-labelledby': 'json-title', novalidate: true },
      h('h2', { id: 'json-title', text: 'Message JSON' }),
      field('send-json', 'Messages', jsonIn, 'One message object or an array of them, as steward send -f takes them.'),
      jsonError,
      field('send-file', 'Load a file into the box', fileIn),
      buttons('json'));

    clearMain();
    append(main, [h('h1', { text: 'Send' }), h('div', { class: 'send-grid' }, commandForm, jsonForm), result]);

    const q = query();
    if (q.get('targets')) targetsIn.value = q.get('targets');

    function commandMessage() {
      const msg = { toNodes: targets(targetsIn.value), method: methodIn.value, methodArgs: ['bash', '-c', commandIn.value] };
      if (timeoutIn.value !== '') msg.methodTimeout = Number(timeoutIn.value);
      return [msg];
    }

    function copyToJSON() {
      jsonIn.value = JSON.stringify(commandMessage(), null, 2);
      jsonIn.focus();
    }

    fileIn.addEventListener('change', async () => {
      const file = fileIn.files && fileIn.files[0];
      if (!file) return;
      jsonIn.value = await file.text();
      clearErrors();
      jsonIn.focus();
    });

    // Errors shown on fields.
    function clearErrors() {
      for (const el of main.querySelectorAll('.field-error')) {
        if (el === jsonError) {
          el.hidden = true;
          el.textContent = '';
        } else el.remove();
      }
      for (const el of main.querySelectorAll('[aria-invalid]')) {
        el.removeAttribute('aria-invalid');
        const ids = (el.getAttribute('aria-describedby') || '').split(' ').filter((x) => x && !x.endsWith('-error'));
        setAttr(el, 'aria-describedby', ids.length ? ids.join(' ') : null);
      }
    }

    function fieldError(control, text) {
      const errId = control.id + '-error';
      let el = document.getElementById(errId);
      if (!el) {
        el = h('p', { class: 'field-error', id: errId, role: 'alert' });
        control.closest('.field').append(el);
      }
      el.hidden = false;
      el.textContent = text;
      control.setAttribute('aria-invalid', 'true');
      const ids = (control.getAttribute('aria-describedby') || '').split(' ').filter(Boolean);
      if (!ids.includes(errId)) ids.push(errId);
      control.setAttribute('aria-describedby', ids.join(' '));
    }

    commandForm.addEventListener('submit', (e) => {
      e.preventDefault();
      clearErrors();
      const dry = e.submitter && e.submitter.value === 'dry';
      if (timeoutIn.validity.badInput) {
        fieldError(timeoutIn, 'Not a number of seconds.');
        timeoutIn.focus();
        return;
      }
      submit('command', JSON.stringify(commandMessage()), dry);
    });

    jsonForm.addEventListener('submit', (e) => {
      e.preventDefault();
      clearErrors();
      const dry = e.submitter && e.submitter.value === 'dry';
      const text = jsonIn.value.trim();
      if (!text) {
        fieldError(jsonIn, 'Write or load a message first.');
        jsonIn.focus();
        return;
      }
      try {
        JSON.parse(text);
      } catch (err) {
        fieldError(jsonIn, 'This is not JSON: ' + err.message);
        jsonIn.focus();
        return;
      }
      submit('json', text, dry);
    });

    let busy = false;
    async function submit(from, body, dry) {
      if (busy) return;
      busy = true;
      for (const b of main.querySelectorAll('button[type=submit]')) b.disabled = true;
      result.replaceChildren(h('p', { class: 'muted', text: dry ? 'Checking…' : 'Sending…' }));
      try {
        const res = await request('/api/send' + (dry ? '?dryRun=1' : ''), { method: 'POST', body });
        if (!res.body || !Array.isArray(res.body.receipts)) throw new ApiError(res.status, res.body);
        showReceipts(from, res.body.receipts, dry);
      } catch (err) {
        result.replaceChildren(h('h2', { text: 'Not sent' }), errorBox(err));
        const control = from === 'command' ? null : jsonIn;
        if (control) fieldError(control, err.message);
      } finally {
        busy = false;
        for (const b of main.querySelectorAll('button[type=submit]')) b.disabled = false;
      }
    }

    function showReceipts(from, receipts, dry) {
      const refused = receipts.filter((r) => r.error);
      const ok = receipts.length - refused.length;
      const head = dry
        ? `Dry run: ${ok} of ${receipts.length} message${receipts.length === 1 ? '' : 's'} would be sent`
        : `${ok} of ${receipts.length} message${receipts.length === 1 ? '' : 's'} sent`;
      const items = receipts.map((r) => receiptItem(r, dry, receipts.length));
      result.replaceChildren(h('h2', { text: head }), h('ol', { class: 'receipts' }, items));
      let first = null;
      for (const r of refused) {
        const control = from === 'command' ? document.getElementById(FORM_FIELDS[(r.field || '').split('.')[0]] || '') : null;
        const text = r.error + (r.code ? ` (${r.code})` : '');
        if (control) {
          fieldError(control, text);
          first = first || control;
        } else if (from === 'json') {
          const where = `Message ${r.index + 1}` + (r.field ? `, field ${r.field}` : '');
          const prev = jsonError.hidden ? '' : jsonError.textContent + '\n';
          fieldError(jsonIn, prev + `${where}: ${text}`);
          first = first || jsonIn;
        }
      }
      if (first) first.focus();
    }

    function receiptItem(r, dry, total) {
      const label = total > 1 ? `Message ${r.index + 1}: ` : '';
      if (r.error) {
        return h('li', { class: 'refused' }, h('strong', { text: label + 'refused' }), r.field ? ` (field ${r.field})` : '', ': ',
          h('span', { class: 'field-error-text', text: r.error }), r.code ? h('span', { class: 'muted', text: ` ${r.code}` }) : null);
      }
      const nodes = r.nodes || [];
      const shown = nodes.slice(0, 50).join(', ') + (nodes.length > 50 ? ` and ${nodes.length - 50} more` : '');
      const parts = [label, r.method || '', ` → ${nodes.length} node${nodes.length === 1 ? '' : 's'}: `, h('span', { class: 'nodes', text: shown })];
      if (!dry && r.id) {
        parts.unshift(h('a', { href: '/messages/' + encodeURIComponent(r.id), class: 'message-link mono', text: r.id }), ' ');
      }
      if (r.queued) parts.push(h('span', { class: 'badge warn', text: 'queued: the broker cannot be reached; it is sent when it can' }));
      if (r.duplicate) parts.push(' ', h('span', { class: 'badge', text: 'duplicate: sent before, nothing new sent' }));
      if (r.runs && r.runs.length) parts.push(` · ${r.runs.length + 1} runs`);
      return h('li', { class: 'accepted' }, parts);
    }
  }

  // ---------------------------------------------------------------- errors view

  const ERROR_COLUMNS = ['When', 'Node', 'Error'];

  function errorsPage() {
    const q = query();
    const node = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: 'all nodes' });
    node.value = q.get('node') || '';
    const count = h('p', { class: 'count', id: 'errors-count' });
    const problem = h('div', { class: 'problem' });
    const t = table('errors', 'Error reports of the fleet, newest first', ERROR_COLUMNS.map((label) => ({ label })));
    const limit = 500;

    clearMain();
    append(main, [
      h('div', { class: 'title-row' }, h('h1', { text: 'Errors' })),
      h('form', { class: 'toolbar', role: 'search', 'aria-label': 'Filter errors', onsubmit: (e) => { e.preventDefault(); refresh(); } },
        field('errors-node', 'Node', node, 'A node’s name; empty: every node.'), count),
      problem,
      t.wrap,
    ]);

    let entries = [];
    let seq = 0;
    const key = (e) => `${e.node}\n${e.at}\n${e.text}`;

    function show() {
      syncRows(t.tbody, entries, key, errorRow, () => {});
      emptyRow(t.tbody, ERROR_COLUMNS.length, entries.length ? null : 'No error reports.');
      setText(count, `${entries.length} report${entries.length === 1 ? '' : 's'}`);
    }

    async function refresh() {
      const name = node.value.trim();
      node.removeAttribute('aria-invalid');
      problem.replaceChildren();
      if (name && !validNode(name)) {
        node.setAttribute('aria-invalid', 'true');
        problem.replaceChildren(h('p', { class: 'field-error', role: 'alert', text: 'A node name has only letters, digits, - and _.' }));
        return;
      }
      keepQuery({ node: name });
      const mine = ++seq;
      try {
        const view = await getJSON('/api/errors?' + new URLSearchParams({ node: name, limit: String(limit) }));
        if (mine !== seq) return;
        entries = view.errors || [];
        show();
      } catch (err) {
        problem.replaceChildren(errorBox(err));
      }
    }

    function added(list) {
      const name = node.value.trim();
      const fresh = list.filter((e) => !name || e.node === name);
      if (!fresh.length) return;
      fresh.sort((a, b) => parseTime(b.at) - parseTime(a.at));
      entries = fresh.concat(entries).slice(0, limit);
      show();
      for (const e of fresh) {
        const tr = [...t.tbody.children].find((row) => row.dataset.key === key(e));
        if (tr) tr.classList.add('new');
      }
    }

    node.addEventListener('input', debounce(refresh, 300));
    emptyRow(t.tbody, ERROR_COLUMNS.length, 'Loading…');
    refresh().then(() => {
      events('/api/events', { errors: added }, refresh);
      setInterval(() => ageCells(t.tbody), 1000);
    });
  }

  function errorRow(e) {
    const at = parseTime(e.at);
    const when = h('td', { class: 'age', 'data-at': String(at) }, timeEl(at, at ? duration(Date.now() - at) + ' ago' : ''), h('br'), h('span', { class: 'muted small', text: clock(at) }));
    return h('tr', { 'data-node': e.node },
      when,
      h('td', {}, h('a', { href: '/errors?node=' + encodeURIComponent(e.node), text: e.node })),
      h('td', {}, h('div', { class: 'error-text pre', text: e.text })));
  }

  // ---------------------------------------------------------------- start

  const pages = { fleet: fleetPage, messages: messagesPage, message: messagePage, send: sendPage, errors: errorsPage };
  const page = pages[main && main.dataset.page];
  if (page) page();
})();
