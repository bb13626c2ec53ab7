#!/usr/bin/env bash
# Builds the client into target/site, the same layout cargo-leptos produces, without needing
# cargo-leptos (a 45-minute install): wasm32 build in the `wasm-release` profile, wasm-bindgen
# with the name section removed (most of the size win, see docs/perf.md), CSS and public/.
set -euo pipefail
cd "$(dirname "$0")/.."

site=target/site
out=$site/pkg
cargo build -p frontend --lib --target wasm32-unknown-unknown --profile wasm-release
mkdir -p "$out"
wasm-bindgen target/wasm32-unknown-unknown/wasm-release/frontend.wasm \
  --target web --no-typescript --remove-name-section --out-dir "$out" --out-name natter
mv -f "$out/natter_bg.wasm" "$out/natter.wasm"
cp style/main.css "$out/natter.css"
cp -r public/. "$site/"
echo "site built in $site ($(du -h "$out/natter.wasm" | cut -f1) wasm)"
