// Natter's service worker: opens the app offline, shows push notifications, and never traps
// users on an old version.
//
// - The app shell (shell.html, boot.js, the wasm, JS and CSS, icons) is precached under a
//   name that includes the build id. scripts/build-site.sh writes the id into this file, so
//   every deployment is a new service worker: it installs, takes over at once (skipWaiting +
//   clients.claim) and deletes the previous build's cache.
// - Page loads try the network first (a fresh deployment is picked up on the next load) and
//   fall back to the cached shell when offline. Build files are served from the cache.
// - The API, the WebSocket and media are never cached here: the app keeps its own offline copy
//   of recent rooms and messages.
const BUILD = '__NATTER_BUILD__';
const CACHE = `natter-shell-${BUILD}`;
// Unstamped (cargo leptos watch): cache nothing, so every rebuild shows at once.
const DEV = BUILD.startsWith('__');
const SHELL = [
  '/shell.html',
  '/boot.js',
  '/pkg/natter.js',
  '/pkg/natter.wasm',
  '/pkg/natter.css',
  '/manifest.webmanifest',
  '/favicon.svg',
  '/icons/icon-192.png',
  '/icons/icon-512.png',
  '/icons/maskable-192.png',
  '/icons/maskable-512.png',
];

self.addEventListener('install', (event) => {
  if (DEV) {
    event.waitUntil(self.skipWaiting());
    return;
  }
  event.waitUntil(
    caches.open(CACHE)
      .then((cache) => cache.addAll(SHELL.map((url) => new Request(url, { cache: 'reload' }))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(
        names.filter((n) => n.startsWith('natter-shell-') && n !== CACHE).map((n) => caches.delete(n)),
      ))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (DEV || request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname.startsWith('/api/') || url.pathname.startsWith('/ws')
      || url.pathname.startsWith('/media/')) {
    return;
  }
  if (request.mode === 'navigate') {
    event.respondWith(
      fetch(request).catch(() => caches.match('/shell.html', { cacheName: CACHE })),
    );
    return;
  }
  event.respondWith(
    caches.match(request, { cacheName: CACHE }).then((hit) => hit || fetch(request)),
  );
});

// Web Push: the payload is {title, body, url, tag, room_id} (docs/protocol.md).
self.addEventListener('push', (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (_) {
    data = { title: 'Natter', body: event.data ? event.data.text() : '' };
  }
  event.waitUntil(
    self.registration.showNotification(data.title || 'Natter', {
      body: data.body || '',
      tag: data.tag,
      renotify: Boolean(data.tag),
      icon: '/icons/icon-192.png',
      badge: '/icons/maskable-192.png',
      data: { url: data.url || '/' },
    }),
  );
});

// Clicking a notification opens its conversation: in an open Natter window if there is one.
self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const target = new URL(event.notification.data?.url || '/', self.location.origin).href;
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    for (const client of windows) {
      if (new URL(client.url).origin === self.location.origin) {
        await client.focus();
        client.postMessage({ type: 'open', url: target });
        return;
      }
    }
    await self.clients.openWindow(target);
  })());
});
