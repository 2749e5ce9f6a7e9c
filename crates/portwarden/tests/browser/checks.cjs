// Checks the browser scripts share (dashboard.cjs, firewall.cjs): console errors, empty states,
// raw values, overflow, colours.
'use strict';

// Console errors and page errors of every page, collected; the run fails on any.
const problems = [];
function watch(page) {
  page.on('console', (m) => {
    // Expected: 404 for endpoints a daemon may lack, 401/403 for the made-up token.
    const expected = /Failed to load resource: the server responded with a status of (401|403|404|405)/;
    if (m.type() === 'error' && !expected.test(m.text())) problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  return page;
}

// List items that are really empty states ("No incidents recorded.") read as items to a screen
// reader and as "1. No…" in an ordered list: the page must show them as paragraphs.
async function noEmptyStateItems(page, where) {
  const items = await page.evaluate(() => Array.from(document.querySelectorAll('li'))
    .filter((li) => li.offsetParent !== null)
    .map((li) => li.textContent.trim())
    .filter((t) => /^(no |none\b|nothing\b)/i.test(t)));
  if (items.length) throw new Error(where + ': empty states shown as list items: ' + JSON.stringify(items));
}

// Text of the page's part that must never show raw JSON, quoted strings, null or undefined.
async function noRawValues(page, selector) {
  const text = await page.textContent(selector);
  const bad = text.match(/[{}"]|\bnull\b|\bundefined\b|\[object|NaN/);
  if (bad) throw new Error(selector + ' shows a raw value (' + bad[0] + '): ' + text.replace(/\s+/g, ' '));
  return text;
}

// No sideways scrolling: the document is no wider than the viewport.
async function noOverflow(page, where) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  if (overflow > 0) throw new Error(where + ' is wider than its viewport by ' + overflow + ' px');
}

// The page's background and text colours, to tell light from dark.
function colours(page) {
  return page.evaluate(() => {
    const b = getComputedStyle(document.body);
    const v = getComputedStyle(document.getElementById('verdict'));
    return { bg: b.backgroundColor, fg: b.color, verdictBg: v.backgroundColor };
  });
}

module.exports = { problems, watch, noEmptyStateItems, noRawValues, noOverflow, colours };
