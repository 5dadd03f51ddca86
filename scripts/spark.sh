#!/usr/bin/env bash
# spark.sh: make spark-submit available for spark tasks and their tests:
# Java 17 from Debian when there is no Java, and pyspark from PyPI in
# ~/.cache/liminal/venv-spark (the venv scripts/hive.sh uses too: same pin).
# Prints:
#   LIMINAL_SPARK_SUBMIT=<venv>/bin/spark-submit
#   LIMINAL_SPARK_PYTHON=<venv>/bin/python   (PYSPARK_PYTHON for Python apps)
set -euo pipefail
PYSPARK_VERSION=4.0.1
cache="${LIMINAL_CACHE:-$HOME/.cache/liminal}"
venv="$cache/venv-spark"
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
if ! command -v java >/dev/null 2>&1 || ! java -version 2>&1 | grep -qE 'version "(1[7-9]|2[0-9])'; then
  if [[ ! -x /usr/lib/jvm/java-17-openjdk-amd64/bin/java ]]; then
    echo "spark.sh: installing Java 17 from Debian packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get install -y --no-install-recommends openjdk-17-jre-headless >&2 ||
      { as_root apt-get update >&2 && as_root apt-get install -y --no-install-recommends openjdk-17-jre-headless >&2; }
  fi
fi
if ! [[ -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c "import pyspark, sys; sys.exit(pyspark.__version__ != '$PYSPARK_VERSION')" 2>/dev/null; then
  echo "spark.sh: creating $venv with pyspark==$PYSPARK_VERSION" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check --cache-dir "$cache/pip" "pyspark==$PYSPARK_VERSION" pyarrow pandas >&2
fi
echo "LIMINAL_SPARK_SUBMIT=$venv/bin/spark-submit"
echo "LIMINAL_SPARK_PYTHON=$venv/bin/python"
