#!/usr/bin/env bash
# compare.sh: Liminal (the CLI, end to end) side by side with DuckDB alone
# (benchmarks/cmd/duckdbrun: the same go-duckdb/DuckDB 1.1.3 build, one
# COPY (query) TO ... (FORMAT parquet), SET threads = cores) on the same
# Parquet files. Prints wall-time medians, ratios and peak RSS.
#
# Usage (from anywhere in the repository):
#   benchmarks/compare.sh
#
# Environment:
#   RUNS=5                  timed runs per engine and job (alternating)
#   JOBS="filter agg"       which jobs to run
#   ROWS=10000000 FILES=16  the dataset (cached under ~/.cache/liminal/bench-<rows>)
#   LIMINAL_ARGS=""         extra flags for liminal sql, e.g. "--workers 1"
#                           or "--target-rows 1000000"
#   THREADS=$(nproc)        DuckDB threads for the DuckDB-alone runs
#   SMALL_ROWS=1000000 SMALL_FILES=8  the small dataset of the flat-memory check
#   SKIP_SMALL=1            skip the flat-memory check
#   OUT=/tmp/...            where binaries, outputs and the raw log go
#
# Each run is measured from outside with /usr/bin/time -f '%e %M %U %S'
# (wall seconds, peak RSS KiB, CPU). Runs alternate (liminal first in odd
# runs, DuckDB first in even ones) after one untimed warm-up each, so both
# read from the page cache and see the same drift in machine load. The
# table goes to stdout, progress and every run to stderr; the raw log
# ($OUT/runs.tsv) also has the time each process reports itself (liminal's
# duration_ms: plan, run, commit, without process start-up and opening the
# sources; duckdbrun's: the COPY statement alone) and the load average.
#
# Runtime on 2 cores: about 35 s to generate 10M rows once, then about 30 s.
set -euo pipefail

RUNS=${RUNS:-5}
JOBS=${JOBS:-"filter agg"}
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
)

log() { printf '%s\n' "$*" >&2; }

if [[ ! -x /usr/bin/time ]]; then
	log "installing GNU time"
	sudo=""
	if ((EUID != 0)); then sudo=sudo; fi
	$sudo apt-get update -qq && $sudo apt-get install -y -qq time >/dev/null
fi

log "building liminal and duckdbrun into $OUT/bin"
(cd "$root" && go build -o "$OUT/bin/liminal" ./cmd/liminal && go build -o "$OUT/bin/duckdbrun" ./benchmarks/cmd/duckdbrun)
LIMINAL=$OUT/bin/liminal
DUCKDB=$OUT/bin/duckdbrun

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
	liminal)
		# shellcheck disable=SC2086
		/usr/bin/time -o "$tf" -f '%e %M %U %S' "$LIMINAL" sql "$q" --source "events=$dir/events" \
			--sink "$OUT/out-liminal" --mode overwrite --json --log-level warn $LIMINAL_ARGS >"$so"
		inner=$(grep -o '"duration_ms":[0-9]*' "$so" | head -1 | cut -d: -f2)
		inner=$(awk -v ms="$inner" 'BEGIN { printf "%.3f", ms / 1000 }')
		;;
	duckdb)
		/usr/bin/time -o "$tf" -f '%e %M %U %S' "$DUCKDB" -threads "$THREADS" \
			-setup "CREATE VIEW events AS SELECT * FROM read_parquet('$dir/events/*.parquet')" \
			-sql "COPY ($q) TO '$OUT/out-duckdb.parquet' (FORMAT parquet)" >"$so"
		inner=$(cat "$so")
		;;
	esac
	read -r wall rss user sys <"$tf"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$engine" "$job" "$rows" "$wall" "$rss" \
		"$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')" "$inner" "$load" "$run" | tee -a "$OUT/runs.tsv" >&2
}

