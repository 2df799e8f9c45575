#!/usr/bin/env bash
# End-to-end throughput on this machine, broker and Postgres included:
# publishes synthetic traffic, places it with `run --stop-at-end`, then
# replays it with a new group (all duplicates). Prints the rates and their
# ratios; the ratios are what to compare between runs on a noisy machine.
#
#   scripts/bench.sh [records] [partitions]
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS=${1:-50000}
PARTITIONS=${2:-6}
scripts/services.sh >/dev/null

[ -n "${SWITCHBOARD_BIN:-}" ] || cargo build --release --locked --bin switchboard 2>/dev/null
bin=${SWITCHBOARD_BIN:-${CARGO_TARGET_DIR:-target}/release/switchboard}
run_id=bench$(date +%s)
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$run_id
export SWITCHBOARD_TOPIC_EMAIL=$run_id.email SWITCHBOARD_TOPIC_SMS=$run_id.sms
export SWITCHBOARD_TOPIC_MESSENGER=$run_id.messenger SWITCHBOARD_TOPIC_DLQ=$run_id.dlq
export RUST_LOG=${RUST_LOG:-warn}
psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $run_id"
trap 'psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $run_id WITH (FORCE)"' EXIT
$bin migrate
$bin create-topics --partitions "$PARTITIONS"

seconds() { date +%s.%N; }
t0=$(seconds); $bin load --records "$RECORDS" --customers 5000 >/dev/null; t1=$(seconds)
SWITCHBOARD_GROUP_ID=$run_id-place $bin run --stop-at-end >/tmp/$run_id-place.json 2>${BENCH_PLACE_LOG:-/dev/stderr}; t2=$(seconds)
SWITCHBOARD_GROUP_ID=$run_id-replay $bin run --stop-at-end >/tmp/$run_id-replay.json; t3=$(seconds)

python3 - "$RECORDS" "$t0" "$t1" "$t2" "$t3" /tmp/$run_id-place.json /tmp/$run_id-replay.json <<'PY'
import json, sys
n = int(sys.argv[1]); t0, t1, t2, t3 = map(float, sys.argv[2:6])
place, replay = (json.load(open(p)) for p in sys.argv[6:8])
publish_rate, place_rate, replay_rate = n / (t1 - t0), n / (t2 - t1), n / (t3 - t2)
print(f"records                 {n}")
print(f"publish                 {publish_rate:10.0f} records/s")
print(f"place (new traffic)     {place_rate:10.0f} records/s   applied={place['records_applied']} dead={place['records_dead_lettered']}")
print(f"replay (all duplicates) {replay_rate:10.0f} records/s   duplicates={replay['records_duplicate']}")
print(f"ratio place/publish     {place_rate / publish_rate:10.2f}")
print(f"ratio replay/place      {replay_rate / place_rate:10.2f}")
PY
