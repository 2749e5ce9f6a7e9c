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
  const PRELOAD_CONCURRENCY = 6;
  const SPARK_SLOTS = 30;
  const PRELOAD_BUDGET_MS = 1500;
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
  // A list and the paragraph that stands in for it when it is empty: an empty state is a
  // sentence, never a list item ("1. No incidents recorded.").
  function emptyFor(list) {
    let p = list.nextElementSibling;
    if (!p || !p.classList.contains('empty')) {
      p = el('p', 'empty');
      p.hidden = true;
      list.after(p);
    }
    return p;
  }
  function showEmpty(list, text) {
    list.textContent = '';
    list.hidden = !!text;
    const p = emptyFor(list);
    p.textContent = text || '';
    p.hidden = !text;
  }
  // The top of a response-time scale: 1, 2, 2.5 or 5 times a power of ten, in seconds.
  function niceTop(seconds) {
    const ms = Math.max(seconds * 1000, 0.01);
    const mag = Math.pow(10, Math.floor(Math.log10(ms)));
    for (const m of [1, 2, 2.5, 5, 10]) if (ms <= m * mag * 1.0000001) return (m * mag) / 1000;
    return (10 * mag) / 1000;
  }
  function fmtScale(seconds) {
    const ms = seconds * 1000;
    if (ms >= 1000) return +(ms / 1000).toPrecision(3) + ' s';
    return +ms.toPrecision(3) + ' ms';
  }
  function fmtSince(ms) {
    const d = new Date(ms);
    const today = new Date().toDateString() === d.toDateString();
    return (today ? d.toLocaleTimeString() : d.toLocaleString()) + ' (' + fmtAgo(ms) + ')';
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
        if (lastAt(old) !== lastAt(m) && m.last_check) appendSpark(m.name, m.last_check.duration, m.last_check.state);
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

  function appendSpark(name, seconds, state) {
    const s = sparks.get(name);
    if (!s || typeof seconds !== 'number') return;
    s.points.push({ d: seconds, s: tickOf(state) });
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

  // ---- the overview's summary: is anything wrong on this host? ----
  // One pass over the monitors (cheap with 10,000): counts by state and the three that have
  // been down longest; nothing per monitor is drawn here.
  const BAD = { down: true, flapping: true };
  let firewall = null; // the last answer of /api/v1/firewall
  let firewallError = '';
  function summarise() {
    const counts = {};
    for (const st of STATES) counts[st] = 0;
    const longest = []; // up to 3 monitors down or flapping, longest first
    for (const m of monitors.values()) {
      counts[m.status] = (counts[m.status] || 0) + 1;
      if (!BAD[m.status]) continue;
      const since = m.status_since || 0;
      if (longest.length < 3 || since < longest[longest.length - 1].status_since) {
        longest.push(m);
        longest.sort((a, b) => (a.status_since || 0) - (b.status_since || 0));
        if (longest.length > 3) longest.pop();
      }
    }
    return { counts, longest, total: monitors.size };
  }

  function renderSummary() {
    const { counts, longest, total } = summarise();
    const ul = $('counts');
    const sig = STATES.map((st) => counts[st]).join(',');
    if (ul.dataset.sig !== sig) {
      ul.dataset.sig = sig;
      ul.textContent = '';
      for (const st of STATES) {
        const li = el('li', counts[st] ? 's-' + st : 'zero');
        li.dataset.state = st;
        li.dataset.count = String(counts[st]);
        const b = el('button', null);
        b.type = 'button';
        b.append(el('strong', null, String(counts[st])), ' ' + st);
        b.title = counts[st] ? 'show only monitors that are ' + st : 'no monitor is ' + st;
        b.setAttribute('aria-pressed', String(filter.state === st));
        li.append(b);
        ul.append(li);
      }
    }
    for (const b of ul.querySelectorAll('li')) b.firstChild.setAttribute('aria-pressed', String(filter.state === b.dataset.state));

    const bad = counts.down + counts.flapping;
    const down = $('sum-down');
    down.textContent = '';
    if (bad) {
      down.append('Longest: ');
      longest.forEach((m, i) => {
        if (i) down.append(', ');
        const a = el('a', null, m.name);
        a.href = '#/monitor/' + encodeURIComponent(m.name);
        a.title = m.status + ' since ' + fmtTime(m.status_since);
        down.append(a, ' ' + (m.status === 'down' ? '' : m.status + ' ') + 'for ' + fmtFor(m.status_since));
      });
      if (bad > longest.length) down.append(', and ' + (bad - longest.length) + ' more');
      down.append('.');
    } else if (total) {
      down.textContent = counts.unknown === total ? 'Not checked yet.' : 'Nothing is down.';
    } else {
      down.textContent = 'No monitors are configured.';
    }

    // The one-line verdict: monitors first, then the firewall.
    const v = $('verdict');
    const fw = firewallSummary();
    let level = 'ok';
    const parts = [];
    if (!total) parts.push('No monitors');
    else if (bad) {
      level = 'bad';
      const oldest = longest[0];
      parts.push(bad + ' of ' + total + (total === 1 ? ' monitor' : ' monitors') + ' down' +
        (oldest ? ', the first since ' + fmtSince(oldest.status_since) : ''));
    } else if (counts.warning) {
      level = 'warn';
      parts.push(counts.warning + ' of ' + total + ' monitors warning, none down');
    } else if (counts.ok === total) parts.push(total === 1 ? 'The monitor is ok' : 'All ' + total + ' monitors ok');
    else if (counts.unknown === total) parts.push(total === 1 ? 'The monitor is not checked yet' : 'No monitor checked yet (' + total + ')');
    else {
      const rest = ['unknown', 'paused'].filter((st) => counts[st]).map((st) => counts[st] + ' ' + st);
      parts.push('None of ' + total + (total === 1 ? ' monitor' : ' monitors') + ' down' + (rest.length ? ' (' + rest.join(', ') + ')' : ''));
    }
    if (fw.level === 'bad') level = 'bad';
    else if (fw.level === 'warn' && level === 'ok') level = 'warn';
    parts.push(fw.verdict);
    v.className = 'verdict v-' + level;
    v.dataset.level = level;
    v.textContent = parts.join(' · ') + '.';
  }

  // What the firewall guard's state means, in words: a badge, a sentence, and how bad it is.
  const FW_STATES = {
    starting: { badge: 'checking', cls: 'unknown', level: 'ok', text: 'Reading the firewall for the first time…', verdict: 'firewall being checked' },
    ok: { badge: 'ok', cls: 'ok', level: 'ok', text: 'Enabled and as required.', verdict: 'firewall ok' },
    violated: { badge: 'violated', cls: 'down', level: 'bad', text: '', verdict: 'firewall violated' },
    unreadable: { badge: 'unreadable', cls: 'down', level: 'bad', text: 'The firewall cannot be read.', verdict: 'firewall unreadable' },
    off: { badge: 'not guarded', cls: 'unknown', level: 'ok', text: 'The firewall guard is switched off in the configuration ([firewall] guard = false).', verdict: 'firewall not guarded' },
    absent: { badge: 'no rules', cls: 'unknown', level: 'ok', text: 'No firewall rules loaded — see docs/firewall.md.', verdict: 'no firewall rules loaded' },
  };
  function firewallSummary() {
    if (!firewall) {
      return firewallError
        ? { badge: 'unknown', cls: 'unknown', level: 'warn', text: 'Firewall state unavailable: ' + firewallError, verdict: 'firewall state unavailable' }
        : { badge: '…', cls: 'unknown', level: 'ok', text: 'Reading the firewall guard…', verdict: 'reading the firewall' };
    }
    const g = firewall;
    const known = FW_STATES[g.state];
    const out = Object.assign({}, known || { badge: String(g.state), cls: 'unknown', level: 'warn', text: 'Firewall state: ' + g.state + '.', verdict: 'firewall ' + g.state });
    const vs = g.violations || [];
    if (g.state === 'violated') {
      out.text = vs.length ? violationText(vs[0]) + (vs.length > 1 ? ' (and ' + (vs.length - 1) + ' more)' : '') : 'The firewall is not as required.';
    } else if (g.state === 'unreadable' && g.error) out.text = 'Cannot read the firewall: ' + g.error;
    else if (g.state === 'ok' && g.backend) out.text = 'Enabled and as required (' + g.backend + ').';
    const paused = pausedUntil(g);
    if (paused) {
      out.paused = 'Repairs paused until ' + fmtTime(paused) + ' (' + fmtLeft(paused) + ' left).';
      out.verdict += ', repairs paused';
      if (out.level === 'ok') out.level = 'warn';
    }
    return out;
  }
  function pausedUntil(g) {
    return g.paused_until && g.paused_until * 1000 > Date.now() ? g.paused_until * 1000 : 0;
  }
  // Time left until `ms`, and time passed since it.
  function fmtLeft(ms) {
    return fmtSpan((ms - Date.now()) / 1000);
  }
  function fmtFor(ms) {
    return fmtSpan((Date.now() - ms) / 1000);
  }
  function fmtSpan(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 90) return s + ' s';
    if (s < 5400) return Math.round(s / 60) + ' min';
    return (s / 3600).toFixed(1) + ' h';
  }
  function violationText(v) {
    if (v === null || v === undefined) return '';
    if (typeof v === 'string') return v;
    return v.message || v.kind || '';
  }
  function renderFirewallSummary() {
    const fw = firewallSummary();
    const badge = $('sum-fw-badge');
    badge.className = 'badge s-' + fw.cls;
    badge.textContent = fw.badge;
    $('sum-fw-text').textContent = fw.text;
    const more = $('sum-fw-more');
    const bits = [];
    if (fw.paused) bits.push(fw.paused);
    if (firewall && firewall.checked_at) bits.push('Verified ' + fmtAgo(firewall.checked_at) + (firewall.backend ? ' (' + firewall.backend + ')' : '') + '.');
    more.textContent = bits.join(' ');
    more.hidden = !bits.length;
  }

  let recentSig = '';
  async function refreshRecentIncidents() {
    try {
      const d = await getJson('/api/v1/incidents?limit=5');
      const sig = JSON.stringify(d.incidents.map((i) => [i.monitor, i.start, i.end]));
      const ul = $('sum-inc');
      if (sig === recentSig && ul.dataset.filled) {
        // Only the "ago" texts move.
        for (const t of ul.querySelectorAll('[data-at]')) t.textContent = fmtAgo(Number(t.dataset.at));
        return;
      }
      recentSig = sig;
      ul.dataset.filled = 'true';
      if (!d.incidents.length) {
        showEmpty(ul, 'No incidents recorded.');
        return;
      }
      showEmpty(ul, '');
      for (const i of d.incidents) {
        const li = el('li', i.open ? 'open' : '');
        li.dataset.monitor = i.monitor;
        const a = el('a', null, i.monitor);
        a.href = '#/monitor/' + encodeURIComponent(i.monitor);
        const when = el('span', 'muted', fmtAgo(i.start));
        when.dataset.at = String(i.start);
        when.title = fmtTime(i.start);
        li.append(a, ' ');
        if (i.open) li.append(el('span', 'badge s-down', 'open'), ' ');
        li.append(i.open ? 'started ' : 'down for ' + fmtDur(i.duration) + ', ', when);
        if (i.reason) li.append(el('span', 'muted', ' · ' + i.reason));
        ul.append(li);
      }
    } catch (e) {
      showEmpty($('sum-inc'), 'Incidents unavailable: ' + e.message);
      recentSig = '';
    }
  }

  function refreshOverviewExtras() {
    refreshFirewall();
    refreshRecentIncidents();
  }

  $('counts').addEventListener('click', (ev) => {
    const li = ev.target.closest('li[data-state]');
    if (!li) return;
    const st = li.dataset.state;
    $('state').value = $('state').value === st ? '' : st;
    applyFilter();
  });

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
    // Response time as a line over heartbeat ticks (one per result, coloured by its state, as
    // Uptime Kuma's bars), and the top of the scale written beside it.
    const rt = el('span', 'rt');
    const spark = document.createElementNS(SVG, 'svg');
    spark.setAttribute('class', 'spark');
    spark.setAttribute('viewBox', '0 0 100 24');
    spark.setAttribute('preserveAspectRatio', 'none');
    spark.setAttribute('aria-hidden', 'true');
    const line = document.createElementNS(SVG, 'polyline');
    const ticks = {};
    for (const k of TICKS) {
      ticks[k] = document.createElementNS(SVG, 'path');
      ticks[k].setAttribute('class', 'hb hb-' + k);
      spark.append(ticks[k]);
    }
    spark.append(line);
    const scale = el('span', 'rt-scale');
    rt.append(spark, scale);
    const up = el('span', 'uptime-cell');
    a.append(badge, nameCell, reason, rt, up);
    li.append(head, a);
    const slot = { li, head, a, badge, name, target, reason, line, ticks, scale, up, sig: '', index: -1 };
    return slot;
  }

  function slotsNeeded() {
    return Math.ceil($('scroller').clientHeight / ROW) + 2 * OVERSCAN;
  }

  const TICKS = ['ok', 'warning', 'unknown', 'down'];
  // A result's state as its tick's colour: unknown and paused grey, flapping as down.
  const tickOf = (state) => (state === 'ok' || state === 'warning' ? state : state === 'unknown' || state === 'paused' ? 'unknown' : 'down');
  const NO_SPARK = { sig: 'none', pts: '', ticks: { ok: '', warning: '', unknown: '', down: '' }, scale: '' };
  // The row's chart: one slot per result, at least SPARK_SLOTS of them over 0..100 with the
  // newest at the right (so a new monitor's few results sit at the right edge, as heartbeat
  // bars do); y is 0..17 for the line (0 ms at the bottom, the scale's top at the top), and the
  // ticks sit below it at 19..24.
  function sparkPoints(name) {
    const s = sparks.get(name);
    if (!s || !s.points.length) return NO_SPARK;
    let max = 0;
    for (const p of s.points) if (p.d > max) max = p.d;
    const top = niceTop(max);
    const n = s.points.length;
    const step = 100 / Math.max(n, SPARK_SLOTS);
    const xs = (i) => 100 - (n - i - 0.5) * step;
    const y = (v) => (17 - (v / top) * 16).toFixed(1);
    let pts;
    if (n === 1) pts = (100 - step).toFixed(1) + ',' + y(s.points[0].d) + ' 100,' + y(s.points[0].d);
    else pts = s.points.map((p, i) => xs(i).toFixed(1) + ',' + y(p.d)).join(' ');
    const ticks = { ok: '', warning: '', unknown: '', down: '' };
    const w = Math.max(0.6, step * 0.6).toFixed(2);
    s.points.forEach((p, i) => {
      ticks[p.s] += 'M' + (xs(i) - step * 0.3).toFixed(2) + ' 19h' + w + 'v5h-' + w + 'z';
    });
    return { sig: String(s.version || 0) + '/' + s.at, pts, ticks, scale: '0–' + fmtScale(top) };
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
      for (const k of TICKS) s.ticks[k].setAttribute('d', sp.ticks[k]);
      s.scale.textContent = sp.scale;
      s.scale.title = sp.scale ? 'response time of the last ' + sparks.get(e.m).points.length + ' results; scale ' + sp.scale : '';
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
  // A monitor detail's stored results as spark points, oldest first.
  function historyPoints(d) {
    if (!d.history || !d.history.results) return [];
    const out = [];
    for (let i = d.history.results.length - 1; i >= 0; i--) {
      const r = d.history.results[i];
      out.push({ d: r.duration, s: tickOf(r.status) });
    }
    return out;
  }

  // Before the first paint: the history of the rows that will be on screen, fetched at once
  // (several at a time, a bounded wait), so their sparklines are drawn from the start.
  async function preloadSparks(names, budgetMs) {
    const queue = names.slice();
    const worker = async () => {
      while (queue.length) {
        const name = queue.shift();
        try {
          const d = await getJson('/api/v1/monitors/' + encodeURIComponent(name));
          sparks.set(name, { at: Date.now(), points: historyPoints(d), loading: false, version: 0 });
        } catch (_) { /* the lazy loader tries again */ }
      }
    };
    const workers = [];
    for (let i = 0; i < Math.min(PRELOAD_CONCURRENCY, queue.length); i++) workers.push(worker());
    await Promise.race([Promise.all(workers), new Promise((ok) => setTimeout(ok, budgetMs))]);
  }
  function namesOnFirstScreen() {
    const out = [];
    const n = Math.min(entries.length, slotsNeeded());
    for (let i = 0; i < n; i++) if (entries[i].m !== undefined) out.push(entries[i].m);
    return out;
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
          sparks.set(name, { at: Date.now(), points: historyPoints(d), loading: false, version: 0 });
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
    for (const li of $('counts').children) li.firstChild.setAttribute('aria-pressed', String(filter.state === li.dataset.state));
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
      if (!firstRenderReported) {
        // The first paint shows the rows on screen with their sparklines.
        rebuildEntries();
        const p0 = performance.now();
        await preloadSparks(namesOnFirstScreen(), PRELOAD_BUDGET_MS);
        window.portwarden.preloadMs = performance.now() - p0;
        queueRender(false);
      } else if (changed || membershipDirty) queueRender(membershipDirty);
      renderSummary();
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
    if (route.view === 'overview') refreshRecentIncidents();
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
            sparks.set(name, { at: Date.now(), points: historyPoints(d), version: 0 });
          }
          if (!old) membershipDirty = true;
          else if (filter.state && old.status !== m.status) membershipDirty = true;
          monitors.set(name, m);
          queueRender(membershipDirty);
          renderSummary();
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
    // The firewall guard's findings: the overview and the firewall tab read the guard again.
    for (const kind of ['firewall_violation', 'firewall_repaired', 'firewall_repair_failed', 'firewall_recovered',
      'firewall_unreadable']) {
      es.addEventListener(kind, () => {
        if (route.view === 'overview' || route.view === 'firewall') refreshFirewall();
      });
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
          showEmpty($('m-actions'), 'Actions unavailable: ' + e.message);
        });
        getJson('/api/v1/notifications').then((n) => renderNotifications(n, name)).catch((e) => {
          showEmpty($('m-notifications'), 'Notifications unavailable: ' + e.message);
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
    if (!h) showEmpty(inc, 'History unavailable: ' + (d.history_error || 'store not ready'));
    else if (!h.incidents.length) showEmpty(inc, 'No incidents recorded.');
    else {
      showEmpty(inc, '');
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

  // The monitor page's chart: response time against a scale from 0 to a round top value
  // (written on the y axis with its unit, gridlines at the top and middle) and the first and
  // last result's time on the x axis.
  function drawChart(results) {
    const svg = $('m-chart');
    svg.textContent = '';
    const W = 600;
    const H = 160;
    const axis = (top, first, last) => {
      $('m-y-top').textContent = top === null ? '' : fmtScale(top);
      $('m-y-mid').textContent = top === null ? '' : fmtScale(top / 2);
      $('m-y-zero').textContent = top === null ? '' : '0 ms';
      $('m-x-first').textContent = first ? fmtTime(first) : '';
      $('m-x-last').textContent = last ? fmtTime(last) : '';
    };
    if (results.length < 2) {
      $('m-chart-cap').textContent = results.length ? 'One result so far.' : 'No results recorded yet.';
      axis(null, results.length ? results[0].at : 0, 0);
      return;
    }
    let max = 0;
    for (const r of results) if (r.duration > max) max = r.duration;
    const top = niceTop(max);
    const n = results.length;
    const x = (i) => (i / (n - 1)) * W;
    const y = (v) => H - 8 - (v / top) * (H - 16);
    for (const v of [top, top / 2, 0]) {
      const g = document.createElementNS(SVG, 'line');
      g.setAttribute('class', 'grid');
      g.setAttribute('x1', '0');
      g.setAttribute('x2', String(W));
      g.setAttribute('y1', y(v).toFixed(1));
      g.setAttribute('y2', y(v).toFixed(1));
      svg.append(g);
    }
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
    axis(top, results[0].at, results[n - 1].at);
    const sorted = results.map((r) => r.duration).sort((a, b) => a - b);
    const p50 = sorted[Math.floor(sorted.length / 2)];
    $('m-chart-cap').textContent = 'Response time of the last ' + n + ' results (scale 0 to ' + fmtScale(top) + '): median ' +
      fmtMs(p50) + ', max ' + fmtMs(max) + (failed ? ', ' + failed + ' not ok (red marks)' : '') + '.';
    const title = document.createElementNS(SVG, 'title');
    title.textContent = 'Response time, max ' + fmtMs(max);
    svg.append(title);
  }

  function renderActions(a) {
    const ol = $('m-actions');
    const list = a.actions || [];
    showEmpty(ol, list.length ? '' : 'No actions taken.');
    for (const r of list) {
      const parts = [];
      for (const k of ['action', 'kind', 'type', 'outcome', 'result', 'status', 'verified', 'error', 'message']) {
        if (r[k] !== undefined && r[k] !== null && typeof r[k] !== 'object') parts.push(k + ': ' + r[k]);
      }
      const when = r.at || r.started || r.issued_at || r.started_ms;
      ol.append(el('li', null, (when ? fmtTime(when) + ' — ' : '') + (parts.join(', ') || 'action recorded')));
    }
  }

  function renderNotifications(n, name) {
    const ul = $('m-notifications');
    showEmpty(ul, '');
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
    if (!any) showEmpty(ul, 'Nothing waiting or failing for this monitor.');
  }

  // ---- firewall ----
  // Every field the guard reports, as words: objects (violations, drift, the last repair) are
  // described, never printed as JSON; absent values read "none" or "–", never "null".
  const ON_VIOLATION = {
    alert: 'alert (tell, change nothing)',
    enable: 'enable (switch the firewall back on)',
    restore: 'restore (put the baseline back)',
  };
  function driftList(d) {
    const ul = el('ul', 'plain drift');
    for (const r of d.vanished || []) ul.append(el('li', 'gone', 'removed: ' + ruleText(r)));
    for (const r of d.appeared || []) ul.append(el('li', 'new', 'added: ' + ruleText(r)));
    for (const t of d.defaults || []) ul.append(el('li', null, 'inbound default ' + t));
    return ul;
  }
  function ruleText(r) {
    if (typeof r === 'string') return r;
    return (r.scope ? '[' + r.scope + '] ' : '') + (r.text || '');
  }
  function repairText(r) {
    if (typeof r === 'string') return r;
    const bits = [];
    bits.push((r.action ? r.action : 'no repair') + (r.backend ? ' (' + r.backend + ')' : ''));
    if (r.took_ms !== undefined && r.took_ms !== null) bits.push('took ' + r.took_ms + ' ms');
    if (r.held) bits.push('held: ' + r.held);
    if (r.culprit) bits.push('changed by ' + r.culprit);
    if (r.violations && r.violations.length) bits.push('for: ' + r.violations.map(violationText).join('; '));
    if (r.error) bits.push('error: ' + r.error);
    return bits.join(' · ');
  }
  let firewallLoading = false;
  async function refreshFirewall() {
    if (firewallLoading) return;
    firewallLoading = true;
    try {
      firewall = await getJson('/api/v1/firewall');
      firewallError = '';
    } catch (e) {
      firewall = null;
      firewallError = e.message;
    } finally {
      firewallLoading = false;
    }
    renderFirewallSummary();
    renderSummary();
    if (route.view === 'firewall') renderFirewall();
  }
  function renderFirewall() {
    const dl = $('fw');
    dl.textContent = '';
    const g = firewall;
    if (!g) {
      dl.append(el('dt', null, 'Firewall'), el('dd', null, 'unavailable: ' + (firewallError || 'not read yet')));
      showEmpty($('fw-violations'), '');
      showEmpty($('fw-notes'), '');
      return;
    }
    const fw = firewallSummary();
    const state = el('dd');
    state.append(el('span', 'badge s-' + fw.cls, fw.badge), ' ' + fw.text);
    const drift = el('dd');
    if (!g.drift) drift.textContent = g.baseline ? 'none' : 'no baseline to compare with';
    else if (!(g.drift.vanished || []).length && !(g.drift.appeared || []).length && !(g.drift.defaults || []).length) drift.textContent = 'none';
    else drift.append(driftList(g.drift));
    const paused = pausedUntil(g);
    const rows = [
      ['State', state],
      ['Backend', g.backend || '–'],
      ['Last verified', g.checked_at ? fmtTime(g.checked_at) + ' (' + fmtAgo(g.checked_at) + ')' : 'not yet'],
      ['Verifications', String(g.verifications || 0)],
      ['Baseline', g.baseline || 'none'],
      ['Drift', drift],
      ['On violation', g.on_violation ? ON_VIOLATION[g.on_violation] || String(g.on_violation) : '–'],
      ['Watching changes', g.watching ? 'yes' : 'no'],
      ['Repairs in the last hour', String(g.repairs_last_hour || 0)],
      ['Last repair', g.last_repair ? repairText(g.last_repair) : 'none'],
      ['Repairs paused until', paused ? fmtTime(paused) + ' (' + fmtLeft(paused) + ' left)' : 'not paused'],
      ['Error', g.error || 'none'],
    ];
    for (const [k, v] of rows) {
      const dd = typeof v === 'string' ? el('dd', null, v) : v;
      dl.append(el('dt', null, k), dd);
    }
    const vl = $('fw-violations');
    const vs = g.violations || [];
    showEmpty(vl, vs.length ? '' : 'None.');
    for (const v of vs) {
      const li = el('li');
      if (v && typeof v === 'object' && v.kind) li.append(el('span', 'label', String(v.kind).replace(/_|-/g, ' ')), ' ');
      li.append(violationText(v));
      vl.append(li);
    }
    const nl = $('fw-notes');
    const notes = (g.notes || []).concat((g.foreign_tables || []).map((t) => 'foreign table (left alone): ' + t));
    showEmpty(nl, notes.length ? '' : 'None.');
    for (const v of notes) nl.append(el('li', null, String(v)));
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

  // A table with no rows is replaced by a sentence below its box.
  function tableEmpty(id, text) {
    const box = $(id).parentElement;
    box.hidden = !!text;
    const p = emptyFor(box);
    p.textContent = text || '';
    p.hidden = !text;
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
    tableEmpty('ls-table', shown.length ? '' : all.length ? 'No listener matches the filter.' : 'No listening sockets.');
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
      $('inc-rows').textContent = '';
      tableEmpty('inc-table', 'Incidents unavailable: ' + e.message);
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
    tableEmpty('inc-table', shown.length ? '' : incidentList.length ? 'No incident matches the filter.' : 'No incidents recorded.');
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
      renderFirewall();
      refreshFirewall();
      fwTimer = setInterval(refreshFirewall, 5000);
    } else {
      route.view = 'overview';
      route.name = null;
      document.title = 'portwarden';
      refreshOverviewExtras();
      fwTimer = setInterval(refreshOverviewExtras, 5000);
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