# paired JOB ROWS COLUMN: the median over runs of liminal/duckdb within a
# run (the two measurements taken back to back), robust to a machine whose
# load drifts.
paired() {
	awk -F'\t' -v j="$1" -v r="$2" -v c="$3" '$2 == j && $3 == r && $1 == "liminal" { l[$9] = $c }
		$2 == j && $3 == r && $1 == "duckdb" { d[$9] = $c }
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
log "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); liminal args: ${LIMINAL_ARGS:-none}; duckdb threads: $THREADS"
log "engine	job	rows	wall_s	peak_rss_kib	cpu_s	inner_s	load1	run"

for job in $JOBS; do
	# One untimed warm-up each, so both start with the files in the page cache.
	measure liminal "$job" "$big" warmup >/dev/null 2>&1
	measure duckdb "$job" "$big" warmup >/dev/null 2>&1
	for ((i = 1; i <= RUNS; i++)); do
		if ((i % 2)); then order="liminal duckdb"; else order="duckdb liminal"; fi
		for e in $order; do measure "$e" "$job" "$big" "$ROWS" "$i"; done
	done
done

if [[ -z $SKIP_SMALL ]]; then
	small=$(dataset "$SMALL_ROWS" "$SMALL_FILES")
	measure liminal filter "$small" warmup >/dev/null 2>&1
	for ((i = 1; i <= RUNS; i++)); do measure liminal filter "$small" "$SMALL_ROWS" "$i"; done
fi

echo
echo "Liminal vs DuckDB alone: $(label "$ROWS") rows ($big), $RUNS runs each, medians; $(nproc) cores; liminal args: ${LIMINAL_ARGS:-none}"
printf '%-7s %9s %9s %7s %7s %11s %11s | %9s %9s %7s %10s %10s\n' job liminal_s duckdb_s ratio paired liminal_MiB duckdb_MiB lim_cpu_s duck_cpu_s cpu_rat lim_self_s duck_self_s
for job in $JOBS; do
	args=(-v "pw=$(paired "$job" "$ROWS" 4)" -v "pc=$(paired "$job" "$ROWS" 6)")
	for c in 4 5 6 7; do
		args+=(-v "l$c=$(summary liminal "$job" "$ROWS" "$c" median)" -v "d$c=$(summary duckdb "$job" "$ROWS" "$c" median)")
	done
	awk -v j="$job" "${args[@]}" 'BEGIN {
		printf "%-7s %9.2f %9.2f %6.2fx %6.2fx %11.0f %11.0f | %9.2f %9.2f %6.2fx %10.2f %10.2f\n",
			j, l4, d4, l4 / d4, pw, l5 / 1024, d5 / 1024, l6, d6, pc, l7, d7 }'
done
echo "(s: median wall time of the whole process, /usr/bin/time %e; ratio: of the medians; paired: median of"
echo " the per-run ratios of back-to-back runs; MiB: median peak RSS (%M); cpu_s: user+sys, cpu_rat paired;"
echo " self_s: the time the process reports itself: liminal's duration_ms, duckdbrun's COPY statement)"
echo "median 1-minute load average during the runs: $(awk -F'\t' 'NR > 1 && $3 != "warmup" { print $8 }' "$OUT/runs.tsv" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')"

if [[ -z $SKIP_SMALL ]]; then
	echo
	echo "Flat memory: liminal peak RSS, filter job (median / max of $RUNS runs)"
	for r in "$SMALL_ROWS" "$ROWS"; do
		awk -v r="$(label "$r")" -v m="$(summary liminal filter "$r" 5 median)" -v x="$(summary liminal filter "$r" 5 max)" -v s="$(summary liminal filter "$r" 4 median)" \
			'BEGIN { printf "%-5s rows: %6.0f MiB median, %6.0f MiB max, %6.2f s\n", r, m / 1024, x / 1024, s }'
	done
fi
echo
echo "raw runs: $OUT/runs.tsv"
rm -rf "$OUT/out-liminal" "$OUT/.out-liminal.liminal" "$OUT/out-duckdb.parquet" "$OUT/time.txt" "$OUT/stdout.txt"
