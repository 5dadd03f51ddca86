#!/usr/bin/env bash
# extract/compare.sh: extraction throughput (rows/s) out of PostgreSQL and
# Trino, Liminal with 1 and N parallel ranges against what a user would run
# instead, side by side on the same server and rows:
#
#   PostgreSQL  psql -c "\copy (SELECT * FROM t) TO 'out.csv' CSV HEADER"
#               vs liminal run (a spec: the postgres:// source, one split or
#               N key ranges on partition_column id) writing Parquet or CSV
#   Trino       the Trino CLI, --execute 'SELECT * FROM tbl' --output-format
#               CSV to a file, vs liminal sql over trino://...?table=tbl, one
#               query or N range queries on partition_column
#
#   benchmarks/extract/compare.sh                 # both, RUNS=3
#   RUNS=5 TARGETS=postgres benchmarks/extract/compare.sh
#
# Environment:
#   TARGETS="postgres trino"   which servers
#   RUNS=3                     timed runs per contender (after one warm-up each)
#   PG_ROWS=5000000            rows of the PostgreSQL table (int, bigint,
#                              numeric, text, timestamp, date; id the primary key)
#   TRINO_TABLE=tpch.sf1.orders TRINO_KEY=orderkey  what Trino reads, the
#                              range column (tpch.sf1.lineitem: 6M rows)
#   VARIANTS="parquet:1 parquet:2 parquet:4 csv:1 csv:4"  Liminal's
#                              contenders, format:ranges (1: one split, no
#                              partition_column)
#   OUT=/tmp/...               binaries, outputs and the raw log (runs.tsv)
#
# The servers come from scripts/postgres.sh and scripts/trino.sh (started
# here, stopped at the end) and run on the same machine as the clients:
# they share its cores. Each run is timed from outside with /usr/bin/time
# (wall, client peak RSS, client user+sys CPU); the servers' CPU seconds
# during the run are read from /proc (PostgreSQL: the postmaster's reaped
# children, i.e. the backends of the run; Trino: its JVM). N ranges run
# with --workers N, one range with the default 2 worker slots.
set -euo pipefail

TARGETS=${TARGETS:-"postgres trino"}
RUNS=${RUNS:-3}
PG_ROWS=${PG_ROWS:-5000000}
TRINO_TABLE=${TRINO_TABLE:-tpch.sf1.orders}
TRINO_KEY=${TRINO_KEY:-orderkey}
VARIANTS=${VARIANTS:-"parquet:1 parquet:2 parquet:4 csv:1 csv:4"}
TRINO_CLI_VERSION=${TRINO_CLI_VERSION:-476}
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/liminal-extract.XXXXXX")}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${LIMINAL_CACHE:-$HOME/.cache/liminal}
log() { printf '%s\n' "$*" >&2; }
die() { log "extract/compare.sh: $*"; exit 1; }
mkdir -p "$OUT/bin"

if [[ ! -x /usr/bin/time ]]; then
	log "installing GNU time"
	sudo=""
	((EUID == 0)) || sudo=sudo
	$sudo apt-get update -qq && $sudo apt-get install -y -qq time >/dev/null
fi
log "building liminal into $OUT/bin"
(cd "$root" && go build -tags duckdb_arrow -o "$OUT/bin/liminal" ./cmd/liminal)
LIMINAL=$OUT/bin/liminal
TICKS=$(getconf CLK_TCK)

stops=()
cleanup() {
	local s
	for s in "${stops[@]}"; do bash $s >/dev/null 2>&1 || true; done
	rm -rf "$OUT"/out-* "$OUT/t.txt"
}
trap cleanup EXIT

