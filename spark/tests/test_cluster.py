"""The library on the standalone cluster (`make cluster-test`): clean, split, fit, evaluate via s3a.

Runs only when LENSFLOW_SPARK_MASTER names a `spark://` master; `make cluster-test` starts the
cluster (one master, two workers), runs this file against it and stops it.
"""

from __future__ import annotations

import os
import time

import pytest
from conftest import REPO
from pyspark.sql import functions as F

from lensflow_spark import columns as C
from lensflow_spark import synthetic
from lensflow_spark.als import ALSConfig, ALSRuntime, movie_popularity, recommend_for_users, train_final
from lensflow_spark.clean import clean_movies, clean_ratings
from lensflow_spark.metrics import ranking_metrics
from lensflow_spark.readers import dataset_spec, read_dataset
from lensflow_spark.session import SPARK_MASTER_ENV
from lensflow_spark.splits import random_holdout

pytestmark = pytest.mark.skipif(
    not os.environ.get(SPARK_MASTER_ENV, "").startswith("spark://"),
    reason=f"{SPARK_MASTER_ENV} names no standalone master: run `make cluster-test`",
)


def test_pipeline_steps_run_on_two_workers_with_s3a(spark, s3_prefix, tmp_path):
    assert spark.sparkContext.master == os.environ[SPARK_MASTER_ENV]
    # Executors register a few seconds after the session starts: wait for both, up to a minute.
    executors = 0
    for _ in range(60):
        executors = spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size() - 1  # less the driver
        if executors == 2:
            break
        time.sleep(1)
    assert executors == 2, f"expected an executor on each of the two workers, got {executors}"

    # Executors run in their own Python: ship the package as spark-submit's --py-files does.
    package = REPO / "dist" / "spark" / "lensflow_spark.zip"
    assert package.exists(), "run `make build` first"
    spark.sparkContext.addPyFile(str(package))

    synthetic.write_release(tmp_path / "raw", 20_000, seed=5)
    raw = read_dataset(spark, "ml-25m", str(tmp_path / "raw"))
    movies = clean_movies(raw.movies).clean
    clean = clean_ratings(raw.ratings, movies, dataset_spec("ml-25m").scale).clean
    clean.write.mode("overwrite").parquet(f"{s3_prefix}/ratings")

    ratings = spark.read.parquet(f"{s3_prefix}/ratings")
    assert ratings.count() == 20_000
    split = random_holdout(ratings, 0.2, seed=1)
    runtime = ALSRuntime(checkpoint_dir=f"{s3_prefix}/checkpoints", num_blocks=2)
    model = train_final(spark, split.train, ALSConfig(rank=6, max_iter=4), runtime)
    err = F.col(C.RATING) - F.col(C.PREDICTION)
    rmse = model.transform(split.test).agg(F.sqrt(F.avg(err * err))).first()[0]
    assert 0.3 < rmse < 1.5

    users = split.test.select(C.USER_ID).distinct()
    recs = recommend_for_users(model, users, 10, split.train, movie_popularity(split.train))
    recs.write.mode("overwrite").parquet(f"{s3_prefix}/recs")
    metrics = ranking_metrics(spark.read.parquet(f"{s3_prefix}/recs"), split.test, 10)
    assert metrics["precision_at_k"] is not None and metrics["precision_at_k"] > 0
