#!/usr/bin/env python3
"""Side-by-side: BenchmarkONNX (Go, infer/onnx) against onnxruntime's Python
InferenceSession on the same model, data and batch size, one thread.

Run from anywhere:  python3 infer/onnx/testdata/bench.py [--runs 3]

It re-executes itself under the project's Python environment
(scripts/pyenv.sh). Each run: `go test -bench '^BenchmarkONNX$'` (which also
writes the model and rows with -onnx.dump), then the Python session over the
same 1M rows in batches of 65536 (intra_op_num_threads=1,
inter_op_num_threads=1, sequential). The Python side gets the rows as a
ready row-major float32 NumPy matrix; the Go side goes from Arrow columns to
Arrow columns (transposition and output columns included). It prints both
throughputs per run, their medians and bests and the ratios python/go
(1.0 = same speed; the target is <= 1.1). Set LIMINAL_ONNXRUNTIME_LIB to the same
library as the wheel's (the default search finds it) for a fair comparison.
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
BATCH = 1 << 16
NF = 50


def ensure_env():
    try:
        import numpy  # noqa: F401
        import onnxruntime  # noqa: F401
        return
    except ImportError:
        pass
    if os.environ.get("LIMINAL_PYENV_REEXEC"):
        sys.exit("bench.py: the Python environment lacks onnxruntime")
    py = subprocess.check_output(["bash", os.path.join(ROOT, "scripts", "pyenv.sh")], text=True).strip()
    os.environ["LIMINAL_PYENV_REEXEC"] = "1"
    os.execv(py, [py] + sys.argv)


def go_bench(dump, benchtime):
    env = dict(os.environ)
    cache = os.path.expanduser("~/.cache/liminal")
    env.setdefault("GOCACHE", os.path.join(cache, "go-build"))
    env.setdefault("GOMODCACHE", os.path.join(cache, "go-mod"))
    out = subprocess.check_output(
        ["go", "test", "./infer/onnx/", "-run", "^$", "-bench", "^BenchmarkONNX$", "-benchtime", benchtime,
         "-count", "1", "-onnx.dump", dump], cwd=ROOT, env=env, text=True)
    m = re.search(r"BenchmarkONNX\S*\s+\d+\s+(\d+) ns/op\s+([\d.e+]+) rows/s", out)
    if not m:
        sys.exit("bench.py: cannot parse go test output:\n" + out)
    return float(m.group(2))


def py_bench(dump, passes):
    import numpy as np
    import onnxruntime as ort
    x = np.fromfile(os.path.join(dump, "bench_rows.f32"), dtype="<f4").reshape(-1, NF)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(os.path.join(dump, "bench_mlp.onnx"), so, providers=["CPUExecutionProvider"])
    batches = [x[i:i + BATCH] for i in range(0, len(x), BATCH)]
    sess.run(None, {"input": batches[0]})  # warm up
    t0 = time.perf_counter()
    for _ in range(passes):
        for b in batches:
            sess.run(None, {"input": b})
    return passes * len(x) / (time.perf_counter() - t0)


def main():
    ensure_env()
    import argparse
    import onnxruntime
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--benchtime", default="2x", help="go test -benchtime (passes over the 1M rows)")
    args = ap.parse_args()
    passes = int(args.benchtime.rstrip("x")) if args.benchtime.endswith("x") else 2
    dump = tempfile.mkdtemp(prefix="liminal-onnx-bench-")
    gos, pys = [], []
    for r in range(args.runs):
        g = go_bench(dump, args.benchtime)
        p = py_bench(dump, passes)
        gos.append(g)
        pys.append(p)
        print("run %d: go %.0f rows/s, python onnxruntime %s %.0f rows/s, python/go %.3f" % (
            r + 1, g, onnxruntime.__version__, p, p / g), flush=True)
    gm, pm = statistics.median(gos), statistics.median(pys)
    ratios = [p / g for p, g in zip(pys, gos)]
    print("median: go %.0f rows/s, python %.0f rows/s, python/go %.3f (target <= 1.1)" % (gm, pm, pm / gm))
    print("median of per-run ratios python/go: %.3f" % statistics.median(ratios))
    print("best: go %.0f rows/s, python %.0f rows/s, python/go %.3f (load on a shared machine only slows runs down)" % (
        max(gos), max(pys), max(pys) / max(gos)))


if __name__ == "__main__":
    main()
