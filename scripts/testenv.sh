#!/usr/bin/env bash
# testenv.sh — run a command with a real PostgreSQL and a real Apache Kafka.
#
#   scripts/testenv.sh COMMAND [ARGS...]
#
# For each service whose variable is not already set it installs what is
# missing, starts a throwaway server on 127.0.0.1 and exports the variable:
#
#   TEST_DATABASE_URL   PostgreSQL (Debian package; apt-get install when
#                       missing), a fresh cluster in a temp dir, fsync off.
#   TEST_KAFKA_BROKERS  Apache Kafka 4.x, single-node KRaft (broker and
#                       controller in one JVM); jars fetched once with Maven
#                       from scripts/kafka/pom.xml into the cache directory
#                       (TEST_KAFKA_LIBS is exported: where they are).
#
# It writes only under the cache directory, ${DDDKIT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dddkit}:
# kafka/libs (the jars), m2 (Maven's repository) and run/ (the servers'
# data while they run, removed afterwards; run as root, the data goes
# under ${TMPDIR:-/tmp} instead, where the postgres user can reach it).
# Never into the module directory, so it also runs from the read-only
# module cache of a `go get` copy:
#
#   bash "$(go env GOMODCACHE)/github.com/dddkit/dddkit@VERSION/scripts/testenv.sh" go test ./...
#
# Then it runs COMMAND, stops whatever it started (also when COMMAND fails or
# the script is interrupted) and exits with COMMAND's status. Services that
# were already configured through the variables are used as they are.
#
# Environment knobs: KAFKA_HEAP (default 384m), KAFKA_GC_OPTS (the broker's
# collector flags, default -XX:+UseSerialGC), KAFKA_JIT_OPTS (the broker's
# compiler flags, default -XX:TieredStopAtLevel=1: the quick compiler only,
# for a fast start; set it empty for benchmarks, where the broker's steady
# state matters: with C1 only it takes several times the CPU per
# request, on the cores the code under measurement shares), TESTENV_KAFKA_JVM=kafka
# runs the broker with the JVM settings of Kafka's own start scripts instead (1 GB
# heap, G1 with 20 ms pause goal, both compilers; for benchmarks: the test
# defaults' serial collector pauses the broker 50-130 ms per young collection
# once its old generation fills), TESTENV_KEEP=1 keeps the temp
# dirs for post-mortems, TESTENV_FSYNC=on runs PostgreSQL with fsync (used by
# benchmarks that measure commit cost).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache="${DDDKIT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dddkit}"
mkdir -p "$cache/run"
if [ "$(id -u)" = 0 ]; then
  # The servers run as the postgres user, who cannot enter root's home.
  work=$(mktemp -d "${TMPDIR:-/tmp}/dddkit-testenv.XXXXXX")
else
  work=$(mktemp -d "$cache/run/XXXXXX")
fi
chmod 755 "$work"
started_pg=""
started_kafka_pid=""

log() { printf 'testenv: %s\n' "$*" >&2; }

# free_port prints a free 127.0.0.1 port below the kernel's ephemeral range,
# so that no outgoing connection of the tests can take it before the server
# binds it (or while a test restarts the server).
free_port() {
  python3 - <<'EOF'
import random, socket
try:
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except Exception:
    low = 32768
low = max(low, 12001)
for _ in range(100):
    port = random.randrange(10000, low)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
else:
    raise SystemExit("no free port below %d" % low)
EOF
}

