// Loads the WebAssembly client. A separate file (not an inline script) so the Content-Security-
// Policy can forbid inline scripts entirely.
import init from '/pkg/natter.js';

init({ module_or_path: '/pkg/natter.wasm' });

// The service worker (public/sw.js) makes Natter open offline and shows push notifications.
if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('/sw.js').catch((e) => console.warn('service worker:', e));
  // A notification was clicked while Natter was open: go to its conversation, inside the app
  // (a history entry and the `popstate` the app's router listens to), without a reload.
  navigator.serviceWorker.addEventListener('message', (event) => {
    if (event.data && event.data.type === 'open' && typeof event.data.url === 'string') {
      const url = new URL(event.data.url, location.origin);
      if (url.origin !== location.origin) return;
      history.pushState(null, '', url.pathname + url.search + url.hash);
      dispatchEvent(new PopStateEvent('popstate'));
    }
  });
}
