"""Job `clean`: raw MovieLens files -> canonical Parquet tables, quarantine and a result JSON.

Outputs under `--output`: `ratings/`, `movies/`, `quarantine/ratings/`, `quarantine/movies/`.
The result JSON at `--result` is written last, after every table is committed.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from .. import columns as C
from ..clean import drop_missing
from ..contracts import validate_result
from ..readers import read_dataset
from ..storage import write_json

log = logging.getLogger("lensflow.clean")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="clean", description=__doc__)
    p.add_argument("--dataset", required=True, help="MovieLens release, e.g. ml-latest-small")
    p.add_argument("--raw", required=True, help="folder URI of the staged raw files")
    p.add_argument("--output", required=True, help="folder URI for the processed tables")
    p.add_argument("--result", required=True, help="URI of the result JSON")
    return p.parse_args(argv)


def _clean_table(raw: DataFrame, out: str, quarantine_out: str) -> dict[str, Any]:
    raw = raw.cache()
    split = drop_missing(raw)
    split.clean.write.mode("overwrite").parquet(out)
    split.quarantined.write.mode("overwrite").parquet(quarantine_out)
    reasons = {row[C.REASON]: row["count"] for row in split.quarantined.groupBy(C.REASON).count().collect()}
    counts = {"raw": raw.count(), "clean": split.clean.count(), "quarantined": reasons}
    raw.unpersist()
    if counts["raw"] != counts["clean"] + sum(reasons.values()):
        raise RuntimeError(f"counts do not reconcile: {counts}")
    return counts


def run(spark: SparkSession, args: argparse.Namespace) -> dict[str, Any]:
    """Cleans one staged release and returns the validated result document (already written)."""
    tables = read_dataset(spark, args.dataset, args.raw)
    out = args.output.rstrip("/")
    outputs = {"ratings": f"{out}/ratings", "movies": f"{out}/movies"}
    counts = {
        name: _clean_table(getattr(tables, name), outputs[name], f"{out}/quarantine/{name}")
        for name in ("ratings", "movies")
    }
    result = validate_result(
        "clean", {"job": "clean", "dataset": args.dataset, "outputs": outputs, "counts": counts}
    )
    write_json(spark, args.result, result)
    log.info("clean %s: %s", args.dataset, counts)
    return result


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    spark = SparkSession.builder.appName(f"lensflow-clean-{args.dataset}").getOrCreate()
    try:
        run(spark, args)
    finally:
        spark.stop()
