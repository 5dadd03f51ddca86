#!/usr/bin/env bash
# trino.sh: a throw-away one-node Trino 435 for the integration tests of
# connectors/trino.
#
#   scripts/trino.sh start   install Java 17 and Maven from Debian packages if
#                            missing, resolve trino-testing 435 with the tpch
#                            and memory plugins from Maven Central (once,
#                            cached), start a coordinator on a free port bound
#                            to 127.0.0.1 and print its settings:
#                              LIMINAL_TRINO_URL=trino://liminal@127.0.0.1:<port>
#                              LIMINAL_TRINO_DIR=<run directory: log, pid>
#   scripts/trino.sh stop [DIR]  stop the server of DIR (default
#                            $LIMINAL_TRINO_DIR, else the last one started)
#                            and remove DIR
#   scripts/trino.sh env     print the settings of the last one started
#
# Why not the server tarball: Maven Central's mirror here has no
# trino-server 435 tarball (only 352, 356, 368, 470 and 476, and 470+ need
# Java 23+), and the tarball is 0.8-1 GB. trino-testing's
# DistributedQueryRunner (scripts/trino-testing) is the same coordinator
# code from 134 MB of jars, with the tpch and memory catalogs installed.
#
# Every start gets its own run directory and port, so concurrent test runs
# never stop each other's server.
#
# Measured (2 CPUs, 24 GB, Java 17): Trino 435 jars 134 MB (174 MB of Maven
# downloads from an empty ~/.m2, 2m52s); warm start 22-40 s to the first
# query; RSS about 0.4 GB idle, 1.0 GB under the tests (-Xmx2G). PrestoDB
# 0.296 (presto.sh): 144 MB of jars, about 2m20s to resolve, warm start
# about 31 s.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# scripts/presto.sh runs this script with LIMINAL_SERVER_FLAVOR=presto.
flavor="${LIMINAL_SERVER_FLAVOR:-trino}"
case "$flavor" in
  trino)
    version=435 project="$here/trino-testing" main=TrinoServer
    name=Trino var=LIMINAL_TRINO ;;
  presto)
    version=0.296 project="$here/trino-testing/presto" main=PrestoServer
    name=PrestoDB var=LIMINAL_PRESTO ;;
  *) echo "unknown LIMINAL_SERVER_FLAVOR $flavor" >&2; exit 2 ;;
esac
self="$flavor.sh"
cache="${LIMINAL_CACHE:-$HOME/.cache/liminal}/$flavor-testing"
lib="$cache/lib-$version"
classes="$cache/classes-$version"
last="$cache/last.env"
mkdir -p "$cache"

