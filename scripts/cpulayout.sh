#!/usr/bin/env bash
# cpulayout.sh — run a command with the machine's cores shared out between
# it, the PostgreSQL and the Kafka broker of its environment.
#
#   scripts/cpulayout.sh LAYOUT COMMAND [ARGS...]
#
# On a machine that runs the benchmark, the database and the broker
# together, how the cores are shared decides a ratio such as the relay's
# rate against a raw producer's (BENCHMARKS.md, issue 13, twentieth pass).
# In production the database and the brokers run elsewhere; this
# approximates that on one machine. LAYOUT is one of:
#
#   shared    every process on every core (as without this script)
#   db        PostgreSQL alone on the last core; COMMAND and the broker
#             on the others
#   servers   PostgreSQL and the broker on the last core; COMMAND alone on
#             the others
#
# It finds the servers by the ports of TEST_DATABASE_URL and
# TEST_KAFKA_BROKERS (run it inside scripts/testenv.sh, or with those
# set), pins them (every thread, with taskset), runs COMMAND pinned too,
# puts every process back on all cores, and exits with COMMAND's status.
# A new PostgreSQL backend inherits the server's cores. Linux only.
set -euo pipefail

die() { echo "cpulayout: $*" >&2; exit 2; }

[ $# -ge 2 ] || die "usage: scripts/cpulayout.sh shared|db|servers COMMAND [ARGS...]"
layout=$1
shift
case $layout in
  shared | db | servers) ;;
  *) die "unknown layout $layout (shared, db or servers)" ;;
esac
command -v taskset >/dev/null || die "taskset not found (util-linux)"
cores=$(nproc)
[ "$cores" -ge 2 ] || die "needs at least 2 cores, this machine has $cores"
all="0-$((cores - 1))"
last="$((cores - 1))"
rest="0-$((cores - 2))"

# port_of URL-or-host:port prints the port.
port_of() {
  local s=${1#*://}
  s=${s#*@}
  s=${s%%/*}
  s=${s%%,*}
  echo "${s##*:}"
}
# listener PORT prints the PID of the process listening on 127.0.0.1:PORT.
listener() {
  local inode
  inode=$(awk -v p="$(printf '%04X' "$1")" '$2 ~ ":"p"$" && $4 == "0A" {print $10; exit}' /proc/net/tcp /proc/net/tcp6 2>/dev/null)
  [ -n "$inode" ] || return 1
  for fd in /proc/[0-9]*/fd/*; do
    if [ "$(readlink "$fd" 2>/dev/null)" = "socket:[$inode]" ]; then
      fd=${fd#/proc/}
      echo "${fd%%/*}"
      return 0
    fi
  done
  return 1
}

[ -n "${TEST_DATABASE_URL:-}" ] || die "TEST_DATABASE_URL is not set"
[ -n "${TEST_KAFKA_BROKERS:-}" ] || die "TEST_KAFKA_BROKERS is not set"
pg=$(listener "$(port_of "$TEST_DATABASE_URL")") || die "no PostgreSQL listening at $TEST_DATABASE_URL"
kafka=$(listener "$(port_of "$TEST_KAFKA_BROKERS")") || die "no broker listening at $TEST_KAFKA_BROKERS"

# pin CORES PID: the process, its threads, and for PostgreSQL its children.
pin() {
  taskset -a -p -c "$1" "$2" >/dev/null
  local child
  for child in $(pgrep -P "$2" || true); do
    taskset -a -p -c "$1" "$child" >/dev/null 2>&1 || true # a backend may have ended
  done
}
restore() {
  pin "$all" "$pg" 2>/dev/null || true
  pin "$all" "$kafka" 2>/dev/null || true
}
trap restore EXIT

case $layout in
  shared) pin "$all" "$pg"; pin "$all" "$kafka"; run=$all ;;
  db) pin "$last" "$pg"; pin "$rest" "$kafka"; run=$rest ;;
  servers) pin "$last" "$pg"; pin "$last" "$kafka"; run=$rest ;;
esac
echo "cpulayout: $layout: the command on cores $run, PostgreSQL (pid $pg) on $(taskset -c -p "$pg" | awk '{print $NF}'), the broker (pid $kafka) on $(taskset -c -p "$kafka" | awk '{print $NF}')" >&2
status=0
taskset -c "$run" "$@" || status=$?
exit "$status"
