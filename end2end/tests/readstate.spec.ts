// Issue 5: read state and receipts seen by two users in two browser contexts, and the
// installable, offline-opening web app (manifest, service worker).
import fs from 'node:fs';
import path from 'node:path';
import { type Browser, type Page } from '@playwright/test';
import { createRoom, expect, joinRoom, messages, newUser, send, showSidebar, test, uniqueName, url } from './helpers';

const site = process.env.NATTER_SITE_ROOT ?? path.join(__dirname, '../../target/site');

/**
 * The site, and so `sw.js`, is shared by every worker. The deployment test rewrites `sw.js`,
 * which makes every open page install another service worker: a test that relies on the
 * worker it has (going offline) holds this lock too. A directory is the lock.
 */
async function lockServiceWorker(page: Page): Promise<() => void> {
  const lock = path.join(site, '.deploy-test-lock');
  for (let i = 0; ; i++) {
    try {
      fs.mkdirSync(lock);
      return () => fs.rmdirSync(lock);
    } catch {
      if (i > 600) throw new Error('service worker lock held too long');
      await page.waitForTimeout(100);
    }
  }
}

/** The sidebar entry of a conversation. */
function entry(page: Page, name: string) {
  return page.locator('.room-link', { hasText: name });
}

test('unread counts rise live, show in the title, and clear in every tab when read in one', async ({ browser }) => {
  const alice = await newUser(browser, 'ra');
  const bob = await newUser(browser, 'rb');
  const room = uniqueName('room');
  const elsewhere = uniqueName('else');
  await createRoom(alice.page, room);
  await joinRoom(bob.page, room);
  // Bob looks at another room; a second tab of his sits on the welcome page.
  await createRoom(bob.page, elsewhere);
  const bobTab2 = await bob.page.context().newPage();
  await bobTab2.goto(url('/'));
  await expect(bobTab2.getByRole('heading', { name: `Welcome, ${bob.name}` })).toBeVisible();

  await send(alice.page, 'first unread');
  await send(alice.page, `second unread for @${bob.name} today`);

  for (const page of [bob.page, bobTab2]) {
    await showSidebar(page);
    await expect(entry(page, room).getByLabel('2 unread')).toBeVisible();
    await expect(entry(page, room).getByLabel('1 mentions')).toBeVisible();
  }
  await expect(bob.page).toHaveTitle('(2) Natter');
  await expect(bobTab2).toHaveTitle('(2) Natter');

  // Opening the room in one tab reads it: the divider marks where the new messages start, and
  // both tabs clear.
  await entry(bob.page, room).click();
  await expect(messages(bob.page).getByRole('separator').filter({ hasText: 'New messages' })).toBeVisible();
  await expect(messages(bob.page).getByText('first unread')).toBeVisible();
  await expect(bob.page).toHaveTitle('Natter');
  await expect(bobTab2).toHaveTitle('Natter');
  await showSidebar(bobTab2);
  await expect(entry(bobTab2, room).locator('.badge')).toHaveCount(0);

  // A message while Bob looks at the room does not count as unread.
  await send(alice.page, 'seen at once');
  await expect(messages(bob.page).getByText('seen at once')).toBeVisible();
  await expect(bobTab2).toHaveTitle('Natter');
});

test('a message in another conversation shows an in-app notice that opens it', async ({ browser }) => {
  const alice = await newUser(browser, 'ta');
  const bob = await newUser(browser, 'tb');
  const room = uniqueName('room');
  await createRoom(alice.page, room);
  await joinRoom(bob.page, room);
  await createRoom(bob.page, uniqueName('else'));
  await send(alice.page, 'psst, over here');
  const toast = bob.page.getByRole('list', { name: 'New messages elsewhere' }).getByRole('link');
  await expect(toast).toContainText(`in #${room}`);
  await expect(toast).toContainText('psst, over here');
  await toast.click();
  await expect(bob.page.getByRole('heading', { name: room })).toBeVisible();
  await expect(messages(bob.page).getByText('psst, over here')).toBeVisible();
  await expect(toast).toHaveCount(0);
});

test('read receipts: check marks in a DM, "Seen by" in a room, live', async ({ browser }) => {
  const alice = await newUser(browser, 'sa');
  const bob = await newUser(browser, 'sb');
  const room = uniqueName('room');
  await createRoom(alice.page, room);
  await joinRoom(bob.page, room);
  await send(alice.page, 'did you read this?');
  // Bob has the room open: he has read it, and Alice sees it.
  await expect(messages(bob.page).getByText('did you read this?')).toBeVisible();
  const mine = messages(alice.page).locator('.message[data-seq]', { hasText: 'did you read this?' });
  await expect(mine.getByText('Seen by 1')).toBeVisible();
  await mine.getByText('Seen by 1').click();
  await expect(mine.locator('.seen-list').getByText(bob.name)).toBeVisible();

  // A DM: one check when stored, two once Bob reads it.
  await showSidebar(alice.page);
  await alice.page.getByRole('button', { name: 'New direct message', exact: true }).click();
  await alice.page.getByLabel('Username').fill(bob.name);
  await alice.page.getByRole('button', { name: 'Start conversation' }).click();
  await expect(alice.page.getByRole('heading', { name: bob.name })).toBeVisible();
  await send(alice.page, 'private question');
  const dm = messages(alice.page).locator('.message[data-seq]', { hasText: 'private question' });
  await expect(dm.getByLabel('Sent')).toBeVisible();
  await showSidebar(bob.page);
  await entry(bob.page, alice.name).click();
  await expect(messages(bob.page).getByText('private question')).toBeVisible();
  await expect(dm.getByLabel('Read')).toBeVisible();
});

