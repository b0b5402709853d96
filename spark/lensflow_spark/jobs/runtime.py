"""What every job shares: its input checked against the contract, the run, the result written last.

A job module exposes `run(spark, input) -> result`: `input` is the job's input document (checked
against `<job>-input.schema.json` before the job runs) and the returned result is checked against
`<job>-result.schema.json` and written to the result URI as the job's last act. The same `execute`
serves spark-submit (`main`, an EMR step) and the warm local worker (`lensflow_spark.worker`).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
from typing import Any

from pyspark.sql import SparkSession

from .. import tables
from ..als import ALSConfig, ALSRuntime
from ..contracts import validate_input, validate_result
from ..session import als_blocks
from ..splits import Fold
from ..storage import write_json

JOBS = (
    "clean",
    "split",
    "als_point",
    "model_point",
    "train_final",
    "evaluate",
    "analysis",
    "recommend",
    "report",
)


def als_config(point: dict[str, Any]) -> ALSConfig:
    """The contract's `AlsPoint` (Spark's parameter names) as the library's ALSConfig."""
    return ALSConfig(
        rank=point["rank"],
        reg_param=point["regParam"],
        max_iter=point["maxIter"],
        alpha=point.get("alpha", 1.0),
        implicit_prefs=point.get("implicitPrefs", False),
    )


def als_point(config: ALSConfig) -> dict[str, Any]:
    """The inverse of `als_config`, for result documents."""
    return {
        "rank": config.rank,
        "regParam": config.reg_param,
        "maxIter": config.max_iter,
        "alpha": config.alpha,
        "implicitPrefs": config.implicit_prefs,
    }


def als_runtime(job_input: dict[str, Any]) -> ALSRuntime:
    """Seed and checkpoint folder of a job that fits ALS; blocks as the Spark application says."""
    return ALSRuntime(checkpoint_dir=job_input["checkpoint"], seed=job_input["seed"], num_blocks=als_blocks())


def read_fold_list(spark: SparkSession, folds: list[dict[str, Any]]) -> list[Fold]:
    """Folds named in a split result (`FoldUris`) read back as DataFrames."""
    return [
        Fold(f["fold"], tables.read_parquet(spark, f["train"]), tables.read_parquet(spark, f["test"]))
        for f in folds
    ]


def execute(spark: SparkSession, job: str, job_input: dict[str, Any], result_uri: str) -> dict[str, Any]:
    """Checks the input, runs the job, checks its result and writes it to `result_uri`; returns it."""
    if job not in JOBS:
        raise ValueError(f"unknown job {job!r}: use one of {', '.join(JOBS)}")
    validate_input(job, job_input)
    module = importlib.import_module(f"{__package__}.{job}")
    result = validate_result(job, module.run(spark, job_input))
    write_json(spark, result_uri, result)
    return result


def main(job: str, argv: list[str] | None = None) -> None:
    """spark-submit entry point: `jobs/<job>.py --input '<json>' --result <uri>` (an EMR step's argv)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(prog=job, description=f"runs the lensflow Spark job {job!r}")
    p.add_argument("--input", required=True, type=json.loads, help="the job's input document (JSON)")
    p.add_argument("--result", required=True, help="URI of the result JSON, written last")
    args = p.parse_args(argv)
    spark = SparkSession.builder.appName(f"lensflow-{job}").getOrCreate()
    # Spark's INFO chatter would bury the job's own error in the output tail a failure quotes.
    spark.sparkContext.setLogLevel("WARN")
    try:
        execute(spark, job, args.input, args.result)
    finally:
        spark.stop()
