#!/usr/bin/env bash
# spark.sh: make spark-submit available for spark tasks and their tests:
# Java 17 from Debian when there is no Java, and pyspark from PyPI in the venv
# scripts/hive.sh manages (~/.cache/liminal/venv-spark). Prints:
#   LIMINAL_SPARK_SUBMIT=<venv>/bin/spark-submit
#   LIMINAL_SPARK_PYTHON=<venv>/bin/python   (PYSPARK_PYTHON for Python apps)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
if ! command -v java >/dev/null 2>&1 || ! java -version 2>&1 | grep -qE 'version "(1[7-9]|2[0-9])'; then
  if [[ ! -x /usr/lib/jvm/java-17-openjdk-amd64/bin/java ]]; then
    echo "spark.sh: installing Java 17 from Debian packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get install -y --no-install-recommends openjdk-17-jre-headless >&2 ||
      { as_root apt-get update >&2 && as_root apt-get install -y --no-install-recommends openjdk-17-jre-headless >&2; }
  fi
fi
py="$("$here/hive.sh" python)"
echo "LIMINAL_SPARK_SUBMIT=$(dirname "$py")/spark-submit"
echo "LIMINAL_SPARK_PYTHON=$py"
