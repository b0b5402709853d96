"""Job `train_final`: fits ALS at the chosen point on all clean ratings and saves the model."""

from __future__ import annotations

import argparse
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from .. import columns as C
from ..als import save_model, train_final
from . import runtime


def build_parser() -> argparse.ArgumentParser:
    p = runtime.parser("train_final", __doc__)
    p.add_argument("--ratings", required=True, help="clean ratings (Parquet)")
    p.add_argument("--point", required=True, type=runtime.json_arg, help="AlsPoint JSON")
    p.add_argument("--model", required=True, help="folder URI for the saved model")
    runtime.add_model_options(p)
    return p


def run(spark: SparkSession, args: argparse.Namespace) -> dict[str, Any]:
    config = runtime.als_config(args.point)
    ratings = spark.read.parquet(args.ratings).cache()
    model = train_final(spark, ratings, config, runtime.als_runtime(args))
    save_model(model, args.model)
    counts = ratings.agg(
        F.count(F.lit(1)).alias("nRatings"),
        F.countDistinct(C.USER_ID).alias("nUsers"),
        F.countDistinct(C.MOVIE_ID).alias("nMovies"),
    ).first()
    doc = {
        "job": "train_final",
        "point": runtime.als_point(config),
        "modelUri": args.model,
        "nRatings": counts["nRatings"],
        "nUsers": counts["nUsers"],
        "nMovies": counts["nMovies"],
    }
    return runtime.publish(spark, "train_final", args.result, doc)


def main(argv: list[str] | None = None) -> None:
    runtime.run_job("train_final", build_parser, run, argv)