wait_port() { # host port seconds
  local deadline=$((SECONDS + $3))
  until (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

cleanup() {
  local status=$?
  set +e
  if [ -n "$started_kafka_pid" ]; then
    log "stopping Kafka (pid $started_kafka_pid)"
    kill "$started_kafka_pid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$started_kafka_pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$started_kafka_pid" 2>/dev/null
    wait "$started_kafka_pid" 2>/dev/null
  fi
  if [ -n "$started_pg" ]; then
    log "stopping PostgreSQL"
    as_pg "$pg_bin/pg_ctl" -D "$work/pg" -m immediate -w stop >/dev/null 2>&1
  fi
  if [ "${TESTENV_KEEP:-}" = 1 ]; then
    log "kept $work"
  else
    rm -rf "$work"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- PostgreSQL

find_pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then
    pg_config --bindir
    return 0
  fi
  return 1
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start_postgres() {
  if ! pg_bin=$(find_pg_bin); then
    log "PostgreSQL not found; installing the Debian package"
    if [ "$(id -u)" != 0 ]; then
      log "need root to apt-get install postgresql (or set TEST_DATABASE_URL)"
      exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq postgresql >/dev/null
    pg_bin=$(find_pg_bin)
  fi
  local port
  port=$(free_port)
  mkdir -p "$work/pg" "$work/pgsock"
  if [ "$(id -u)" = 0 ]; then chown postgres "$work/pg" "$work/pgsock"; fi
  as_pg "$pg_bin/initdb" -D "$work/pg" -U postgres -A trust -E UTF8 --no-locale >"$work/initdb.log" 2>&1 || {
    cat "$work/initdb.log" >&2
    exit 1
  }
  local fsync=off
  [ "${TESTENV_FSYNC:-}" = on ] && fsync=on
  as_pg "$pg_bin/pg_ctl" -D "$work/pg" -l "$work/pg/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $work/pgsock -c max_connections=300 -c fsync=$fsync -c synchronous_commit=$fsync -c full_page_writes=$fsync -c shared_buffers=256MB" \
    start >/dev/null || {
    cat "$work/pg/server.log" >&2
    exit 1
  }
  started_pg=1
  export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
  log "PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (fsync=$fsync)"
}

# --------------------------------------------------------------------- Kafka

fetch_kafka() {
  local libs="$cache/kafka/libs" stamp pom
  stamp=$(sha256sum "$root/scripts/kafka/pom.xml" | cut -c1-16)
  if [ -f "$libs/.stamp" ] && [ "$(cat "$libs/.stamp")" = "$stamp" ]; then
    return 0
  fi
  mkdir -p "$cache/kafka"
  # One fetch at a time: several runs may start together.
  exec 9>"$cache/kafka/.lock"
  flock 9
  if [ -f "$libs/.stamp" ] && [ "$(cat "$libs/.stamp")" = "$stamp" ]; then
    exec 9>&-
    return 0
  fi
  log "fetching Kafka jars with Maven (once; cached in $cache/kafka)"
  rm -rf "$libs"
  mkdir -p "$libs"
  # Maven writes target/ next to the pom: give it a copy of its own, so
  # the module directory (read-only in the module cache) stays untouched.
  pom=$(mktemp -d "$cache/kafka/pom.XXXXXX")
  cp "$root/scripts/kafka/pom.xml" "$pom/"
  (cd "$pom" && mvn -q -B --no-transfer-progress -Dstyle.color=never -Dmaven.repo.local="$cache/m2" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$libs") >&2
  rm -rf "$pom"
  echo "$stamp" >"$libs/.stamp"
  exec 9>&-
}

start_kafka() {
  command -v java >/dev/null || { log "java not found (need a JRE 17+ for Kafka)"; exit 1; }
  fetch_kafka
  local port cport dir="$work/kafka" cluster_id
  port=$(free_port)
  cport=$(free_port)
  while [ "$cport" = "$port" ]; do cport=$(free_port); done
  mkdir -p "$dir/data"
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=false
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.flush.interval.messages=9223372036854775807
EOF
  cat >"$dir/log4j2.properties" <<EOF
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = $dir/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = info
logger.apache.name = org.apache.kafka
logger.apache.level = warn
EOF
  # A random KRaft cluster ID; never one starting with '-', which the storage
  # tool's argument parser would take for an option (one run in 64).
  cluster_id=$(python3 -c '
import uuid, base64
while True:
    s = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not s.startswith("-"):
        print(s)
        break')
  # TESTENV_KAFKA_JVM=kafka: the JVM settings of Kafka's own start scripts
  # (kafka-server-start.sh, kafka-run-class.sh), for benchmarks.
  local heap=384m gc_default=-XX:+UseSerialGC jit_default=-XX:TieredStopAtLevel=1
  if [ "${TESTENV_KAFKA_JVM:-}" = kafka ]; then
    heap=1g
    gc_default="-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent"
    jit_default=""
  fi
  local gc_opts
  read -r -a gc_opts <<<"${KAFKA_GC_OPTS:-$gc_default}"
  local jit_opts
  read -r -a jit_opts <<<"${KAFKA_JIT_OPTS-$jit_default}"
  local java_opts=(-Xms"${KAFKA_HEAP:-$heap}" -Xmx"${KAFKA_HEAP:-$heap}" "${gc_opts[@]}" "${jit_opts[@]}"
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$dir/log4j2.properties")
  java "${java_opts[@]}" -cp "$cache/kafka/libs/*" kafka.tools.StorageTool format --standalone \
    --cluster-id="$cluster_id" -c "$dir/server.properties" >"$dir/format.log" 2>&1 || {
    cat "$dir/format.log" >&2
    exit 1
  }
  java "${java_opts[@]}" -cp "$cache/kafka/libs/*" kafka.Kafka "$dir/server.properties" >"$dir/stdout.log" 2>&1 &
  started_kafka_pid=$!
  local deadline=$((SECONDS + 120))
  until grep -q 'Kafka Server started' "$dir/server.log" 2>/dev/null; do
    if ! kill -0 "$started_kafka_pid" 2>/dev/null; then
      log "Kafka exited during start-up:"
      tail -50 "$dir/stdout.log" "$dir/server.log" >&2 2>/dev/null
      started_kafka_pid=""
      exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "Kafka did not start within 120 s:"
      tail -50 "$dir/server.log" >&2
      exit 1
    fi
    sleep 0.3
  done
  wait_port 127.0.0.1 "$port" 30
  export TEST_KAFKA_BROKERS="127.0.0.1:$port"
  export TEST_KAFKA_LOG_DIR="$dir"
  export TEST_KAFKA_LIBS="$cache/kafka/libs"
  log "Kafka $(basename "$(ls "$cache"/kafka/libs/kafka_2.13-*.jar)" .jar | sed 's/kafka_2.13-//') on $TEST_KAFKA_BROKERS (pid $started_kafka_pid)"
}

# ---------------------------------------------------------------------- main

[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }

if [ -n "${TEST_DATABASE_URL:-}" ]; then
  log "using TEST_DATABASE_URL from the environment"
else
  start_postgres
fi
if [ -n "${TEST_KAFKA_BROKERS:-}" ]; then
  log "using TEST_KAFKA_BROKERS=$TEST_KAFKA_BROKERS from the environment"
else
  start_kafka
fi

set +e
"$@"
status=$?
set -e
exit "$status"
