// portwarden dashboard. Plain JavaScript, no framework, no build step.
// Server text goes through textContent / setAttribute only, never through HTML parsing.
'use strict';

(function () {
  const ROW = 44; // px, the height of every list row (group headers too); app.css --row
  const OVERSCAN = 6;
  const POLL_MS = 3000; // without the event stream
  const POLL_SSE_MS = 15000; // with it: the stream brings transitions, polls bring new results
  const SPARK_TTL_MS = 60000;
  const SPARK_CONCURRENCY = 4;
  const STATES = ['down', 'flapping', 'warning', 'unknown', 'paused', 'ok'];
  const SVG = 'http://www.w3.org/2000/svg';

  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };

  // ---- state ----
  const monitors = new Map(); // name -> API object
  const sparks = new Map(); // name -> { at: fetch time, points: [seconds…] }
  let entries = []; // the flattened, filtered list: {g: tag, n: count} or {m: name}
  let rowsOfMonitor = 0;
  let sortedNames = [];
  let membershipDirty = true;
  let firstRenderReported = false;
  const filter = { q: '', state: '', tag: '' };
  window.portwarden = { firstRenderMs: null, rendered: 0, lastPollMs: null, mode: 'starting', maxUpdateMs: 0 };

  // ---- helpers ----
  function fmtMs(seconds) {
    if (seconds === null || seconds === undefined) return '–';
    const ms = seconds * 1000;
    return ms < 10 ? ms.toFixed(2) + ' ms' : ms < 1000 ? ms.toFixed(0) + ' ms' : seconds.toFixed(2) + ' s';
  }
  function fmtPct(x) {
    if (x === null || x === undefined) return '–';
    return (x * 100).toFixed(x >= 0.9999 ? 0 : 2) + ' %';
  }
  function fmtTime(ms) {
    if (!ms) return '–';
    return new Date(ms).toLocaleString();
  }
  function fmtAgo(ms) {
    if (!ms) return '';
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (s < 90) return s + ' s ago';
    if (s < 5400) return Math.round(s / 60) + ' min ago';
    if (s < 172800) return Math.round(s / 3600) + ' h ago';
    return Math.round(s / 86400) + ' d ago';
  }
  function fmtDur(seconds) {
    if (seconds < 90) return seconds.toFixed(1) + ' s';
    if (seconds < 5400) return (seconds / 60).toFixed(1) + ' min';
    return (seconds / 3600).toFixed(1) + ' h';
  }
  function groupOf(m) {
    return m.tags && m.tags.length ? m.tags[0] : '(untagged)';
  }
  function lastAt(m) {
    return m.last_check ? m.last_check.at : 0;
  }
  function reasonText(m) {
    const c = m.last_check;
    if (!c) return 'not checked yet';
    const r = c.reason ? c.reason + ': ' : '';
    return r + (c.message || c.state || '');
  }
  function showMessage(text) {
    const p = $('message');
    p.textContent = text || '';
    p.hidden = !text;
  }
  function setLive(text) {
    $('live').textContent = text;
  }

  async function getJson(path) {
    const headers = { Accept: 'application/json' };
    const t = token();
    if (t) headers.Authorization = 'Bearer ' + t; // for a daemon that wants it on reads too
    const r = await fetch(path, { headers, cache: 'no-store' });
    if (!r.ok) {
      const err = new Error(path + ': HTTP ' + r.status + (r.status === 401 ? ' (paste a token under Token)' : ''));
      err.status = r.status;
      throw err;
    }
    return r.json();
  }

  // ---- the monitor list: data ----
  // Takes a fresh list; returns true if anything changed. Rows whose data did not change keep
  // their DOM untouched (see renderRows' signatures).
  function ingest(list) {
    let changed = false;
    const seen = new Set();
    for (const m of list) {
      seen.add(m.name);
      const old = monitors.get(m.name);
      if (!old) {
        membershipDirty = true;
        changed = true;
      } else if (old.status !== m.status || lastAt(old) !== lastAt(m) || old.uptime_24h !== m.uptime_24h ||
        old.needs_attention !== m.needs_attention) {
        changed = true;
        if (old.status !== m.status && filter.state) membershipDirty = true;
        if (lastAt(old) !== lastAt(m) && m.last_check) appendSpark(m.name, m.last_check.duration);
        if (groupOf(old) !== groupOf(m)) membershipDirty = true;
      }
      monitors.set(m.name, m);
    }
    if (monitors.size !== seen.size) {
      for (const name of Array.from(monitors.keys())) {
        if (!seen.has(name)) {
          monitors.delete(name);
          sparks.delete(name);
        }
      }
      membershipDirty = true;
      changed = true;
    }
    return changed;
  }

  function appendSpark(name, seconds) {
    const s = sparks.get(name);
    if (!s || typeof seconds !== 'number') return;
    s.points.push(seconds);
    if (s.points.length > 50) s.points.shift();
    s.version = (s.version || 0) + 1;
  }

  function matches(m) {
    if (filter.state && m.status !== filter.state) return false;
    if (filter.tag && !(m.tags || []).includes(filter.tag)) return false;
    if (filter.q) {
      const q = filter.q;
      if (m.name.toLowerCase().includes(q)) return true;
      if ((m.target || '').toLowerCase().includes(q)) return true;
      if ((m.tags || []).some((t) => t.toLowerCase().includes(q))) return true;
      if (m.last_check && (m.last_check.reason || '').toLowerCase().includes(q)) return true;
      return false;
    }
    return true;
  }

  let knownTags = '';
  function rebuildEntries() {
    if (sortedNames.length !== monitors.size || membershipDirty) {
      sortedNames = Array.from(monitors.keys());
      sortedNames.sort((a, b) => {
        const ga = groupOf(monitors.get(a));
        const gb = groupOf(monitors.get(b));
        return ga < gb ? -1 : ga > gb ? 1 : a < b ? -1 : a > b ? 1 : 0;
      });
    }
    const out = [];
    let group = null;
    let header = null;
    let count = 0;
    for (const name of sortedNames) {
      const m = monitors.get(name);
      if (!matches(m)) continue;
      const g = groupOf(m);
      if (g !== group) {
        group = g;
        header = { g: g, n: 0 };
        out.push(header);
      }
      header.n++;
      out.push({ m: name });
      count++;
    }
    entries = out;
    rowsOfMonitor = count;
    membershipDirty = false;
    $('spacer').style.height = entries.length * ROW + 'px';
    const noun = monitors.size === 1 ? ' monitor' : ' monitors';
    $('shown').textContent = count === monitors.size ? count + noun : count + ' of ' + monitors.size + noun + ' shown';

    const tags = new Set();
    for (const m of monitors.values()) for (const t of m.tags || []) tags.add(t);
    const tagList = Array.from(tags).sort();
    const key = tagList.join('\u0000');
    if (key !== knownTags) {
      knownTags = key;
      const sel = $('tag');
      const keep = sel.value;
      while (sel.options.length > 1) sel.remove(1);
      for (const t of tagList) sel.add(new Option(t, t));
      sel.value = tagList.includes(keep) ? keep : '';
    }
  }

  function renderCounts() {
    const counts = {};
    for (const m of monitors.values()) counts[m.status] = (counts[m.status] || 0) + 1;
    const ul = $('counts');
    const sig = STATES.map((s) => counts[s] || 0).join(',');
    if (ul.dataset.sig === sig) return;
    ul.dataset.sig = sig;
    ul.textContent = '';
    for (const s of STATES) {
      if (!counts[s]) continue;
      const li = el('li', 's-' + s, counts[s] + ' ' + s);
      ul.append(li);
    }
  }

  // ---- the monitor list: a virtualised view over `entries` ----
  // A fixed pool of <li> elements is reused as the user scrolls; each remembers the signature
  // of what it shows and is touched only when that changes.
  const pool = [];
  function makeSlot() {
    const li = el('li');
    const head = el('span', 'group');
    const a = el('a', 'row');
    const badge = el('span', 'badge');
    const nameCell = el('span');
    const name = el('span', 'name');
    const target = el('span', 'target');
    nameCell.append(name, ' ', target);
    const reason = el('span', 'reason');
    const spark = document.createElementNS(SVG, 'svg');
    spark.setAttribute('class', 'spark');
    spark.setAttribute('viewBox', '0 0 100 24');
    spark.setAttribute('preserveAspectRatio', 'none');
    spark.setAttribute('aria-hidden', 'true');
    const line = document.createElementNS(SVG, 'polyline');
    spark.append(line);
    const up = el('span', 'uptime-cell');
    a.append(badge, nameCell, reason, spark, up);
    li.append(head, a);
    const slot = { li, head, a, badge, name, target, reason, line, up, sig: '', index: -1 };
    return slot;
  }

  function slotsNeeded() {
    return Math.ceil($('scroller').clientHeight / ROW) + 2 * OVERSCAN;
  }

  function sparkPoints(name) {
    const s = sparks.get(name);
    if (!s || s.points.length < 2) return { sig: 'none', pts: '' };
    const max = Math.max(...s.points, 0.0005);
    const n = s.points.length;
    const pts = s.points.map((v, i) => ((i / (n - 1)) * 100).toFixed(1) + ',' + (23 - (v / max) * 22).toFixed(1)).join(' ');
    return { sig: String(s.version || 0) + '/' + s.at, pts };
  }

  function renderRows() {
    const scroller = $('scroller');
    const first = Math.max(0, Math.floor(scroller.scrollTop / ROW) - OVERSCAN);
    const want = Math.min(slotsNeeded(), Math.max(0, entries.length - first));
    const ul = $('rows');
    while (pool.length < want) {
      const s = makeSlot();
      pool.push(s);
      ul.append(s.li);
    }
    for (let i = 0; i < pool.length; i++) pool[i].li.hidden = i >= want;
    ul.style.transform = 'translateY(' + first * ROW + 'px)';
    let rendered = 0;
    for (let i = 0; i < want; i++) {
      const idx = first + i;
      const e = entries[idx];
      const s = pool[i];
      s.li.dataset.index = String(idx);
      s.li.setAttribute('aria-posinset', String(idx + 1));
      s.li.setAttribute('aria-setsize', String(entries.length));
      if (e.g !== undefined) {
        const sig = 'g|' + e.g + '|' + e.n;
        if (s.sig !== sig) {
          s.sig = sig;
          s.li.className = 'group';
          s.head.hidden = false;
          s.a.hidden = true;
          s.head.textContent = e.g + ' (' + e.n + ')';
          s.a.removeAttribute('href');
          rendered++;
        }
        continue;
      }
      const m = monitors.get(e.m);
      const sp = sparkPoints(e.m);
      const sig = 'm|' + m.name + '|' + m.status + '|' + lastAt(m) + '|' + m.uptime_24h + '|' + m.needs_attention + '|' + sp.sig;
      if (s.sig === sig) continue;
      s.sig = sig;
      rendered++;
      s.li.className = 'mon';
      s.head.hidden = true;
      s.a.hidden = false;
      s.a.href = '#/monitor/' + encodeURIComponent(m.name);
      s.li.dataset.name = m.name;
      s.li.dataset.status = m.status;
      s.badge.className = 'badge s-' + m.status;
      s.badge.textContent = m.needs_attention ? m.status + ' !' : m.status;
      s.name.textContent = m.name;
      s.target.textContent = m.target || '';
      const c = m.last_check;
      s.reason.textContent = c ? reasonText(m) + ' · ' + fmtAgo(c.at) : 'not checked yet';
      s.reason.title = c ? reasonText(m) : '';
      s.line.setAttribute('points', sp.pts);
      s.up.textContent = fmtPct(m.uptime_24h);
      s.a.setAttribute('aria-label', m.name + ', ' + m.status + (m.needs_attention ? ', needs attention' : '') + ', ' +
        (c ? reasonText(m) : 'not checked yet') + ', uptime 24 h ' + fmtPct(m.uptime_24h));
    }
    window.portwarden.rendered += rendered;
    scheduleSparks();
  }

  // The longest piece of list work (merging a poll, or a render) after the first render:
  // what a live update costs the main thread. The browser test prints it.
  function noteWork(ms) {
    if (firstRenderReported && ms > (window.portwarden.maxUpdateMs || 0)) window.portwarden.maxUpdateMs = ms;
  }
  let renderQueued = false;
  function queueRender(rebuild) {
    if (rebuild) membershipDirty = true;
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => {
      renderQueued = false;
      const t0 = performance.now();
      if (membershipDirty) rebuildEntries();
      renderRows();
      noteWork(performance.now() - t0);
    });
  }

  // ---- sparklines: fetched lazily, only for the rows on screen ----
  let sparkTimer = null;
  let sparkInFlight = 0;
  const sparkWanted = [];
  function scheduleSparks() {
    clearTimeout(sparkTimer);
    sparkTimer = setTimeout(() => {
      sparkWanted.length = 0;
      const now = Date.now();
      for (const s of pool) {
        if (s.li.hidden || s.li.className !== 'mon') continue;
        const name = s.li.dataset.name;
        const have = sparks.get(name);
        if (!have || (now - have.at > SPARK_TTL_MS && !have.loading)) sparkWanted.push(name);
      }
      pumpSparks();
    }, 150);
  }
  function pumpSparks() {
    while (sparkInFlight < SPARK_CONCURRENCY && sparkWanted.length) {
      const name = sparkWanted.shift();
      const have = sparks.get(name);
      if (have && have.loading) continue;
      sparks.set(name, { at: have ? have.at : 0, points: have ? have.points : [], loading: true, version: have ? have.version : 0 });
      sparkInFlight++;
      getJson('/api/v1/monitors/' + encodeURIComponent(name))
        .then((d) => {
          const pts = d.history && d.history.results ? d.history.results.map((r) => r.duration).reverse() : [];
          sparks.set(name, { at: Date.now(), points: pts, loading: false, version: 0 });
        })
        .catch(() => sparks.set(name, { at: Date.now(), points: [], loading: false, version: 0 }))
        .finally(() => {
          sparkInFlight--;
          if (!sparkWanted.length && sparkInFlight === 0) queueRender(false);
          else if (sparkInFlight === 0) queueRender(false);
          pumpSparks();
        });
    }
  }

  // ---- keyboard: arrows move between rows of the virtual list ----
  function focusIndex(idx) {
    if (!entries.length) return;
    idx = Math.max(0, Math.min(entries.length - 1, idx));
    if (entries[idx].g !== undefined) idx = Math.min(entries.length - 1, idx + 1);
    const scroller = $('scroller');
    const top = idx * ROW;
    if (top < scroller.scrollTop) scroller.scrollTop = top;
    else if (top + ROW > scroller.scrollTop + scroller.clientHeight) scroller.scrollTop = top + ROW - scroller.clientHeight;
    renderRows();
    const slot = pool.find((s) => s.li.dataset.index === String(idx) && !s.li.hidden);
    if (slot) slot.a.focus();
  }
  $('rows').addEventListener('keydown', (ev) => {
    const li = ev.target.closest('li');
    if (!li) return;
    const idx = Number(li.dataset.index);
    const page = Math.max(1, Math.floor($('scroller').clientHeight / ROW) - 1);
    const moves = { ArrowDown: 1, ArrowUp: -1, PageDown: page, PageUp: -page };
    if (ev.key in moves) {
      ev.preventDefault();
      let next = idx + moves[ev.key];
      if (moves[ev.key] < 0 && entries[next] && entries[next].g !== undefined) next--;
      focusIndex(next < 0 ? 1 : next);
    } else if (ev.key === 'Home') {
      ev.preventDefault();
      focusIndex(0);
    } else if (ev.key === 'End') {
      ev.preventDefault();
      focusIndex(entries.length - 1);
    }
  });
  $('scroller').addEventListener('scroll', () => queueRender(false), { passive: true });
  window.addEventListener('resize', () => queueRender(false));

  // ---- filters ----
  function applyFilter() {
    filter.q = $('q').value.trim().toLowerCase();
    filter.state = $('state').value;
    filter.tag = $('tag').value;
    $('scroller').scrollTop = 0;
    queueRender(true);
  }
  $('q').addEventListener('input', applyFilter);
  $('state').addEventListener('change', applyFilter);
  $('tag').addEventListener('change', applyFilter);
  $('filters').addEventListener('submit', (ev) => ev.preventDefault());

  // ---- live updates: the event stream if the daemon has one, polling always ----
  let pollTimer = null;
  let lastFullPoll = 0;
  let sseOpen = false;
  let polling = false;
  async function poll() {
    clearTimeout(pollTimer);
    if (polling) return;
    polling = true;
    lastFullPoll = Date.now();
    const t0 = performance.now();
    try {
      const list = await getJson('/api/v1/monitors');
      const t1 = performance.now();
      const changed = ingest(list);
      noteWork(performance.now() - t1);
      if (changed || membershipDirty) queueRender(membershipDirty);
      renderCounts();
      window.portwarden.lastPollMs = Date.now();
      setLive((sseOpen ? 'live (events)' : 'live (polling)') + ' · updated ' + new Date().toLocaleTimeString());
      if (!firstRenderReported) {
        firstRenderReported = true;
        requestAnimationFrame(() => {
          window.portwarden.firstRenderMs = performance.now(); // since navigation start
          document.body.dataset.ready = 'true';
        });
      }
      showMessage('');
      if (route.view === 'monitor') refreshMonitorPage(false);
    } catch (e) {
      setLive('daemon unreachable, retrying');
      showMessage('Cannot read the daemon: ' + e.message);
    } finally {
      polling = false;
      // Slow down if the daemon (or this tab) needs long for one round.
      const took = performance.now() - t0;
      const every = Math.max(sseOpen ? POLL_SSE_MS : POLL_MS, took * 5);
      pollTimer = setTimeout(poll, every);
    }
  }

  const pendingNames = new Set();
  let pendingTimer = null;
  function onEvent(ev) {
    let data = null;
    try {
      data = JSON.parse(ev.data);
    } catch (_) {
      return;
    }
    if (data && typeof data.monitor === 'string') pendingNames.add(data.monitor);
    else pendingNames.add('*');
    // Throttled, not debounced: a steady stream of events must still be shown.
    if (!pendingTimer) pendingTimer = setTimeout(flushEvents, 100);
  }
  function flushEvents() {
    pendingTimer = null;
    if (route.view === 'incidents') refreshIncidents();
    const many = pendingNames.has('*') || pendingNames.size > 10;
    if (many) {
      // One list instead of many monitors, at most every 2 s.
      const wait = lastFullPoll + 2000 - Date.now();
      if (wait > 0) {
        pendingTimer = setTimeout(flushEvents, wait);
        return;
      }
      pendingNames.clear();
      poll();
      return;
    }
    const names = Array.from(pendingNames);
    pendingNames.clear();
    for (const name of names) {
      getJson('/api/v1/monitors/' + encodeURIComponent(name))
        .then((d) => {
          const old = monitors.get(name);
          const m = Object.assign({}, old || {}, d);
          delete m.history;
          delete m.history_error;
          delete m.healing;
          if (d.history && d.history.uptime) m.uptime_24h = d.history.uptime.d1;
          if (old && !('needs_attention' in d)) m.needs_attention = !!(d.healing && d.healing.needs_attention);
          if (d.history && d.history.results) {
            sparks.set(name, { at: Date.now(), points: d.history.results.map((r) => r.duration).reverse(), version: 0 });
          }
          if (!old) membershipDirty = true;
          else if (filter.state && old.status !== m.status) membershipDirty = true;
          monitors.set(name, m);
          queueRender(membershipDirty);
          renderCounts();
          if (route.view === 'monitor' && route.name === name) refreshMonitorPage(false);
        })
        .catch(() => {});
    }
  }
  function connectEvents() {
    if (!('EventSource' in window)) return;
    const es = new EventSource('/api/v1/events');
    es.addEventListener('open', () => {
      sseOpen = true;
      window.portwarden.mode = 'events';
      setLive('live (events)');
    });
    es.addEventListener('message', onEvent);
    for (const kind of ['monitor_down', 'monitor_up', 'monitor_warning', 'monitor_flapping', 'monitor_changed',
      'config_reloaded', 'action_taken', 'action_failed', 'gave_up', 'transition', 'state']) {
      es.addEventListener(kind, onEvent);
    }
    // The daemon's listener watcher noticed a change: the panel asks again once the API's
    // shared listing (at most 2 s old) is past it.
    for (const kind of ['listener_appeared', 'listener_vanished', 'listener_owner_changed']) {
      es.addEventListener(kind, () => {
        if (route.view === 'listeners') setTimeout(refreshListeners, 2100);
      });
    }
    es.addEventListener('error', () => {
      if (es.readyState === EventSource.CLOSED) {
        // No stream on this daemon (404) or it ended: polling carries on alone.
        sseOpen = false;
        window.portwarden.mode = 'polling';
        es.close();
      }
    });
  }

  // ---- token and actions ----
  const TOKEN_KEY = 'portwarden.token';
  function token() {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || '';
    } catch (_) {
      return '';
    }
  }
  function updateTokenUi() {
    $('m-actions-bar').hidden = !token();
    $('token-input').value = '';
    $('token-input').placeholder = token() ? 'token set' : '';
  }
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = $('token-input').value.trim();
    try {
      if (t) sessionStorage.setItem(TOKEN_KEY, t);
    } catch (_) { /* storage refused: nothing kept */ }
    updateTokenUi();
  });
  $('token-clear').addEventListener('click', () => {
    try {
      sessionStorage.removeItem(TOKEN_KEY);
    } catch (_) { /* nothing kept */ }
    updateTokenUi();
  });

  const ACTIONS = {
    run: (n) => ['POST', '/api/v1/monitors/' + encodeURIComponent(n) + '/run', null],
    pause: (n) => ['POST', '/api/v1/monitors/' + encodeURIComponent(n) + '/pause', null],
    resume: (n) => ['POST', '/api/v1/monitors/' + encodeURIComponent(n) + '/resume', null],
    acknowledge: (n) => ['POST', '/api/v1/monitors/' + encodeURIComponent(n) + '/acknowledge', null],
    silence: (n) => ['POST', '/api/v1/silences', { monitor: n, for: '1h', reason: 'silenced from the dashboard' }],
  };
  $('m-actions-bar').addEventListener('click', async (ev) => {
    const b = ev.target.closest('button[data-act]');
    if (!b || !route.name) return;
    const [method, path, body] = ACTIONS[b.dataset.act](route.name);
    const out = $('m-act-result');
    out.textContent = b.textContent + '…';
    b.disabled = true;
    try {
      const headers = { Authorization: 'Bearer ' + token(), Accept: 'application/json' };
      if (body) headers['Content-Type'] = 'application/json';
      const r = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
      if (r.status === 404 || r.status === 405) {
        out.textContent = b.textContent + ': this daemon does not offer that yet (HTTP ' + r.status + ').';
      } else if (r.status === 401 || r.status === 403) {
        out.textContent = b.textContent + ': the token was refused (HTTP ' + r.status + ').';
      } else if (!r.ok) {
        let msg = 'HTTP ' + r.status;
        try {
          const j = await r.json();
          if (j && j.error) msg += ': ' + j.error;
        } catch (_) { /* not JSON */ }
        out.textContent = b.textContent + ' failed: ' + msg;
      } else {
        out.textContent = b.textContent + ': done.';
        refreshMonitorPage(true);
      }
    } catch (e) {
      out.textContent = b.textContent + ' failed: ' + e.message;
    } finally {
      b.disabled = false;
    }
  });

  // ---- the monitor page ----
  let detailLoading = false;
  async function refreshMonitorPage(full) {
    const name = route.name;
    if (!name || detailLoading) return;
    detailLoading = true;
    try {
      const d = await getJson('/api/v1/monitors/' + encodeURIComponent(name));
      if (route.name !== name) return;
      renderMonitor(d);
      if (full) {
        getJson('/api/v1/actions?monitor=' + encodeURIComponent(name)).then(renderActions).catch((e) => {
          $('m-actions').textContent = '';
          $('m-actions').append(el('li', null, 'actions unavailable: ' + e.message));
        });
        getJson('/api/v1/notifications').then((n) => renderNotifications(n, name)).catch((e) => {
          $('m-notifications').textContent = '';
          $('m-notifications').append(el('li', null, 'notifications unavailable: ' + e.message));
        });
      }
    } catch (e) {
      $('m-name').textContent = name;
      $('m-last').textContent = e.status === 404 ? 'No monitor of that name.' : 'Cannot read it: ' + e.message;
    } finally {
      detailLoading = false;
    }
  }

  function renderMonitor(d) {
    $('m-name').textContent = d.name;
    document.title = d.name + ' · portwarden';
    const st = $('m-state');
    st.className = 'badge s-' + d.status;
    st.textContent = d.status;
    $('m-target').textContent = d.target + (d.tags && d.tags.length ? ' · tags: ' + d.tags.join(', ') : '');
    $('m-since').textContent = '· since ' + fmtTime(d.status_since);
    const c = d.last_check;
    $('m-last').textContent = c
      ? 'Last check ' + fmtAgo(c.at) + ': ' + (c.reason || c.state) + (c.message ? ' — ' + c.message : '') + ' (' + fmtMs(c.duration) + ')'
      : 'Not checked yet.';
    if (d.cert_expiry != null) {
      const days = Math.floor((d.cert_expiry * 1000 - Date.now()) / 86400000);
      $('m-last').textContent += ' Certificate expires ' + fmtTime(d.cert_expiry * 1000) +
        (days < 0 ? ' (expired).' : ' (in ' + days + (days === 1 ? ' day).' : ' days).'));
    }
    const h = d.history;
    drawChart(h ? h.results.slice().reverse() : []);
    const up = $('m-uptime');
    up.textContent = '';
    const u = h ? h.uptime : {};
    for (const [k, label] of [['d1', '24 h'], ['d7', '7 days'], ['d30', '30 days'], ['d365', '365 days']]) {
      up.append(el('dt', null, label), el('dd', null, fmtPct(u[k])));
    }
    const inc = $('m-incidents');
    inc.textContent = '';
    if (!h) inc.append(el('li', null, 'history unavailable: ' + (d.history_error || 'store not ready')));
    else if (!h.incidents.length) inc.append(el('li', null, 'No incidents recorded.'));
    else {
      for (const i of h.incidents) {
        const li = el('li');
        const t = el('time', null, fmtTime(i.start));
        t.dateTime = new Date(i.start).toISOString();
        li.append(t, ' — ' + (i.end ? 'down for ' + fmtDur(i.duration) : 'down for ' + fmtDur(i.duration) + ', still open') +
          ' · ' + (i.reason || '') + (i.message ? ': ' + i.message : ''));
        inc.append(li);
      }
    }
    const heal = d.healing;
    $('m-healing').textContent = heal
      ? (heal.needs_attention ? 'Self-healing gave up: a person must look.' : 'Self-healing has acted on this monitor.')
      : 'Self-healing has not acted on this monitor.';
  }

  function drawChart(results) {
    const svg = $('m-chart');
    svg.textContent = '';
    const W = 600;
    const H = 160;
    if (results.length < 2) {
      $('m-chart-cap').textContent = results.length ? 'One result so far.' : 'No results recorded yet.';
      return;
    }
    const max = Math.max(...results.map((r) => r.duration), 0.0005);
    const n = results.length;
    const x = (i) => (i / (n - 1)) * W;
    const y = (v) => H - 6 - (v / max) * (H - 12);
    const line = document.createElementNS(SVG, 'polyline');
    line.setAttribute('class', 'line');
    line.setAttribute('points', results.map((r, i) => x(i).toFixed(1) + ',' + y(r.duration).toFixed(1)).join(' '));
    svg.append(line);
    let failed = 0;
    results.forEach((r, i) => {
      if (r.status === 'down' || r.status === 'warning' || r.status === 'flapping') {
        failed++;
        const mark = document.createElementNS(SVG, 'rect');
        mark.setAttribute('class', 'fail');
        mark.setAttribute('x', (x(i) - 2).toFixed(1));
        mark.setAttribute('y', String(H - 6));
        mark.setAttribute('width', '4');
        mark.setAttribute('height', '6');
        svg.append(mark);
      }
    });
    const sorted = results.map((r) => r.duration).sort((a, b) => a - b);
    const p50 = sorted[Math.floor(sorted.length / 2)];
    $('m-chart-cap').textContent = 'Last ' + n + ' results, ' + fmtTime(results[0].at) + ' to ' + fmtTime(results[n - 1].at) +
      ': median ' + fmtMs(p50) + ', max ' + fmtMs(max) + (failed ? ', ' + failed + ' not ok (red marks)' : '') + '.';
    const title = document.createElementNS(SVG, 'title');
    title.textContent = 'Response time, max ' + fmtMs(max);
    svg.append(title);
  }

  function renderActions(a) {
    const ol = $('m-actions');
    ol.textContent = '';
    const list = a.actions || [];
    if (!list.length) {
      ol.append(el('li', null, 'No actions taken.'));
      return;
    }
    for (const r of list) {
      const parts = [];
      for (const k of ['action', 'kind', 'type', 'outcome', 'result', 'status', 'verified', 'error', 'message']) {
        if (r[k] !== undefined && r[k] !== null && typeof r[k] !== 'object') parts.push(k + ': ' + r[k]);
      }
      const when = r.at || r.started || r.issued_at || r.started_ms;
      ol.append(el('li', null, (when ? fmtTime(when) + ' — ' : '') + (parts.join(', ') || JSON.stringify(r))));
    }
  }

  function renderNotifications(n, name) {
    const ul = $('m-notifications');
    ul.textContent = '';
    let any = false;
    for (const q of n.notifiers || []) {
      for (const [label, list] of [['pending', q.pending || []], ['failing', q.failing || []]]) {
        for (const w of list) {
          if (!(w.subjects || []).includes(name)) continue;
          any = true;
          ul.append(el('li', null, q.name + ': ' + w.kind + ' ' + label + ' since ' + fmtTime(w.created_ms) +
            ', ' + w.attempts + ' attempts' + (w.last_error ? ', last error: ' + w.last_error : '')));
        }
      }
      const recent = (q.delivered || [])[0];
      if (recent) {
        ul.append(el('li', null, q.name + ': last delivery (any monitor) ' + recent.kind + ' at ' + fmtTime(recent.delivered_ms)));
        any = true;
      }
    }
    if (!any) ul.append(el('li', null, 'Nothing waiting or failing for this monitor.'));
  }

  // ---- firewall ----
  async function refreshFirewall() {
    const dl = $('fw');
    try {
      const g = await getJson('/api/v1/firewall');
      dl.textContent = '';
      const rows = [
        ['State', g.state],
        ['Backend', g.backend || '–'],
        ['Last verified', g.checked_at ? fmtTime(g.checked_at) + ' (' + fmtAgo(g.checked_at) + ')' : '–'],
        ['Verifications', String(g.verifications)],
        ['Drift', g.drift ? JSON.stringify(g.drift) : 'none'],
        ['On violation', g.on_violation ? JSON.stringify(g.on_violation) : '–'],
        ['Watching changes', g.watching ? 'yes' : 'no'],
        ['Repairs in the last hour', String(g.repairs_last_hour)],
        ['Last repair', g.last_repair ? JSON.stringify(g.last_repair) : 'none'],
        ['Repairs paused until', g.paused_until ? fmtTime(g.paused_until * 1000) : '–'],
        ['Error', g.error || '–'],
      ];
      for (const [k, v] of rows) dl.append(el('dt', null, k), el('dd', null, typeof v === 'string' ? v : JSON.stringify(v)));
      const vl = $('fw-violations');
      vl.textContent = '';
      for (const v of g.violations || []) vl.append(el('li', null, typeof v === 'string' ? v : JSON.stringify(v)));
      if (!(g.violations || []).length) vl.append(el('li', null, 'none'));
      const nl = $('fw-notes');
      nl.textContent = '';
      for (const v of (g.notes || []).concat((g.foreign_tables || []).map((t) => 'foreign table: ' + t))) nl.append(el('li', null, v));
      if (!nl.children.length) nl.append(el('li', null, 'none'));
    } catch (e) {
      dl.textContent = '';
      dl.append(el('dt', null, 'Firewall'), el('dd', null, 'unavailable: ' + e.message));
    }
  }

  // ---- listeners: port → process ----
  let listeners = null; // the last answer of /api/v1/listeners
  let listenersSig = '';
  async function refreshListeners() {
    try {
      const d = await getJson('/api/v1/listeners');
      const sig = JSON.stringify(d.listeners) + '|' + d.note;
      $('ls-meta').textContent = d.listeners.length + ' sockets, listed ' + fmtTime(d.listed_at) +
        (d.sees_all_owners ? '' : ' · running unprivileged');
      const note = $('ls-note');
      note.textContent = d.note || '';
      note.hidden = !d.note;
      if (sig === listenersSig) return;
      listenersSig = sig;
      listeners = d;
      renderListeners();
    } catch (e) {
      $('ls-meta').textContent = 'Listeners unavailable: ' + e.message;
    }
  }

  function ownerText(o) {
    const parts = [o.name + ' (pid ' + o.pid + ')'];
    if (o.user || o.uid !== null) parts.push('user ' + (o.user || o.uid));
    if (o.unit) parts.push(o.unit);
    return parts.join(' · ');
  }

  function listenerMatches(l, q, proto) {
    if (proto && l.protocol !== proto) return false;
    if (!q) return true;
    const hay = [String(l.port), l.address, l.protocol].concat(l.monitored_by);
    for (const o of l.owners) hay.push(o.name, String(o.pid), o.user || '', o.unit || '', o.exe || '');
    return hay.some((t) => t.toLowerCase().includes(q));
  }

  function cell(label, cls) {
    const td = el('td', cls);
    td.dataset.label = label;
    return td;
  }

  function renderListeners() {
    if (!listeners) return;
    const q = $('ls-q').value.trim().toLowerCase();
    const proto = $('ls-proto').value;
    const all = listeners.listeners.slice().sort((a, b) =>
      a.port - b.port || (a.protocol < b.protocol ? -1 : a.protocol > b.protocol ? 1 : 0) ||
      (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
    const shown = all.filter((l) => listenerMatches(l, q, proto));
    const body = $('ls-rows');
    body.textContent = '';
    for (const l of shown) {
      const tr = el('tr');
      tr.dataset.port = String(l.port);
      tr.dataset.protocol = l.protocol;
      const port = cell('Port', 'num');
      port.append(el('strong', null, String(l.port)));
      // One element per cell: on a phone each cell is a label column and a value column.
      const procs = cell('Process', 'procs');
      const holders = el('div');
      procs.append(holders);
      if (!l.owners.length) {
        holders.append(el('span', 'muted', listeners.sees_all_owners ? 'unknown' : 'unknown (hidden without root)'));
      }
      for (const o of l.owners) {
        const div = el('div', 'proc', ownerText(o));
        if (o.exe) div.append(el('span', 'exe', o.exe));
        holders.append(div);
      }
      const mons = cell('Monitored by');
      const names = el('span');
      mons.append(names);
      if (!l.monitored_by.length) names.append(el('span', 'muted', '–'));
      l.monitored_by.forEach((name, i) => {
        if (i) names.append(', ');
        const a = el('a', null, name);
        a.href = '#/monitor/' + encodeURIComponent(name);
        names.append(a);
      });
      const protoCell = cell('Protocol');
      protoCell.textContent = l.protocol;
      const addr = cell('Address', 'addr');
      addr.textContent = l.address;
      tr.append(port, protoCell, addr, procs, mons);
      body.append(tr);
    }
    if (!shown.length) {
      const tr = el('tr');
      const td = el('td', 'muted', all.length ? 'No listener matches the filter.' : 'No listening sockets.');
      td.colSpan = 5;
      tr.append(td);
      body.append(tr);
    }
    $('ls-shown').textContent = shown.length === all.length ? all.length + ' sockets' : shown.length + ' of ' + all.length + ' sockets shown';
  }
  $('ls-q').addEventListener('input', renderListeners);
  $('ls-proto').addEventListener('change', renderListeners);
  $('ls-filters').addEventListener('submit', (ev) => ev.preventDefault());

  // ---- incidents across monitors ----
  let incidentList = [];
  async function refreshIncidents() {
    const open = $('inc-open').value;
    try {
      const d = await getJson('/api/v1/incidents?limit=500' + (open ? '&open=' + open : ''));
      if ($('inc-open').value !== open) return; // the choice changed meanwhile
      incidentList = d.incidents;
      renderIncidents();
    } catch (e) {
      const body = $('inc-rows');
      body.textContent = '';
      const tr = el('tr');
      const td = el('td', null, 'Incidents unavailable: ' + e.message);
      td.colSpan = 5;
      tr.append(td);
      body.append(tr);
    }
  }

  function renderIncidents() {
    const q = $('inc-q').value.trim().toLowerCase();
    const shown = incidentList.filter((i) => !q || i.monitor.toLowerCase().includes(q));
    const body = $('inc-rows');
    body.textContent = '';
    for (const i of shown) {
      const tr = el('tr', i.open ? 'open' : '');
      tr.dataset.monitor = i.monitor;
      const mon = cell('Monitor');
      const a = el('a', null, i.monitor);
      a.href = '#/monitor/' + encodeURIComponent(i.monitor);
      mon.append(a);
      const start = cell('Started');
      const t = el('time', null, fmtTime(i.start));
      t.dateTime = new Date(i.start).toISOString();
      start.append(t);
      const end = cell('Ended');
      if (i.open) end.append(el('span', 'badge s-down', 'open'));
      else end.textContent = fmtTime(i.end);
      const dur = cell('Duration', 'num');
      dur.textContent = fmtDur(i.duration);
      const why = cell('Reason');
      why.textContent = (i.reason || '') + (i.reason && i.message ? ': ' : '') + (i.message || '');
      tr.append(mon, start, end, dur, why);
      body.append(tr);
    }
    if (!shown.length) {
      const tr = el('tr');
      const td = el('td', 'muted', incidentList.length ? 'No incident matches the filter.' : 'No incidents recorded.');
      td.colSpan = 5;
      tr.append(td);
      body.append(tr);
    }
    const open = incidentList.filter((i) => i.open).length;
    $('inc-shown').textContent = (shown.length === incidentList.length ? shown.length : shown.length + ' of ' + incidentList.length) +
      ' incidents' + (open ? ', ' + open + ' open' : '');
  }
  $('inc-q').addEventListener('input', renderIncidents);
  $('inc-open').addEventListener('change', refreshIncidents);
  $('inc-filters').addEventListener('submit', (ev) => ev.preventDefault());

  // ---- routing ----
  const route = { view: 'overview', name: null };
  let fwTimer = null;
  function onRoute() {
    const h = location.hash || '#/';
    clearInterval(fwTimer);
    if (h.startsWith('#/monitor/')) {
      route.view = 'monitor';
      route.name = decodeURIComponent(h.slice('#/monitor/'.length));
      $('m-act-result').textContent = '';
      refreshMonitorPage(true);
    } else if (h === '#/listeners') {
      route.view = 'listeners';
      route.name = null;
      document.title = 'Listeners · portwarden';
      refreshListeners();
      fwTimer = setInterval(refreshListeners, 5000);
    } else if (h === '#/incidents') {
      route.view = 'incidents';
      route.name = null;
      document.title = 'Incidents · portwarden';
      refreshIncidents();
      fwTimer = setInterval(refreshIncidents, 5000);
    } else if (h === '#/firewall') {
      route.view = 'firewall';
      route.name = null;
      document.title = 'Firewall · portwarden';
      refreshFirewall();
      fwTimer = setInterval(refreshFirewall, 5000);
    } else {
      route.view = 'overview';
      route.name = null;
      document.title = 'portwarden';
    }
    $('view-overview').hidden = route.view !== 'overview';
    $('view-monitor').hidden = route.view !== 'monitor';
    $('view-firewall').hidden = route.view !== 'firewall';
    $('view-listeners').hidden = route.view !== 'listeners';
    $('view-incidents').hidden = route.view !== 'incidents';
    for (const a of document.querySelectorAll('.top nav a')) {
      if (a.getAttribute('href') === '#/' + (route.view === 'overview' ? '' : route.view)) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    if (route.view === 'overview') queueRender(false);
    else $('main').focus({ preventScroll: true });
  }
  window.addEventListener('hashchange', onRoute);

  updateTokenUi();
  onRoute();
  poll();
  connectEvents();
})();
