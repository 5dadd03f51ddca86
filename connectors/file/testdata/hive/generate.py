"""Writes the Hive-partitioned Parquet fixture under events/ with pyspark.

    python "$(scripts/hive.sh python | tail -n1)" ... or:
    $(scripts/hive.sh python) connectors/file/testdata/hive/generate.py

Partitions dt (a date) and region (a string with a NULL value, written as
__HIVE_DEFAULT_PARTITION__, and a value Spark URL-escapes in the directory
name); 60 rows, one file per partition. Deterministic apart from Spark's
file names, which hold a job id.
"""
import os
import shutil
import sys

from pyspark.sql import SparkSession

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "events")
spark = (SparkSession.builder.master("local[1]")
         .config("spark.ui.enabled", "false")
         .config("spark.sql.session.timeZone", "UTC")
         .config("spark.sql.parquet.compression.codec", "snappy")
         .getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
df = spark.sql("""
    SELECT CAST(id AS INT) AS id,
           CASE WHEN id % 9 = 4 THEN NULL ELSE concat('name ', id) END AS name,
           id * 1.25 AS amount,
           TIMESTAMP '2024-01-01 00:00:00' + make_interval(0, 0, 0, 0, 0, CAST(id AS INT), 0) AS ts,
           date_add(DATE '2024-01-01', CAST(id % 3 AS INT)) AS dt,
           CASE id % 4 WHEN 0 THEN 'IL' WHEN 1 THEN 'US' WHEN 2 THEN 'North/East=1 %x' ELSE NULL END AS region
    FROM range(0, 60)
""")
if os.path.exists(out):
    shutil.rmtree(out)
df.repartition(1).write.partitionBy("dt", "region").parquet(out)
# Spark's checksums and markers are not part of the fixture.
for root, _, files in os.walk(out):
    for f in files:
        if f.endswith(".crc") or f == "_SUCCESS":
            os.remove(os.path.join(root, f))
spark.stop()
print("wrote", out, file=sys.stderr)
