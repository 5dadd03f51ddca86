#!/usr/bin/env bash
# airflow.sh: create (once) a Python environment with Apache Airflow and the
# cncf-kubernetes provider, used to check the DAGs `liminal export airflow`
# writes (cmd/liminal/export_test.go), and print its python path.
#
# Airflow's constraints files live on GitHub (not always reachable), so the
# versions that matter are pinned here instead, at the values of Airflow
# 2.10.5's constraints for Python 3.11; pip resolves the rest from PyPI.
# The venv lives in ~/.cache/liminal/venv-airflow and is rebuilt when this
# script's pins change; pip's cache is shared with scripts/pyenv.sh.
set -euo pipefail
cache="${LIMINAL_CACHE:-$HOME/.cache/liminal}"
venv="$cache/venv-airflow"
python="${LIMINAL_AIRFLOW_PYTHON_BASE:-python3}"
read -r -d '' reqs <<'EOF' || true
apache-airflow==2.10.5
apache-airflow-providers-cncf-kubernetes==10.1.0
flask==2.2.5
werkzeug==2.2.3
flask-session==0.5.0
flask-appbuilder==4.5.2
connexion==2.14.2
sqlalchemy==1.4.54
marshmallow==3.23.1
marshmallow-sqlalchemy==0.28.2
pendulum==3.0.0
pydantic==2.10.4
kubernetes==30.1.0
EOF
stamp="$venv/.requirements.sha256"
want="$(printf '%s\n' "$reqs" | sha256sum | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "airflow.sh: installing Apache Airflow into $venv" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv"
  printf '%s\n' "$reqs" > "$venv/requirements.txt"
  PIP_CACHE_DIR="$cache/pip" "$venv/bin/pip" install --quiet --disable-pip-version-check \
    -r "$venv/requirements.txt" >&2
  echo "$want" > "$stamp"
fi
echo "$venv/bin/python"
