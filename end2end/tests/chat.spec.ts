// Two people, two browser contexts, talking: a room, a DM, presence, typing, and resuming
// after being offline.
import {
  createRoom,
  expect,
  joinRoom,
  messages,
  newUser,
  openSidebarAction,
  PASSWORD,
  send,
  showSidebar,
  test,
  uniqueName,
  url,
} from './helpers';

test('two users chat in a room and in a DM, with presence and typing', async ({ browser }) => {
  const alice = await newUser(browser, 'alice');
  const bob = await newUser(browser, 'bob');
  const room = uniqueName('room');

  // Alice creates a public room.
  await createRoom(alice.page, room);

  // Bob finds it and joins.
  await joinRoom(bob.page, room);

  // They talk; each sees the other's message live, once.
  await send(alice.page, 'Hello Bob!');
  await expect(messages(bob.page).getByText('Hello Bob!')).toHaveCount(1);
  await send(bob.page, 'Hi Alice');
  await expect(messages(alice.page).getByText('Hi Alice')).toHaveCount(1);
  await expect(messages(alice.page).getByText('Hello Bob!')).toHaveCount(1);

  // Shift+Enter makes a new line instead of sending.
  const box = alice.page.getByRole('textbox', { name: 'Message' });
  await box.fill('line one');
  await box.press('Shift+Enter');
  await box.pressSequentially('line two');
  await expect(box).toHaveValue('line one\nline two');
  await box.press('Enter');
  const twoLines = messages(bob.page).locator('.body', { hasText: 'line one' });
  await expect(twoLines).toContainText('line two');
  await expect(twoLines.locator('br')).toHaveCount(1);

  // Typing shows on the other side and stops when the message is sent.
  await bob.page.getByRole('textbox', { name: 'Message' }).pressSequentially('typing something');
  await expect(alice.page.getByText(`${bob.name} is typing…`)).toBeVisible();
  await bob.page.getByRole('textbox', { name: 'Message' }).press('Enter');
  await expect(alice.page.getByText(`${bob.name} is typing…`)).toBeHidden();

  // A direct message, with the peer's presence dot.
  await openSidebarAction(alice.page, 'New direct message');
  await alice.page.getByLabel('Username').fill(bob.name);
  await alice.page.getByRole('button', { name: 'Start conversation' }).click();
  await expect(alice.page.getByRole('heading', { name: bob.name })).toBeVisible();
  await expect(alice.page.getByRole('heading', { name: bob.name }).getByLabel('online')).toBeVisible();
  await send(alice.page, 'Just between us');
  await showSidebar(bob.page);
  await bob.page.getByRole('navigation').getByRole('link', { name: alice.name }).click();
  await expect(messages(bob.page).getByText('Just between us')).toBeVisible();

  // Bob leaves: Alice sees him go offline.
  await bob.page.context().close();
  await expect(alice.page.getByRole('heading', { name: bob.name }).getByLabel('offline')).toBeVisible();
  await alice.page.context().close();
});

test('a user who goes offline and comes back sees exactly what was missed', async ({ browser }) => {
  const alice = await newUser(browser, 'amy');
  const bob = await newUser(browser, 'ben');
  const room = uniqueName('room');
  await createRoom(alice.page, room);
  await joinRoom(bob.page, room);
  await send(alice.page, 'before the outage');
  await expect(messages(bob.page).getByText('before the outage')).toBeVisible();

  await bob.page.context().setOffline(true);
  await expect(bob.page.getByRole('status').filter({ hasText: 'Reconnecting' })).toBeVisible();
  for (const n of [1, 2, 3]) await send(alice.page, `missed ${n}`);
  await expect(messages(alice.page).getByText('missed 3')).toBeVisible();
  await bob.page.context().setOffline(false);
  await expect(bob.page.getByRole('status').filter({ hasText: 'Reconnecting' })).toBeHidden();

  for (const n of [1, 2, 3]) await expect(messages(bob.page).getByText(`missed ${n}`)).toHaveCount(1);
  await expect(messages(bob.page).getByText('before the outage')).toHaveCount(1);
  // In order.
  const bodies = await messages(bob.page).locator('.message .body').allTextContents();
  expect(bodies).toEqual(['before the outage', 'missed 1', 'missed 2', 'missed 3']);

  // Bob sends while offline: pending, then sent after reconnecting, stored once.
  await bob.page.context().setOffline(true);
  await expect(bob.page.getByRole('status').filter({ hasText: 'Reconnecting' })).toBeVisible();
  await send(bob.page, 'sent while offline');
  await expect(messages(bob.page).locator('.message.pending').getByText('sent while offline')).toBeVisible();
  await bob.page.context().setOffline(false);
  await expect(messages(alice.page).getByText('sent while offline')).toHaveCount(1);
  await expect(messages(bob.page).locator('.message.pending')).toHaveCount(0);
  await expect(messages(bob.page).getByText('sent while offline')).toHaveCount(1);
});

