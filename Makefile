# Natter's two commands: `make run` and `make test`. Both install what is missing first.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
export CARGO_TERM_COLOR ?= auto

WASM_TARGET := --target wasm32-unknown-unknown

.PHONY: run test dev site release fmt-check clippy unit-tests integration-tests conformance smoke e2e client-size setup-build setup-test clean

## make run: build the release binary and client, start Natter on NATTER_ADDR (127.0.0.1:3000).
run: setup-build site release
	NATTER_SITE_ROOT=target/site ./target/release/natter

## make test: formatting, clippy (server and wasm), unit, integration and browser tests.
test: setup-test fmt-check clippy unit-tests integration-tests conformance smoke e2e client-size
	@echo "make test: all checks passed"

## make dev: cargo leptos watch (rebuilds and restarts on change).
# Precompressed files from `make site` would shadow what cargo-leptos writes: remove them.
dev:
	scripts/setup.sh dev
	rm -f target/site/*.br target/site/*.gz target/site/pkg/*.br target/site/pkg/*.gz
	cargo leptos watch

setup-build:
	scripts/setup.sh build

setup-test:
	scripts/setup.sh test

site:
	scripts/build-site.sh

release:
	cargo build --release -p server

fmt-check:
	cargo fmt --all -- --check

clippy:
	cargo clippy -p app -p server -p bench --all-targets -- -D warnings
	cargo clippy -p app -p frontend --features app/csr $(WASM_TARGET) --all-targets -- -D warnings

# The second run covers the client's code that tests can run on the host (the frame decoder);
# the third, the load generator's own arithmetic (percentiles, the floor, fixtures' keys).
unit-tests:
	cargo test -p app
	cargo test -p app --features csr --lib
	cargo test -p bench

# Builds target/debug/natter too, which the browser tests run.
integration-tests:
	cargo test -p server

# Autobahn WebSocket cases 1.* to 10.* against the echo route (same socket code as /ws).
conformance:
	cargo build -p server
	scripts/conformance.sh

# A short load-generator run: fails on any lost or duplicated delivery.
smoke:
	bench/smoke.sh

# The first load (brotli) must stay within its 250 KB budget (docs/perf.md, "Client size").
client-size: site
	scripts/check-client-size.sh

e2e: site
	cargo build -p server
	cd end2end && npx playwright test

clean:
	cargo clean
	rm -rf end2end/node_modules end2end/test-results

## make bench: every benchmark scenario, Natter and the Node baseline side by side (release
## builds, servers pinned to core 0, generator to core 1), then the comparison table with the
## budgets of docs/perf.md. ~15 minutes; longer runs: make bench BENCH_ARGS="--rounds 3".
.PHONY: bench
bench: setup-test
	bench/run.sh
