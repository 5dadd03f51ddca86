#!/usr/bin/env python3
"""Regenerate the MLflow model-directory fixtures used by infer/mlflow_test.go.

    python3 infer/testdata/mlflow/make_fixtures.py

Creates ~/.cache/liminal/venv-mlflow (pip install mlflow-skinny and the
pinned xgboost/lightgbm/skl2onnx from PyPI) when missing and re-executes
itself inside it. Writes, next to this script:

  xgb_json/        mlflow.xgboost.save_model(..., model_format="json"),
                   trained on a pandas frame (named features)
  xgb_default/     mlflow.xgboost.save_model(...) with MLflow's default
                   model_format (a binary format Liminal refuses clearly)
  lgb/             mlflow.lightgbm.save_model(...) on a NumPy array (no
                   feature names: the signature's column names apply)
  onnx/            mlflow.onnx.save_model(...) of a skl2onnx export
  input.csv        rows to score (a, b, c, d; "nan" for missing)
  expected.csv     each model's own prediction: xgb, lgb, onnx
  VERSION          library versions
"""
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.expanduser("~/.cache/liminal/venv-mlflow")
PKGS = ["mlflow-skinny", "numpy==2.4.6", "xgboost==3.2.0", "lightgbm==4.7.0", "pandas", "scikit-learn", "onnx", "onnxruntime==1.31.1", "skl2onnx"]

if sys.prefix != VENV:
    py = os.path.join(VENV, "bin", "python")
    if not os.path.exists(py):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
        subprocess.check_call([py, "-m", "pip", "install", "-q"] + PKGS)
    os.execv(py, [py, __file__] + sys.argv[1:])

import lightgbm as lgb  # noqa: E402
import mlflow  # noqa: E402
import mlflow.lightgbm  # noqa: E402
import mlflow.onnx  # noqa: E402
import mlflow.xgboost  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xgboost as xgb  # noqa: E402
from mlflow.models import infer_signature  # noqa: E402
from skl2onnx import to_onnx  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

rng = np.random.default_rng(11)
cols = ["a", "b", "c", "d"]
X = rng.normal(size=(400, 4)).astype(np.float32)
y = (X[:, 0] + 0.5 * X[:, 1] - X[:, 2] * X[:, 3] > 0).astype(int)
Xm = X.copy()
Xm[rng.random(X.shape) < 0.1] = np.nan
df = pd.DataFrame(Xm, columns=cols)

for d in ["xgb_json", "xgb_default", "lgb", "onnx"]:
    shutil.rmtree(os.path.join(HERE, d), ignore_errors=True)

booster = xgb.train({"objective": "binary:logistic", "max_depth": 3, "eta": 0.3}, xgb.DMatrix(df, label=y), num_boost_round=10)
sig = infer_signature(df, booster.predict(xgb.DMatrix(df)))
mlflow.xgboost.save_model(booster, os.path.join(HERE, "xgb_json"), model_format="json", signature=sig)
mlflow.xgboost.save_model(booster, os.path.join(HERE, "xgb_default"), signature=sig)

lg = lgb.train({"objective": "binary", "num_leaves": 8, "verbose": -1}, lgb.Dataset(Xm, label=y), num_boost_round=10)
mlflow.lightgbm.save_model(lg, os.path.join(HERE, "lgb"), signature=infer_signature(df, lg.predict(Xm)))

lr = LogisticRegression().fit(X, y)
onx = to_onnx(lr, X[:1], options={"zipmap": False}, target_opset=17)
mlflow.onnx.save_model(onx, os.path.join(HERE, "onnx"))

test = df.iloc[:60]
exp = pd.DataFrame({
    "xgb": booster.predict(xgb.DMatrix(test)),
    "lgb": lg.predict(test.to_numpy()),
    "onnx": lr.predict_proba(X[:60])[:, 1],
})
test.to_csv(os.path.join(HERE, "input.csv"), index=False, na_rep="nan", float_format="%.9g")
exp.to_csv(os.path.join(HERE, "expected.csv"), index=False, float_format="%.17g")
with open(os.path.join(HERE, "VERSION"), "w") as f:
    f.write(f"mlflow {mlflow.__version__} xgboost {xgb.__version__} lightgbm {lgb.__version__}\n")
print("ok")
