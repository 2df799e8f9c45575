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
#   scripts/services.sh secure-broker-start [PORT]  a broker with only a SASL_SSL listener
#                                     (SCRAM-SHA-512, private CA, ACLs on) on PORT (default 9192)
#   scripts/services.sh secure-broker-stop [PORT]
#   scripts/services.sh secure-acls PORT ARGS...  Kafka's AclCommand as the broker's admin
#   scripts/services.sh secure-pg-start [PORT]  a Postgres that takes only TLS and scram-sha-256
#                                     passwords on PORT (default 5433), with the roles
#                                     switchboard_owner and switchboard_worker
#   scripts/services.sh secure-pg-stop [PORT]
#   scripts/services.sh secure-env    prints the secure services' CA paths, users and
#                                     passwords (test-only secrets, made on first use)
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

# Starts the Postgres instance in DIR on PORT unless something answers
# there (then returns 1): its data directory is made by INIT (a function
# given DIR and the server binaries) the first time; OPTIONS are added to
# the server's. The start locks (fds 8 and 9) stay with this script.
pg_instance_up() {
  local port=$1 dir=$2 init=$3 options=$4 bin
  if port_open "$port"; then
    say "Postgres answers on 127.0.0.1:$port (left as it is)."
    return 1
  fi
  postgres_up >/dev/null # the server binaries
  bin=$(pg_bin)
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  [ -f "$dir/data/PG_VERSION" ] || "$init" "$dir" "$bin"
  as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=100 $options" start >/dev/null 8>&- 9>&- ||
    die "Postgres on port $port did not start; see $dir/server.log."
}

plain_init() {
  say "creating a Postgres instance in $1/data."
  as_postgres "$2/initdb" -D "$1/data" -U postgres -A trust >"$1/initdb.log" 2>&1 ||
    die "initdb failed; see $1/initdb.log."
}

pg_instance_start() {
  local port=$1 dir
  dir=$(pg_instance_dir "$port")
  pg_instance_up "$port" "$dir" plain_init "" || return 0
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
  # The admin tools came later; an older cache lacks them.
  [ -f "$KAFKA_HOME/.complete" ] && compgen -G "$KAFKA_HOME/libs/kafka-tools-[0-9]*.jar" >/dev/null && return
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

# What every broker of ours shares: one KRaft node (broker and controller
# in one JVM), records on disk, topics made only on purpose, records up to
# 16 MiB. Arguments: its directory and its controller's port.
broker_base_properties() {
  local dir=$1
  cat <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$2
controller.listener.names=CONTROLLER
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
}

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
  {
    broker_base_properties "$dir" "$controller"
    cat <<EOF
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller
advertised.listeners=PLAINTEXT://127.0.0.1:$port
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
EOF
  } >"$dir/server.properties"
  broker_launch "$dir" "$port"
}