test('turning receipts off hides them both ways', async ({ browser }) => {
  const alice = await newUser(browser, 'pa');
  const bob = await newUser(browser, 'pb');
  const room = uniqueName('room');
  await createRoom(alice.page, room);
  await joinRoom(bob.page, room);
  // Bob turns read receipts off in the settings.
  await showSidebar(bob.page);
  await bob.page.getByRole('button', { name: 'Settings' }).click();
  const share = bob.page.getByRole('checkbox', { name: 'Send read receipts' });
  await expect(share).toBeChecked();
  await share.uncheck();
  await expect(share).not.toBeChecked();
  await bob.page.getByRole('dialog', { name: 'Settings' }).getByRole('button', { name: 'Close' }).click();

  await send(alice.page, 'private reading');
  await expect(messages(bob.page).getByText('private reading')).toBeVisible();
  await send(bob.page, 'and my answer');
  await expect(messages(alice.page).getByText('and my answer')).toBeVisible();
  const mine = messages(alice.page).locator('.message[data-seq]', { hasText: 'private reading' });
  await expect(mine).toBeVisible();
  await expect(alice.page.getByText(/Seen by/)).toHaveCount(0);
  await expect(bob.page.getByText(/Seen by/)).toHaveCount(0);
});

test('the web app is installable: a valid manifest with maskable icons, and a service worker', async ({ page }) => {
  await page.goto(url('/'));
  const href = await page.locator('link[rel="manifest"]').getAttribute('href');
  expect(href).toBe('/manifest.webmanifest');
  const resp = await page.request.get(url(href ?? ''));
  expect(resp.ok()).toBeTruthy();
  const manifest = await resp.json();
  expect(manifest.name).toBe('Natter');
  expect(manifest.display).toBe('standalone');
  expect(manifest.start_url).toBe('/');
  expect(manifest.theme_color).toMatch(/^#/);
  const sizes = manifest.icons.map((i: { sizes: string }) => i.sizes);
  expect(sizes).toContain('192x192');
  expect(sizes).toContain('512x512');
  expect(manifest.icons.some((i: { purpose?: string }) => i.purpose === 'maskable')).toBeTruthy();
  for (const icon of manifest.icons) {
    const r = await page.request.get(url(icon.src));
    expect(r.ok(), icon.src).toBeTruthy();
    expect(r.headers()['content-type']).toBe(icon.type);
  }
  const script = await page.evaluate(async () => {
    const reg = await navigator.serviceWorker.ready;
    return reg.active?.scriptURL ?? '';
  });
  expect(script).toBe(url('/sw.js'));
});

test('a new deployment replaces the cached app on the next load, not later', async ({ page }) => {
  const shellCaches = () =>
    page.evaluate(async () => (await caches.keys()).filter((k) => k.startsWith('natter-shell-')));
  await page.goto(url('/'));
  await page.evaluate(() => navigator.serviceWorker.ready);
  await expect.poll(shellCaches).toHaveLength(1);
  // Deploy: the build stamps a new id into the service worker.
  const sw = path.join(site, 'sw.js');
  const unlock = await lockServiceWorker(page);
  const original = fs.readFileSync(sw, 'utf8');
  const build = original.match(/const BUILD = '([^']+)'/)?.[1] ?? '';
  expect(build).not.toMatch(/^__/);
  fs.writeFileSync(sw, original.replace(`const BUILD = '${build}'`, `const BUILD = '${build}-next'`));
  try {
    await page.reload();
    // The new worker takes over at once and drops the old build's cache.
    await expect.poll(shellCaches, { timeout: 15_000 }).toEqual([`natter-shell-${build}-next`]);
  } finally {
    fs.writeFileSync(sw, original);
    unlock();
  }
});

test('offline: the app opens from the cache with the rooms and messages it kept, and a message written offline arrives once', async ({ browser, page }) => {
  // Not while the deployment test swaps the service worker under this one (see the lock).
  const unlock = await lockServiceWorker(page);
  try {
    await offlineRoundTrip(browser);
  } finally {
    unlock();
  }
});

async function offlineRoundTrip(browser: Browser) {
  const alice = await newUser(browser, 'oa');
  const bob = await newUser(browser, 'ob');
  const room = uniqueName('room');
  await createRoom(alice.page, room);
  await joinRoom(bob.page, room);
  await send(bob.page, 'kept for offline reading');
  await expect(messages(alice.page).getByText('kept for offline reading')).toBeVisible();
  await alice.page.evaluate(() => navigator.serviceWorker.ready);
  // Give the offline copy time to be written (it waits for changes to settle).
  await alice.page.waitForTimeout(1500);

  await alice.page.context().setOffline(true);
  await alice.page.reload();
  // Shell and client from the service worker, rooms and messages from IndexedDB.
  await expect(alice.page.getByText(/Connection lost|Reconnecting/).first()).toBeVisible();
  await expect(messages(alice.page).getByText('kept for offline reading')).toBeVisible();
  await send(alice.page, 'written while offline');
  const pending = messages(alice.page).locator('.message.pending');
  await expect(pending.getByText('Queued')).toBeVisible();
  // Even a reload keeps it queued.
  await alice.page.waitForTimeout(1500);
  await alice.page.reload();
  await expect(messages(alice.page).locator('.message.pending').getByText('Queued')).toBeVisible();

  await alice.page.context().setOffline(false);
  await expect(messages(bob.page).getByText('written while offline')).toHaveCount(1);
  await expect(messages(alice.page).locator('.message.pending')).toHaveCount(0);
  await expect(messages(alice.page).getByText('written while offline')).toHaveCount(1);
  // Exactly once, also after everything settled and Bob reloads the history.
  await bob.page.reload();
  await expect(messages(bob.page).getByText('written while offline')).toHaveCount(1);
}
