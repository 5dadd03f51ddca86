#!/usr/bin/env bash
# compare.sh: Liminal (the CLI, end to end) side by side with the engines a
# user would pick instead, on the same Parquet files, in one run: DuckDB alone
# (the `duckdb` wheel of the DuckDB version Liminal embeds, one COPY (query)
# TO ... (FORMAT parquet), threads = cores), Polars (lazy scan_parquet ...
# sink_parquet) and PySpark local[cores]; optionally an older liminal binary
# (OLD_LIMINAL) for before/after figures. Prints wall-time medians, ratios
# (liminal time / peer time) and peak RSS.
#
# Usage (from anywhere in the repository):
#   benchmarks/compare.sh
#
# Environment:
#   RUNS=5                  timed runs per engine and job (rotating order)
#   JOBS="filter agg join topn"  which jobs to run
#   ENGINES="liminal duckdb polars pyspark"  which engines (liminal_old too when OLD_LIMINAL is set)
#   OLD_LIMINAL=path        an older liminal binary to time as liminal_old
#   ROWS=10000000 FILES=16  the dataset (cached under ~/.cache/liminal/bench-<rows>)
#   LIMINAL_ARGS=""         extra flags for liminal sql, e.g. "--workers 1"
#   THREADS=$(nproc)        threads for the peers
#   SMALL_ROWS=1000000 SMALL_FILES=8  the small dataset of the flat-memory check
#   SKIP_SMALL=1            skip the flat-memory check
#   TINY=1                  also time a 1,000-row job end to end (fixed cost)
#   OUT=/tmp/...            where binaries, outputs and the raw log go
#
# The peers run in a virtualenv under ~/.cache/liminal/bench-venv
# (benchmarks/peers/requirements.txt, pinned; PySpark needs a JDK 17).
# Each run is measured from outside with /usr/bin/time -f '%e %M %U %S'
# (wall seconds, peak RSS KiB, CPU). Runs rotate the engines' order after one
# untimed warm-up each, so all read from the page cache and see the same
# drift in machine load. The table goes to stdout, progress and every run to
# stderr; the raw log ($OUT/runs.tsv) also has the time each process reports
# itself (liminal's duration_ms; the peers' job without interpreter start-up)
# and the load average.
set -euo pipefail

RUNS=${RUNS:-5}
JOBS=${JOBS:-"filter agg join topn"}
ENGINES=${ENGINES:-"liminal duckdb polars pyspark"}
if [[ -n ${OLD_LIMINAL:-} ]]; then ENGINES="$ENGINES liminal_old"; fi
TINY=${TINY:-}
ROWS=${ROWS:-10000000}
FILES=${FILES:-16}
SMALL_ROWS=${SMALL_ROWS:-1000000}
SMALL_FILES=${SMALL_FILES:-8}
SKIP_SMALL=${SKIP_SMALL:-}
LIMINAL_ARGS=${LIMINAL_ARGS:-}
THREADS=${THREADS:-$(nproc)}
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/liminal-compare.XXXXXX")}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
mkdir -p "$OUT/bin"

declare -A QUERY=(
	[filter]="SELECT event_id, customer_id, ts, amount, country FROM events WHERE event_type IN ('purchase','refund') AND amount <> 0"
	[agg]="SELECT country, event_type, dt, count(*) AS n, sum(amount) AS revenue, avg(session_ms) AS avg_session, min(ts) AS first_ts, max(ts) AS last_ts FROM events GROUP BY country, event_type, dt"
	[join]="SELECT c.segment, e.country, count(*) AS n, sum(e.amount) AS revenue FROM events e JOIN customers c ON e.customer_id = c.customer_id GROUP BY c.segment, e.country"
	[topn]="SELECT event_id, customer_id, amount FROM events ORDER BY amount DESC, event_id LIMIT 100"
)

log() { printf '%s\n' "$*" >&2; }

if [[ ! -x /usr/bin/time ]]; then
	log "installing GNU time"
	sudo=""
	if ((EUID != 0)); then sudo=sudo; fi
	$sudo apt-get update -qq && $sudo apt-get install -y -qq time >/dev/null
fi

