#!/usr/bin/env bash
# hive.sh: a throw-away HiveServer2 (the Spark Thrift Server of the pyspark
# wheel, Hive 2.3 inside) for the integration tests of connectors/hive.
#
#   scripts/hive.sh start   create the venv with pyspark if missing (and Java
#                           17 from Debian if there is no java), start the
#                           Spark Thrift Server in local mode bound to
#                           127.0.0.1 on a free port with NOSASL, a Derby
#                           metastore and a warehouse in a fresh directory,
#                           wait until it accepts a session and print:
#                             LIMINAL_HIVE_ADDR=127.0.0.1:<port>
#                             LIMINAL_HIVE_DIR=<its directory>
#   scripts/hive.sh stop [DIR]  stop the server of DIR (default
#                           $LIMINAL_HIVE_DIR, else the last one started) and
#                           remove its directory
#   scripts/hive.sh env     print the settings of the last one started
#   scripts/hive.sh python  print the venv's python (for fixture generators)
#
# Every start gets its own directory and port, so concurrent test runs never
# stop each other's server. Downloads and the venv are cached under
# $LIMINAL_CACHE (default ~/.cache/liminal): venv-spark, pip.
# Figures (measured on 2 cores, 23 GB RAM): pyspark 4.0.1 is a 435 MB
# download (an sdist, built into a 435 MB wheel kept in the pip cache), the
# venv 824 MB; creating the venv takes ~66 s. A start takes 31 s on an idle
# machine, 71 s with other test servers busy (the JVM start dominates; the
# venv and Derby are warm after the first). The server holds ~360 MB RSS
# idle and ~1.4 GB after the connector's integration tests (driver heap
# capped at 1 GB).
set -euo pipefail

PYSPARK_VERSION=4.0.1
cache="${LIMINAL_CACHE:-$HOME/.cache/liminal}"
venv="$cache/venv-spark"
root="$cache/hive"
mkdir -p "$root"
last="$root/last.env"

