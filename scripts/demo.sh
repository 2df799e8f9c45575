#!/usr/bin/env bash
# The main job on a real broker and Postgres: starts the services, builds
# Switchboard, migrates a fresh database, publishes realistic email, SMS and
# Messenger traffic and a burst of synthetic load, runs the worker to the
# end, and prints what was placed by which rule and where to look next.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh

DB=${SWITCHBOARD_DEMO_DB:-switchboard_demo}
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/$DB}
export KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092}
# A fresh group per demo run reads the topics from the start; the run's
# conversation events go to a topic of its own, so the demo shows its own.
run=$(date +%s)
export SWITCHBOARD_GROUP_ID=${SWITCHBOARD_GROUP_ID:-switchboard-demo-$run}
export SWITCHBOARD_TOPIC_EVENTS=${SWITCHBOARD_TOPIC_EVENTS:-demo.events.$run}

cargo build --locked --workspace --bins
bin=${CARGO_TARGET_DIR:-target}/debug/switchboard
load=${CARGO_TARGET_DIR:-target}/debug/switchboard-load

echo "demo: recreating database $DB."
psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
$bin migrate
# The People service knows one customer; Switchboard recognises her.
psql -q -h 127.0.0.1 -U postgres -d "$DB" \
  -c "INSERT INTO people (id, name, city, country) VALUES ('7d3c1a4e-0000-4000-8000-000000000001', 'Ana Horvat', 'Zagreb', 'HR')" \
  -c "INSERT INTO person_contacts (person_id, channel, address) VALUES ('7d3c1a4e-0000-4000-8000-000000000001', 'email', 'ana.horvat@example.com')"
$bin create-topics --partitions 3
$load sample
echo "demo: publishing a burst of 2,000 synthetic records (duplicates, email copies, replies, automatic mail, a few malformed)."
# A new seed per run: new messages, not a replay of the last demo's.
$load traffic --records 2000 --rate 2000 --mix sms=50,messenger=25,email=25 \
  --duplicates 0.05 --siblings 0.03 --replies 0.10 --automatic 0.03 --malformed 0.01 \
  --customers 300 --seed "$(date +%s)" --metrics-addr off
echo "demo: running the worker until every partition is consumed."
$bin run --stop-at-end --summary table
echo
echo "demo: agents at work while a second burst of 1,500 records flows: they set conversations"
echo "      waiting and solved, close and merge them, add channels (traffic --agents, the contract's SQL)."
$load traffic --records 1500 --rate 1500 --mix sms=50,messenger=25,email=25 \
  --duplicates 0.05 --siblings 0.03 --replies 0.10 --automatic 0.03 \
  --customers 300 --seed "$(($(date +%s) + 1))" --metrics-addr off --agents 40
echo "demo: the worker places the second burst: customers writing to waiting and solved"
echo "      conversations reopen them (R5), and to closed ones start follow-ups (R2, R4)."
$bin run --stop-at-end --summary table
echo
echo "demo: the first conversations created:"
report=$(mktemp)
$bin report >"$report"
head -n 12 "$report"
echo "..."
tail -n 1 "$report"
rm -f "$report"
echo
echo "demo: the first conversation events this run published (docs/events.md; 'switchboard events --follow' streams them):"
$bin events --max 8
echo
echo "demo: dead letters, by reason:"
$bin dead-letters --counts
cat <<EOF

Where to look next:
  metrics   while 'switchboard run' runs: http://${SWITCHBOARD_HTTP_ADDR:-127.0.0.1:9464}/metrics
            (/healthz, /readyz; Grafana dashboard: docs/grafana-dashboard.json)
  dead      'switchboard dead-letters' lists them, '--show TOPIC/PARTITION/OFFSET' shows one,
            'switchboard redrive --reason CODE --dry-run' sends them back once fixed
  database  psql $DATABASE_URL
EOF
