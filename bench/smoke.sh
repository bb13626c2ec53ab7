#!/usr/bin/env bash
# A short run of the load generator against a fresh debug server, as part of `make test`: it
# fails if any acknowledged message is lost or delivered twice. Not a measurement (debug build,
# few users); the numbers that matter come from bench/run.sh (`make bench`).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p server -p bench
data=$(mktemp -d)
log=$(mktemp)
NATTER_ADDR=127.0.0.1:0 NATTER_DATA_DIR="$data" NATTER_SITE_ROOT="$data" \
  NATTER_SIGNUPS_PER_IP_PER_HOUR=1000000 RUST_LOG=warn,natter=info ./target/debug/natter >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$data" "$log"' EXIT
for _ in $(seq 1 100); do
  addr=$(grep -o 'listening on http://[^ ]*' "$log" | head -1 | sed 's|listening on ||') || true
  [ -n "${addr:-}" ] && break
  sleep 0.1
done
[ -n "${addr:-}" ] || { cat "$log"; echo "smoke: the server did not start" >&2; exit 1; }
./target/debug/natter-load --scenario s2 --url "$addr" --pid "$server" --tokens "$data/tokens.tsv" \
  --rooms 4 --members 6 --interval-ms 200 --payload 100 --seconds 4 --knee-steps 0 --check 1
