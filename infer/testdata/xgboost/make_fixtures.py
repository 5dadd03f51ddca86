#!/usr/bin/env python3
"""Regenerate the XGBoost fixtures used by infer/xgboost_test.go.

Run from anywhere:  python3 infer/testdata/xgboost/make_fixtures.py

It creates a virtualenv at ~/.cache/liminal/venv-xgb (pip install xgboost
numpy from PyPI) when missing and re-executes itself inside it. For every
objective it trains a small model (<= 20 trees, depth <= 4, <= 8 features,
training data with NaNs) and writes, next to this script:

  NAME.model.json     booster.save_model(...)
  NAME.input.csv      rows to score (header f0..fN-1, shortest float32
                      decimals, "nan" for missing);
                      random rows with NaNs plus rows placed exactly at the
                      model's split thresholds and one float32 ulp either side
  NAME.expected.csv   XGBoost's predict(DMatrix(x, missing=nan)) as p0..pK
                      and predict(..., output_margin=True) as m0..mK, full
                      precision (repr)
  VERSION             the xgboost version used

With --bench MODEL.json ROWS.f32 NF it instead times inplace_predict with
nthread=1 on a raw little-endian float32 row-major matrix and writes its
predictions next to ROWS.f32 as xgb_bench.pred.f32 (used to compare with
BenchmarkXGB):

  go test ./infer/ -run '^$' -bench 'XGB$' -benchtime 1x -xgb.dump /tmp/xgbbench
  python3 infer/testdata/xgboost/make_fixtures.py --bench \
      /tmp/xgbbench/xgb_bench.model.json /tmp/xgbbench/xgb_bench.rows.f32 50
  go test ./infer/ -run '^$' -bench 'XGB$' -cpu 1 -v -xgb.dump /tmp/xgbbench
"""
import os
import subprocess
import sys

VENV = os.path.expanduser("~/.cache/liminal/venv-xgb")
HERE = os.path.dirname(os.path.abspath(__file__))


