#!/usr/bin/env python3
"""Train the quick-start's purchase-propensity model (XGBoost, JSON).

    python3 examples/quickstart/models/train.py   # after `make example` made the data

Uses the pinned environment of scripts/pyenv.sh (re-executes itself in it).
The features are those of sql/purchase_features.sql, computed here with
pandas on a sample of the generated events; the label is whether the event
is a purchase. The synthetic data carries little signal: the point is a
real XGBoost model file with named features, scored by Liminal.
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))

if os.environ.get("LIMINAL_TRAIN_REEXEC") != "1":
    py = subprocess.check_output([os.path.join(ROOT, "scripts", "pyenv.sh")], text=True).strip()
    os.environ["LIMINAL_TRAIN_REEXEC"] = "1"
    os.execv(py, [py, __file__] + sys.argv[1:])

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow.dataset as ds  # noqa: E402
import xgboost as xgb  # noqa: E402

data = os.path.join(HERE, "..", "data")
events = ds.dataset(os.path.join(data, "events")).head(300_000).to_pandas()
customers = pd.read_parquet(os.path.join(data, "customers"))
df = events.merge(customers, on="customer_id", suffixes=("", "_c"))
X = pd.DataFrame({
    "session_s": df["session_ms"] / 1000.0,
    "price": df["price"].astype("float64"),
    "is_mobile": df["is_mobile"].astype("float64"),
    "hour": df["ts"].dt.hour.astype("float64"),
    "lifetime_value": df["lifetime_value"],
    "tenure_days": (pd.to_datetime(df["dt"]) - pd.to_datetime(df["signup_date"])).dt.days.astype("float64"),
})
y = (df["event_type"] == "purchase").astype(int)
model = xgb.XGBClassifier(n_estimators=60, max_depth=4, learning_rate=0.2, random_state=7, n_jobs=2)
model.fit(X, y)
out = os.path.join(HERE, "purchase_propensity.json")
model.get_booster().save_model(out)
print(f"wrote {out}: {len(X)} rows, positive rate {y.mean():.3f}, train AUC-ish mean p {model.predict_proba(X)[:, 1].mean():.3f}")
