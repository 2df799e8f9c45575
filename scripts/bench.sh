#!/usr/bin/env bash
# The benchmark: one run on the real broker and Postgres that measures the
# worker against the ceilings of the same machine (see scripts/bench.py and
# docs/performance.md).
#
#   scripts/bench.sh                       200,000 records, the default mix
#   scripts/bench.sh --records 20000 --mix email=100
#   scripts/bench.sh --latency-at 1000,2000,5000   latency only, at steady rates
#   scripts/bench.sh --events --records 50000       the cost of conversation events, off and on
#   scripts/bench.sh --wal --records 20000          Postgres WAL bytes per message, per channel
#   scripts/bench.sh --secure --records 50000       plaintext against SASL_SSL, ACLs and TLS Postgres
#   scripts/bench.sh --processes --records 100000   1, 2 and 3 worker processes: throughput, CPU, p99
#   scripts/bench.sh --help
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 scripts/bench.py "$@"
