#!/usr/bin/env bash
# Runs every test: the unit tests, the integration tests against the real
# broker and Postgres (started, and installed where missing, by
# scripts/services.sh), and a small run of the benchmark on the debug build
# so that it cannot rot (its figures mean nothing). One build serves all.
# Formatting, clippy's lints and the layers' dependency trees are gates
# too.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
export KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092}
export SWITCHBOARD_TEST_DATABASE_URL=${SWITCHBOARD_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
# The gates first: formatting and lints fail the run before the long part.
echo "test: cargo fmt --check, and cargo clippy with warnings as errors."
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The layers (ARCHITECTURE.md, "Crates"): a crate may not depend, even
# indirectly, on what its layer must not touch. `forbid CRATE PATTERN WHY`.
forbid() {
  if cargo tree -p "$1" -e normal --prefix none --locked | grep -E "^($2) "; then
    echo "test: $1 must not depend on the crates above: $3 (ARCHITECTURE.md, \"Crates\")." >&2
    exit 1
  fi
}
echo "test: the layers' dependency trees (the core does no IO, the store no Kafka, the Kafka side no SQL, the worker no load tooling)."
forbid switchboard-core 'tokio[a-z-]*|sqlx[a-z-]*|rdkafka[a-z-]*' "the core does no IO"
forbid switchboard-store 'rdkafka[a-z-]*' "only switchboard-kafka speaks Kafka"
forbid switchboard-kafka 'sqlx[a-z-]*' "only switchboard-store speaks SQL"
forbid switchboard 'switchboard-load|plotters|indicatif' "the worker ships without the load tooling"
echo "test: no crate's top-level modules use each other in a cycle."
python3 scripts/module_cycles.py src crates/*/src
cargo build --workspace --all-targets --locked
if [ "${SWITCHBOARD_SKIP_BENCH_SMOKE:-}" != 1 ]; then
  echo "test: a small benchmark run on the debug build (checks that it works, not how fast)."
  scripts/bench.sh --records 2000 --latency-seconds 2 --debug-build --json "${CARGO_TARGET_DIR:-target}/bench-smoke.json" |
    grep -v "^bench: building"
  scripts/bench.sh --latency-at 300 --latency-seconds 1 --repeat 2 --versus BENCH_OTHERS_NICE=5 --debug-build \
    --json "${CARGO_TARGET_DIR:-target}/latency-smoke.json" | grep -v "^bench: building"
  python3 scripts/check_latency_smoke.py "${CARGO_TARGET_DIR:-target}/latency-smoke.json"
fi
cargo test --workspace --all-targets --locked -- --test-threads "${SWITCHBOARD_TEST_THREADS:-3}"