die() { echo "hive.sh: $*" >&2; exit 1; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

ensure_java() {
  if command -v java >/dev/null 2>&1 && java -version 2>&1 | grep -qE 'version "(1[7-9]|2[0-9])'; then
    return
  fi
  if [[ -x /usr/lib/jvm/java-17-openjdk-amd64/bin/java ]]; then
    export JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64
    export PATH="$JAVA_HOME/bin:$PATH"
    return
  fi
  echo "hive.sh: installing Java 17 from Debian packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! as_root apt-get install -y --no-install-recommends openjdk-17-jre-headless >&2; then
    as_root apt-get update >&2
    as_root apt-get install -y --no-install-recommends openjdk-17-jre-headless >&2
  fi
}

ensure_venv() {
  if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c "import pyspark, sys; sys.exit(pyspark.__version__ != '$PYSPARK_VERSION')" 2>/dev/null; then
    return
  fi
  echo "hive.sh: creating $venv with pyspark==$PYSPARK_VERSION" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q --cache-dir "$cache/pip" "pyspark==$PYSPARK_VERSION" pyarrow pandas >&2
}

free_port() {
  "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# ping opens a NOSASL HiveServer2 session with raw Thrift (binary protocol,
# no framing) and exits 0 when the server answers OpenSession with success.
ping() {
  "$venv/bin/python" - "$1" <<'EOF'
import socket, struct, sys
port = int(sys.argv[1])
def tstring(s):
    b = s.encode()
    return struct.pack(">i", len(b)) + b
# CALL OpenSession(TOpenSessionReq{1: client_protocol = V6 (5)})
msg = struct.pack(">I", 0x80010001) + tstring("OpenSession") + struct.pack(">i", 1)
msg += struct.pack(">bh", 12, 1)                 # field 1: struct
msg += struct.pack(">bhi", 8, 1, 5) + b"\x00"    # client_protocol, stop
msg += b"\x00"                                   # stop of the args
try:
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(msg)
    data = b""
    while len(data) < 64:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
except OSError:
    sys.exit(1)
if len(data) < 4 or struct.unpack(">I", data[:4])[0] != 0x80010002:
    sys.exit(1)
# the reply holds TStatus{1: statusCode}; SUCCESS is 0
sys.exit(0 if b"OpenSession" in data else 1)
EOF
}

start() {
  ensure_java
  ensure_venv
  ulimit -n 65536 2>/dev/null || true
  local sh dir port pid
  sh="$("$venv/bin/python" -c 'import pyspark,os;print(os.path.dirname(pyspark.__file__))')"
  dir="$(mktemp -d "$root/run-XXXXXX")"
  port="$(free_port)"
  mkdir -p "$dir/wh" "$dir/tmp"
  (
    cd "$dir"
    export SPARK_HOME="$sh" SPARK_LOCAL_IP=127.0.0.1 SPARK_LOG_DIR="$dir" SPARK_PID_DIR="$dir"
    export HIVE_SERVER2_THRIFT_BIND_HOST=127.0.0.1 HIVE_SERVER2_THRIFT_PORT="$port"
    setsid "$sh/bin/spark-submit" --master 'local[2]' --driver-memory 1g \
      --conf spark.ui.enabled=false \
      --conf spark.sql.warehouse.dir="$dir/wh" \
      --conf spark.driver.bindAddress=127.0.0.1 \
      --conf spark.driver.host=127.0.0.1 \
      --conf spark.sql.session.timeZone=UTC \
      --conf "spark.driver.extraJavaOptions=-Djava.io.tmpdir=$dir/tmp -Dderby.system.home=$dir -Duser.timezone=UTC" \
      --conf spark.hadoop.javax.jdo.option.ConnectionURL="jdbc:derby:;databaseName=$dir/metastore_db;create=true" \
      --class org.apache.spark.sql.hive.thriftserver.HiveThriftServer2 spark-internal \
      --hiveconf hive.server2.authentication=NOSASL \
      --hiveconf hive.server2.thrift.bind.host=127.0.0.1 \
      --hiveconf hive.server2.thrift.port="$port" \
      >"$dir/server.log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
  )
  pid="$(cat "$dir/pid")"
  local deadline=$((SECONDS + ${LIMINAL_HIVE_START_TIMEOUT:-180}))
  until ping "$port"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 60 "$dir/server.log" >&2 || true
      rm -rf "$dir"
      die "the Spark Thrift Server exited during start-up (log above)"
    fi
    if ((SECONDS > deadline)); then
      tail -n 60 "$dir/server.log" >&2 || true
      kill -- -"$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
      die "the Spark Thrift Server did not accept a session within ${LIMINAL_HIVE_START_TIMEOUT:-180}s (log above: $dir/server.log)"
    fi
    sleep 1
  done
  {
    echo "LIMINAL_HIVE_ADDR=127.0.0.1:$port"
    echo "LIMINAL_HIVE_DIR=$dir"
  } | tee "$dir/env" >"$last"
  cat "$last"
}

stop() {
  local dir="${1:-${LIMINAL_HIVE_DIR:-}}"
  if [[ -z "$dir" && -f "$last" ]]; then
    dir="$(sed -n 's/^LIMINAL_HIVE_DIR=//p' "$last")"
  fi
  [[ -n "$dir" ]] || die "no server to stop"
  case "$dir" in "$root"/run-*) ;; *) die "refusing to remove $dir: not a hive.sh directory" ;; esac
  if [[ -f "$dir/pid" ]]; then
    local pid
    pid="$(cat "$dir/pid")"
    # setsid made the server the leader of its own process group.
    kill -- -"$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    kill -9 -- -"$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
  if [[ -f "$last" ]] && grep -qx "LIMINAL_HIVE_DIR=$dir" "$last"; then
    rm -f "$last"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:-}" ;;
  env) [[ -f "$last" ]] && cat "$last" || die "no server started" ;;
  python) ensure_venv; echo "$venv/bin/python" ;;
  *) echo "usage: $0 start|stop [DIR]|env|python" >&2; exit 2 ;;
esac
