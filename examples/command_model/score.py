#!/usr/bin/env python3
"""A Liminal command model: hand-written logistic scoring of purchases.

Protocol (see README.md): read one Arrow IPC stream from stdin, write one
Arrow IPC stream to stdout with exactly one output row per input row, in
order; logs go to stderr; exit 0 when done.

Inputs: amount (any numeric type), quantity (any numeric type); nulls count
as 0. Output: score (double) = sigmoid(-2 + 0.35*log1p(amount) + 0.2*quantity).
Dependencies: pyarrow and numpy only.
"""
import sys

import numpy as np
import pyarrow as pa

INTERCEPT = -2.0
WEIGHTS = {"amount": 0.35, "quantity": 0.2}

OUT_SCHEMA = pa.schema([pa.field("score", pa.float64())])


def column(batch, name):
    """The column as float64 numpy values, nulls as 0."""
    col = batch.column(batch.schema.get_field_index(name))
    col = col.cast(pa.float64()).fill_null(0.0)
    return col.to_numpy(zero_copy_only=False)


def score(batch):
    amount = np.clip(column(batch, "amount"), 0.0, None)
    z = INTERCEPT + WEIGHTS["amount"] * np.log1p(amount) + WEIGHTS["quantity"] * column(batch, "quantity")
    return pa.record_batch([pa.array(1.0 / (1.0 + np.exp(-z)), pa.float64())], schema=OUT_SCHEMA)


def main():
    reader = pa.ipc.open_stream(sys.stdin.buffer)
    missing = [n for n in WEIGHTS if n not in reader.schema.names]
    if missing:
        print(f"score.py: input columns {missing} missing (got {reader.schema.names})", file=sys.stderr)
        return 2
    rows = 0
    with pa.ipc.new_stream(sys.stdout.buffer, OUT_SCHEMA) as writer:
        for batch in reader:
            writer.write_batch(score(batch))
            sys.stdout.buffer.flush()  # hand each batch over as soon as it is scored
            rows += batch.num_rows
    sys.stdout.buffer.flush()
    print(f"score.py: scored {rows} rows", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