test('history loads by scrolling up, and the view sticks to the bottom only when already there', async ({ browser }) => {
  const alice = await newUser(browser, 'ann');
  const room = uniqueName('room');
  await createRoom(alice.page, room);
  const roomId = alice.page.url().split('/').pop();

  // 120 older messages, posted through the API with the same session.
  for (let i = 1; i <= 120; i++) {
    const resp = await alice.page.request.post(url(`/api/rooms/${roomId}/messages`), {
      data: { client_id: `seed-${i}`, body: `seed message ${i}` },
    });
    expect(resp.status()).toBe(201);
  }
  // The offline copy keeps the newest 50 messages; let its last write settle (it waits for
  // changes to stop) so the reload starts from exactly those.
  await expect(messages(alice.page).getByText('seed message 120', { exact: true })).toBeVisible();
  await alice.page.waitForTimeout(1500);
  await alice.page.reload();
  const log = messages(alice.page);
  await expect(log.getByText('seed message 120', { exact: true })).toBeInViewport();
  await expect(log.getByText('seed message 70', { exact: true })).toHaveCount(0);

  // Scrolling up pages back until the very first message.
  for (let i = 0; i < 10; i++) {
    if ((await log.getByText('seed message 1', { exact: true }).count()) > 0) break;
    await log.evaluate((el) => el.scrollTo(0, 0));
    await alice.page.waitForTimeout(300);
  }
  await expect(log.getByText('seed message 1', { exact: true })).toHaveCount(1);
  await expect(log.getByText('This is the beginning of the conversation.')).toBeVisible();
  await expect(log.locator('.message .body')).toHaveCount(120);

  // Scrolled up: a new message does not pull the reader down.
  await log.evaluate((el) => el.scrollTo(0, 0));
  await send(alice.page, 'new while reading history');
  await expect(log.getByText('new while reading history')).toHaveCount(1);
  await expect(log.getByText('new while reading history')).not.toBeInViewport();
  // At the bottom: new messages stay in view.
  await log.evaluate((el) => el.scrollTo(0, el.scrollHeight));
  await alice.page.waitForTimeout(200);
  await send(alice.page, 'new at the bottom');
  await expect(log.getByText('new at the bottom')).toBeInViewport();
  await alice.page.context().close();
});

test('two tabs of one user stay consistent', async ({ browser }) => {
  const alice = await newUser(browser, 'tab');
  const room = uniqueName('room');
  await createRoom(alice.page, room);
  const second = await alice.page.context().newPage();
  await second.goto(alice.page.url());
  await expect(second.getByRole('heading', { name: room })).toBeVisible();
  await send(alice.page, 'from tab one');
  await expect(messages(second).getByText('from tab one')).toHaveCount(1);
  await send(second, 'from tab two');
  await expect(messages(alice.page).getByText('from tab two')).toHaveCount(1);
  await expect(messages(alice.page).locator('.message.pending')).toHaveCount(0);
  await alice.page.context().close();
});

test('a message written offline is queued, then delivered once when the connection returns', async ({ browser }) => {
  const alice = await newUser(browser, 'rita');
  const bob = await newUser(browser, 'rob');
  const room = uniqueName('room');
  await createRoom(alice.page, room);
  await joinRoom(bob.page, room);

  await alice.page.context().setOffline(true);
  await send(alice.page, 'stuck message');
  const pending = messages(alice.page).locator('.message.pending');
  await expect(pending.getByText('Queued')).toBeVisible();
  // Still queued well after the 15 s a connected send gets before it counts as failed.
  await alice.page.waitForTimeout(16_000);
  await expect(pending.getByText('Queued')).toBeVisible();
  await expect(pending.getByText('Failed')).toHaveCount(0);
  await alice.page.context().setOffline(false);
  await expect(messages(bob.page).getByText('stuck message')).toHaveCount(1);
  await expect(pending).toHaveCount(0);
  await expect(messages(alice.page).getByText('stuck message')).toHaveCount(1);
});

