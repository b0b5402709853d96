"""What every job entry point shares: logging, the SparkSession, common options, the result."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from typing import Any

from pyspark.sql import SparkSession

from ..contracts import validate_result
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
    try:
        run(spark, args)
    finally:
        spark.stop()
