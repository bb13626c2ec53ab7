// The shell's layout at phone and desktop sizes, and both colour themes.
import { expect, showSidebar, signUp, test, uniqueName, url } from './helpers';

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
