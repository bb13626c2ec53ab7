import { type Browser, expect, type Page, test as base } from '@playwright/test';

export { expect };

/** An absolute URL on the server that global-setup started. */
export const url = (path: string): string => `${process.env.NATTER_URL}${path}`;

export const PASSWORD = 'correct horse battery staple';

/** A fresh username (3-32 chars of [a-z0-9_]) so parallel tests never collide. */
export function uniqueName(prefix: string): string {
  const suffix = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 7)}`;
  return `${prefix}_${suffix}`.slice(0, 32);
}

/** Every test collects console errors and uncaught exceptions; most assert there are none. */
export const test = base.extend<{ consoleErrors: string[] }>({
  consoleErrors: async ({ page }, use) => {
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(String(e)));
    await use(errors);
  },
});

/** On a phone the sidebar is a drawer: open it. On a desktop it is always there. */
export async function showSidebar(page: Page): Promise<void> {
  const sidebar = page.getByRole('complementary', { name: 'Conversations' });
  const open = page.getByRole('button', { name: 'Open menu' });
  // Ask the shell whether the drawer is open, not the geometry: it may still be sliding shut
  // after a navigation.
  if ((await open.isVisible()) && (await page.locator('.shell.open').count()) === 0) await open.click();
  await expect(sidebar).toBeInViewport();
}

export async function signUp(page: Page, username: string, password = PASSWORD, displayName?: string) {
  await page.goto(url('/signup'));
  await page.getByLabel('Username').fill(username);
  if (displayName) await page.getByLabel('Display name').fill(displayName);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign up' }).click();
}

export async function logIn(page: Page, username: string, password = PASSWORD) {
  await page.goto(url('/login'));
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
}

export async function logOut(page: Page) {
  await showSidebar(page);
  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(url('/login'));
}

/** A fresh user signed up in their own context, with the project's device settings. */
export async function newUser(browser: Browser, prefix: string): Promise<{ page: Page; name: string }> {
  const { viewport, isMobile, hasTouch, userAgent, deviceScaleFactor } = test.info().project.use;
  const context = await browser.newContext({ viewport, isMobile, hasTouch, userAgent, deviceScaleFactor });
  const page = await context.newPage();
  const name = uniqueName(prefix);
  await page.goto(url('/signup'));
  await page.getByLabel('Username').fill(name);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign up' }).click();
  await expect(page.getByRole('heading', { name: `Welcome, ${name}` })).toBeVisible();
  return { page, name };
}

export async function openSidebarAction(page: Page, label: string) {
  await showSidebar(page);
  await page.getByRole('button', { name: label, exact: true }).click();
}

export async function send(page: Page, text: string) {
  const box = page.getByRole('textbox', { name: 'Message' });
  await box.fill(text);
  await box.press('Enter');
}

/** Creates a room from the sidebar and waits until it is open. */
export async function createRoom(page: Page, name: string) {
  await openSidebarAction(page, 'New room');
  await page.getByLabel('Name').fill(name);
  await page.getByRole('button', { name: 'Create room' }).click();
  await expect(page.getByRole('heading', { name })).toBeVisible();
}

/** Joins a public room from the directory and waits until it is open. */
export async function joinRoom(page: Page, name: string) {
  await openSidebarAction(page, 'Browse rooms');
  await page.getByRole('button', { name: `Join ${name}` }).click();
  await expect(page.getByRole('heading', { name })).toBeVisible();
}

export function messages(page: Page) {
  return page.getByRole('log', { name: 'Messages' });
}
