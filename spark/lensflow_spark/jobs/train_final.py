"""Job `train_final`: fits the chosen model on all clean ratings and saves it.

Without `family`: plain ALS at the contract's `AlsPoint` (Spark's ALSModel format). With it: that
model family at its point (`families.py`), saved by the model's own `save`.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from .. import columns as C
from .. import tables
from ..als import save_model, train_final
from ..families import family
from . import runtime
from .model_point import fit_runtime


def run(spark: SparkSession, job_input: dict[str, Any]) -> dict[str, Any]:
    ratings = tables.read_parquet(spark, job_input["ratings"]).cache()
    name = job_input.get("family")
    if name is None:
        config = runtime.als_config(job_input["point"])
        save_model(train_final(spark, ratings, config, runtime.als_runtime(job_input)), job_input["model"])
        point = runtime.als_point(config)
    else:
        point = job_input["point"]
        model = family(name).estimator(point, fit_runtime(job_input, ratings)).fit(ratings)
        model.save(job_input["model"])
        model.unpersist()
    counts = ratings.agg(
        F.count(F.lit(1)).alias("nRatings"),
        F.countDistinct(C.USER_ID).alias("nUsers"),
        F.countDistinct(C.MOVIE_ID).alias("nMovies"),
    ).first()
    return {
        "job": "train_final",
        **({"family": name} if name else {}),
        "point": point,
        "modelUri": job_input["model"],
        "nRatings": counts["nRatings"],
        "nUsers": counts["nUsers"],
        "nMovies": counts["nMovies"],
    }
