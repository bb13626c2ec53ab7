#!/usr/bin/env bash
# Runs the load generator against a fresh release server on this machine (loopback only).
#   bench/run.sh [natter-load flags...]   e.g. bench/run.sh --rooms 20 --members 10 --interval-ms 500
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p server
cargo build --release -p bench
data=$(mktemp -d)
log=$(mktemp)
NATTER_ADDR=127.0.0.1:0 NATTER_DATA_DIR="$data" NATTER_SIGNUPS_PER_IP_PER_HOUR=1000000 \
  NATTER_WS_PER_USER=100000 RUST_LOG=warn,natter=info ./target/release/natter >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$data" "$log"' EXIT
for _ in $(seq 1 100); do
  addr=$(grep -o 'listening on http://[^ ]*' "$log" | head -1 | sed 's|listening on ||') || true
  [ -n "${addr:-}" ] && break
  sleep 0.1
done
ulimit -n 20000 || true
./target/release/natter-load --url "$addr" --pid "$server" "$@"
