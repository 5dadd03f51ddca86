"""One benchmark job on a peer engine: DuckDB (the Python wheel), Polars or
PySpark local[N]. Reads the example dataset's Parquet files (events/,
customers/), writes the job's result as Parquet, prints the seconds the job
took inside the process (without interpreter start-up).

    python run.py ENGINE JOB DATA_DIR OUT_PATH THREADS

The jobs are the SQL of benchmarks/compare.sh, written in each engine's own
idiom (Polars: the lazy API with scan_parquet ... sink_parquet).
"""
import sys
import time

engine, job, data, out, threads = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
events = f"{data}/events/*.parquet"
customers = f"{data}/customers/*.parquet"

SQL = {
    "filter": "SELECT event_id, customer_id, ts, amount, country FROM events WHERE event_type IN ('purchase','refund') AND amount <> 0",
    "agg": "SELECT country, event_type, dt, count(*) AS n, sum(amount) AS revenue, avg(session_ms) AS avg_session, min(ts) AS first_ts, max(ts) AS last_ts FROM events GROUP BY country, event_type, dt",
    "join": "SELECT c.segment, e.country, count(*) AS n, sum(e.amount) AS revenue FROM events e JOIN customers c ON e.customer_id = c.customer_id GROUP BY c.segment, e.country",
    "topn": "SELECT event_id, customer_id, amount FROM events ORDER BY amount DESC, event_id LIMIT 100",
}

t0 = time.perf_counter()
if engine == "duckdb":
    import duckdb

    con = duckdb.connect(config={"threads": threads})
    con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet('{events}')")
    con.execute(f"CREATE VIEW customers AS SELECT * FROM read_parquet('{customers}')")
    t0 = time.perf_counter()
    con.execute(f"COPY ({SQL[job]}) TO '{out}' (FORMAT parquet)")
elif engine == "polars":
    import os

    os.environ.setdefault("POLARS_MAX_THREADS", str(threads))
    import polars as pl

    t0 = time.perf_counter()
    ev = pl.scan_parquet(events)
    if job == "filter":
        q = ev.filter(pl.col("event_type").is_in(["purchase", "refund"]) & (pl.col("amount") != 0)).select(
            "event_id", "customer_id", "ts", "amount", "country")
    elif job == "agg":
        q = ev.group_by("country", "event_type", "dt").agg(
            pl.len().alias("n"), pl.col("amount").sum().alias("revenue"), pl.col("session_ms").mean().alias("avg_session"),
            pl.col("ts").min().alias("first_ts"), pl.col("ts").max().alias("last_ts"))
    elif job == "join":
        cu = pl.scan_parquet(customers)
        q = ev.join(cu, on="customer_id").group_by("segment", "country").agg(
            pl.len().alias("n"), pl.col("amount").sum().alias("revenue"))
    elif job == "topn":
        q = ev.select("event_id", "customer_id", "amount").sort(["amount", "event_id"], descending=[True, False]).head(100)
    q.sink_parquet(out)
elif engine == "pyspark":
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master(f"local[{threads}]").config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", str(threads * 2)).getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    t0 = time.perf_counter()
    spark.read.parquet(f"{data}/events").createOrReplaceTempView("events")
    spark.read.parquet(f"{data}/customers").createOrReplaceTempView("customers")
    spark.sql(SQL[job]).write.mode("overwrite").parquet(out)
else:
    sys.exit(f"unknown engine {engine}")
print(f"{time.perf_counter() - t0:.3f}")
