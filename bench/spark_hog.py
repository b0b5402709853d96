"""A CPU-heavy Spark job to run beside something else: refits ALS on synthetic ratings in a
`local[2]` session until it is killed. Used by `test_beside_load.py` (issue #11: the tests must pass
while another Spark job competes for the cores).

    PYTHONPATH=spark .lensflow/venv/bin/python bench/spark_hog.py [--ratings 500000]
"""

from __future__ import annotations

import argparse
import logging
import time

from pyspark.ml.recommendation import ALS
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lensflow_spark.session import local_session

log = logging.getLogger("bench.spark_hog")


def hashed_ratings(spark, n: int, *, users: int, items: int) -> DataFrame:
    """`n` ratings (user, item, rating 1-5) spread over the ids by hashing: no data to read, the
    same rows every time."""
    return spark.range(n).select(
        F.abs(F.hash("id") % users).cast("int").alias("user"),
        (F.abs(F.hash(F.col("id") * 7)) % items).cast("int").alias("item"),
        (F.abs(F.hash(F.col("id") * 13)) % 5 + 1).cast("float").alias("rating"),
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ratings", type=int, default=500_000)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    spark = local_session(
        "lensflow-spark-hog", 2, driver_memory="2g", extra={"spark.ui.showConsoleProgress": "false"}
    )
    ratings = hashed_ratings(spark, args.ratings, users=20_000, items=5_000).cache()
    ratings.count()
    fits = 0
    while True:
        start = time.monotonic()
        model = ALS(rank=20, maxIter=10, regParam=0.1, seed=fits).fit(ratings)
        model.userFactors.count()  # forces the fit's last stage
        fits += 1
        log.info("spark_hog: fit %d in %.1f s", fits, time.monotonic() - start)


if __name__ == "__main__":
    main()
