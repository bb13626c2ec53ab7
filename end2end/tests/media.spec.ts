// Issue 4, rich messages and media: attachments (upload, thumbnail, lightbox, download),
// reactions, edits and deletions, each seen live by a second user in another browser context.
import fs from 'node:fs';
import zlib from 'node:zlib';
import { type Locator, type Page } from '@playwright/test';
import { createRoom, expect, joinRoom, logIn, logOut, messages, newUser, send, test, uniqueName, url } from './helpers';

/** A valid RGB PNG of the given size (a red-to-blue gradient), built by hand. */
function png(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bits per channel
  header[9] = 2; // RGB
  const rows = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    const row = y * (width * 3 + 1); // each row starts with filter type 0
    for (let x = 0; x < width; x++) {
      rows[row + 1 + x * 3] = 255 - Math.round((x / width) * 255);
      rows[row + 2 + x * 3] = 40;
      rows[row + 3 + x * 3] = Math.round((x / width) * 255);
    }
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', zlib.deflateSync(rows)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Two users in a fresh public room, both looking at it. */
async function pair(browser: import('@playwright/test').Browser, a: string, b: string) {
  const alice = await newUser(browser, a);
  const bob = await newUser(browser, b);
  const room = uniqueName('room');
  await createRoom(alice.page, room);
  await joinRoom(bob.page, room);
  return { alice, bob, room };
}

/** The stored message showing `text` in `page`'s list (not a pending copy still being sent). */
function message(page: Page, text: string): Locator {
  return messages(page).locator('.message[data-seq]', { hasText: text });
}

/** The `seq` of the stored message showing `text` (not its pending copy, which has none). */
async function seqOf(page: Page, text: string): Promise<string> {
  const stored = message(page, text);
  await expect(stored).toHaveCount(1);
  return (await stored.getAttribute('data-seq')) ?? '';
}

/** Shows a message's toolbar: a tap on phones, the pointer over it on desktops. */
async function toolbar(msg: Locator): Promise<Locator> {
  const bar = msg.getByRole('toolbar', { name: 'Message actions' });
  // A second tap would hide it again.
  if (!(await bar.isVisible())) await msg.locator('.body').click();
  await expect(bar).toBeVisible();
  return bar;
}

function chips(page: Page): Locator {
  return page.locator('form.composer').getByRole('list', { name: 'Attachments' });
}

const naturalWidth = (img: Locator) =>
  img.evaluate((el: HTMLImageElement) => (el.complete ? el.naturalWidth : 0));

test('images and files: uploaded with progress, shown as a thumbnail and a card, opened and downloaded', async ({
  browser,
}) => {
  const { alice, bob } = await pair(browser, 'pia', 'pete');

  // Alice attaches an image and a text file with the paperclip.
  const chooser = alice.page.waitForEvent('filechooser');
  await alice.page.getByRole('button', { name: 'Attach files' }).click();
  await (await chooser).setFiles([
    { name: 'gradient.png', mimeType: 'image/png', buffer: png(64, 48) },
    { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hello from a file\n') },
  ]);
  await expect(chips(alice.page).getByRole('listitem')).toHaveCount(2);
  await expect(chips(alice.page).locator('.upload-chip.done')).toHaveCount(2);
  await expect(alice.page.getByRole('button', { name: 'Send' })).toBeEnabled();
  await send(alice.page, 'two files for you');
  await expect(chips(alice.page)).toHaveCount(0);

  // Bob sees the thumbnail, loaded, and the file card.
  const msg = message(bob.page, 'two files for you');
  const thumb = msg.locator('img.attachment-image');
  await expect(thumb).toHaveAttribute('alt', 'gradient.png');
  await expect(thumb).toHaveAttribute('src', /\/media\/[0-9a-f]+\/thumb$/);
  await expect(thumb).toHaveAttribute('width', '64');
  await expect.poll(() => naturalWidth(thumb)).toBeGreaterThan(0);
  const card = msg.locator('.attachment-file');
  await expect(card).toContainText('notes.txt');
  await expect(card).toContainText('18 B');
  // Alice's own copy shows them too (the pending row is replaced by the stored message).
  await expect(message(alice.page, 'two files for you').locator('img.attachment-image')).toHaveCount(1);

  // The lightbox: full image, name, download link; Esc, the close button and the backdrop close it.
  const lightbox = bob.page.getByRole('dialog', { name: 'gradient.png' });
  const open = msg.getByRole('button', { name: 'Open image gradient.png' });
  await open.click();
  await expect(lightbox).toBeVisible();
  const full = lightbox.locator('img');
  await expect(full).toHaveAttribute('src', /\/media\/[0-9a-f]+$/);
  await expect.poll(() => naturalWidth(full)).toBe(64);
  await expect(lightbox).toContainText('gradient.png');
  await expect(lightbox.getByRole('link', { name: 'Download' })).toHaveAttribute('href', /\?download=1$/);
  await bob.page.keyboard.press('Escape');
  await expect(lightbox).toBeHidden();
  await open.click();
  await lightbox.getByRole('button', { name: 'Close' }).click();
  await expect(lightbox).toBeHidden();
  await open.click();
  await full.click(); // the image itself keeps it open
  await expect(lightbox).toBeVisible();
  await lightbox.click({ position: { x: 5, y: 5 } });
  await expect(lightbox).toBeHidden();

  // The file downloads under its name with its content.
  const download = bob.page.waitForEvent('download');
  await card.getByRole('link', { name: 'Download notes.txt' }).click();
  const file = await download;
  expect(file.suggestedFilename()).toBe('notes.txt');
  expect(fs.readFileSync(await file.path(), 'utf8')).toBe('hello from a file\n');

  // A message of attachments only (no text) is allowed. Sizes from 1 KB on show one decimal.
  await alice.page.locator('input[type=file]').setInputFiles({
    name: 'only.txt',
    mimeType: 'text/plain',
    buffer: Buffer.from('just a file'.padEnd(1536, '.')),
  });
  await expect(chips(alice.page).locator('.upload-chip.done')).toHaveCount(1);
  await expect(chips(alice.page)).toContainText('1.5 KB');
  await alice.page.getByRole('button', { name: 'Send' }).click();
  const only = messages(bob.page).locator('.attachment-file', { hasText: 'only.txt' });
  await expect(only).toBeVisible();
  await expect(only).toContainText('1.5 KB');

  await alice.page.context().close();
  await bob.page.context().close();
});

test('upload chips: the per-message limit, server errors on the chip, and removing chips', async ({ browser }) => {
  const alice = await newUser(browser, 'ula');
  await createRoom(alice.page, uniqueName('room'));
  const input = alice.page.locator('input[type=file]');

  // Eleven files: ten are attached, the UI says why the last is not.
  await input.setInputFiles(
    Array.from({ length: 11 }, (_, i) => ({
      name: `f${i + 1}.txt`,
      mimeType: 'text/plain',
      buffer: Buffer.from(`file ${i + 1}`),
    })),
  );
  await expect(chips(alice.page).getByRole('listitem')).toHaveCount(10);
  await expect(alice.page.getByRole('status').filter({ hasText: 'at most 10 attachments' })).toBeVisible();
  await alice.page.getByRole('button', { name: 'Remove f3.txt' }).click();
  await expect(chips(alice.page).getByRole('listitem')).toHaveCount(9);
  await expect(chips(alice.page)).not.toContainText('f3.txt');

  // A file that claims to be a PNG but is not: the server's reason shows on its chip.
  await input.setInputFiles({ name: 'broken.png', mimeType: 'image/png', buffer: Buffer.from('not a png at all') });
  const broken = chips(alice.page).locator('.upload-chip', { hasText: 'broken.png' });
  await expect(broken.getByRole('alert')).not.toBeEmpty();
  await expect(broken).toHaveClass(/failed/);
  await alice.page.getByRole('button', { name: 'Remove broken.png' }).click();
  await expect(broken).toHaveCount(0);

  // While a file uploads: a progress bar, and Send waits; × aborts the upload.
  let release = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  await alice.page.route('**/api/uploads?*', async (route) => {
    await held;
    await route.continue().catch(() => {}); // aborted by the page meanwhile
  });
  await input.setInputFiles({ name: 'slow.txt', mimeType: 'text/plain', buffer: Buffer.from('slow') });
  const slow = chips(alice.page).locator('.upload-chip', { hasText: 'slow.txt' });
  await expect(slow.getByRole('progressbar', { name: 'Uploading slow.txt' })).toBeVisible();
  await expect(alice.page.getByRole('button', { name: 'Send' })).toBeDisabled();
  await alice.page.getByRole('button', { name: 'Remove slow.txt' }).click();
  await expect(slow).toHaveCount(0);
  await expect(alice.page.getByRole('button', { name: 'Send' })).toBeEnabled();
  await alice.page.unroute('**/api/uploads?*');
  release();

  // Sending takes the nine uploaded files along.
  await send(alice.page, 'nine files');
  await expect(message(alice.page, 'nine files').locator('.attachment-file')).toHaveCount(9);
  await expect(chips(alice.page)).toHaveCount(0);
  await alice.page.context().close();
});

test('reactions: toggled by anyone, counted and highlighted live, with who reacted', async ({ browser }) => {
  const { alice, bob } = await pair(browser, 'rae', 'rex');
  await send(alice.page, 'react to me');

  // Bob reacts through the picker.
  const bobMsg = message(bob.page, 'react to me');
  await (await toolbar(bobMsg)).getByRole('button', { name: 'React to this message' }).click();
  const picker = bob.page.getByRole('dialog', { name: 'Emoji picker' });
  await picker.getByRole('searchbox', { name: 'Search emoji' }).fill('thumbs up');
  await picker.getByRole('button', { name: 'thumbs up', exact: true }).click();
  await expect(picker).toBeHidden();
  const bobChip = bobMsg.locator('.reaction', { hasText: '👍' });
  await expect(bobChip).toHaveAttribute('aria-pressed', 'true');

  // Alice sees it live: count 1, not hers, Bob named in the title.
  const aliceChip = message(alice.page, 'react to me').locator('.reaction', { hasText: '👍' });
  await expect(aliceChip.locator('.reaction-count')).toHaveText('1');
  await expect(aliceChip).toHaveAttribute('aria-pressed', 'false');
  await expect(aliceChip).not.toHaveClass(/mine/);
  await expect(aliceChip).toHaveAttribute('title', `${bob.name} reacted with 👍`);

  // A long press or right click shows the same list (phones have no hover).
  await aliceChip.click({ button: 'right' });
  await expect(message(alice.page, 'react to me').locator('.reaction-who')).toContainText(bob.name);

  // Alice adds hers: 2 for both; then takes it back: 1.
  await aliceChip.click();
  await expect(aliceChip.locator('.reaction-count')).toHaveText('2');
  await expect(aliceChip).toHaveAttribute('aria-pressed', 'true');
  await expect(aliceChip).toHaveClass(/mine/);
  await expect(bobChip.locator('.reaction-count')).toHaveText('2');
  await expect(bobChip).toHaveAttribute('title', `${bob.name}, ${alice.name} reacted with 👍`);
  await aliceChip.click();
  await expect(aliceChip.locator('.reaction-count')).toHaveText('1');
  await expect(aliceChip).toHaveAttribute('aria-pressed', 'false');
  await expect(bobChip.locator('.reaction-count')).toHaveText('1');

  // Bob takes his back: the chip is gone everywhere.
  await bobChip.click();
  await expect(bobChip).toHaveCount(0);
  await expect(aliceChip).toHaveCount(0);
  await alice.page.context().close();
  await bob.page.context().close();
});

test('edits and deletions reach the other user live; only authors and moderators may delete', async ({
  browser,
}) => {
  const { alice, bob } = await pair(browser, 'eda', 'ed');
  await send(alice.page, 'first draft');
  const seq = await seqOf(alice.page, 'first draft');
  const aliceMsg = messages(alice.page).locator(`.message[data-seq="${seq}"]`);
  const bobView = messages(bob.page).locator(`.message[data-seq="${seq}"]`);
  await expect(bobView).toContainText('first draft');

  // Alice edits inline: Enter saves. Bob sees the new text and "(edited)" live.
  await (await toolbar(aliceMsg)).getByRole('button', { name: 'Edit message' }).click();
  const editor = alice.page.getByRole('textbox', { name: 'Edit message' });
  await expect(editor).toHaveValue('first draft');
  await editor.fill('second draft');
  await editor.press('Enter');
  await expect(editor).toBeHidden();
  await expect(bobView.locator('.body')).toHaveText('second draft');
  await expect(bobView.locator('.edited')).toHaveText('(edited)');
  await expect(bobView.locator('.edited')).toHaveAttribute('title', /^Edited /);

  // ArrowUp in the empty composer edits my last message; Esc cancels.
  await alice.page.getByRole('textbox', { name: 'Message' }).press('ArrowUp');
  await expect(editor).toHaveValue('second draft');
  await editor.press('Shift+Enter');
  await editor.press('Escape');
  await expect(editor).toBeHidden();
  await expect(aliceMsg.locator('.body')).toHaveText('second draft');

  // Bob, a member, may react to and reply to Alice's message, not edit or delete it.
  const bobBar = await toolbar(bobView);
  await expect(bobBar.getByRole('button', { name: 'React to this message' })).toBeVisible();
  await expect(bobBar.getByRole('button', { name: /^Reply to / })).toBeVisible();
  await expect(bobBar.getByRole('button', { name: 'Edit message' })).toHaveCount(0);
  await expect(bobBar.getByRole('button', { name: 'Delete message' })).toHaveCount(0);
  // His own message he may edit and delete.
  await send(bob.page, 'bob was here');
  const bobOwn = await toolbar(message(bob.page, 'bob was here'));
  await expect(bobOwn.getByRole('button', { name: 'Edit message' })).toBeVisible();
  await expect(bobOwn.getByRole('button', { name: 'Delete message' })).toBeVisible();
  // Alice owns the room: she may delete Bob's message, not edit it. Dismissing the
  // confirmation keeps it.
  const aliceSeesBob = message(alice.page, 'bob was here');
  const aliceBar = await toolbar(aliceSeesBob);
  await expect(aliceBar.getByRole('button', { name: 'Edit message' })).toHaveCount(0);
  alice.page.once('dialog', (d) => d.dismiss());
  await aliceBar.getByRole('button', { name: 'Delete message' }).click();
  await expect(message(bob.page, 'bob was here').locator('.body')).toHaveText('bob was here');

  // Bob replies to it; Alice's later edit shows in the quote of the reply too.
  await (await toolbar(bobView)).getByRole('button', { name: /^Reply to / }).click();
  await send(bob.page, 'replying to the draft');
  const quote = message(alice.page, 'replying to the draft').getByRole('button', { name: 'Show the original message' });
  await expect(quote).toContainText('second draft');
  await (await toolbar(aliceMsg)).getByRole('button', { name: 'Edit message' }).click();
  await editor.fill('third draft');
  await editor.press('Enter');
  await expect(bobView.locator('.body')).toHaveText('third draft');
  await expect(quote).toContainText('third draft');
  await expect(message(bob.page, 'replying to the draft').getByRole('button', { name: 'Show the original message' })).toContainText('third draft');

  // Alice deletes her own message: Bob sees the tombstone live, with nothing else.
  alice.page.once('dialog', (d) => d.accept());
  await (await toolbar(aliceMsg)).getByRole('button', { name: 'Delete message' }).click();
  await expect(bobView).toContainText('This message was deleted.');
  await expect(bobView).not.toContainText('second draft');
  await expect(bobView.locator('.body, .reactions, .attachments')).toHaveCount(0);
  await expect(bobView.getByRole('toolbar')).toHaveCount(0);
  await expect(aliceMsg).toContainText('This message was deleted.');
  // The reply's quote says so too.
  await expect(quote).toContainText('This message was deleted.');
  await expect(quote).not.toContainText('third draft');
  await alice.page.context().close();
  await bob.page.context().close();
});

test('a file name with markup is shown as text and runs nothing', async ({ browser }) => {
  const { alice, bob } = await pair(browser, 'xia', 'xan');
  const dialogs: string[] = [];
  for (const p of [alice.page, bob.page]) p.on('dialog', (d) => (dialogs.push(d.message()), d.dismiss()));
  const name = '<img src=x onerror=alert(1)>.txt';

  await alice.page.locator('input[type=file]').setInputFiles({
    name,
    mimeType: 'text/plain',
    buffer: Buffer.from('harmless'),
  });
  await expect(chips(alice.page).locator('.upload-name')).toHaveText(name);
  await expect(chips(alice.page).locator('.upload-chip.done')).toHaveCount(1);
  await send(alice.page, 'look at this name');

  const card = message(bob.page, 'look at this name').locator('.attachment-file');
  await expect(card.locator('.file-name')).toHaveText(name);
  await expect(card.getByRole('link', { name: `Download ${name}` })).toHaveAttribute('download', name);
  for (const p of [alice.page, bob.page]) {
    await expect(messages(p).locator('img')).toHaveCount(0);
    await expect(p.locator('img[src="x"]')).toHaveCount(0);
  }
  await bob.page.waitForTimeout(300);
  expect(dialogs).toEqual([]);
  await alice.page.context().close();
  await bob.page.context().close();
});

test('changes made while a user was offline arrive when they reconnect (resume by revision)', async ({ browser }) => {
  const { alice, bob } = await pair(browser, 'oda', 'obi');
  for (const text of ['keep me', 'edit me', 'delete me']) await send(alice.page, text);
  await expect(message(bob.page, 'delete me')).toBeVisible();
  const lastSeq = Number(await seqOf(alice.page, 'delete me'));
  // A change Bob sees live raises his revision cursor for the room.
  const keep = message(alice.page, 'keep me');
  await (await toolbar(keep)).getByRole('button', { name: 'React to this message' }).click();
  await alice.page.getByRole('searchbox', { name: 'Search emoji' }).fill('thumbs up');
  await alice.page.getByRole('button', { name: 'thumbs up', exact: true }).click();
  await expect(message(bob.page, 'keep me').locator('.reaction', { hasText: '👍' })).toBeVisible();
  const hellos: { resume: { room_id: number; last_seq: number; last_rev: number }[] }[] = [];
  bob.page.on('websocket', (ws) =>
    ws.on('framesent', (f) => {
      const frame = JSON.parse(String(f.payload));
      if (frame.type === 'hello') hellos.push(frame);
    }),
  );

  await bob.page.context().setOffline(true);
  await expect(bob.page.getByRole('status').filter({ hasText: 'Reconnecting' })).toBeVisible();
  // Alice edits one, deletes one and reacts to the third, through the API.
  const roomId = alice.page.url().split('/').pop();
  const idOf = async (text: string) => {
    const seq = await seqOf(alice.page, text);
    const resp = await alice.page.request.get(url(`/api/rooms/${roomId}/messages?before=${Number(seq) + 1}&limit=1`));
    return ((await resp.json()) as { messages: { id: number }[] }).messages[0].id;
  };
  const api = (path: string) => url(`/api/rooms/${roomId}/messages/${path}`);
  expect((await alice.page.request.patch(api(`${await idOf('edit me')}`), { data: { body: 'edited offline' } })).ok()).toBe(true);
  expect((await alice.page.request.delete(api(`${await idOf('delete me')}`))).ok()).toBe(true);
  const react = await alice.page.request.put(api(`${await idOf('keep me')}/reactions/${encodeURIComponent('🎉')}`), {
    data: {},
  });
  expect(react.ok()).toBe(true);
  await expect(message(alice.page, 'edited offline')).toBeVisible();

  await bob.page.context().setOffline(false);
  await expect(bob.page.getByRole('status').filter({ hasText: 'Reconnecting' })).toBeHidden();
  await expect(message(bob.page, 'edited offline').locator('.edited')).toBeVisible();
  await expect(message(bob.page, 'edit me')).toHaveCount(0);
  await expect(messages(bob.page).getByText('This message was deleted.')).toHaveCount(1);
  await expect(message(bob.page, 'keep me').locator('.reaction', { hasText: '🎉' })).toContainText('1');
  // The hello that resumed named both cursors: the last message and the last change seen.
  expect(hellos.length).toBeGreaterThan(0);
  const cursor = hellos[0].resume.find((c) => String(c.room_id) === roomId);
  expect(cursor?.last_seq).toBe(lastSeq);
  expect(cursor?.last_rev).toBeGreaterThan(0);
  await alice.page.context().close();
  await bob.page.context().close();
});

test('files can be dropped on the room and pasted into the composer', async ({ browser }) => {
  const alice = await newUser(browser, 'dru');
  await createRoom(alice.page, uniqueName('room'));
  const page = alice.page;
  const transfer = (name: string) =>
    page.evaluateHandle((name) => {
      const dt = new DataTransfer();
      dt.items.add(new File([`contents of ${name}`], name, { type: 'text/plain' }));
      return dt;
    }, name);

  // Dragging files over the room shows the drop zone; dropping attaches them.
  const room = page.locator('.room-main');
  const dropped = await transfer('dropped.txt');
  await room.dispatchEvent('dragenter', { dataTransfer: dropped });
  await expect(room).toHaveClass(/dropping/);
  await expect(page.getByText('Drop files to attach them')).toBeVisible();
  await room.dispatchEvent('drop', { dataTransfer: dropped });
  await expect(room).not.toHaveClass(/dropping/);
  await expect(chips(page).locator('.upload-chip.done', { hasText: 'dropped.txt' })).toBeVisible();

  // Pasting a file (a screenshot, say) attaches it too; pasting text still pastes text.
  const pasted = await transfer('pasted.txt');
  await page.getByRole('textbox', { name: 'Message' }).evaluate((el, dt) => {
    el.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt as DataTransfer, bubbles: true, cancelable: true }));
  }, pasted);
  await expect(chips(page).locator('.upload-chip.done', { hasText: 'pasted.txt' })).toBeVisible();
  await send(page, 'dropped and pasted');
  const sent = message(page, 'dropped and pasted');
  await expect(sent.locator('.attachment-file')).toHaveText([/dropped\.txt/, /pasted\.txt/]);
  await alice.page.context().close();
});

test('logging out during an upload is clean: the request is dropped, nothing breaks', async ({ browser }) => {
  const alice = await newUser(browser, 'lou');
  await createRoom(alice.page, uniqueName('room'));
  const page = alice.page;
  const crashes: string[] = [];
  page.on('pageerror', (e) => crashes.push(String(e)));
  let release = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  await page.route('**/api/uploads?*', async (route) => {
    await held;
    await route.continue().catch(() => {});
  });
  await page.locator('input[type=file]').setInputFiles({ name: 'late.txt', mimeType: 'text/plain', buffer: Buffer.from('late') });
  await expect(chips(page).getByRole('progressbar', { name: 'Uploading late.txt' })).toBeVisible();
  await logOut(page);
  release();
  await page.waitForTimeout(500);
  expect(crashes).toEqual([]);
  // Still usable: log in again, no leftover chip.
  await logIn(page, alice.name);
  await expect(page.getByRole('heading', { name: `Welcome, ${alice.name}` })).toBeVisible();
  expect(crashes).toEqual([]);
  await alice.page.context().close();
});
