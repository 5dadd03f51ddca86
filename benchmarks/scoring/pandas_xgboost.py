#!/usr/bin/env python3
"""The peer of `liminal run` for the end-to-end scoring benchmark: the same
job as examples/quickstart (sql/purchase_features.sql, then the XGBoost model
models/purchase_propensity.json) written as a data scientist would with
pandas + xgboost: read the Parquet files, join, compute the features, score
with inplace_predict, write Parquet.

    python pandas_xgboost.py DATA_DIR MODEL OUT_FILE [THREADS]

Prints one line: rows and the seconds of each phase.
"""
import sys
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import xgboost as xgb

data, model_path, out = sys.argv[1], sys.argv[2], sys.argv[3]
threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2
t0 = time.perf_counter()
events = pd.read_parquet(f"{data}/events", columns=["event_id", "customer_id", "ts", "dt", "event_type", "session_ms", "price", "is_mobile"])
customers = pd.read_parquet(f"{data}/customers", columns=["customer_id", "signup_date", "lifetime_value"])
t1 = time.perf_counter()
df = events[events["event_type"] != "purchase"].merge(customers, on="customer_id", how="inner")
X = pd.DataFrame({
    "session_s": df["session_ms"] / 1000.0,
    "price": df["price"].astype("float64"),
    "is_mobile": df["is_mobile"].astype("float64"),
    "hour": df["ts"].dt.hour.astype("float64"),
    "lifetime_value": df["lifetime_value"].astype("float64"),
    "tenure_days": (pd.to_datetime(df["dt"]) - pd.to_datetime(df["signup_date"])).dt.days.astype("float64"),
})
t2 = time.perf_counter()
booster = xgb.Booster()
booster.load_model(model_path)
booster.set_param({"nthread": threads})
pred = booster.inplace_predict(X.to_numpy(dtype=np.float32))
t3 = time.perf_counter()
table = pa.table({"event_id": df["event_id"].to_numpy(), "customer_id": df["customer_id"].to_numpy(),
                  "dt": df["dt"].to_numpy(), "purchase_probability": pred.astype(np.float64)})
pq.write_table(table, out, compression="snappy")
t4 = time.perf_counter()
print(f"rows={len(df)} read={t1-t0:.2f} features={t2-t1:.2f} score={t3-t2:.2f} write={t4-t3:.2f} total={t4-t0:.2f}")
