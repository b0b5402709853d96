"""Job `train_final`: fits ALS at the chosen point on all clean ratings and saves the model."""

from __future__ import annotations

from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from .. import columns as C
from .. import tables
from ..als import save_model, train_final
from . import runtime


def run(spark: SparkSession, job_input: dict[str, Any]) -> dict[str, Any]:
    config = runtime.als_config(job_input["point"])
    ratings = tables.read_parquet(spark, job_input["ratings"]).cache()
    model = train_final(spark, ratings, config, runtime.als_runtime(job_input))
    save_model(model, job_input["model"])
    counts = ratings.agg(
        F.count(F.lit(1)).alias("nRatings"),
        F.countDistinct(C.USER_ID).alias("nUsers"),
        F.countDistinct(C.MOVIE_ID).alias("nMovies"),
    ).first()
    return {
        "job": "train_final",
        "point": runtime.als_point(config),
        "modelUri": job_input["model"],
        "nRatings": counts["nRatings"],
        "nUsers": counts["nUsers"],
        "nMovies": counts["nMovies"],
    }
