#!/usr/bin/env bash
# onnxruntime.sh: make libonnxruntime (the ONNX Runtime C library the
# infer/onnx package loads) available without the whole Python venv, and
# print its path. It downloads the onnxruntime wheel from PyPI once
# (pip download --no-deps, into the liminal pip cache), extracts
# onnxruntime/capi/libonnxruntime.so* into $LIMINAL_CACHE/onnxruntime/ and
# reuses it afterwards. Use it as:
#   export LIMINAL_ONNXRUNTIME_LIB=$(scripts/onnxruntime.sh)
set -euo pipefail
version="${ONNXRUNTIME_VERSION:-1.31.1}"
cache="${LIMINAL_CACHE:-$HOME/.cache/liminal}"
dest="$cache/onnxruntime"
lib="$dest/libonnxruntime.so.$version"
if [[ -f "$lib" ]]; then
  echo "$lib"
  exit 0
fi
py="$(command -v python3 || command -v python)"
dl="$cache/pip/onnxruntime-wheels"
mkdir -p "$dl" "$dest"
wheel="$(ls "$dl"/onnxruntime-"$version"-*.whl 2>/dev/null | head -n1 || true)"
if [[ -z "$wheel" ]]; then
  echo "onnxruntime.sh: downloading onnxruntime==$version from PyPI" >&2
  "$py" -m pip download --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: --dest "$dl" "onnxruntime==$version" >&2
  wheel="$(ls "$dl"/onnxruntime-"$version"-*.whl | head -n1)"
fi
# Extract with Python's zipfile (unzip may be missing); write atomically.
"$py" - "$wheel" "$dest" "$version" <<'PY'
import os, sys, zipfile
wheel, dest, version = sys.argv[1:]
name = "onnxruntime/capi/libonnxruntime.so." + version
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.startswith("onnxruntime/capi/libonnxruntime.so")]
    if name not in names:
        sys.exit("onnxruntime.sh: %s not in %s (has %s)" % (name, wheel, names))
    tmp = os.path.join(dest, ".libonnxruntime.tmp.%d" % os.getpid())
    with z.open(name) as src, open(tmp, "wb") as out:
        while True:
            b = src.read(1 << 20)
            if not b:
                break
            out.write(b)
    os.chmod(tmp, 0o755)
    os.replace(tmp, os.path.join(dest, os.path.basename(name)))
PY
echo "$lib"
