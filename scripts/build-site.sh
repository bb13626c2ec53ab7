#!/usr/bin/env bash
# Builds the client into target/site, the same layout cargo-leptos produces, without needing
# cargo-leptos (a 45-minute install): wasm32 build in the `wasm-release` profile, wasm-bindgen
# with the name section removed (most of the size win, see docs/perf.md), CSS and public/.
# The wasm build gets `--cfg erase_components` from .cargo/config.toml (a RUSTFLAGS variable
# would replace it: the client still works, but is about 40 KB bigger compressed).
#
# Cargo's output goes to $CARGO_TARGET_DIR (default `target`), the site to $NATTER_SITE_ROOT
# (default `target/site`, where the server looks for it too).
# scripts/check-client-size.sh checks the result against the first-load budget.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo_target=${CARGO_TARGET_DIR:-target}
site=${NATTER_SITE_ROOT:-target/site}
out=$site/pkg
cargo build -p frontend --lib --target wasm32-unknown-unknown --profile wasm-release
mkdir -p "$out"
wasm-bindgen "$cargo_target/wasm32-unknown-unknown/wasm-release/frontend.wasm" \
  --target web --no-typescript --remove-name-section --out-dir "$out" --out-name natter
mv -f "$out/natter_bg.wasm" "$out/natter.wasm"
cp style/main.css "$out/natter.css"
cp -r public/. "$site/"
# Stamp the service worker with this build's id: a new build is a new worker, which replaces
# the cached app shell (see public/sw.js).
build_id=$(cat "$out/natter.wasm" "$out/natter.js" "$out/natter.css" "$site/shell.html" "$site/boot.js" \
  | sha256sum | cut -c1-16)
sed -i "s/__NATTER_BUILD__/$build_id/" "$site/sw.js"
rm -f "$site/sw.js.br" "$site/sw.js.gz"
# Precompress at the highest levels once, so the server never compresses these per request
# (on-the-fly brotli uses a fast, weaker level). The server serves .br/.gz when accepted.
for f in "$out"/natter.wasm "$out"/natter.js "$out"/natter.css "$site"/shell.html "$site"/boot.js; do
  gzip -9 -k -f "$f"
  if command -v brotli >/dev/null; then brotli -q 11 -k -f "$f"; fi
done
echo "site built in $site: wasm $(stat -c %s "$out/natter.wasm") B," \
  "gzip $(stat -c %s "$out/natter.wasm.gz") B$(command -v brotli >/dev/null && echo ", brotli $(stat -c %s "$out/natter.wasm.br") B")"
