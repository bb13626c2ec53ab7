// The shell's layout at phone and desktop sizes, and both colour themes.
import { createRoom, expect, logOut, messages, PASSWORD, send, showSidebar, signUp, test, uniqueName, url } from './helpers';

test('the sidebar is beside the pane on a desktop and a drawer on a phone', async ({ page, consoleErrors }, info) => {
  const name = uniqueName('fay');
  await signUp(page, name);
  await expect(page.getByRole('heading', { name: `Welcome, ${name}` })).toBeVisible();
  const sidebar = page.getByRole('complementary', { name: 'Conversations' });
  const menu = page.getByRole('button', { name: 'Open menu' });
  if (info.project.name === 'phone') {
    await expect(sidebar).not.toBeInViewport();
    await expect(menu).toBeVisible();
    await menu.click();
    await expect(sidebar).toBeInViewport();
    await page.getByRole('button', { name: 'Close menu' }).click();
    await expect(sidebar).not.toBeInViewport();
  } else {
    await expect(sidebar).toBeInViewport();
    await expect(menu).toBeHidden();
  }
  // Nothing overflows sideways at either size.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  await showSidebar(page);
  expect(consoleErrors).toEqual([]);
});

test('light and dark themes follow the system preference', async ({ page }) => {
  const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  await page.emulateMedia({ colorScheme: 'light' });
  await page.goto(url('/login'));
  await expect(page.getByRole('heading', { name: 'Log in to Natter' })).toBeVisible();
  expect(await background()).toBe('rgb(247, 247, 251)');
  await page.emulateMedia({ colorScheme: 'dark' });
  expect(await background()).toBe('rgb(18, 19, 24)');
});

test('links, Back and Forward move between pages inside the app, without reloading it', async ({ page, consoleErrors }) => {
  // A mark on the window survives only as long as the page is not loaded again.
  const sameApp = () => page.evaluate(() => (window as unknown as { natterMark?: boolean }).natterMark === true);
  await page.goto(url('/login'));
  await expect(page.getByRole('heading', { name: 'Log in to Natter' })).toBeVisible();
  await page.evaluate(() => { (window as unknown as { natterMark: boolean }).natterMark = true; });
  await page.getByRole('link', { name: 'Create an account' }).click();
  await expect(page).toHaveURL(url('/signup'));
  await expect(page.getByRole('button', { name: 'Sign up' })).toBeVisible();
  await page.goBack();
  await expect(page).toHaveURL(url('/login'));
  await expect(page.getByRole('button', { name: 'Log in' })).toBeVisible();
  await page.goForward();
  await expect(page.getByRole('button', { name: 'Sign up' })).toBeVisible();
  expect(await sameApp()).toBe(true);

  // Signed in: the sidebar's links open rooms, the open one is marked, and history follows.
  const name = uniqueName('nav');
  await page.getByLabel('Username').fill(name);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign up' }).click();
  await expect(page.getByRole('heading', { name: `Welcome, ${name}` })).toBeVisible();
  const first = uniqueName('first');
  const second = uniqueName('second');
  await createRoom(page, first);
  await createRoom(page, second);
  await showSidebar(page);
  const sidebar = page.getByRole('complementary', { name: 'Conversations' });
  await expect(sidebar.getByRole('link', { name: second })).toHaveAttribute('aria-current', 'page');
  await sidebar.getByRole('link', { name: first }).click();
  await expect(page.getByRole('heading', { name: first })).toBeVisible();
  await expect(sidebar.getByRole('link', { name: first })).toHaveAttribute('aria-current', 'page');
  await expect(sidebar.getByRole('link', { name: second })).not.toHaveAttribute('aria-current', 'page');
  // A second click on the open room's link adds no history entry: Back still leaves it.
  await showSidebar(page);
  await sidebar.getByRole('link', { name: first }).click();
  await page.goBack();
  await expect(page.getByRole('heading', { name: second })).toBeVisible();
  await page.goForward();
  await expect(page.getByRole('heading', { name: first })).toBeVisible();
  // A click on a notification (the service worker posts `open` to the window) opens its
  // conversation in place.
  const secondHref = await sidebar.getByRole('link', { name: second }).getAttribute('href');
  await page.evaluate((href) => {
    navigator.serviceWorker.dispatchEvent(new MessageEvent('message', { data: { type: 'open', url: href } }));
  }, secondHref);
  await expect(page.getByRole('heading', { name: second })).toBeVisible();
  await expect(page).toHaveURL(url(secondHref ?? ''));
  expect(await sameApp()).toBe(true);

  // A path that names no page says so, and its link leads home.
  await page.goto(url('/no/such/page'));
  await expect(page.getByRole('heading', { name: 'Page not found' })).toBeVisible();
  await page.getByRole('link', { name: 'Back to Natter' }).click();
  await expect(page.getByRole('heading', { name: `Welcome, ${name}` })).toBeVisible();
  // Signed out, the signed-in pages send the visitor to log in.
  await logOut(page);
  await page.goto(url('/'));
  await expect(page).toHaveURL(url('/login'));
  expect(consoleErrors).toEqual([]);
});

