#!/usr/bin/env bash
# scoring/compare.sh: the end-to-end batch-scoring job (Parquet -> features
# SQL -> XGBoost -> Parquet) run by Liminal and by a plain pandas + xgboost
# script (pandas_xgboost.py) side by side on the same data and model; both
# use every core. Checks that both wrote the same predictions, then prints
# wall-time medians and the ratio.
#
#   benchmarks/scoring/compare.sh            # RUNS=5 ROWS=10000000
#
# The data is the deterministic benchmark dataset of benchmarks/compare.sh
# (cached in ~/.cache/liminal/bench-<rows>); the job and model are those of
# examples/quickstart. Python comes from scripts/pyenv.sh.
set -euo pipefail
RUNS=${RUNS:-5}
ROWS=${ROWS:-10000000}
FILES=${FILES:-16}
THREADS=${THREADS:-$(nproc)}
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/liminal-score.XXXXXX")}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
log() { printf '%s\n' "$*" >&2; }

py=$("$root/scripts/pyenv.sh")
(cd "$root" && go build -tags duckdb_arrow -o "$OUT/liminal" ./cmd/liminal)
label() { if (($1 >= 1000000 && $1 % 1000000 == 0)); then echo "$(($1 / 1000000))M"; else echo "$1"; fi; }
data=$HOME/.cache/liminal/bench-$(label "$ROWS")
if [[ "$(cat "$data/.complete" 2>/dev/null)" != "rows=$ROWS files=$FILES" ]]; then
	log "generating $ROWS rows into $data"
	rm -rf "$data" && "$OUT/liminal" gen --dir "$data" --rows "$ROWS" --files "$FILES" >/dev/null
	echo "rows=$ROWS files=$FILES" > "$data/.complete"
fi
model=$root/examples/quickstart/models/purchase_propensity.json
cat > "$OUT/score.yml" <<YML
name: scoring_bench
sources:
  events: {uri: "$data/events"}
  customers: {uri: "$data/customers"}
sinks:
  propensity: {uri: "$OUT/liminal_out/", format: parquet, mode: overwrite}
pipelines:
  - pipeline: score
    tasks:
      - task: purchase_features
        type: sql
        sql_file: $root/examples/quickstart/sql/purchase_features.sql
        sources: [events, customers]
        partition: {source: events}
      - task: purchase_propensity
        type: batch_inference
        input: purchase_features
        model: {format: xgboost, path: $model}
        output: {columns: [event_id, customer_id, dt], prediction: purchase_probability}
        sink: propensity
YML

run_liminal() { /usr/bin/time -f '%e %M' -o "$OUT/t" "$OUT/liminal" run "$OUT/score.yml" --workers "$THREADS" --log-level warn > /dev/null; cat "$OUT/t"; }
run_pandas() { /usr/bin/time -f '%e %M' -o "$OUT/t" "$py" "$here/pandas_xgboost.py" "$data" "$model" "$OUT/pandas_out.parquet" "$THREADS" >&2; cat "$OUT/t"; }

log "warm-up"
run_liminal > /dev/null
run_pandas > /dev/null
log "checking both wrote the same predictions"
"$OUT/liminal" sql "SELECT count(*) AS rows, count(p.event_id) AS matched, max(abs(l.purchase_probability - p.purchase_probability)) AS max_diff FROM l JOIN p USING (event_id)" \
	--source l="$OUT/liminal_out" --source p="$OUT/pandas_out.parquet" --sink "$OUT/check.csv" --mode overwrite --log-level warn > /dev/null
cat "$OUT/check.csv" >&2

: > "$OUT/runs.tsv"
for i in $(seq 1 "$RUNS"); do
	if ((i % 2)); then l=$(run_liminal); p=$(run_pandas); else p=$(run_pandas); l=$(run_liminal); fi
	printf '%s\t%s\n' "$l" "$p" | tee -a "$OUT/runs.tsv" >&2
done
awk -F'\t' '{ split($1, a, " "); split($2, b, " "); L[NR]=a[1]; P[NR]=b[1]; LM[NR]=a[2]; PM[NR]=b[2] }
function median(x, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }; return (n % 2) ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2 }
END { n = NR; l = median(L, n); p = median(P, n); lm = median(LM, n); pm = median(PM, n);
  printf "job\tliminal_s\tpandas_xgboost_s\tratio\tliminal_rss_MiB\tpandas_rss_MiB\n";
  printf "score\t%.2f\t%.2f\t%.2fx\t%.0f\t%.0f\n", l, p, l / p, lm / 1024, pm / 1024 }' "$OUT/runs.tsv"
