#!/usr/bin/env bash
# test-integration.sh: the connectors' integration tests against real
# servers (`make test-integration`; `make test` runs it after the unit
# tests, which skip them).
#
#   scripts/test-integration.sh [PKG_DIR...]   default: every package with
#                                              TestXxxIntegration tests
#
# For one package at a time it installs and starts the servers the
# package needs with scripts/<server>.sh start (Debian packages, PyPI,
# Maven Central; downloads cached under ~/.cache/liminal), runs the
# package's TestXxxIntegration tests with the servers' settings in the
# environment (LIMINAL_PG_URL, LIMINAL_TRINO_URL, ...), and stops the
# servers with scripts/<server>.sh stop, also when the tests fail, time out
# or are interrupted. A server that cannot be installed or started fails
# the run, naming it and showing the script's output; nothing is skipped,
# and LIMINAL_SKIP_INTEGRATION=1 is refused.
#
# Environment: GO (default go), TIMEOUT (per package, default 30m),
# TESTFLAGS (more go test flags, e.g. -v).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
GO=${GO:-go}
TIMEOUT=${TIMEOUT:-30m}

# The servers each package's integration tests need, started in this order.
declare -A SERVERS=(
  [connectors/postgres]="postgres"
  [connectors/hive]="hive"
  [connectors/trino]="trino presto"
)

say() { printf 'test-integration: %s\n' "$*" >&2; }
fail() { say "$*"; exit 1; }

if [[ "${LIMINAL_SKIP_INTEGRATION:-}" == 1 ]]; then
  fail "LIMINAL_SKIP_INTEGRATION=1 is set: the integration tests would all skip. Unset it (make test-unit runs the rest alone)."
fi

# The packages that declare TestXxxIntegration functions: exactly the
# tests that `make test-unit` skips with -skip 'Integration$'.
discover() {
  grep -rlE --include='*_test.go' '^func Test[A-Za-z0-9_]*Integration\(' . |
    xargs -r -n1 dirname | sed 's|^\./||' | sort -u
}

pkgs=("$@")
if ((${#pkgs[@]} == 0)); then
  mapfile -t pkgs < <(discover)
  for p in "${!SERVERS[@]}"; do
    [[ " ${pkgs[*]} " == *" $p "* ]] ||
      fail "SERVERS in scripts/test-integration.sh lists $p, which has no TestXxxIntegration tests: update the list"
  done
fi
((${#pkgs[@]} > 0)) || fail "no package has TestXxxIntegration tests"
for p in "${pkgs[@]}"; do
  p=${p#./}
  [[ -v "SERVERS[$p]" ]] ||
    fail "$p has TestXxxIntegration tests but no entry in SERVERS (scripts/test-integration.sh): say which servers it needs"
done

# stops holds the stop commands of the servers running now, exported the
# settings they printed.
stops=() exported=()
stop_all() {
  local i
  for ((i = ${#stops[@]} - 1; i >= 0; i--)); do
    # shellcheck disable=SC2086
    bash scripts/${stops[i]} >/dev/null 2>&1 || say "could not stop: scripts/${stops[i]}"
  done
  for i in "${exported[@]}"; do unset "$i"; done
  stops=() exported=()
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# start NAME: scripts/NAME.sh start; exports the KEY=VALUE lines it prints
# and remembers how to stop it (its *_DIR or *_DATA value).
start() {
  local name=$1 out err rc=0 t0 line key val arg=""
  out=$(mktemp) err=$(mktemp)
  t0=$SECONDS
  say "installing (if needed) and starting $name: scripts/$name.sh start"
  bash "scripts/$name.sh" start >"$out" 2>"$err" || rc=$?
  if ((rc != 0)) || ! grep -q '^LIMINAL_[A-Z_]*=' "$out"; then
    {
      echo "----- scripts/$name.sh start (exit $rc), last 60 lines of its output -----"
      tail -n 60 "$err"
      cat "$out"
      echo "-----"
    } >&2
    rm -f "$out" "$err"
    fail "FAILED: $name could not be installed or started (exit $rc, output above); the integration tests need it and are not skipped"
  fi
  while IFS= read -r line; do
    [[ $line =~ ^(LIMINAL_[A-Z_]+)=(.*)$ ]] || continue
    key=${BASH_REMATCH[1]} val=${BASH_REMATCH[2]}
    export "$key=$val"
    exported+=("$key")
    case $key in *_DIR | *_DATA) arg=$val ;; esac
  done <"$out"
  rm -f "$out" "$err"
  [[ -n $arg ]] || fail "scripts/$name.sh start printed no *_DIR or *_DATA line: cannot stop it"
  stops+=("$name.sh stop $arg")
  say "$name up in $((SECONDS - t0)) s"
}

status=0
for p in "${pkgs[@]}"; do
  p=${p#./}
  for s in ${SERVERS[$p]}; do start "$s"; done
  say "go test ./$p -run 'Integration\$'"
  # shellcheck disable=SC2086
  if ! "$GO" test -count=1 -timeout "$TIMEOUT" -run 'Integration$' ${TESTFLAGS:-} "./$p"; then
    status=1
  fi
  stop_all
done
exit $status
