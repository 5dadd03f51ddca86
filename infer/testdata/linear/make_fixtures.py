#!/usr/bin/env python3
"""Regenerate the linear-model fixtures used by infer/linear_test.go.

Run from anywhere:  python3 infer/testdata/linear/make_fixtures.py

It re-executes itself under the project's Python environment
(scripts/pyenv.sh). It fits scikit-learn models on small data and writes,
next to this script:

  NAME.model.json     the model as infer.LinearDoc (features, coefficients,
                      intercept, link)
  NAME.input.csv      rows to score (header = features, full precision)
  NAME.expected.csv   scikit-learn's predictions, full precision (repr):
                      regression: p0 = predict; binary: p0 =
                      predict_proba[:, 1] and label = predict; multinomial:
                      label = predict (class index) and p0..pK-1 =
                      predict_proba
  VERSION             the library versions used

Models: regression (LinearRegression, identity), binary (LogisticRegression,
logistic), multinomial (LogisticRegression on 3 classes, softmax).
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


def ensure_env():
    try:
        import sklearn  # noqa: F401
        return
    except ImportError:
        pass
    if os.environ.get("LIMINAL_PYENV_REEXEC"):
        sys.exit("make_fixtures.py: the Python environment lacks scikit-learn")
    py = subprocess.check_output(["bash", os.path.join(ROOT, "scripts", "pyenv.sh")], text=True).strip()
    os.environ["LIMINAL_PYENV_REEXEC"] = "1"
    os.execv(py, [py] + sys.argv)


def write_csv(path, header, cols):
    with open(path, "w") as f:
        f.write(",".join(header) + "\n")
        for i in range(len(cols[0])):
            f.write(",".join(repr(float(c[i])) for c in cols) + "\n")


def write_model(name, features, coef, intercept, link):
    doc = {"features": features, "coefficients": coef, "intercept": intercept, "link": link}
    with open(os.path.join(HERE, name + ".model.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


def main():
    ensure_env()
    import numpy as np
    import sklearn
    from sklearn.datasets import make_classification, make_regression
    from sklearn.linear_model import LinearRegression, LogisticRegression

    # regression
    X, y = make_regression(n_samples=300, n_features=4, noise=2.0, random_state=11)
    feats = ["age", "income", "tenure", "score"]
    m = LinearRegression().fit(X[:150], y[:150])
    write_model("regression", feats, [float(v) for v in m.coef_], float(m.intercept_), "identity")
    xt = X[150:]
    write_csv(os.path.join(HERE, "regression.input.csv"), feats, list(xt.T))
    write_csv(os.path.join(HERE, "regression.expected.csv"), ["p0"], [m.predict(xt)])

    # binary logistic
    X, y = make_classification(n_samples=300, n_features=5, n_informative=3, random_state=12)
    feats = ["f%d" % i for i in range(5)]
    m = LogisticRegression(max_iter=1000).fit(X[:150], y[:150])
    write_model("binary", feats, [float(v) for v in m.coef_[0]], float(m.intercept_[0]), "logistic")
    xt = X[150:]
    write_csv(os.path.join(HERE, "binary.input.csv"), feats, list(xt.T))
    write_csv(os.path.join(HERE, "binary.expected.csv"), ["p0", "label"],
              [m.predict_proba(xt)[:, 1], m.predict(xt)])

    # multinomial logistic, 3 classes (sklearn >= 1.5 fits multinomial by default)
    X, y = make_classification(n_samples=300, n_features=4, n_informative=3, n_redundant=0,
                               n_classes=3, random_state=13)
    feats = ["x1", "x2", "x3", "x4"]
    m = LogisticRegression(max_iter=1000).fit(X[:150], y[:150])
    assert list(m.classes_) == [0, 1, 2]
    write_model("multinomial", feats, [[float(v) for v in row] for row in m.coef_],
                [float(v) for v in m.intercept_], "softmax")
    xt = X[150:]
    proba = m.predict_proba(xt)
    write_csv(os.path.join(HERE, "multinomial.input.csv"), feats, list(xt.T))
    write_csv(os.path.join(HERE, "multinomial.expected.csv"), ["label", "p0", "p1", "p2"],
              [m.predict(xt)] + [proba[:, k] for k in range(3)])

    with open(os.path.join(HERE, "VERSION"), "w") as f:
        f.write("scikit-learn %s\nnumpy %s\n" % (sklearn.__version__, np.__version__))


if __name__ == "__main__":
    main()
