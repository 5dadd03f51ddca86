#!/usr/bin/env bash
# pyenv.sh: create (once) the Python environment the tests and fixture
# scripts use — scikit-learn, xgboost, lightgbm, onnxruntime, skl2onnx,
# pyarrow, pandas from PyPI at the versions pinned in requirements.txt —
# and print its python path. The venv lives in ~/.cache/liminal/venv and is
# rebuilt when requirements.txt changes; pip's cache is kept next to it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${LIMINAL_CACHE:-$HOME/.cache/liminal}"
venv="$cache/venv"
req="$here/requirements.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "pyenv: installing $req into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  PIP_CACHE_DIR="$cache/pip" "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
  echo "$want" > "$stamp"
fi
echo "$venv/bin/python"