log "building liminal into $OUT/bin"
(cd "$root" && go build -tags duckdb_arrow -o "$OUT/bin/liminal" ./cmd/liminal)
LIMINAL=$OUT/bin/liminal
VENV=$HOME/.cache/liminal/bench-venv
if [[ " $ENGINES " == *" duckdb "* || " $ENGINES " == *" polars "* || " $ENGINES " == *" pyspark "* ]]; then
	if ! cmp -s "$here/peers/requirements.txt" "$VENV/.requirements" 2>/dev/null; then
		log "installing the peers into $VENV"
		python3 -m venv "$VENV"
		"$VENV/bin/pip" install -q -r "$here/peers/requirements.txt"
		cp "$here/peers/requirements.txt" "$VENV/.requirements"
	fi
	log "peers: $("$VENV/bin/python" -c 'import duckdb, polars, pyspark; print("duckdb", duckdb.__version__, "polars", polars.__version__, "pyspark", pyspark.__version__)')"
fi

label() { # 10000000 -> 10M, as the Go benchmarks name their cache
	if (($1 >= 1000000 && $1 % 1000000 == 0)); then echo "$(($1 / 1000000))M"; else echo "$1"; fi
}

# dataset ROWS FILES: the cached directory, generated once (deterministic)
# and reused while its marker names the same rows and files; the Go
# benchmarks (e2e_test.go) use the same directories and marker.
dataset() {
	local rows=$1 files=$2 dir want
	dir=$HOME/.cache/liminal/bench-$(label "$rows")
	want="rows=$rows files=$files"
	if [[ "$(cat "$dir/.complete" 2>/dev/null)" != "$want" ]]; then
		log "generating $rows rows in $files files into $dir"
		rm -f "$dir/.complete"
		"$LIMINAL" gen --dir "$dir" --rows "$rows" --files "$files" >&2
		echo "$want" >"$dir/.complete"
	fi
	echo "$dir"
}

# measure ENGINE JOB DIR ROWS RUN: one run; appends a line to runs.tsv:
# engine job rows wall_s peak_rss_kib cpu_s inner_s load1 run (load1: the
# 1-minute load average just before the run, to spot a busy machine).
measure() {
	local engine=$1 job=$2 dir=$3 rows=$4 run=${5:-0} q=${QUERY[$2]} tf=$OUT/time.txt so=$OUT/stdout.txt inner load
	read -r load _ </proc/loadavg
	case $engine in
	liminal | liminal_old)
		local bin=$LIMINAL
		if [[ $engine == liminal_old ]]; then bin=$OLD_LIMINAL; fi
		# shellcheck disable=SC2086
		/usr/bin/time -o "$tf" -f '%e %M %U %S' "$bin" sql "$q" --source "events=$dir/events" --source "customers=$dir/customers" \
			--sink "$OUT/out-$engine" --mode overwrite --json --log-level warn $LIMINAL_ARGS >"$so"
		inner=$(grep -o '"duration_ms":[0-9]*' "$so" | head -1 | cut -d: -f2)
		inner=$(awk -v ms="$inner" 'BEGIN { printf "%.3f", ms / 1000 }')
		;;
	*)
		rm -rf "$OUT/out-$engine.parquet"
		/usr/bin/time -o "$tf" -f '%e %M %U %S' "$VENV/bin/python" "$here/peers/run.py" "$engine" "$job" "$dir" \
			"$OUT/out-$engine.parquet" "$THREADS" >"$so"
		inner=$(tail -1 "$so")
		;;
	esac
	read -r wall rss user sys <"$tf"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$engine" "$job" "$rows" "$wall" "$rss" \
		"$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')" "$inner" "$load" "$run" | tee -a "$OUT/runs.tsv" >&2
}

