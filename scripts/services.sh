#!/usr/bin/env bash
# Makes the services Switchboard needs answer on this machine, installing
# what is missing and saying so:
#
#   scripts/services.sh                 Postgres on 127.0.0.1:5432 and the broker on 127.0.0.1:9092
#   scripts/services.sh postgres        Postgres only
#   scripts/services.sh broker-start [PORT]   an Apache Kafka broker on PORT (default 9092)
#   scripts/services.sh broker-stop  [PORT]   stops it (its records stay on disk)
#   scripts/services.sh broker-status [PORT]  says whether it answers
#   scripts/services.sh pg-instance-start PORT  a separate Postgres on PORT (own data directory)
#   scripts/services.sh pg-instance-stop PORT   stops it (its data stays)
#
# The broker is Apache Kafka (pinned below), single node, KRaft, broker and
# controller in one JVM, records on disk under $SWITCHBOARD_TOOLS, so a stop
# and a start keep every record. Its jars come from Maven Central through
# Maven, once. Each PORT is its own broker with its own storage: tests that
# stop a broker start one of their own and leave the shared one alone.
#
# SWITCHBOARD_BROKER=tansu uses Tansu 0.6 instead (second broker, for
# compatibility only: in-memory storage, built with cargo on first use).
#
# Safe to run again: a service that already answers is left alone.
set -euo pipefail

KAFKA_VERSION=4.1.1 # keep in step with scripts/kafka/pom.xml and docker-compose.yml
TANSU_VERSION=0.6.0
HERE=$(cd "$(dirname "$0")" && pwd)
TOOLS=${SWITCHBOARD_TOOLS:-$HOME/.cache/switchboard}
LOG_DIR=${SWITCHBOARD_LOG_DIR:-$TOOLS/logs}
BROKER=${SWITCHBOARD_BROKER:-kafka}
mkdir -p "$TOOLS" "$LOG_DIR"

