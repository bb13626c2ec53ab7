#!/usr/bin/env bash
# The benchmark suite (`make bench`, docs/perf.md): builds the release server, natter-load and
# the client, installs the Node baseline's packages (`make bench` first runs `scripts/setup.sh test`:
# Chromium and end2end's Playwright, for the client's time to interactive), then runs every scenario against Natter
# and against the baseline, interleaved, each server pinned to core 0 and the generator to
# core 1, and prints the comparison table (also saved under target/bench/results/).
#   bench/run.sh [natter-load flags]      e.g. bench/run.sh --only s2,s3 --seconds 60
#   BENCH_ARGS="--rounds 3 --s3-seconds 180" make bench      longer runs
# The first run also builds fixtures, kept in target/bench/fixtures: 5,000 signed-up users
# (argon2 by design, ~1-2 min) and two 10-million-message databases (a few minutes each).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

cargo build --release -p server -p bench
scripts/build-site.sh

command -v node >/dev/null || { echo "bench: needs Node.js and npm (apt-get install nodejs npm)" >&2; exit 1; }
stamp=bench/baseline/node_modules/.natter-lock
if ! [ -f "$stamp" ] || ! cmp -s bench/baseline/package-lock.json "$stamp"; then
  echo "==> installing the baseline's npm packages (better-sqlite3 compiles SQLite: ~2 min, once)"
  (cd bench/baseline && npm ci --no-audit --no-fund)
  cp bench/baseline/package-lock.json "$stamp"
fi
command -v sqlite3 >/dev/null || { echo "bench: needs the sqlite3 CLI (apt-get install sqlite3)" >&2; exit 1; }

# S1 and S3 hold 5,000 sockets on each side; a process may open at most `ulimit -Hn` files
# (20,000 on these machines). Raise the soft limit to it; servers inherit it.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "open-file limit: $(ulimit -n)"

mkdir -p target/bench
# natter-load stops each server it starts; if natter-load itself is killed, stop the last one.
cleanup() { [ -f target/bench/server.pid ] && kill "$(cat target/bench/server.pid)" 2>/dev/null; rm -f target/bench/server.pid; }
trap cleanup EXIT
gen=(./target/release/natter-load)
if [ "$(nproc --all)" -ge 2 ] && command -v taskset >/dev/null; then
  gen=(taskset -c 1 ./target/release/natter-load)
else
  echo "bench: fewer than 2 cores or no taskset: servers and generator share the cores"
  set -- --pin 0 "$@"
fi
# shellcheck disable=SC2086 # BENCH_ARGS is a list of flags
"${gen[@]}" --scenario suite ${BENCH_ARGS:-} "$@" 2>&1 | tee target/bench/last-run.log