# paired JOB ROWS COLUMN PEER: the median over runs of liminal/PEER within
# a run (the measurements taken back to back), robust to a machine whose
# load drifts.
paired() {
	awk -F'\t' -v j="$1" -v r="$2" -v c="$3" -v p="$4" '$2 == j && $3 == r && $1 == "liminal" { l[$9] = $c }
		$2 == j && $3 == r && $1 == p { d[$9] = $c }
		END { for (i in l) if (i in d && d[i] > 0) print l[i] / d[i] }' "$OUT/runs.tsv" |
		sort -g | awk '{ v[NR] = $1 } END {
			if (NR == 0) { print "nan"; exit }
			if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# summary ENGINE JOB ROWS COLUMN FUNC: median or max of a column of runs.tsv.
summary() {
	awk -F'\t' -v e="$1" -v j="$2" -v r="$3" -v c="$4" '$1 == e && $2 == j && $3 == r { print $c }' "$OUT/runs.tsv" |
		sort -g | awk -v f="$5" '{ v[NR] = $1 } END {
			if (NR == 0) { print "nan"; exit }
			if (f == "max") { print v[NR]; exit }
			if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

big=$(dataset "$ROWS" "$FILES")
printf 'engine\tjob\trows\twall_s\tpeak_rss_kib\tcpu_s\tinner_s\tload1\trun\n' >"$OUT/runs.tsv"
log "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); liminal args: ${LIMINAL_ARGS:-none}; peer threads: $THREADS"
log "engine	job	rows	wall_s	peak_rss_kib	cpu_s	inner_s	load1	run"

read -r -a engines <<<"$ENGINES"
for job in $JOBS; do
	# One untimed warm-up each, so all start with the files in the page cache.
	for e in "${engines[@]}"; do measure "$e" "$job" "$big" warmup >/dev/null 2>&1; done
	for ((i = 1; i <= RUNS; i++)); do
		# Rotate the order so that no engine always runs first.
		n=${#engines[@]}
		for ((k = 0; k < n; k++)); do measure "${engines[$(((k + i) % n))]}" "$job" "$big" "$ROWS" "$i"; done
	done
done

if [[ -z $SKIP_SMALL ]]; then
	small=$(dataset "$SMALL_ROWS" "$SMALL_FILES")
	measure liminal filter "$small" warmup >/dev/null 2>&1
	for ((i = 1; i <= RUNS; i++)); do measure liminal filter "$small" "$SMALL_ROWS" "$i"; done
fi
if [[ -n $TINY ]]; then
	tiny=$(dataset 1000 1)
	for e in "${engines[@]}"; do measure "$e" filter "$tiny" warmup >/dev/null 2>&1; done
	for ((i = 1; i <= RUNS; i++)); do for e in "${engines[@]}"; do measure "$e" filter "$tiny" 1000 "$i"; done; done
fi

echo
echo "Liminal vs peers: $(label "$ROWS") rows ($big), $RUNS runs each, medians; $(nproc) cores; liminal args: ${LIMINAL_ARGS:-none}"
printf '%-7s %-12s %9s %8s %8s %9s\n' job engine wall_s ratio paired peak_MiB
for job in $JOBS; do
	lw=$(summary liminal "$job" "$ROWS" 4 median)
	for e in "${engines[@]}"; do
		w=$(summary "$e" "$job" "$ROWS" 4 median)
		m=$(summary "$e" "$job" "$ROWS" 5 median)
		pw=$(if [[ $e == liminal ]]; then echo 1; else paired "$job" "$ROWS" 4 "$e"; fi)
		awk -v j="$job" -v e="$e" -v w="$w" -v lw="$lw" -v pw="$pw" -v m="$m" 'BEGIN {
			printf "%-7s %-12s %9.2f %7.2fx %7.2fx %9.0f\n", j, e, w, lw / w, pw, m / 1024 }'
	done
done
echo "(wall_s: median wall time of the whole process, /usr/bin/time %e; ratio: liminal's median / the engine's;"
echo " paired: median of the per-run ratios liminal/engine of back-to-back runs; peak_MiB: median peak RSS)"
echo "median 1-minute load average during the runs: $(awk -F'\t' 'NR > 1 && $3 != "warmup" { print $8 }' "$OUT/runs.tsv" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')"

if [[ -z $SKIP_SMALL ]]; then
	echo
	echo "Flat memory: liminal peak RSS, filter job (median / max of $RUNS runs)"
	for r in "$SMALL_ROWS" "$ROWS"; do
		awk -v r="$(label "$r")" -v m="$(summary liminal filter "$r" 5 median)" -v x="$(summary liminal filter "$r" 5 max)" -v s="$(summary liminal filter "$r" 4 median)" \
			'BEGIN { printf "%-5s rows: %6.0f MiB median, %6.0f MiB max, %6.2f s\n", r, m / 1024, x / 1024, s }'
	done
fi
if [[ -n $TINY ]]; then
	echo
	echo "Fixed cost: the filter job on 1,000 rows, median wall of $RUNS runs"
	for e in "${engines[@]}"; do
		awk -v e="$e" -v w="$(summary "$e" filter 1000 4 median)" 'BEGIN { printf "%-12s %6.3f s\n", e, w }'
	done
fi
echo
echo "raw runs: $OUT/runs.tsv"
rm -rf "$OUT"/out-* "$OUT"/.out-* "$OUT/time.txt" "$OUT/stdout.txt"