def ensure_venv():
    py = os.path.join(VENV, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    if not os.path.exists(py):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
        subprocess.check_call([py, "-m", "pip", "install", "-q", "xgboost", "numpy"])
    os.execv(py, [py] + sys.argv)


def threshold_rows(bst, nf, rng, limit):
    """Rows with one feature exactly at a split threshold, and at the
    float32 neighbours below and above it."""
    import json
    import numpy as np

    model = json.loads(bst.save_raw("json"))
    splits = set()
    for tree in model["learner"]["gradient_booster"]["model"]["trees"]:
        for i, left in enumerate(tree["left_children"]):
            if left != -1:
                splits.add((tree["split_indices"][i], np.float32(tree["split_conditions"][i])))
    splits = sorted(splits)
    if len(splits) > limit:
        idx = rng.choice(len(splits), size=limit, replace=False)
        splits = [splits[i] for i in sorted(idx)]
    rows = []
    for feat, thr in splits:
        for v in (thr, np.nextafter(thr, np.float32(-np.inf)), np.nextafter(thr, np.float32(np.inf))):
            row = rng.normal(size=nf).astype(np.float32)
            row[feat] = v
            rows.append(row)
    return np.array(rows, dtype=np.float32).reshape(-1, nf)


def write_csv(path, header, rows, fmt=lambda v: repr(float(v))):
    with open(path, "w") as f:
        f.write(",".join(header) + "\n")
        for r in rows:
            f.write(",".join("nan" if v != v else fmt(v) for v in r) + "\n")


def f32(v):
    """Shortest decimal that parses back (as float32) to the same float32."""
    import numpy as np
    return str(np.float32(v))


def make(name, params, rounds, nf, label_fn, rng, feature_names=None, nan_frac=0.15):
    import numpy as np
    import xgboost as xgb

    n_train = 200
    X = rng.normal(size=(n_train, nf)).astype(np.float32)
    y = label_fn(X, rng)
    X[rng.random(size=X.shape) < nan_frac] = np.nan
    dtrain = xgb.DMatrix(X, label=y, missing=np.nan, feature_names=feature_names)
    params = dict(params, max_depth=min(params.get("max_depth", 4), 4), seed=7, nthread=1)
    bst = xgb.train(params, dtrain, num_boost_round=rounds)
    assert bst.num_boosted_rounds() == rounds

    Xr = rng.normal(size=(100, nf)).astype(np.float32)
    Xr[rng.random(size=Xr.shape) < 0.2] = np.nan
    Xr[0, :] = np.nan  # all missing
    Xt = threshold_rows(bst, nf, rng, limit=60)
    Xin = np.vstack([Xr, Xt]).astype(np.float32)
    assert Xin.shape[0] <= 300

    d = xgb.DMatrix(Xin, missing=np.nan, feature_names=feature_names)
    pred = bst.predict(d).reshape(Xin.shape[0], -1)
    margin = bst.predict(d, output_margin=True).reshape(Xin.shape[0], -1)

    bst.save_model(os.path.join(HERE, name + ".model.json"))
    write_csv(os.path.join(HERE, name + ".input.csv"), ["f%d" % i for i in range(nf)], Xin, f32)
    header = ["p%d" % i for i in range(pred.shape[1])] + ["m%d" % i for i in range(margin.shape[1])]
    write_csv(os.path.join(HERE, name + ".expected.csv"), header, np.hstack([pred, margin]))
    print(name, "rows", Xin.shape[0], "trees", len(bst.get_dump()))


def main():
    import numpy as np
    import xgboost as xgb

    rng = np.random.default_rng(20261122)
    base = dict(eta=0.3, max_depth=4)

    def reg(X, rng):
        return (2 * X[:, 0] - X[:, 1] * X[:, 2] + 0.5 * rng.normal(size=len(X)) + 3).astype(np.float32)

    def binary(X, rng):
        return ((X[:, 0] + X[:, 1] ** 2 - 1 + 0.3 * rng.normal(size=len(X))) > 0).astype(np.float32)

    def prob(X, rng):
        return (1 / (1 + np.exp(-(X[:, 0] - X[:, 3])))).astype(np.float32)

    def multi(X, rng):
        s = X[:, 0] + 0.5 * X[:, 1]
        return np.digitize(s, [-0.5, 0.5]).astype(np.float32)

    def counts(X, rng):
        return rng.poisson(np.exp(0.5 * X[:, 0] + 0.3 * X[:, 1])).astype(np.float32)

    make("reg_squarederror", dict(base, objective="reg:squarederror"), 20, 6, reg, rng)
    make("reg_named", dict(base, objective="reg:squarederror", base_score=1.25), 10, 5, reg, rng,
         feature_names=["age", "income", "score", "tenure", "region_id"])
    make("reg_logistic", dict(base, objective="reg:logistic"), 15, 6, prob, rng)
    make("binary_logistic", dict(base, objective="binary:logistic"), 20, 8, binary, rng)
    make("binary_logitraw", dict(base, objective="binary:logitraw"), 15, 6, binary, rng)
    make("multi_softprob", dict(base, objective="multi:softprob", num_class=3), 6, 6, multi, rng)
    make("multi_softmax", dict(base, objective="multi:softmax", num_class=3), 6, 6, multi, rng)
    make("count_poisson", dict(base, objective="count:poisson"), 20, 6, counts, rng)
    make("stumps", dict(base, objective="reg:squarederror", max_depth=1), 5, 3, reg, rng, nan_frac=0.4)

    with open(os.path.join(HERE, "VERSION"), "w") as f:
        f.write("xgboost %s numpy %s\n" % (xgb.__version__, np.__version__))


def bench(model_path, rows_path, nf):
    import time
    import numpy as np
    import xgboost as xgb

    X = np.fromfile(rows_path, dtype="<f4").reshape(-1, int(nf))
    bst = xgb.Booster(model_file=model_path)
    bst.set_param({"nthread": 1})
    bst.inplace_predict(X[:1000])
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        bst.inplace_predict(X, missing=np.nan)
        best = min(best, time.perf_counter() - t)
    pred = bst.inplace_predict(X, missing=np.nan).astype("<f4")
    pred.tofile(os.path.join(os.path.dirname(os.path.abspath(rows_path)), "xgb_bench.pred.f32"))
    print("xgboost %s inplace_predict nthread=1: %d rows in %.4fs = %.0f rows/s"
          % (xgb.__version__, X.shape[0], best, X.shape[0] / best))


if __name__ == "__main__":
    ensure_venv()
    if len(sys.argv) > 1 and sys.argv[1] == "--bench":
        bench(*sys.argv[2:5])
    else:
        main()
