#!/usr/bin/env bash
# The main job on a real broker and Postgres: starts the services, builds
# Switchboard, migrates a fresh database, publishes realistic email, SMS and
# Messenger traffic, runs the worker to the end, and prints where every
# message was placed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh

DB=${SWITCHBOARD_DEMO_DB:-switchboard_demo}
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/$DB}
export KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092}
# A fresh group per demo run reads the topics from the start.
export SWITCHBOARD_GROUP_ID=${SWITCHBOARD_GROUP_ID:-switchboard-demo-$(date +%s)}

cargo build --locked --bin switchboard
bin=target/debug/switchboard

echo "demo: recreating database $DB."
psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
$bin migrate
# The People service knows one customer; Switchboard recognises her.
psql -q -h 127.0.0.1 -U postgres -d "$DB" \
  -c "INSERT INTO people (id, name, city, country) VALUES ('7d3c1a4e-0000-4000-8000-000000000001', 'Ana Horvat', 'Zagreb', 'HR')" \
  -c "INSERT INTO person_contacts (person_id, channel, address) VALUES ('7d3c1a4e-0000-4000-8000-000000000001', 'email', 'ana.horvat@example.com')"
$bin create-topics --partitions 3
$bin publish-sample
echo "demo: running the worker until every partition is consumed."
$bin run --stop-at-end
echo
$bin report
echo
$bin dead-letters
