#!/usr/bin/env bash
# Throughput of a cluster run with 1 and with 2 worker processes on this
# machine, side by side with the same job run in-process, each RUNS times
# (medians). The job: SQL over ROWS generated events (Parquet, row groups of
# 50k), 250k-row partitions, every row enriched and written as Parquet
# (mode overwrite).
#
#   RUNS=5 ROWS=16000000 benchmarks/cluster/compare.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-3}
ROWS=${ROWS:-16000000}
export GOCACHE=${GOCACHE:-$HOME/.cache/liminal/go-build} GOMODCACHE=${GOMODCACHE:-$HOME/.cache/liminal/go-mod}
go build -tags duckdb_arrow -o bin/liminal ./cmd/liminal
BIN=$PWD/bin/liminal
W=$(mktemp -d /tmp/liminal-cluster-bench.XXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$W"' EXIT
"$BIN" gen --dir "$W/data" --rows "$ROWS" --row-group-rows 50000 --files 8 >/dev/null
cat > "$W/job.yml" <<'YML'
name: bench
sources:
  events: {uri: data/events}
sinks:
  out: {uri: out/, format: parquet, mode: overwrite}
pipelines:
  - pipeline: bench
    tasks:
      - task: enrich
        type: sql
        sql: >
          SELECT event_id, customer_id, event_type, amount, amount * 1.17 AS amount_gross,
                 upper(country) AS country, date_trunc('hour', ts) AS hour, md5(CAST(event_id AS VARCHAR)) AS h
          FROM events
        sink: out
        partition: {by: row_groups, target_rows: 250000}
YML
export LIMINAL_TOKEN=bench-token
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

cluster_run() { # workers
  local n=$1 g h pids=()
  g=127.0.0.1:$(free_port); h=127.0.0.1:$(free_port)
  (cd "$W" && exec "$BIN" coordinator --listen "$g" --http "$h" --log-level warn) & pids+=($!)
  for i in $(seq "$n"); do (cd "$W" && exec "$BIN" worker --coordinator "$g" --slots 1 --log-level warn) & pids+=($!); done
  until curl -sf "http://$h/healthz" >/dev/null; do sleep 0.1; done
  sleep 1 # workers register
  local t0 t1
  t0=$(now)
  (cd "$W" && "$BIN" run job.yml --coordinator "$g" --json >/dev/null 2>&1)
  t1=$(now)
  kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null || true
  echo "$t1 - $t0" | bc
}
local_run() { # slots
  local t0 t1
  t0=$(now)
  (cd "$W" && "$BIN" run job.yml --workers "$1" --json >/dev/null 2>&1)
  t1=$(now)
  echo "$t1 - $t0" | bc
}

declare -A T M
for r in $(seq "$RUNS"); do
  T[c1]+="$(cluster_run 1) "
  T[c2]+="$(cluster_run 2) "
  T[l1]+="$(local_run 1) "
  T[l2]+="$(local_run 2) "
done
printf '%-44s %s\n' "contender (rows=$ROWS, runs=$RUNS)" "median s (runs)"
for k in c1 c2 l1 l2; do
  m=$(echo ${T[$k]} | tr ' ' '\n' | median)
  M[$k]=$m
  case $k in c1) name="cluster, 1 worker process x 1 slot";; c2) name="cluster, 2 worker processes x 1 slot";;
             l1) name="in-process, 1 slot";; l2) name="in-process, 2 slots";; esac
  printf '%-44s %6.2f  (%s)\n' "$name" "$m" "${T[$k]}"
done
echo "speed-up 2 vs 1 worker processes: $(echo "scale=2; ${M[c1]} / ${M[c2]}" | bc)x"
echo "cluster (2 processes) vs in-process (2 slots): $(echo "scale=2; ${M[c2]} / ${M[l2]}" | bc)x the time"
echo "rows/s: 1 worker $(echo "$ROWS / ${M[c1]}" | bc), 2 workers $(echo "$ROWS / ${M[c2]}" | bc)"