test('formatting renders, and markup in messages, names and topics stays inert', async ({ browser }) => {
  const xss = '<img src=x onerror="window.__xss=1">';
  // The display name itself is a payload.
  const { viewport, isMobile, hasTouch, userAgent, deviceScaleFactor } = test.info().project.use;
  const context = await browser.newContext({ viewport, isMobile, hasTouch, userAgent, deviceScaleFactor });
  const page = await context.newPage();
  const name = uniqueName('eve');
  await page.goto(url('/signup'));
  await page.getByLabel('Username').fill(name);
  await page.getByLabel('Display name').fill(xss);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign up' }).click();
  await expect(page.getByRole('heading', { name: `Welcome, ${xss}` })).toBeVisible();

  const bob = await newUser(browser, 'bobby');
  const roomName = `<script>window.__xss=1</script>${uniqueName('r')}`.slice(0, 64);
  await openSidebarAction(page, 'New room');
  await page.getByLabel('Name').fill(roomName);
  await page.getByLabel('Topic').fill('<svg onload="window.__xss=1">');
  await page.getByRole('button', { name: 'Create room' }).click();
  await expect(page.getByRole('heading', { name: roomName })).toBeVisible();
  await openSidebarAction(bob.page, 'Browse rooms');
  await bob.page.getByRole('button', { name: `Join ${roomName}` }).click();
  await expect(bob.page.getByRole('heading', { name: roomName })).toBeVisible();

  const payloads = [
    '<script>window.__xss=1</script>',
    xss,
    '[click me](javascript:window.__xss=1)',
    '<a href="javascript:window.__xss=1">link</a>',
    '<iframe src="javascript:window.__xss=1"></iframe>',
    '![pixel](https://evil.example/track.png)',
  ];
  for (const p of payloads) await send(page, p);
  await send(page, '**bold** *it* ~~gone~~ `code` and https://example.org/x.');
  const log = messages(bob.page);
  await expect(log.locator('strong', { hasText: 'bold' })).toBeVisible();
  await expect(log.locator('em', { hasText: 'it' })).toBeVisible();
  await expect(log.locator('s', { hasText: 'gone' })).toBeVisible();
  await expect(log.locator('code', { hasText: 'code' })).toBeVisible();
  const link = log.locator('a[href="https://example.org/x"]');
  await expect(link).toHaveAttribute('rel', 'noopener noreferrer nofollow');
  await expect(link).toHaveAttribute('target', '_blank');

  // Every payload is shown as text; nothing ran, nothing was loaded, no unsafe link exists.
  await expect(log.getByText('<script>window.__xss=1</script>')).toBeVisible();
  await expect(log.getByText(xss).first()).toBeVisible();
  await expect(log.getByText('click me')).toBeVisible();
  for (const p of [bob.page, page]) {
    await expect(p.locator('img, iframe, script:not([src]), svg[onload]')).toHaveCount(0);
    await expect(p.locator('a[href^="javascript"], a[href^="data"]')).toHaveCount(0);
    expect(await p.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
  }
  await expect(log.locator('a[href="https://evil.example/track.png"]')).toHaveText('pixel');
  await context.close();
});

test('@mentions autocomplete in the composer and highlight the message for the mentioned user', async ({ browser }) => {
  const alice = await newUser(browser, 'mia');
  const bob = await newUser(browser, 'max');
  const room = uniqueName('room');
  await createRoom(alice.page, room);
  await joinRoom(bob.page, room);
  // Alice's open room learns about Bob live (member_joined).

  const box = alice.page.getByRole('textbox', { name: 'Message' });
  await box.pressSequentially(`hey @${bob.name.slice(0, 5)}`);
  const options = alice.page.getByRole('listbox', { name: 'Suggestions' });
  await expect(options.getByRole('option')).toHaveText([new RegExp(bob.name)]);
  await box.press('Tab');
  await expect(box).toHaveValue(`hey @${bob.name} `);
  await box.pressSequentially('look at this');
  await box.press('Enter');

  const atBob = messages(bob.page).locator('.message.mentions-me');
  await expect(atBob).toContainText(`@${bob.name}`);
  await expect(atBob.locator('.mention.me')).toHaveText(`@${bob.name}`);
  await expect(messages(alice.page).getByText('look at this')).toBeVisible();
  await expect(messages(alice.page).locator('.message.mentions-me')).toHaveCount(0);
});

test('emoji: a searchable picker with recently used, :shortcode: completion, emoji-only messages shown large', async ({ browser }) => {
  const alice = await newUser(browser, 'emo');
  const room = uniqueName('room');
  await createRoom(alice.page, room);
  const page = alice.page;
  const box = page.getByRole('textbox', { name: 'Message' });

  await page.getByRole('button', { name: 'Emoji', exact: true }).click();
  const picker = page.getByRole('dialog', { name: 'Emoji picker' });
  // Search ignores case.
  await picker.getByRole('searchbox', { name: 'Search emoji' }).fill('RoCKet');
  await picker.getByRole('button', { name: 'rocket', exact: true }).click();
  await expect(box).toHaveValue('🚀');
  await picker.getByRole('tab', { name: 'Food & Drink' }).click();
  await expect(picker.getByRole('button', { name: 'pizza', exact: true })).toBeVisible();
  await page.getByRole('button', { name: 'Emoji', exact: true }).click();
  await expect(picker).toBeHidden();

  await box.pressSequentially(' :tad');
  await expect(page.getByRole('listbox', { name: 'Suggestions' }).getByRole('option').first()).toContainText(':tada:');
  await box.press('Tab');
  await expect(box).toHaveValue('🚀 🎉 ');
  await box.press('Enter');
  await expect(messages(page).locator('.body.big')).toHaveText('🚀 🎉');
  // Text with letters or digits is not emoji-only, even with symbols in it.
  await send(page, '→ ok 👍');
  await send(page, '①');
  await expect(messages(page).locator('.body', { hasText: '①' })).toBeVisible();
  await expect(messages(page).locator('.body.big')).toHaveText('🚀 🎉');

  // Recently used comes first next time.
  await page.getByRole('button', { name: 'Emoji', exact: true }).click();
  await expect(picker.getByLabel('Recently used').getByRole('button')).toHaveText(['🎉', '🚀']);
});

test('replies quote the original, and clicking a quote jumps to it, loading older history', async ({ browser }) => {
  const alice = await newUser(browser, 'quin');
  const bob = await newUser(browser, 'ray');
  const room = uniqueName('room');
  await createRoom(alice.page, room);
  const roomId = alice.page.url().split('/').pop();
  const post = async (body: string, clientId: string, replyTo?: number) => {
    const resp = await alice.page.request.post(url(`/api/rooms/${roomId}/messages`), {
      data: { client_id: clientId, body, ...(replyTo ? { reply_to: replyTo } : {}) },
    });
    expect(resp.status()).toBe(201);
    return (await resp.json()) as { id: number };
  };
  const original = await post('the original question', 'q1');
  for (let i = 1; i <= 80; i++) await post(`filler ${i}`, `f${i}`);
  await post('an answer to it', 'a1', original.id);

  await joinRoom(bob.page, room);
  const log = messages(bob.page);
  const answer = log.locator('.message', { hasText: 'an answer to it' });
  await expect(answer.getByRole('button', { name: 'Show the original message' })).toContainText('the original question');
  const originalBody = log.locator('.body').getByText('the original question', { exact: true });
  await expect(originalBody).toHaveCount(0);
  await answer.getByRole('button', { name: 'Show the original message' }).click();
  await expect(originalBody).toBeInViewport();

  // Replying from the UI.
  const target = log.locator('.message', { hasText: 'filler 80' });
  // A tap shows the toolbar on phones; on desktops the pointer over it does.
  await target.locator('.body').click();
  await target.getByRole('button', { name: /^Reply to / }).click();
  await expect(bob.page.getByRole('status').filter({ hasText: 'Replying to' })).toContainText('filler 80');
  await send(bob.page, 'replying to the last filler');
  await expect(bob.page.getByRole('status').filter({ hasText: 'Replying to' })).toHaveCount(0);
  const reply = messages(alice.page).locator('.message', { hasText: 'replying to the last filler' });
  await expect(reply.getByRole('button', { name: 'Show the original message' })).toContainText('filler 80');
});
