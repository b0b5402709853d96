"""What every job entry point shares: logging, the SparkSession, common options, the result."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from typing import Any

from pyspark.sql import SparkSession

from ..als import ALSConfig, ALSRuntime
from ..contracts import validate_result
from ..splits import Fold
from ..storage import write_json


def parser(job: str, description: str | None) -> argparse.ArgumentParser:
    """An argument parser with the option every job takes: `--result`, where its result JSON goes."""
    p = argparse.ArgumentParser(prog=job, description=description)
    p.add_argument("--result", required=True, help="URI of the result JSON, written last")
    return p


def add_model_options(p: argparse.ArgumentParser) -> None:
    """`--seed` and `--checkpoint`, for jobs that fit ALS."""
    p.add_argument("--seed", type=int, default=42, help="seed of every random choice")
    p.add_argument("--checkpoint", required=True, help="checkpoint folder URI (ALS lineage truncation)")


def json_arg(text: str) -> Any:
    """argparse `type=` for JSON-valued options."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not JSON: {err}") from None


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


def als_runtime(args: argparse.Namespace) -> ALSRuntime:
    """Seed and checkpoint folder from `add_model_options`."""
    return ALSRuntime(checkpoint_dir=args.checkpoint, seed=args.seed)


def read_fold_list(spark: SparkSession, folds: list[dict[str, Any]]) -> list[Fold]:
    """Folds named in a split result (`FoldUris`) read back as DataFrames."""
    return [Fold(f["fold"], spark.read.parquet(f["train"]), spark.read.parquet(f["test"])) for f in folds]


def publish(spark: SparkSession, job: str, uri: str, doc: dict[str, Any]) -> dict[str, Any]:
    """Validates the result against the job's contract, then writes it: the job's last act."""
    write_json(spark, uri, validate_result(job, doc))
    return doc


def run_job(
    job: str,
    build_parser: Callable[[], argparse.ArgumentParser],
    run: Callable[[SparkSession, argparse.Namespace], dict[str, Any]],
    argv: list[str] | None = None,
) -> None:
    """Parses arguments, runs the job in a SparkSession from spark-submit, and stops the session."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    spark = SparkSession.builder.appName(f"lensflow-{job}").getOrCreate()
    # Spark's INFO chatter would bury the job's own error in the output tail a failure quotes.
    spark.sparkContext.setLogLevel("WARN")
    try:
        run(spark, args)
    finally:
        spark.stop()
