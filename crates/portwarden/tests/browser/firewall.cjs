// The firewall on the dashboard when the guard has found a violation, in headless Chromium
// driven by playwright-core (run by tests/e2e/dashboard.rs inside the network namespace where
// the daemon guards a real nftables ruleset). Environment: PW_URL (that daemon), PW_PHASE
// (`violated`: the guard only alerts about a broken ruleset; `repaired`: it has restored the
// baseline; `absent`: a zero-config daemon on a host with no rules at all), PW_OUT (screenshots), PLAYWRIGHT_CORE (the module's directory), CHROMIUM (the
// browser binary).
'use strict';
const path = require('path');
const { chromium } = require(process.env.PLAYWRIGHT_CORE);
const { problems, watch, noEmptyStateItems, noRawValues, noOverflow } = require('./checks.cjs');

const url = process.env.PW_URL;
const out = process.env.PW_OUT;
const phase = process.env.PW_PHASE || 'violated';

function log(...a) {
  console.log('[firewall]', ...a);
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    if (phase === 'repaired') {
      await repaired(browser);
      return;
    }
    if (phase === 'absent') {
      await absent(browser);
      return;
    }
    const page = watch(await browser.newPage({ viewport: { width: 1280, height: 800 } }));
    await page.goto(url);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
    const api = await page.evaluate(async () => (await fetch('/api/v1/firewall')).json());
    log('the API says:', JSON.stringify({ state: api.state, violations: api.violations, on_violation: api.on_violation, drift: api.drift }));
    if (api.state !== 'violated' || !api.violations.length) throw new Error('the daemon does not report a violation: ' + JSON.stringify(api));

    // The overview: the verdict says the firewall is violated, the card gives the first
    // violation's message as a sentence.
    await page.waitForFunction(() => document.getElementById('sum-fw-badge').textContent === 'violated', null, { timeout: 10000 });
    const o = await page.evaluate(() => ({
      verdict: document.getElementById('verdict').textContent,
      level: document.getElementById('verdict').dataset.level,
      text: document.getElementById('sum-fw-text').textContent,
    }));
    log('overview:', JSON.stringify(o));
    if (o.level !== 'bad' || !/firewall violated/.test(o.verdict)) throw new Error('the verdict hides the violation: ' + JSON.stringify(o));
    if (!o.text.startsWith(api.violations[0].message)) throw new Error('the card does not give the violation: ' + JSON.stringify(o));
    await noRawValues(page, '.summary');
    await page.screenshot({ path: path.join(out, 'overview-firewall-violated.png') });

    // The Firewall tab: each violation as its message with its kind as a label, `On violation`
    // as a word, drift as readable lines; no JSON, quotes or null anywhere in it.
    await page.click('nav a[href="#/firewall"]');
    await page.waitForSelector('#fw-violations li', { timeout: 10000 });
    const tab = await page.evaluate(() => {
      const dd = {};
      const dl = document.getElementById('fw');
      for (const dt of dl.querySelectorAll('dt')) dd[dt.textContent] = dt.nextElementSibling.textContent;
      return {
        dd,
        violations: Array.from(document.querySelectorAll('#fw-violations li')).map((li) => ({
          label: (li.querySelector('.label') || {}).textContent,
          text: li.textContent,
        })),
      };
    });
    log('firewall tab:', JSON.stringify(tab));
    api.violations.forEach((v, i) => {
      const shown = tab.violations[i];
      const kind = v.kind.replace(/_|-/g, ' ');
      if (!shown || shown.label !== kind || shown.text !== kind + ' ' + v.message) {
        throw new Error('violation ' + i + ' shown as ' + JSON.stringify(shown) + ', the API has ' + JSON.stringify(v));
      }
    });
    if (!/^alert\b/.test(tab.dd['On violation'])) throw new Error('On violation: ' + tab.dd['On violation']);
    for (const d of (api.drift && api.drift.defaults) || []) {
      if (!tab.dd.Drift.includes(d)) throw new Error('drift ' + d + ' not shown: ' + tab.dd.Drift);
    }
    if (!/^violated\b/.test(tab.dd.State)) throw new Error('State: ' + tab.dd.State);
    await noRawValues(page, '#view-firewall');
    await noEmptyStateItems(page, 'the firewall tab');
    await page.screenshot({ path: path.join(out, 'firewall-violated.png'), fullPage: true });

    const phone = watch(await browser.newPage({ viewport: { width: 390, height: 844 }, colorScheme: 'dark' }));
    await phone.goto(url + '/#/firewall');
    await phone.waitForSelector('#fw-violations li', { timeout: 10000 });
    await noOverflow(phone, 'the firewall tab at 390 px');
    await phone.screenshot({ path: path.join(out, 'firewall-violated-phone-dark.png'), fullPage: true });

    if (problems.length) throw new Error('console errors:\n' + problems.join('\n'));
    log('ok');
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error('[firewall] FAILED:', e && e.stack ? e.stack : e);
  process.exit(1);
});