test("rooms are listed in the reader's alphabetical order, and the avatar shows the name's initial", async ({
  page,
  consoleErrors,
}) => {
  // Casing and collation come from the browser's Unicode tables (the client carries none):
  // "Émile" sorts with the E's, not after "zeta" as its code point would put it.
  await signUp(page, uniqueName('elodie'), PASSWORD, 'élodie');
  await expect(page.getByRole('heading', { name: 'Welcome, élodie' })).toBeVisible();
  await showSidebar(page);
  await expect(page.locator('.avatar').first()).toHaveText('É');

  const tag = Math.random().toString(36).slice(2, 7);
  for (const name of ['zeta', 'Émile', 'alpha', 'Beta']) {
    await createRoom(page, `${name} ${tag}`);
  }
  await showSidebar(page);
  const rooms = page.getByRole('list', { name: 'Rooms' }).locator('.room-name');
  await expect(rooms).toHaveText(['alpha', 'Beta', 'Émile', 'zeta'].map((n) => `${n} ${tag}`));
  expect(consoleErrors).toEqual([]);
});

test('a room closed before its animation frames run does not crash the app', async ({ page, consoleErrors }) => {
  // Animation frames come late here, as on a busy machine: the room's frame callbacks (keep to
  // the bottom, the unread divider) then run after the room was closed, by opening another
  // room or by logging out. Regression (found by CI): they read the closed room's state and
  // the app panicked ("Tried to access a reactive value that has already been disposed").
  await page.addInitScript(() => {
    const frame = window.requestAnimationFrame.bind(window);
    window.requestAnimationFrame = (callback: FrameRequestCallback): number => {
      setTimeout(() => frame(callback), 1500);
      return 0;
    };
  });
  const name = uniqueName('frames');
  await signUp(page, name);
  await expect(page.getByRole('heading', { name: `Welcome, ${name}` })).toBeVisible();
  const first = uniqueName('first');
  const second = uniqueName('second');
  await createRoom(page, first);
  await createRoom(page, second);
  await send(page, 'a message, then another room at once');
  await expect(messages(page).getByText('a message, then another room at once')).toBeVisible();
  await showSidebar(page);
  await page.getByRole('complementary', { name: 'Conversations' }).getByRole('link', { name: first }).click();
  await expect(page.getByRole('heading', { name: first })).toBeVisible();
  await send(page, 'a message, then log out at once');
  await expect(messages(page).getByText('a message, then log out at once')).toBeVisible();
  await logOut(page);
  await page.waitForTimeout(2500);
  await expect(page.getByRole('heading', { name: 'Log in to Natter' })).toBeVisible();
  expect(consoleErrors).toEqual([]);
});