say() { echo "services: $*"; }
die() { echo "services: $*" >&2; exit 1; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { # port seconds
  local i
  for ((i = 0; i < $2 * 4; i++)); do port_open "$1" && return 0; sleep 0.25; done
  return 1
}

# ---------------------------------------------------------------- Postgres

PG_MAJOR=15

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

postgres_up() {
  if port_open 5432; then
    say "Postgres answers on 127.0.0.1:5432 (left as it is)."
    return
  fi
  if [ -z "$(pg_bin)" ] || ! command -v pg_ctlcluster >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then
      cat >&2 <<EOF
services: no Postgres server is installed and this is not root, so it cannot be installed here.
Run, as root:
  apt-get update
  apt-get install -y postgresql-$PG_MAJOR
then run scripts/services.sh again (as root, to set trust auth for 127.0.0.1), or
start any Postgres $PG_MAJOR on 127.0.0.1:5432 whose user postgres needs no password.
EOF
      exit 1
    fi
    say "installing Postgres $PG_MAJOR from Debian's packages (one time, about a minute)."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "postgresql-$PG_MAJOR" >/dev/null
  fi
  local major
  major=$(basename "$(dirname "$(pg_bin)")")
  if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "$major main"; then
    say "creating the Postgres $major cluster 'main'."
    pg_createcluster "$major" main >/dev/null
  fi
  local conf=/etc/postgresql/$major/main
  # Trust for local connections only: the tests and the demo connect as
  # postgres without a password; nothing listens beyond loopback.
  if ! grep -q "switchboard: trust" "$conf/pg_hba.conf"; then
    say "setting trust authentication for 127.0.0.1 and ::1 in $conf/pg_hba.conf."
    {
      echo "# switchboard: trust local connections (tests and demo)"
      echo "local all all trust"
      echo "host all all 127.0.0.1/32 trust"
      echo "host all all ::1/128 trust"
      cat "$conf/pg_hba.conf"
    } >"$conf/pg_hba.conf.new"
    mv "$conf/pg_hba.conf.new" "$conf/pg_hba.conf"
  fi
  mkdir -p "$conf/conf.d"
  # Integration tests open a pool per worker they start; the default 100
  # connections is too few for a test run at four threads. A batch of 500
  # emails takes up to three advisory locks a message; 256 locks per
  # transaction lets the worker's default pool run full batches (it cuts
  # them to fit a smaller lock table, and says what to set).
  cat >"$conf/conf.d/switchboard.conf" <<EOF
listen_addresses = '127.0.0.1'
port = 5432
max_connections = 300
max_locks_per_transaction = 256
EOF
  say "starting Postgres $major (cluster main, log under /var/log/postgresql)."
  pg_ctlcluster --skip-systemctl-redirect "$major" main start ||
    pg_ctlcluster --skip-systemctl-redirect "$major" main restart
  wait_port 5432 30 || die "Postgres did not answer on 127.0.0.1:5432; see /var/log/postgresql/."
  say "Postgres answers on 127.0.0.1:5432."
}

# A Postgres instance of its own on another port, with its own data
# directory under $TOOLS, for tests that stop the database: stopping it
# leaves the shared cluster on 5432 alone. Postgres refuses to run as root,
# so as root it runs as the postgres user, with its data under that user's
# home (root's home is closed to it).
as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_instance_dir() {
  if [ "$(id -u)" = 0 ]; then echo "/var/lib/postgresql/switchboard-$1"; else echo "$TOOLS/pg-$1"; fi
}

pg_instance_start() {
  local port=$1 dir bin
  dir=$(pg_instance_dir "$port")
  if port_open "$port"; then
    say "Postgres answers on 127.0.0.1:$port (left as it is)."
    return
  fi
  postgres_up >/dev/null # the server binaries
  bin=$(pg_bin)
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    say "creating a Postgres instance in $dir/data for port $port."
    as_postgres "$bin/initdb" -D "$dir/data" -U postgres -A trust >"$dir/initdb.log" 2>&1 ||
      die "initdb failed; see $dir/initdb.log."
  fi
  as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=100" start >/dev/null ||
    die "Postgres on port $port did not start; see $dir/server.log."
  say "Postgres answers on 127.0.0.1:$port (data in $dir/data)."
}

pg_instance_stop() {
  local port=$1 dir
  dir=$(pg_instance_dir "$port")
  [ -f "$dir/data/postmaster.pid" ] || { say "no Postgres instance of ours runs on port $port."; return; }
  as_postgres "$(pg_bin)/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
  say "Postgres on port $port is stopped."
}

# ------------------------------------------------------------ Apache Kafka

KAFKA_HOME=$TOOLS/kafka-$KAFKA_VERSION

kafka_install() {
  [ -f "$KAFKA_HOME/.complete" ] && return
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch Apache Kafka's jars; apt-get install -y maven."
  command -v java >/dev/null || die "Java 17 or newer is needed to run Apache Kafka; apt-get install -y openjdk-17-jre-headless."
  say "fetching Apache Kafka $KAFKA_VERSION's jars from Maven Central into $KAFKA_HOME (one time)."
  rm -rf "$KAFKA_HOME/libs"
  mvn -B -q -f "$HERE/kafka/pom.xml" \
    -Dmaven.repo.local="$TOOLS/m2" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$KAFKA_HOME/libs"
  cat >"$KAFKA_HOME/log4j2.properties" <<'EOF'
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = ${sys:kafka.logs.file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.state.name = state.change.logger
logger.state.level = warn
EOF
  touch "$KAFKA_HOME/.complete"
}

kafka_java() { # dir, main class and its arguments
  local dir=$1; shift
  ${KAFKA_EXEC:+exec} java -Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_HOME/log4j2.properties" -Dkafka.logs.file="$dir/server.log" \
    -cp "$KAFKA_HOME/libs/*" "$@"
}

broker_dir() { echo "$TOOLS/kafka-broker-$1"; }

broker_start() {
  local port=${1:-9092}
  local dir controller
  dir=$(broker_dir "$port")
  controller=$((port + 1))
  if port_open "$port"; then
    say "a broker answers on 127.0.0.1:$port (left as it is)."
    return
  fi
  kafka_install
  mkdir -p "$dir/data"
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
message.max.bytes=16777216
replica.fetch.max.bytes=16777216
log.retention.hours=168
EOF
  if [ ! -f "$dir/data/meta.properties" ]; then
    say "formatting the broker's storage in $dir/data (first start)."
    kafka_java "$dir" kafka.tools.StorageTool format --cluster-id "$(kafka_java "$dir" kafka.tools.StorageTool random-uuid)" \
      --config "$dir/server.properties" >"$dir/format.log" 2>&1 ||
      die "formatting failed; see $dir/format.log."
  fi
  local started_before
  started_before=$(grep -c "Kafka Server started" "$dir/server.log" 2>/dev/null || true)
  say "starting Apache Kafka $KAFKA_VERSION on 127.0.0.1:$port (KRaft, data in $dir/data, log: $dir/server.log)."
  # A subshell that becomes the JVM (exec), so $! is the broker's pid.
  (trap '' HUP; KAFKA_EXEC=1 kafka_java "$dir" kafka.Kafka "$dir/server.properties") >"$dir/stdout.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  # A broker with many partitions on disk takes a while to load them.
  if ! wait_port "$port" 240; then
    tail -n 20 "$dir/stdout.log" "$dir/server.log" >&2 || true
    die "Apache Kafka did not answer on 127.0.0.1:$port; see $dir/server.log."
  fi
  # The port opens before the broker has registered with its controller;
  # wait until it says so, so the first metadata request sees a broker.
  local i
  for ((i = 0; i < 480; i++)); do
    [ "$(grep -c "Kafka Server started" "$dir/server.log" 2>/dev/null || true)" -gt "${started_before:-0}" ] && break
    sleep 0.25
  done
  say "Apache Kafka answers on 127.0.0.1:$port."
}

broker_stop() {
  local port=${1:-9092}
  local dir pid
  dir=$(broker_dir "$port")
  pid=$(cat "$dir/pid" 2>/dev/null || true)
  if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
    say "no broker of ours runs on port $port."
    return
  fi
  say "stopping the broker on 127.0.0.1:$port (pid $pid; its records stay in $dir/data)."
  kill -TERM "$pid"
  local i
  for ((i = 0; i < 240; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  if kill -0 "$pid" 2>/dev/null; then
    say "the broker did not stop within 60 s; killing it."
    kill -KILL "$pid"
  fi
  rm -f "$dir/pid"
  for ((i = 0; i < 40; i++)); do port_open "$port" || break; sleep 0.25; done
  say "the broker on port $port is stopped."
}

tansu_up() {
  local root=$TOOLS/tansu-$TANSU_VERSION
  if port_open 9092; then
    say "a broker answers on 127.0.0.1:9092 (left as it is)."
    return
  fi
  if [ ! -x "$root/bin/tansu" ]; then
    say "installing the Tansu broker $TANSU_VERSION with cargo into $root (one time, about 12 minutes)."
    cargo install --locked tansu --version "$TANSU_VERSION" --features dynostore --root "$root"
  fi
  say "starting Tansu on 127.0.0.1:9092 (in-memory storage; log: $LOG_DIR/tansu.log)."
  nohup "$root/bin/tansu" broker \
    --listener-url tcp://127.0.0.1:9092 \
    --advertised-listener-url tcp://127.0.0.1:9092 \
    --storage-engine memory://tansu/ >"$LOG_DIR/tansu.log" 2>&1 &
  wait_port 9092 30 || die "Tansu did not start; see $LOG_DIR/tansu.log."
  say "Tansu answers on 127.0.0.1:9092."
}

case "${1:-all}" in
  all)
    postgres_up
    case $BROKER in
      kafka) broker_start 9092 ;;
      tansu) tansu_up ;;
      *) die "SWITCHBOARD_BROKER must be kafka or tansu, not '$BROKER'." ;;
    esac
    ;;
  postgres) postgres_up ;;
  broker-start) broker_start "${2:-9092}" ;;
  broker-stop) broker_stop "${2:-9092}" ;;
  broker-status)
    if port_open "${2:-9092}"; then say "a broker answers on 127.0.0.1:${2:-9092}."; else say "nothing answers on 127.0.0.1:${2:-9092}."; exit 1; fi
    ;;
  pg-instance-start) pg_instance_start "${2:?a port}" ;;
  pg-instance-stop) pg_instance_stop "${2:?a port}" ;;
  kafka-install) kafka_install ;;
  *) die "unknown command '$1' (all, postgres, broker-start, broker-stop, broker-status, pg-instance-start, pg-instance-stop, kafka-install)." ;;
esac
