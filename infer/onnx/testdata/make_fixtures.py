#!/usr/bin/env python3
"""Regenerate the ONNX fixtures used by infer/onnx/onnx_test.go.

Run from anywhere:  python3 infer/onnx/testdata/make_fixtures.py

It re-executes itself under the project's Python environment
(scripts/pyenv.sh: scikit-learn, skl2onnx, onnx, onnxruntime from PyPI).
For each model it writes, next to this script:

  NAME.onnx           the model (skl2onnx, or onnx.helper for the MLP)
  NAME.input.csv      rows to score; header = the model's input names as
                      liminal binds them; float values are float32-exact
                      (shortest repr), "nan" for missing
  NAME.expected.csv   "ort:COL" columns: onnxruntime's Python
                      InferenceSession outputs for all rows at once, mapped
                      to liminal's output columns (prediction,
                      probability_<k>, ...); "ort1:COL": the same one row
                      per run (onnxruntime's batch-1 kernels differ); and
                      "sk:COL" columns: scikit-learn's own predict /
                      predict_proba in float64, full precision (repr)
  VERSION             the library versions used

Models:
  logreg_multiclass   StandardScaler + LogisticRegression, 3 classes,
                      zipmap False, metadata_props feature_names
  binary_gb           SimpleImputer + GradientBoostingClassifier, binary,
                      zipmap False; inputs with NaN (skl2onnx 1.20 cannot
                      convert HistGradientBoosting with this onnx)
  regressor           SimpleImputer + StandardScaler + Ridge; inputs with
                      NaN; metadata_props feature_names
  columns             ColumnTransformer over per-column inputs (float age,
                      int64 visits, string city) + LogisticRegression,
                      zipmap False
  mlp                 a PyTorch/Keras-shaped export, emulated: an sklearn
                      MLPClassifier's weights written as Gemm/Relu/Gemm/
                      Relu/Gemm/Softmax with input "input" [batch, 8] and
                      output "output" [batch, 3] (no torch/tensorflow here)
  mlp_batch1          the same graph with a fixed batch dimension of 1
  zipmap              LogisticRegression exported with the default zipmap
                      (a seq(map) output: liminal must refuse it)
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


def ensure_env():
    try:
        import onnxruntime  # noqa: F401
        import skl2onnx  # noqa: F401
        import sklearn  # noqa: F401
        return
    except ImportError:
        pass
    if os.environ.get("LIMINAL_PYENV_REEXEC"):
        sys.exit("make_fixtures.py: the Python environment lacks skl2onnx/onnxruntime")
    py = subprocess.check_output(["bash", os.path.join(ROOT, "scripts", "pyenv.sh")], text=True).strip()
    os.environ["LIMINAL_PYENV_REEXEC"] = "1"
    os.execv(py, [py] + sys.argv)


def fmt(v):
    if isinstance(v, str):
        return v
    if v != v:
        return "nan"
    if isinstance(v, (int,)) or (hasattr(v, "dtype") and v.dtype.kind in "iu"):
        return str(int(v))
    return repr(float(v))


def write_csv(path, header, cols):
    n = len(cols[0])
    with open(path, "w") as f:
        f.write(",".join(header) + "\n")
        for i in range(n):
            f.write(",".join(fmt(c[i]) for c in cols) + "\n")


def session(path):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def set_feature_names(onx, names):
    p = onx.metadata_props.add()
    p.key = "feature_names"
    p.value = ",".join(names)


def save(name, onx):
    path = os.path.join(HERE, name + ".onnx")
    with open(path, "wb") as f:
        f.write(onx.SerializeToString())
    size = os.path.getsize(path)
    assert size < 200_000, (name, size)
    return path


def run_rows(sess, feeds):
    """onnxruntime one row at a time: its kernels for a batch of 1 differ
    (GEMV instead of GEMM), so batch-1 results are compared to these."""
    import numpy as np
    n = len(next(iter(feeds.values())))
    outs = [sess.run(None, {k: v[i:i + 1] for k, v in feeds.items()}) for i in range(n)]
    return [np.concatenate([o[j] for o in outs]) for j in range(len(outs[0]))]


def classifier_expected(name, path, feeds, sk_label, sk_proba):
    sess = session(path)
    label, proba = sess.run(None, feeds)
    label1, proba1 = run_rows(sess, feeds)
    header, cols = ["ort:prediction"], [label]
    for k in range(proba.shape[1]):
        header.append("ort:probability_%d" % k)
        cols.append(proba[:, k])
    header.append("ort1:prediction")
    cols.append(label1)
    for k in range(proba.shape[1]):
        header.append("ort1:probability_%d" % k)
        cols.append(proba1[:, k])
    header.append("sk:prediction")
    cols.append(sk_label)
    for k in range(sk_proba.shape[1]):
        header.append("sk:probability_%d" % k)
        cols.append(sk_proba[:, k])
    write_csv(os.path.join(HERE, name + ".expected.csv"), header, cols)
    agree = (label == sk_label).mean()
    print("%s: %d rows, labels agree with sklearn %.4f, max |proba diff| %.3g" % (
        name, len(label), agree, abs(proba - sk_proba).max()))


def f32(x):
    import numpy as np
    return np.asarray(x, dtype=np.float32)


def main():
    ensure_env()
    import numpy as np
    import onnx
    import onnxruntime
    import skl2onnx
    import sklearn
    from onnx import TensorProto, helper, numpy_helper
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import make_classification, make_regression
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(7)
    target_opset = 17

    # logreg_multiclass
    X, y = make_classification(n_samples=400, n_features=4, n_informative=3, n_redundant=0,
                               n_classes=3, random_state=1)
    X = f32(X)
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    m = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X[:200], y[:200])
    onx = to_onnx(m, X[:1], options={id(m): {"zipmap": False}}, target_opset=target_opset)
    set_feature_names(onx, names)
    path = save("logreg_multiclass", onx)
    xt = X[200:]
    write_csv(os.path.join(HERE, "logreg_multiclass.input.csv"), names, list(xt.T))
    classifier_expected("logreg_multiclass", path, {"X": xt}, m.predict(xt.astype(np.float64)),
                        m.predict_proba(xt.astype(np.float64)))

    # binary_gb: gradient boosting behind an imputer, NaN inputs
    X, y = make_classification(n_samples=600, n_features=6, n_informative=4, random_state=2)
    X = f32(X)
    X[rng.random(X.shape) < 0.1] = np.nan
    m = make_pipeline(SimpleImputer(), GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=0))
    m.fit(X[:400], y[:400])
    onx = to_onnx(m, X[:1], options={id(m): {"zipmap": False}}, target_opset=target_opset)
    path = save("binary_gb", onx)
    xt = X[400:]
    fnames = ["f%d" % i for i in range(X.shape[1])]
    write_csv(os.path.join(HERE, "binary_gb.input.csv"), fnames, list(xt.T))
    classifier_expected("binary_gb", path, {"X": xt}, m.predict(xt), m.predict_proba(xt))

    # regressor: imputer + scaler + ridge, NaN inputs
    X, y = make_regression(n_samples=400, n_features=5, noise=3.0, random_state=3)
    X = f32(X)
    X[rng.random(X.shape) < 0.1] = np.nan
    names = ["age", "income", "tenure", "score", "balance"]
    m = make_pipeline(SimpleImputer(), StandardScaler(), Ridge(alpha=1.0)).fit(X[:200], y[:200])
    onx = to_onnx(m, X[:1], target_opset=target_opset)
    set_feature_names(onx, names)
    path = save("regressor", onx)
    xt = X[200:]
    write_csv(os.path.join(HERE, "regressor.input.csv"), names, list(xt.T))
    sess = session(path)
    (pred,) = sess.run(None, {"X": xt})
    (pred1,) = run_rows(sess, {"X": xt})
    sk = m.predict(xt.astype(np.float64))
    write_csv(os.path.join(HERE, "regressor.expected.csv"), ["ort:prediction", "ort1:prediction", "sk:prediction"],
              [pred.reshape(-1), pred1.reshape(-1), sk])
    print("regressor: %d rows, max |diff| vs sklearn %.3g" % (len(sk), abs(pred.reshape(-1) - sk).max()))

    # columns: per-column inputs of several types
    import pandas as pd
    n = 400
    df = pd.DataFrame({
        "age": f32(rng.normal(40, 12, n)),
        "visits": rng.integers(0, 30, n).astype(np.int64),
        "city": rng.choice(["paris", "lyon", "nice", "lille"], n),
    })
    logit = 0.05 * (df.age - 40) + 0.1 * (df.visits - 15) + (df.city == "paris") * 1.0
    y = (logit + rng.normal(0, 0.5, n) > 0).astype(np.int64)
    ct = ColumnTransformer([
        ("num", StandardScaler(), ["age", "visits"]),
        ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"]),
    ])
    m = make_pipeline(ct, LogisticRegression(max_iter=500)).fit(df[:200], y[:200])
    initial = [("age", FloatTensorType([None, 1])), ("visits", Int64TensorType([None, 1])),
               ("city", StringTensorType([None, 1]))]
    onx = to_onnx(m, initial_types=initial, options={id(m): {"zipmap": False}}, target_opset=target_opset)
    path = save("columns", onx)
    dt = df[200:].reset_index(drop=True)
    write_csv(os.path.join(HERE, "columns.input.csv"), ["age", "visits", "city"],
              [dt.age.to_numpy(), dt.visits.to_numpy(), dt.city.to_numpy()])
    feeds = {"age": dt.age.to_numpy().reshape(-1, 1), "visits": dt.visits.to_numpy().reshape(-1, 1),
             "city": dt.city.to_numpy().astype(object).reshape(-1, 1)}
    classifier_expected("columns", path, feeds, m.predict(dt), m.predict_proba(dt))

    # mlp: a Keras/PyTorch-shaped export emulated with onnx.helper
    X, y = make_classification(n_samples=600, n_features=8, n_informative=6, n_classes=3,
                               random_state=4)
    X = f32(X)
    m = MLPClassifier(hidden_layer_sizes=(16, 16), max_iter=400, random_state=0).fit(X[:400], y[:400])

    def mlp_graph(batch):
        nodes, inits = [], []
        prev = "input"
        for i, (w, b) in enumerate(zip(m.coefs_, m.intercepts_)):
            inits.append(numpy_helper.from_array(f32(w), "W%d" % i))
            inits.append(numpy_helper.from_array(f32(b), "B%d" % i))
            out = "h%d" % i
            nodes.append(helper.make_node("Gemm", [prev, "W%d" % i, "B%d" % i], [out]))
            prev = out
            if i < len(m.coefs_) - 1:
                nodes.append(helper.make_node("Relu", [prev], [prev + "_relu"]))
                prev = prev + "_relu"
        nodes.append(helper.make_node("Softmax", [prev], ["output"], axis=1))
        graph = helper.make_graph(
            nodes, "mlp",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 8])],
            [helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, 3])],
            inits)
        model = helper.make_model(graph, producer_name="liminal-fixture",
                                  opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model

    xt = X[400:]
    fnames = ["f%d" % i for i in range(8)]
    for name, batch in (("mlp", "batch"), ("mlp_batch1", 1)):
        path = save(name, mlp_graph(batch))
        write_csv(os.path.join(HERE, name + ".input.csv"), fnames, list(xt.T))
        sess = session(path)
        (proba1,) = run_rows(sess, {"input": xt})
        if batch == 1:
            proba = proba1
        else:
            (proba,) = sess.run(None, {"input": xt})
        sk = m.predict_proba(xt.astype(np.float64))
        header = ["ort:prediction"] + ["ort:probability_%d" % k for k in range(3)]
        cols = [proba.argmax(axis=1)] + [proba[:, k] for k in range(3)]
        header += ["ort1:prediction"] + ["ort1:probability_%d" % k for k in range(3)]
        cols += [proba1.argmax(axis=1)] + [proba1[:, k] for k in range(3)]
        header += ["sk:prediction"] + ["sk:probability_%d" % k for k in range(3)]
        cols += [sk.argmax(axis=1)] + [sk[:, k] for k in range(3)]
        write_csv(os.path.join(HERE, name + ".expected.csv"), header, cols)
        print("%s: labels agree %.4f, max |proba diff| %.3g" % (
            name, (proba.argmax(1) == sk.argmax(1)).mean(), abs(proba - sk).max()))

    # zipmap: the default skl2onnx classifier output, refused by liminal
    X, y = make_classification(n_samples=100, n_features=3, n_informative=2, n_redundant=0,
                               random_state=5)
    m = LogisticRegression().fit(f32(X), y)
    save("zipmap", to_onnx(m, f32(X[:1]), target_opset=target_opset))

    with open(os.path.join(HERE, "VERSION"), "w") as f:
        f.write("onnx %s\nonnxruntime %s\nskl2onnx %s\nscikit-learn %s\nnumpy %s\n" % (
            onnx.__version__, onnxruntime.__version__, skl2onnx.__version__, sklearn.__version__,
            np.__version__))


if __name__ == "__main__":
    main()