# start SCRIPT: starts a server, exports what it prints, stops it at exit.
start() {
	local line arg=""
	"$root/scripts/$1" start >"$OUT/$1.env" || die "scripts/$1 start failed"
	while IFS= read -r line; do
		[[ $line =~ ^(LIMINAL_[A-Z_]+)=(.*)$ ]] || continue
		export "${BASH_REMATCH[1]}=${BASH_REMATCH[2]}"
		case ${BASH_REMATCH[1]} in *_DIR | *_DATA) arg=${BASH_REMATCH[2]} ;; esac
	done <"$OUT/$1.env"
	stops+=("$root/scripts/$1 stop $arg")
}

# cpu_of PID: user+sys CPU seconds of PID and of its reaped children.
cpu_of() {
	awk -v t="$TICKS" '{ sub(/^.*\) /, ""); print ($12 + $13 + $14 + $15) / t }' "/proc/$1/stat"
}

# measure TARGET CONTENDER RUN ROWS CMD...: one timed run, a line of runs.tsv:
# target contender run rows wall_s rss_kib client_cpu_s server_cpu_s load1
measure() {
	local target=$1 name=$2 run=$3 rows=$4 load c0 c1 wall rss user sys
	shift 4
	read -r load _ </proc/loadavg
	c0=$(cpu_of "$SERVER_PID")
	/usr/bin/time -o "$OUT/t.txt" -f '%e %M %U %S' "$@" >"$OUT/stdout.txt" 2>"$OUT/stderr.txt" ||
		{ cat "$OUT/stderr.txt" >&2; die "$name failed: $*"; }
	sleep 0.3 # let the server reap the run's backend
	c1=$(cpu_of "$SERVER_PID")
	read -r wall rss user sys <"$OUT/t.txt"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t%.2f\t%s\n' "$target" "$name" "$run" "$rows" "$wall" "$rss" \
		"$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')" "$(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }')" "$load" |
		tee -a "$OUT/runs.tsv" >&2
}

# parquet_rows DIR: rows in a directory of Parquet files (DuckDB, through liminal).
parquet_rows() {
	"$LIMINAL" sql "SELECT count(*) AS n FROM o" --source "o=$1" --sink "$OUT/count.csv" --mode overwrite --log-level warn >/dev/null
	tail -n 1 "$OUT/count.csv"
}

# check NAME ROWS FORMAT PATH [HEADER]: the warm-up output has ROWS rows.
check() {
	local got
	case $3 in
	parquet) got=$(parquet_rows "$4") ;;
	csv) got=$(($(cat "$4" 2>/dev/null | wc -l) - ${5:-0})) ;;
	esac
	[[ $got == "$2" ]] || die "$1 wrote $got rows, want $2 ($4)"
	log "  $1: $got rows, checked"
}

# bench TARGET ROWS BASELINE: the runs of the contenders in CONTENDERS (name ->
# command), rotated each run so that drift in load hits every one alike.
bench() {
	local target=$1 rows=$2 i j n names
	names=("${ORDER[@]}")
	n=${#names[@]}
	for name in "${names[@]}"; do
		log "warm-up: $name"
		eval "measure $target $name warmup $rows ${CONTENDERS[$name]}"
		eval "${CHECKS[$name]}"
	done
	for ((i = 1; i <= RUNS; i++)); do
		for ((j = 0; j < n; j++)); do
			name=${names[$(((i + j) % n))]}
			eval "measure $target $name $i $rows ${CONTENDERS[$name]}"
		done
	done
}

# variant_uri etc. come from each target's section.
printf 'target\tcontender\trun\trows\twall_s\trss_kib\tclient_cpu_s\tserver_cpu_s\tload1\n' >"$OUT/runs.tsv"
log "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); runs: $RUNS; out: $OUT"

for target in $TARGETS; do
	declare -A CONTENDERS=() CHECKS=()
	ORDER=()
	case $target in
	postgres)
		start postgres.sh
		SERVER_PID=$(head -n 1 "$LIMINAL_PG_DATA/data/postmaster.pid")
		bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
		export PGPASSWORD=$LIMINAL_PG_PASSWORD
		psql=("$bin/psql" -X -q -v ON_ERROR_STOP=1 "$LIMINAL_PG_URL")
		log "loading $PG_ROWS rows into bench.t"
		t0=$SECONDS
		"${psql[@]}" >&2 <<SQL