# Formats the storage of the broker in DIR on its first start (with any
# further arguments to the formatter, such as SCRAM users), starts it and
# waits until it has registered with its controller.
broker_launch() {
  local dir=$1 port=$2
  shift 2
  if [ ! -f "$dir/data/meta.properties" ]; then
    say "formatting the broker's storage in $dir/data (first start)."
    kafka_java "$dir" kafka.tools.StorageTool format --cluster-id "$(kafka_java "$dir" kafka.tools.StorageTool random-uuid)" \
      --config "$dir/server.properties" "$@" >"$dir/format.log" 2>&1 ||
      die "formatting failed; see $dir/format.log."
  fi
  local started_before
  started_before=$(grep -c "Kafka Server started" "$dir/server.log" 2>/dev/null || true)
  say "starting Apache Kafka $KAFKA_VERSION on 127.0.0.1:$port (KRaft, data in $dir/data, log: $dir/server.log)."
  # A subshell that becomes the JVM (exec), so $! is the broker's pid.
  # Without the start lock (fd 9): the broker would hold it for its life.
  (trap '' HUP; KAFKA_EXEC=1 kafka_java "$dir" kafka.Kafka "$dir/server.properties") >"$dir/stdout.log" 2>&1 </dev/null 8>&- 9>&- &
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
  local dir=${2:-$(broker_dir "$port")} pid
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

# -------------------------------------------------------- the secure path
#
# A broker and a Postgres as production runs them: TLS with a private CA,
# passwords (SCRAM), ACLs and a role that is not a superuser. The CA, the
# certificate for 127.0.0.1 and the passwords are made once under
# $TOOLS/secure; they are test secrets and guard nothing but loopback.

SECURE=$TOOLS/secure

secret() { openssl rand -hex 16; }

secure_material() {
  # One lock for the material, whichever service asks first (fd 8; the
  # services' own start locks use fd 9).
  exec 8>"$TOOLS/.lock-secure-material"
  flock 8
  if [ -f "$SECURE/.complete" ]; then
    exec 8>&-
    return
  fi
  command -v openssl >/dev/null || die "openssl is needed to make the test CA; apt-get install -y openssl."
  say "making a private CA, a certificate for 127.0.0.1 signed by it, and test passwords in $SECURE (one time)."
  rm -rf "$SECURE"
  mkdir -p "$SECURE"
  chmod 755 "$SECURE" # Postgres (user postgres) reads the certificate from here
  local d=$SECURE
  {
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Switchboard test CA" \
      -keyout "$d/ca.key" -out "$d/ca.crt"
    # A CA that signs nothing the services use: a client that trusts only
    # it must refuse them (the wrong-certificate tests).
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Switchboard untrusted CA" \
      -keyout "$d/other-ca.key" -out "$d/other-ca.crt"
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$d/server.key" -out "$d/server.csr"
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$d/server.ext"
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 3650 \
      -extfile "$d/server.ext" -out "$d/server.crt"
  } >"$d/openssl.log" 2>&1 || die "openssl failed; see $d/openssl.log."
  local keystore
  keystore=$(secret)
  openssl pkcs12 -export -in "$d/server.crt" -inkey "$d/server.key" -certfile "$d/ca.crt" -name broker \
    -passout "pass:$keystore" -out "$d/server.p12" 2>>"$d/openssl.log" || die "openssl failed; see $d/openssl.log."
  chmod 600 "$d"/*.key
  cat >"$d/env" <<EOF
SWITCHBOARD_SECURE_CA=$d/ca.crt
SWITCHBOARD_SECURE_OTHER_CA=$d/other-ca.crt
SWITCHBOARD_SECURE_KEYSTORE_PASSWORD=$keystore
SWITCHBOARD_SECURE_KAFKA_ADMIN_USER=admin
SWITCHBOARD_SECURE_KAFKA_ADMIN_PASSWORD=$(secret)
SWITCHBOARD_SECURE_KAFKA_WORKER_USER=switchboard
SWITCHBOARD_SECURE_KAFKA_WORKER_PASSWORD=$(secret)
SWITCHBOARD_SECURE_KAFKA_OPERATOR_USER=switchboard-operator
SWITCHBOARD_SECURE_KAFKA_OPERATOR_PASSWORD=$(secret)
SWITCHBOARD_SECURE_PG_ADMIN_PASSWORD=$(secret)
SWITCHBOARD_SECURE_PG_OWNER=switchboard_owner
SWITCHBOARD_SECURE_PG_OWNER_PASSWORD=$(secret)
SWITCHBOARD_SECURE_PG_WORKER=switchboard_worker
SWITCHBOARD_SECURE_PG_WORKER_PASSWORD=$(secret)
EOF
  chmod 600 "$d/env"
  touch "$d/.complete"
  exec 8>&-
}

# Serialises concurrent starts of the same service (tests start them on
# demand, several at once).
lock() { exec 9>"$TOOLS/.lock-$1"; flock 9; }

secure_broker_start() {
  local port=${1:-9192} dir controller
  lock "secure-broker-$port"
  secure_material
  # shellcheck disable=SC1091
  . "$SECURE/env"
  dir=$TOOLS/kafka-secure-$port
  controller=$((port + 1))
  if port_open "$port"; then
    say "a broker answers on 127.0.0.1:$port (left as it is)."
    return
  fi
  kafka_install
  mkdir -p "$dir/data" "$dir/tools"
  local jaas="org.apache.kafka.common.security.scram.ScramLoginModule required"
  # Clients reach only the SASL_SSL listener. The controller listener is
  # plaintext on loopback, for the broker half of this one JVM only; its
  # principal (ANONYMOUS) is therefore a super user, as is the admin that
  # creates topics and ACLs. Everyone else gets exactly what an ACL allows.
  {
    broker_base_properties "$dir" "$controller"
    cat <<EOF
listeners=SASL_SSL://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller
advertised.listeners=SASL_SSL://127.0.0.1:$port
inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=$jaas username="$SWITCHBOARD_SECURE_KAFKA_ADMIN_USER" password="$SWITCHBOARD_SECURE_KAFKA_ADMIN_PASSWORD";
ssl.keystore.type=PKCS12
ssl.keystore.location=$SECURE/server.p12
ssl.keystore.password=$SWITCHBOARD_SECURE_KEYSTORE_PASSWORD
ssl.truststore.type=PEM
ssl.truststore.location=$SECURE/ca.crt
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:$SWITCHBOARD_SECURE_KAFKA_ADMIN_USER;User:ANONYMOUS
allow.everyone.if.no.acl.found=false
EOF
  } >"$dir/server.properties"
  chmod 600 "$dir/server.properties"
  cat >"$dir/admin.properties" <<EOF
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=$jaas username="$SWITCHBOARD_SECURE_KAFKA_ADMIN_USER" password="$SWITCHBOARD_SECURE_KAFKA_ADMIN_PASSWORD";
ssl.truststore.type=PEM
ssl.truststore.location=$SECURE/ca.crt
EOF
  chmod 600 "$dir/admin.properties"
  local scram=()
  for who in ADMIN WORKER OPERATOR; do
    local user="SWITCHBOARD_SECURE_KAFKA_${who}_USER" password="SWITCHBOARD_SECURE_KAFKA_${who}_PASSWORD"
    scram+=(--add-scram "SCRAM-SHA-512=[name=${!user},password=${!password}]")
  done
  say "the secure broker: SASL_SSL only, SCRAM-SHA-512 users ${SWITCHBOARD_SECURE_KAFKA_ADMIN_USER} (super user), ${SWITCHBOARD_SECURE_KAFKA_WORKER_USER}, ${SWITCHBOARD_SECURE_KAFKA_OPERATOR_USER}; ACLs on (StandardAuthorizer); CA $SECURE/ca.crt."
  broker_launch "$dir" "$port" "${scram[@]}"
}

secure_acls() {
  local port=${1:?a port}
  shift
  local dir=$TOOLS/kafka-secure-$port
  [ -f "$dir/admin.properties" ] || die "no secure broker of ours on port $port; run secure-broker-start $port first."
  kafka_install
  kafka_java "$dir/tools" org.apache.kafka.tools.AclCommand --bootstrap-server "127.0.0.1:$port" \
    --command-config "$dir/admin.properties" "$@"
}

# The secure instance's data directory: scram passwords, TLS with the
# certificate the CA signed, and a pg_hba that refuses anything else.
secure_init() {
  local dir=$1 bin=$2
  say "creating a Postgres instance in $dir/data: TLS and scram-sha-256 passwords only."
  local pwfile=$dir/pw
  echo "$SWITCHBOARD_SECURE_PG_ADMIN_PASSWORD" >"$pwfile"
  [ "$(id -u)" = 0 ] && chown postgres "$pwfile"
  as_postgres "$bin/initdb" -D "$dir/data" -U postgres --pwfile="$pwfile" --auth-local=trust \
    --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1 || die "initdb failed; see $dir/initdb.log."
  rm -f "$pwfile"
  cp "$SECURE/server.crt" "$SECURE/server.key" "$dir/data/"
  chmod 600 "$dir/data/server.key"
  [ "$(id -u)" = 0 ] && chown postgres "$dir/data/server.crt" "$dir/data/server.key"
  # Over TCP: TLS and a scram-sha-256 password, or nothing. The socket
  # (in /tmp, owner only) is how this script sets the roles up.
  cat >"$dir/data/pg_hba.conf" <<EOF
local     all all                trust
hostssl   all all 127.0.0.1/32   scram-sha-256
hostnossl all all 0.0.0.0/0      reject
EOF
  [ "$(id -u)" = 0 ] && chown postgres "$dir/data/pg_hba.conf"
}

secure_pg_start() {
  local port=${1:-5433} dir
  lock "secure-pg-$port"
  secure_material
  # shellcheck disable=SC1091
  . "$SECURE/env"
  dir=$(pg_instance_dir "secure-$port")
  pg_instance_up "$port" "$dir" secure_init \
    "-c max_locks_per_transaction=256 -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key -c password_encryption=scram-sha-256" ||
    return 0
  # The deployment's two roles: the schema's owner (runs migrate and
  # grants) and the worker (runs placement with the grants only).
  as_postgres "$(pg_bin)/psql" -q -h /tmp -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 >/dev/null <<EOF
SELECT 'CREATE ROLE $SWITCHBOARD_SECURE_PG_OWNER' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$SWITCHBOARD_SECURE_PG_OWNER') \gexec
SELECT 'CREATE ROLE $SWITCHBOARD_SECURE_PG_WORKER' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$SWITCHBOARD_SECURE_PG_WORKER') \gexec
ALTER ROLE $SWITCHBOARD_SECURE_PG_OWNER LOGIN CREATEDB NOSUPERUSER PASSWORD '$SWITCHBOARD_SECURE_PG_OWNER_PASSWORD';
ALTER ROLE $SWITCHBOARD_SECURE_PG_WORKER LOGIN NOCREATEDB NOSUPERUSER PASSWORD '$SWITCHBOARD_SECURE_PG_WORKER_PASSWORD';
EOF
  say "Postgres answers on 127.0.0.1:$port over TLS only (CA $SECURE/ca.crt; roles $SWITCHBOARD_SECURE_PG_OWNER, $SWITCHBOARD_SECURE_PG_WORKER)."
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
  secure-broker-start) secure_broker_start "${2:-9192}" ;;
  secure-broker-stop) broker_stop "${2:-9192}" "$TOOLS/kafka-secure-${2:-9192}" ;;
  secure-acls) shift; secure_acls "$@" ;;
  secure-pg-start) secure_pg_start "${2:-5433}" ;;
  secure-pg-stop) pg_instance_stop "secure-${2:-5433}" ;;
  secure-env) secure_material; cat "$SECURE/env" ;;
  *) die "unknown command '$1' (all, postgres, broker-start, broker-stop, broker-status, pg-instance-start, pg-instance-stop, kafka-install, secure-broker-start, secure-broker-stop, secure-acls, secure-pg-start, secure-pg-stop, secure-env)." ;;
esac
