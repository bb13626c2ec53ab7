#!/usr/bin/env bash
# WebSocket conformance: the Autobahn case suite (run by `kosoku`, a Rust runner of Autobahn's
# case files) against the server's test-only echo route, which runs on the same socket code as
# /ws. Every core case (1.* to 10.*) must pass; 12.* and 13.* need permessage-deflate, which
# Natter does not offer.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/kosoku-venv
if ! [ -x "$venv/bin/kosoku" ]; then
  echo "==> installing kosoku 0.1.0 (PyPI) into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet kosoku==0.1.0
fi

bin=${NATTER_BIN:-target/debug/natter}
data=$(mktemp -d)
log=$(mktemp)
NATTER_WS_ECHO=1 NATTER_ADDR=127.0.0.1:0 NATTER_DATA_DIR="$data" RUST_LOG=info "$bin" >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$data" "$log"' EXIT

addr=
for _ in $(seq 1 100); do
  addr=$(grep -o 'listening on http://[^ ]*' "$log" | head -1 | sed 's|listening on http://||') || true
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { echo "server did not start:"; cat "$log"; exit 1; }

report=target/kosoku-report
out=$("$venv/bin/kosoku" "ws://$addr/ws/echo" -x '12.*' -x '13.*' -p 2 -o "$report" 2>&1) || {
  echo "$out"; exit 1; }
echo "$out" | tail -3
echo "$out" | grep -Eq '^301 cases passed$' || { echo "conformance: not every core case passed (see $report)"; exit 1; }