CREATE SCHEMA bench;
CREATE TABLE bench.t (id integer PRIMARY KEY, big bigint NOT NULL, amount numeric(12,2), label text, ts timestamp, d date);
INSERT INTO bench.t SELECT i, i::bigint * 1000003 % 9999999967,
	CASE WHEN i % 10 = 0 THEN NULL ELSE ((i::bigint * 7919) % 10000000) / 100.0 END,
	'customer ' || i || ' ' || substr(md5(i::text), 1, 16),
	TIMESTAMP '2024-01-01' + i * INTERVAL '7 second', DATE '2020-01-01' + i % 2000
FROM generate_series(1, $PG_ROWS) AS g(i);
VACUUM ANALYZE bench.t;
SQL
		log "loaded in $((SECONDS - t0)) s; $("${psql[@]}" -At -c "SELECT pg_size_pretty(pg_table_size('bench.t'))") on disk"
		uri="$LIMINAL_PG_URL?table=bench.t"
		CONTENDERS[psql-csv]="${psql[*]} -c \"\\\\copy (SELECT * FROM bench.t) TO '$OUT/out-psql.csv' CSV HEADER\""
		CHECKS[psql-csv]="check psql-csv $PG_ROWS csv $OUT/out-psql.csv 1"
		ORDER+=(psql-csv)
		for v in $VARIANTS; do
			fmt=${v%%:*} n=${v##*:} name=liminal-$fmt-$n
			opts="{partitions: \"1\"}" workers=2
			if ((n > 1)); then opts="{partition_column: id, partitions: \"$n\"}" workers=$n; fi
			sink="$OUT/out-$name/"
			[[ $fmt == csv ]] && sink="$OUT/out-$name.csv"
			cat >"$OUT/$name.yml" <<YML
name: extract
sources:
  t: {uri: "$uri", secret_env: LIMINAL_PG_PASSWORD, options: $opts}
sinks:
  out: {uri: "$sink", format: $fmt, mode: overwrite}
pipelines:
  - pipeline: extract
    tasks:
      - {task: extract, type: sql, sql: "SELECT * FROM t", sources: [t], sink: out}
YML
			CONTENDERS[$name]="$LIMINAL run $OUT/$name.yml --workers $workers --log-level warn"
			CHECKS[$name]="check $name $PG_ROWS $fmt $sink 1" # CSV: one header line
			ORDER+=("$name")
		done
		log "plans of the range queries (4 ranges):"
		"${psql[@]}" -At -c "EXPLAIN SELECT * FROM bench.t WHERE id >= $((PG_ROWS / 4)) AND id < $((PG_ROWS / 2))" >&2
		bench postgres "$PG_ROWS"
		;;
	trino)
		jar=$cache/trino-cli/trino-cli-$TRINO_CLI_VERSION-executable.jar
		if [[ ! -f $jar ]]; then
			log "fetching io.trino:trino-cli:$TRINO_CLI_VERSION:executable from Maven Central"
			mvn -q -B org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy \
				-Dartifact="io.trino:trino-cli:$TRINO_CLI_VERSION:jar:executable" -DoutputDirectory="$cache/trino-cli" >&2 ||
				die "could not fetch the Trino CLI $TRINO_CLI_VERSION"
		fi
		start trino.sh
		SERVER_PID=$(cat "$LIMINAL_TRINO_DIR/pid")
		hostport=${LIMINAL_TRINO_URL#*@}
		IFS=. read -r catalog schema table <<<"$TRINO_TABLE"
		java=$(ls /usr/lib/jvm/java-17-openjdk-*/bin/java 2>/dev/null | head -n 1)
		java=${java:-java}
		cli=("$java" -jar "$jar" --server "http://$hostport" --user liminal)
		rows=$("${cli[@]}" --execute "SELECT count(*) FROM $TRINO_TABLE" | tr -d '"')
		log "$TRINO_TABLE: $rows rows"
		CONTENDERS[trino-cli-csv]="bash -c '${cli[*]} --catalog $catalog --schema $schema --execute \"SELECT * FROM $table\" --output-format CSV > $OUT/out-cli.csv'"
		CHECKS[trino-cli-csv]="check trino-cli-csv $rows csv $OUT/out-cli.csv"
		ORDER+=(trino-cli-csv)
		for v in $VARIANTS; do
			fmt=${v%%:*} n=${v##*:} name=liminal-$fmt-$n
			uri="$LIMINAL_TRINO_URL/$catalog/$schema?table=$table" workers=2
			if ((n > 1)); then uri+="&partition_column=$TRINO_KEY&partitions=$n" workers=$n; fi
			sink="$OUT/out-$name/"
			[[ $fmt == csv ]] && sink="$OUT/out-$name.csv"
			CONTENDERS[$name]="$LIMINAL sql 'SELECT * FROM t' --source 't=$uri' --sink $sink --format $fmt --mode overwrite --workers $workers --log-level warn"
			CHECKS[$name]="check $name $rows $fmt $sink 1" # CSV: one header line
			ORDER+=("$name")
		done
		bench trino "$rows"
		;;
	*) die "unknown target $target (want postgres or trino)" ;;
	esac
	for name in "${ORDER[@]}"; do log "$name: ${CONTENDERS[$name]}"; done
	unset CONTENDERS CHECKS
done

# The table: medians per contender; ratio = median wall / the baseline's
# (psql or the Trino CLI), below 1 is faster.
echo
echo "Extraction, $RUNS runs each after a warm-up, medians; $(nproc) cores shared by client and server"
awk -F'\t' 'NR > 1 { k = $1 "\t" $2; if (!(k in seen)) { seen[k] = 1; order[++m] = k } }
	NR > 1 && $3 != "warmup" { n[k]++; w[k, n[k]] = $5; r[k, n[k]] = $6; c[k, n[k]] = $7; s[k, n[k]] = $8; rows[k] = $4; l[++nl] = $9 }
	function med(a, k, cnt,   i, j, t, v) { for (i = 1; i <= cnt; i++) v[i] = a[k, i]
		for (i = 1; i <= cnt; i++) for (j = i + 1; j <= cnt; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
		return (cnt % 2) ? v[(cnt + 1) / 2] : (v[cnt / 2] + v[cnt / 2 + 1]) / 2 }
	END {
		printf "%-9s %-20s %10s %8s %12s %9s %10s %10s %9s\n", "target", "contender", "rows", "wall_s", "rows/s", "ratio", "client_cpu", "server_cpu", "rss_MiB"
		for (i = 1; i <= m; i++) { k = order[i]; split(k, p, "\t")
			wm = med(w, k, n[k]); if (p[2] ~ /^(psql|trino-cli)/) base[p[1]] = wm }
		for (i = 1; i <= m; i++) { k = order[i]; split(k, p, "\t"); wm = med(w, k, n[k])
			printf "%-9s %-20s %10d %8.2f %12.0f %8.2fx %10.2f %10.2f %9.0f\n", p[1], p[2], rows[k], wm, rows[k] / wm,
				wm / base[p[1]], med(c, k, n[k]), med(s, k, n[k]), med(r, k, n[k]) / 1024 }
		for (i = 1; i <= nl; i++) for (j = i + 1; j <= nl; j++) if (l[j] < l[i]) { t = l[i]; l[i] = l[j]; l[j] = t }
		printf "(ratio: median wall / the baseline'"'"'s, below 1 is faster; cpu: user+sys seconds; median load1 %s)\n", l[int((nl + 1) / 2)] }' "$OUT/runs.tsv"
echo "raw runs: $OUT/runs.tsv"