// After the guard restored the baseline: the overview says ok, the tab describes the repair
// in words (action, backend, time taken, what it answered), no JSON.
async function repaired(browser) {
  const page = watch(await browser.newPage({ viewport: { width: 1280, height: 800 } }));
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
  await page.waitForFunction(() => document.getElementById('sum-fw-badge').textContent === 'ok', null, { timeout: 10000 });
  const api = await page.evaluate(async () => (await fetch('/api/v1/firewall')).json());
  log('the API says:', JSON.stringify({ state: api.state, last_repair: api.last_repair }));
  if (!api.last_repair) throw new Error('no repair reported: ' + JSON.stringify(api));
  const verdict = await page.textContent('#verdict');
  if (!/firewall ok/.test(verdict)) throw new Error('verdict: ' + verdict);
  await page.click('nav a[href="#/firewall"]');
  await page.waitForFunction(() => /Last repair/.test(document.getElementById('fw').textContent), null, { timeout: 10000 });
  const repair = await page.evaluate(() => {
    for (const dt of document.querySelectorAll('#fw dt')) if (dt.textContent === 'Last repair') return dt.nextElementSibling.textContent;
    return null;
  });
  log('last repair:', repair);
  const r = api.last_repair;
  if (!repair.startsWith(r.action + ' (' + r.backend + ')')) throw new Error('last repair shown as ' + repair);
  if (typeof r.took_ms === 'number' && !repair.includes('took ' + r.took_ms + ' ms')) throw new Error('repair time missing: ' + repair);
  for (const v of r.violations || []) if (!repair.includes(v)) throw new Error('the violation it answered is missing: ' + v);
  await noRawValues(page, '#view-firewall');
  await noEmptyStateItems(page, 'the firewall tab after a repair');
  await page.screenshot({ path: path.join(out, 'firewall-repaired.png'), fullPage: true });
  // This daemon's one monitor never went down: the incidents page says so in a sentence, with
  // no empty table and no table row standing in for one.
  await page.click('nav a[href="#/incidents"]');
  await page.waitForFunction(() => /No incidents recorded/.test(document.getElementById('view-incidents').textContent), null, { timeout: 10000 });
  const empty = await page.evaluate(() => ({
    rows: document.querySelectorAll('#inc-rows tr').length,
    tableShown: document.getElementById('inc-table').offsetParent !== null,
    sentence: Array.from(document.querySelectorAll('#view-incidents p.empty')).filter((p) => !p.hidden).map((p) => p.textContent),
  }));
  if (empty.rows || empty.tableShown || empty.sentence[0] !== 'No incidents recorded.') throw new Error('incidents empty state: ' + JSON.stringify(empty));
  if (problems.length) throw new Error('console errors:\n' + problems.join('\n'));
  log('ok');
}

// No rules on the host, zero-config: said plainly on the overview, and not as a problem.
async function absent(browser) {
  const page = watch(await browser.newPage({ viewport: { width: 1280, height: 800 } }));
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
  const api = await page.evaluate(async () => (await fetch('/api/v1/firewall')).json());
  if (api.state !== 'absent') throw new Error('the daemon does not report absent: ' + JSON.stringify(api));
  await page.waitForFunction(() => document.getElementById('sum-fw-badge').textContent === 'no rules', null, { timeout: 10000 });
  const o = await page.evaluate(() => ({
    verdict: document.getElementById('verdict').textContent,
    level: document.getElementById('verdict').dataset.level,
    text: document.getElementById('sum-fw-text').textContent,
  }));
  log('overview (absent):', JSON.stringify(o));
  if (o.level === 'bad') throw new Error('no rules at all reads as a failure: ' + JSON.stringify(o));
  if (!/No firewall rules loaded/.test(o.text) || !/docs\/firewall\.md/.test(o.text)) throw new Error('the card does not say so plainly: ' + JSON.stringify(o));
  await noRawValues(page, '.summary');
  await page.screenshot({ path: path.join(out, 'overview-firewall-absent.png') });
  if (problems.length) throw new Error('console errors:\n' + problems.join('\n'));
  log('ok');
}