die() { echo "$self: $*" >&2; exit 1; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

java17() {
  local j
  for j in /usr/lib/jvm/java-17-openjdk-*/bin/java /usr/lib/jvm/*17*/bin/java; do
    if [[ -x "$j" ]]; then echo "$j"; return; fi
  done
  if command -v java >/dev/null && java -version 2>&1 | grep -q 'version "17'; then
    command -v java
  fi
}

install_tools() {
  local pkgs=()
  [[ -n "$(java17)" && -x "$(dirname "$(java17)")/javac" ]] || pkgs+=(openjdk-17-jdk-headless)
  command -v mvn >/dev/null || pkgs+=(maven)
  if (( ${#pkgs[@]} )); then
    echo "$self: installing ${pkgs[*]} from Debian packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    if ! as_root apt-get install -y --no-install-recommends "${pkgs[@]}" >&2; then
      as_root apt-get update >&2
      as_root apt-get install -y --no-install-recommends "${pkgs[@]}" >&2
    fi
  fi
  [[ -n "$(java17)" ]] || die "no Java 17 found after apt-get install"
}

# build resolves the jars (once) and compiles the runner.
build() {
  install_tools
  local java javac
  java="$(java17)"
  javac="$(dirname "$java")/javac"
  if [[ ! -f "$lib/.complete" ]]; then
    echo "$self: resolving $flavor-testing $version from Maven Central (about 140 MB, once)" >&2
    rm -rf "$lib.tmp"
    (cd "$project" && JAVA_HOME="$(dirname "$(dirname "$java")")" mvn -q -B \
      org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$lib.tmp") >&2 || die "mvn could not resolve $flavor-testing $version"
    rm -rf "$lib"
    mv "$lib.tmp" "$lib"
    touch "$lib/.complete"
  fi
  local src="$project/src/main/java/liminal/$main.java"
  if [[ ! -f "$classes/liminal/$main.class" || "$src" -nt "$classes/liminal/$main.class" ]]; then
    rm -rf "$classes"
    mkdir -p "$classes"
    "$javac" -d "$classes" -cp "$lib/*" "$src" >&2 || die "javac failed"
  fi
}

free_port() {
  # Below the kernel's ephemeral range (usually 32768-60999), where the
  # server's own internal listeners pick their ports.
  local p lo
  lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % (lo - 20000)))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  die "no free port found"
}

# ready runs a query through the REST protocol until it answers.
ready() {
  local port=$1 next body
  local user=X-Trino-User
  [[ $flavor == presto ]] && user=X-Presto-User
  body=$(curl -sf -X POST -H "$user: liminal" --data 'SELECT 1' "http://127.0.0.1:$port/v1/statement") || return 1
  for _ in $(seq 1 100); do
    if grep -q '"data":\[\[1\]\]' <<<"$body"; then return 0; fi
    if grep -q '"error"' <<<"$body"; then return 1; fi
    next=$(sed -n 's/.*"nextUri":"\([^"]*\)".*/\1/p' <<<"$body")
    [[ -n "$next" ]] || return 1
    body=$(curl -sf -H "$user: liminal" "$next") || return 1
  done
  return 1
}

start() {
  build
  local attempt
  for attempt in 1 2 3; do
    if start_once; then return; fi
    [[ ${bind_clash:-0} == 1 ]] || exit 1
    echo "$self: port taken during start-up, trying another" >&2
  done
  die "no port could be bound"
}

start_once() {
  local java port dir pid t0
  java="$(java17)"
  # Trino wants many open files; raise the soft limit as far as allowed.
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  port=$(free_port)
  dir=$(mktemp -d "$cache/run-XXXXXX")
  t0=$(date +%s)
  # setsid: the server outlives this script and is stopped by pid.
  local jvm=()
  if [[ $flavor == presto ]]; then
    # Presto's example jvm.config for Java 17.
    for p in java.base/java.lang java.base/java.lang.reflect java.base/java.nio java.base/java.util \
             java.base/java.util.concurrent java.base/sun.nio.ch java.base/java.io java.base/java.net \
             java.base/jdk.internal.misc java.base/sun.security.action; do
      jvm+=(--add-opens "$p=ALL-UNNAMED")
    done
  fi
  setsid "$java" "${jvm[@]}" -Xmx${LIMINAL_TRINO_HEAP:-2G} -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError \
    -Djdk.attach.allowAttachSelf=true -Dfile.encoding=UTF-8 \
    -Djava.io.tmpdir="$dir" \
    -cp "$classes:$lib/*" "liminal.$main" "$port" >"$dir/server.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$dir/pid"
  for _ in $(seq 1 ${LIMINAL_TRINO_START_TIMEOUT:-240}); do
    if ! kill -0 "$pid" 2>/dev/null; then
      if grep -q "BindException: Address already in use" "$dir/server.log"; then
        bind_clash=1
        rm -rf "$dir"
        return 1
      fi
      tail -n 40 "$dir/server.log" >&2
      die "$name exited during start-up (log: $dir/server.log)"
    fi
    if grep -q "${var}_READY" "$dir/server.log" && ready "$port"; then
      {
        echo "${var}_URL=$flavor://liminal@127.0.0.1:$port"
        echo "${var}_DIR=$dir"
      } | tee "$last"
      echo "$self: $name $version up on port $port in $(( $(date +%s) - t0 ))s (pid $pid)" >&2
      return
    fi
    sleep 1
  done
  kill "$pid" 2>/dev/null || true
  tail -n 40 "$dir/server.log" >&2
  die "$name did not answer within ${LIMINAL_TRINO_START_TIMEOUT:-240}s (log: $dir/server.log)"
}

stop() {
  local dirvar="${var}_DIR"
  local dir="${1:-${!dirvar:-}}"
  if [[ -z "$dir" && -f "$last" ]]; then
    dir=$(sed -n "s/^${var}_DIR=//p" "$last")
  fi
  [[ -n "$dir" && -d "$dir" ]] || die "no run directory to stop"
  [[ "$dir" == "$cache"/run-* ]] || die "$dir is not a $self run directory"
  if [[ -f "$dir/pid" ]]; then
    local pid
    pid=$(cat "$dir/pid")
    if kill "$pid" 2>/dev/null; then
      for _ in $(seq 1 30); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
      done
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -rf "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) shift; stop "${1:-}" ;;
  env) [[ -f "$last" ]] && cat "$last" || die "no server started yet" ;;
  *) echo "usage: $0 start|stop [DIR]|env" >&2; exit 2 ;;
esac
