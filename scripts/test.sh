#!/usr/bin/env bash
# Runs every test: unit tests, then the integration tests against the real
# broker and Postgres (started by scripts/services.sh when missing).
# One build serves all test binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
export KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092}
export SWITCHBOARD_TEST_DATABASE_URL=${SWITCHBOARD_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
cargo build --all-targets --locked
cargo test --all-targets --locked -- --test-threads "${SWITCHBOARD_TEST_THREADS:-4}"
