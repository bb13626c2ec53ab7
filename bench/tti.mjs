// Time to interactive of the client in Chromium, for `natter-load --scenario client` (docs/perf.md).
//
//   node bench/tti.mjs URL [RUNS]
//
// URL is a running Natter server with the built site. Each run uses a fresh browser context
// (empty HTTP cache, no service worker, no IndexedDB: a first visit) and measures, in the page,
// `performance.now()` (milliseconds since the navigation started) at the moment the first DOM
// mutation shows what the user waits for:
//   login  /login, signed out: the sign-in form (rendered by the wasm, so the app runs);
//   chat   /rooms/N, signed in: a stored message of the room and the composer (the wasm has
//          checked the session, opened the WebSocket, got `ready` and the room's messages);
//   again  the same chat page reloaded in the same context (HTTP cache and service worker warm).
// Each is measured on loopback and under a throttled link (Chromium's network emulation:
// 40 ms latency, 10 Mbit/s down, 5 Mbit/s up), where the download size shows. The bytes the
// browser fetched on the first visit (`transferSize` of every resource, headers included) are
// reported too. Prints one JSON line on stdout; progress goes to stderr.
import { createRequire } from 'node:module';

const require = createRequire(new URL('../end2end/package.json', import.meta.url));
const { chromium } = require('@playwright/test');

const base = process.argv[2];
const runs = Number(process.argv[3] ?? 10);
if (!base) {
  console.error('usage: node bench/tti.mjs URL [RUNS]');
  process.exit(2);
}

const THROTTLED = { offline: false, latency: 40, downloadThroughput: 1.25e6, uploadThroughput: 0.625e6 };
const password = 'correct horse battery staple 42';

async function api(path, body, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const resp = await fetch(`${base}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
  if (!resp.ok) throw new Error(`POST ${path}: ${resp.status} ${await resp.text()}`);
  return resp.json();
}

// One user with a room holding a message.
const name = `tti${Date.now().toString(36)}`;
const { token } = await api('/api/auth/signup', { username: name, password });
const room = await api('/api/rooms', { name: `tti-${name}`.slice(0, 32) }, token);
await api(`/api/rooms/${room.id}/messages`, { client_id: 'tti-1', body: 'Hello from the benchmark' }, token);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});

// Records when `selectors` are all in the document, from the first script that runs.
function watch(selectors) {
  const check = () => {
    if (window.__tti === undefined && selectors.every((s) => document.querySelector(s))) {
      window.__tti = performance.now();
    }
  };
  new MutationObserver(check).observe(document, { subtree: true, childList: true });
}

async function measure(page, path, selectors) {
  await page.goto(`${base}${path}`, { waitUntil: 'commit' });
  await page.waitForFunction(() => window.__tti !== undefined, null, { timeout: 60_000 });
  return page.evaluate(() => window.__tti);
}

async function once(throttled) {
  const out = {};
  for (const kind of ['login', 'chat']) {
    const context = await browser.newContext({ serviceWorkers: 'allow' });
    const selectors = kind === 'login'
      ? ['form button[type=submit]']
      : ['article.message[data-seq] .body', 'textarea'];
    await context.addInitScript(watch, selectors);
    if (kind === 'chat') {
      await context.addCookies([{ name: 'natter_session', value: token, url: base }]);
    }
    const page = await context.newPage();
    if (throttled) {
      const cdp = await context.newCDPSession(page);
      await cdp.send('Network.enable');
      await cdp.send('Network.emulateNetworkConditions', THROTTLED);
    }
    const path = kind === 'login' ? '/login' : `/rooms/${room.id}`;
    out[kind] = await measure(page, path, selectors);
    if (kind === 'chat') {
      out.bytes = await page.evaluate(() =>
        [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')]
          .reduce((sum, e) => sum + (e.transferSize || 0), 0));
      // A returning visit: the same context, caches and service worker warm.
      await page.evaluate(() => navigator.serviceWorker?.ready.then(() => true));
      out.again = await measure(page, path, selectors);
    }
    await context.close();
  }
  return out;
}

const results = { loopback: [], throttled: [] };
for (let i = 0; i < runs; i++) {
  for (const mode of i % 2 === 0 ? ['loopback', 'throttled'] : ['throttled', 'loopback']) {
    results[mode].push(await once(mode === 'throttled'));
  }
  console.error(`tti: run ${i + 1} of ${runs}`);
}
await browser.close();

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const summary = { runs };
for (const [mode, rs] of Object.entries(results)) {
  for (const kind of ['login', 'chat', 'again']) {
    const xs = rs.map((r) => r[kind]);
    summary[`${mode}_${kind}_ms`] = { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
  }
  summary[`${mode}_bytes`] = median(rs.map((r) => r.bytes));
}
console.log(JSON.stringify(summary));
