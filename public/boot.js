// Loads the WebAssembly client. A separate file (not an inline script) so the Content-Security-
// Policy can forbid inline scripts entirely.
import init from '/pkg/natter.js';

init({ module_or_path: '/pkg/natter.wasm' });
