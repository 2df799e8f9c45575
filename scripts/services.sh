#!/usr/bin/env bash
# Makes the services Switchboard needs available on this machine:
# - Tansu, a Kafka-compatible broker, on 127.0.0.1:9092 (installed with
#   cargo on first use into $SWITCHBOARD_TOOLS, about 12 minutes once; then
#   started in the background with in-memory storage);
# - Postgres on 127.0.0.1:5432 (checked; started if this machine has a
#   cluster that is stopped).
# Safe to run again: what is already there is left alone.
set -euo pipefail

TANSU_VERSION=0.6.0
TOOLS=${SWITCHBOARD_TOOLS:-$HOME/.cache/switchboard}
TANSU_ROOT=$TOOLS/tansu-$TANSU_VERSION
TANSU=$TANSU_ROOT/bin/tansu
LOG_DIR=${SWITCHBOARD_LOG_DIR:-$TOOLS/logs}
mkdir -p "$LOG_DIR"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! port_open 5432; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "services: Postgres is not answering on 127.0.0.1:5432; starting the local cluster."
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
  fi
  for _ in $(seq 1 30); do port_open 5432 && break; sleep 1; done
  port_open 5432 || { echo "services: Postgres is not reachable on 127.0.0.1:5432." >&2; exit 1; }
fi
echo "services: Postgres answers on 127.0.0.1:5432."

if ! port_open 9092; then
  if [ ! -x "$TANSU" ]; then
    echo "services: installing the Tansu broker $TANSU_VERSION with cargo into $TANSU_ROOT (one time, about 12 minutes)."
    cargo install --locked tansu --version "$TANSU_VERSION" --features dynostore --root "$TANSU_ROOT"
  fi
  echo "services: starting Tansu on 127.0.0.1:9092 (in-memory storage; log: $LOG_DIR/tansu.log)."
  nohup "$TANSU" broker \
    --listener-url tcp://127.0.0.1:9092 \
    --advertised-listener-url tcp://127.0.0.1:9092 \
    --storage-engine memory://tansu/ >"$LOG_DIR/tansu.log" 2>&1 &
  for _ in $(seq 1 60); do port_open 9092 && break; sleep 0.5; done
  port_open 9092 || { echo "services: Tansu did not start; see $LOG_DIR/tansu.log." >&2; exit 1; }
fi
echo "services: a Kafka-compatible broker answers on 127.0.0.1:9092."
