#!/usr/bin/env python3
"""Regenerate the LightGBM fixtures used by infer/lightgbm_test.go.

Run from anywhere: python3 infer/testdata/lightgbm/make_fixtures.py
It creates a venv at ~/.cache/liminal/venv-lgbm (pip install lightgbm numpy)
when missing and re-executes itself inside it.

Per fixture NAME it writes:
  NAME.model.txt     booster.save_model (LightGBM text format)
  NAME.input.csv     float32 feature rows, "nan" for missing
  NAME.expected.csv  predict(x) then predict(x, raw_score=True), repr()
and VERSION with the lightgbm version. linear.model.txt is a linear-tree
model (expected to be rejected as unsupported).

The benchmark comparison mode times LightGBM on the model and rows of the Go
benchmark (LIMINAL_LGB_BENCH_DIR=DIR go test ./infer/ -run TestLGBWriteBenchModel):
  make_fixtures.py bench DIR 50
"""
import os
import subprocess
import sys

VENV = os.path.expanduser("~/.cache/liminal/venv-lgbm")
HERE = os.path.dirname(os.path.abspath(__file__))


def ensure_venv():
    py = os.path.join(VENV, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    if not os.path.exists(py):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
        subprocess.check_call([py, "-m", "pip", "install", "-q", "lightgbm", "numpy"])
    os.execv(py, [py, os.path.abspath(__file__)] + sys.argv[1:])


ensure_venv()

import lightgbm as lgb  # noqa: E402
import numpy as np  # noqa: E402

RNG = np.random.default_rng(20261122)


def f32(a):
    return np.asarray(a, dtype=np.float32)


def make_x(n, nf, ints=(), nan_frac=0.0, zero_frac=0.0):
    x = RNG.normal(size=(n, nf))
    for j in ints:
        x[:, j] = RNG.integers(0, 10, size=n)
    if zero_frac:
        x[RNG.random(size=x.shape) < zero_frac] = 0.0
    if nan_frac:
        x[RNG.random(size=x.shape) < nan_frac] = np.nan
    return f32(x)


def thresholds(booster):
    """(feature, threshold) of every numerical split of the model."""
    out = []

    def walk(node):
        if "split_feature" not in node:
            return
        if node.get("decision_type") == "<=":
            out.append((node["split_feature"], float(node["threshold"])))
        walk(node["left_child"])
        walk(node["right_child"])

    for t in booster.dump_model()["tree_info"]:
        walk(t["tree_structure"])
    return out


def probe_rows(booster, base, nf, limit=40):
    """Rows with values at, just below and just above split thresholds, and
    special values (NaN, 0, -0, tiny, inf) in every feature."""
    rows = []
    seen = set()
    for j, t in thresholds(booster):
        if (j, t) in seen or abs(t) > 3e38:  # 1e300: "NaN vs the rest" splits
            continue
        seen.add((j, t))
        if len(seen) > limit:
            break
        t32 = np.float32(t)
        for v in (t32, np.nextafter(t32, np.float32(-np.inf)), np.nextafter(t32, np.float32(np.inf))):
            r = base[len(rows) % len(base)].copy()
            r[j] = v
            rows.append(r)
    specials = [np.nan, 0.0, -0.0, 1e-36, -1e-36, 1e-35, -1e-35, 1e-30, np.inf, -np.inf]
    for j in range(nf):
        for v in specials:
            r = base[len(rows) % len(base)].copy()
            r[j] = v
            rows.append(r)
    return f32(rows)


def fmt32(v):
    v = np.float32(v)
    if np.isnan(v):
        return "nan"
    return str(v)


def write_fixture(name, booster, x):
    booster.save_model(os.path.join(HERE, name + ".model.txt"))
    with open(os.path.join(HERE, name + ".input.csv"), "w") as f:
        f.write(",".join(booster.feature_name()) + "\n")
        for r in x:
            f.write(",".join(fmt32(v) for v in r) + "\n")
    xd = x.astype(np.float64)
    p = np.asarray(booster.predict(xd)).reshape(len(x), -1)
    m = np.asarray(booster.predict(xd, raw_score=True)).reshape(len(x), -1)
    k = p.shape[1]
    with open(os.path.join(HERE, name + ".expected.csv"), "w") as f:
        f.write(",".join([f"pred{i}" for i in range(k)] + [f"raw{i}" for i in range(k)]) + "\n")
        for pr, mr in zip(p, m):
            f.write(",".join(repr(float(v)) for v in list(pr) + list(mr)) + "\n")


def train(params, x, y, rounds, **kw):
    base = {"verbose": -1, "num_leaves": 8, "min_data_in_leaf": 5, "learning_rate": 0.3,
            "num_threads": 1, "deterministic": True, "seed": 7}
    base.update(params)
    ds = lgb.Dataset(x.astype(np.float64), label=y, free_raw_data=False, **kw)
    return lgb.train(base, ds, num_boost_round=rounds)


def fixtures():
    n, nf = 300, 6
    # regression, no NaN in training: missing type None.
    x = make_x(n, nf, ints=(1,))
    y = x[:, 0] * 2 + np.sin(x[:, 2]) + x[:, 1] * 0.3 + RNG.normal(scale=0.1, size=n)
    b = train({"objective": "regression", "num_leaves": 15}, x, y, 20)
    write_fixture("regression", b, np.vstack([x[:60], probe_rows(b, x, nf)]))

    # binary with a non-default sigmoid; training data with NaN (missing type NaN).
    x = make_x(n, nf, ints=(3,), nan_frac=0.1)
    y = (np.nan_to_num(x[:, 0]) + np.isnan(x[:, 1]) * 1.5 + np.nan_to_num(x[:, 3]) * 0.2 > 1).astype(float)
    b = train({"objective": "binary", "sigmoid": 0.7}, x, y, 20)
    write_fixture("binary_nan", b, np.vstack([x[:60], probe_rows(b, x, nf)]))

    # multiclass softmax, 3 classes.
    x = make_x(n, 4)
    y = np.digitize(x[:, 0] + 0.5 * x[:, 1], [-0.5, 0.5]).astype(float)
    b = train({"objective": "multiclass", "num_class": 3, "num_leaves": 6}, x, y, 8)
    write_fixture("multiclass", b, np.vstack([x[:40], probe_rows(b, x, 4, limit=20)]))

    # multiclass one-vs-all.
    b = train({"objective": "multiclassova", "num_class": 3, "num_leaves": 6}, x, y, 6)
    write_fixture("multiclassova", b, np.vstack([x[:40], probe_rows(b, x, 4, limit=15)]))

    # zero_as_missing: missing type Zero.
    x = make_x(n, 5, zero_frac=0.15)
    y = np.where(x[:, 0] == 0, 3.0, x[:, 0]) + x[:, 1]
    b = train({"objective": "regression", "zero_as_missing": True}, x, y, 15)
    write_fixture("zero_missing", b, np.vstack([x[:60], probe_rows(b, x, 5)]))

    # use_missing=false: NaN in training but missing type None everywhere.
    x = make_x(n, 5, nan_frac=0.1)
    y = np.nan_to_num(x[:, 0], nan=2.0) + np.nan_to_num(x[:, 1])
    b = train({"objective": "regression", "use_missing": False}, x, y, 15)
    write_fixture("no_missing", b, np.vstack([x[:60], probe_rows(b, x, 5)]))

    # categorical feature 2 (categories 0..11), plus NaNs.
    x = make_x(n, 5, nan_frac=0.05)
    x[:, 2] = RNG.integers(0, 12, size=n)
    effect = np.array([3, -1, 0, 2, -2, 1, 4, -3, 0.5, -0.5, 2.5, -1.5])
    y = effect[x[:, 2].astype(int)] + np.nan_to_num(x[:, 0])
    b = train({"objective": "regression", "min_data_per_group": 5, "cat_smooth": 1,
               "max_cat_to_onehot": 2}, x, y, 15, categorical_feature=[2])
    probes = probe_rows(b, x, 5, limit=20)
    extra = []
    for v in [-1, -0.5, -1e-36, 0, 0.5, 1, 1.9, 2.5, 3, 5.99, 6, 11, 11.5, 12, 31, 32, 33, 63, 64, 100,
              1e9, 3e9, 1e20, np.inf, -np.inf, np.nan]:
        r = x[len(extra) % n].copy()
        r[2] = v
        extra.append(r)
    write_fixture("categorical", b, np.vstack([x[:60], probes, f32(extra)]))

    # linear trees: must be rejected as unsupported.
    x = make_x(100, 3)
    y = x[:, 0] * 2 + x[:, 1]
    b = train({"objective": "regression", "linear_tree": True, "num_leaves": 3}, x, y, 2)
    b.save_model(os.path.join(HERE, "linear.model.txt"))

    with open(os.path.join(HERE, "VERSION"), "w") as f:
        f.write(f"lightgbm {lgb.__version__}\nnumpy {np.__version__}\n")


def bench(d, nf):
    """Time LightGBM predict(num_threads=1) on the Go benchmark's model and
    rows (written by TestLGBWriteBenchModel into directory d) and compare
    LightGBM's raw scores with ours."""
    import time
    b = lgb.Booster(model_file=os.path.join(d, "model.txt"))
    x = np.fromfile(os.path.join(d, "x.f32"), dtype="<f4").reshape(-1, nf).astype(np.float64)
    ours = np.fromfile(os.path.join(d, "margin.f64"), dtype="<f8")
    rows = x.shape[0]
    best = None
    for _ in range(3):
        t0 = time.perf_counter()
        raw = b.predict(x, raw_score=True, num_threads=1)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    diff = np.max(np.abs(raw - ours) / np.maximum(1, np.abs(raw)))
    print(f"lightgbm {lgb.__version__}: {rows} rows in {best:.3f}s = {rows / best:.0f} rows/s "
          f"(predict raw_score, num_threads=1, best of 3); max rel diff vs Go {diff:.3g}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "bench":
        bench(sys.argv[2], int(sys.argv[3]))
    else:
        fixtures()
