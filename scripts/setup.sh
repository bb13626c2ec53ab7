#!/usr/bin/env bash
# Installs what Natter's build and tests need, only when missing (idempotent, safe to rerun).
#   scripts/setup.sh build   - wasm32 target, wasm-bindgen CLI (for make run and make test)
#   scripts/setup.sh test    - build + Debian Chromium + the end2end npm packages
#   scripts/setup.sh dev     - build + cargo-leptos (for make dev)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

need_root_apt() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: '$*' is missing and installing it needs root (apt-get)." >&2
    exit 1
  fi
}

apt_install() {
  need_root_apt "$@"
  if [ ! -f /tmp/.natter-apt-updated ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    touch /tmp/.natter-apt-updated
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

ensure_rust() {
  if ! command -v cargo >/dev/null || ! command -v rustup >/dev/null; then
    echo "error: Natter needs a Rust toolchain installed with rustup (https://rustup.rs)." >&2
    exit 1
  fi
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  command -v cc >/dev/null || apt_install build-essential
  # Web Push encryption (the ece crate) links OpenSSL.
  { command -v pkg-config >/dev/null && pkg-config --exists openssl; } || apt_install pkg-config libssl-dev
}

# The CLI must be exactly the version of the wasm-bindgen crate in Cargo.lock.
ensure_wasm_bindgen() {
  local want
  want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$want" ]; then
    say "installing wasm-bindgen-cli $want (about 6 minutes, once)"
    # Not --locked: its lock file wants a crate version that crates.io no longer serves.
    cargo install wasm-bindgen-cli --version "$want" --force
  fi
}

# Optional: precompressing the client with brotli (gzip is always there). Not fatal if it
# cannot be installed (no root): the site is then served gzip-precompressed.
ensure_brotli() {
  command -v brotli >/dev/null && return 0
  if [ "$(id -u)" -eq 0 ]; then apt_install brotli || true; fi
}

ensure_cargo_leptos() {
  if ! cargo leptos --version 2>/dev/null | grep -q '0.3.10'; then
    say "installing cargo-leptos 0.3.10 (slow: 45+ minutes on 2 cores, once)"
    cargo install cargo-leptos --version 0.3.10 --locked
  fi
}

ensure_chromium() {
  if [ -z "${CHROMIUM_PATH:-}" ] && ! [ -x /usr/bin/chromium ]; then
    say "installing Debian's chromium"
    apt_install chromium
  fi
}

ensure_npm_packages() {
  command -v npm >/dev/null || apt_install nodejs npm
  local stamp=end2end/node_modules/.natter-lock
  if ! [ -f "$stamp" ] || ! cmp -s end2end/package-lock.json "$stamp"; then
    say "installing end2end npm packages"
    (cd end2end && npm ci --no-audit --no-fund)
    cp end2end/package-lock.json "$stamp"
  fi
}

ensure_python_venv() {
  command -v python3 >/dev/null || apt_install python3
  python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
}

case "${1:-build}" in
  build) ensure_rust; ensure_wasm_bindgen; ensure_brotli ;;
  test) ensure_rust; ensure_wasm_bindgen; ensure_brotli; ensure_chromium; ensure_npm_packages; ensure_python_venv ;;
  dev) ensure_rust; ensure_wasm_bindgen; ensure_cargo_leptos ;;
  *) echo "usage: $0 build|test|dev" >&2; exit 2 ;;
esac
