"""Job `analysis`: SparkSQL analyses of the clean tables, as Parquet tables plus a JSON summary.

Outputs under `--output`: one Parquet folder per table of `analysis.TABLE_NAMES`, and `summary.json`.
"""

from __future__ import annotations

import argparse
from typing import Any

from pyspark.sql import SparkSession

from ..analysis import AnalysisConfig, analysis_tables, summarize
from ..storage import write_json
from . import runtime


def build_parser() -> argparse.ArgumentParser:
    p = runtime.parser("analysis", __doc__)
    p.add_argument("--ratings", required=True, help="clean ratings (Parquet)")
    p.add_argument("--movies", required=True, help="clean movies (Parquet)")
    p.add_argument("--output", required=True, help="folder URI for the tables and summary.json")
    p.add_argument("--min-ratings", type=int, default=AnalysisConfig.min_ratings)
    p.add_argument("--prior-weight", type=float, default=AnalysisConfig.prior_weight)
    return p


def run(spark: SparkSession, args: argparse.Namespace) -> dict[str, Any]:
    config = AnalysisConfig(min_ratings=args.min_ratings, prior_weight=args.prior_weight)
    ratings = spark.read.parquet(args.ratings).cache()
    movies = spark.read.parquet(args.movies).cache()
    out = args.output.rstrip("/")
    outputs = {}
    for name, table in analysis_tables(ratings, movies, config).items():
        outputs[name] = f"{out}/{name}"
        table.write.mode("overwrite").parquet(outputs[name])
    summary = summarize(ratings, movies, config)
    summary_uri = f"{out}/summary.json"
    write_json(spark, summary_uri, summary)
    doc = {"job": "analysis", "outputs": outputs, "summaryUri": summary_uri, "summary": summary}
    return runtime.publish(spark, "analysis", args.result, doc)


def main(argv: list[str] | None = None) -> None:
    runtime.run_job("analysis", build_parser, run, argv)
