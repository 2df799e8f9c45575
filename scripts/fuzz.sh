#!/usr/bin/env bash
# Fuzzes the CloudEvents envelope and every payload decoder with cargo-fuzz
# (libFuzzer): each target runs for SECONDS (default 120) and stops at the
# first panic, leaving the input under fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     targets: cloudevent email sms messenger
#
# Needs the nightly toolchain (`rustup toolchain install nightly`) and
# cargo-fuzz (installed here with cargo on first use). No sanitizer (-s none):
# the decoders are safe Rust, the bugs to find are panics and hangs, and
# AddressSanitizer cannot link librdkafka's bundled C libraries.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECONDS_EACH=${1:-120}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(cloudevent email sms messenger)
command -v cargo-fuzz >/dev/null || { echo "fuzz: installing cargo-fuzz with cargo (one time)."; cargo install cargo-fuzz --locked; }
# Seeds: the project's own fixtures, so the fuzzer starts from real records.
mkdir -p corpus/email corpus/messenger corpus/sms corpus/cloudevent
cp ../tests/fixtures/email/*.eml corpus/email/ 2>/dev/null || true
cp ../tests/fixtures/messenger/*.json corpus/messenger/ 2>/dev/null || true
find ../../shared/fixtures/webhooks/messenger -name '*.json' -exec cp {} corpus/messenger/ \; 2>/dev/null || true
find ../../shared/fixtures/webhooks/sms -type f -exec cp {} corpus/sms/ \; 2>/dev/null || true
mkdir -p logs
for t in "${TARGETS[@]}"; do
  echo "fuzz: $t for ${SECONDS_EACH}s (output in fuzz/logs/$t.log)"
  if ! cargo +nightly fuzz run -s none "$t" "corpus/$t" -- -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 \
    -max_len=1048576 >"logs/$t.log" 2>&1; then
    tail -n 30 "logs/$t.log" >&2
    echo "fuzz: $t failed or found a crash; see fuzz/logs/$t.log and fuzz/artifacts/$t" >&2
    exit 1
  fi
  grep -E "^Done [0-9]+ runs" "logs/$t.log" || { echo "fuzz: $t did not run" >&2; exit 1; }
done
echo "fuzz: every target ran ${SECONDS_EACH}s without a crash."
