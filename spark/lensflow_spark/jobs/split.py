"""Job `split`: writes the folds once, as Parquet, for every grid point and the evaluation to reuse.

Protocols (`protocol`, the contract's SplitProtocol):
- `random` / `time`: a seeded random holdout, or each user's latest ratings, is the evaluation
  fold; the grid search cross-validates on `cvFolds` seeded folds of the rest.
- `kfold`: k seeded folds of everything, for both the grid search and the evaluation.
- `official`: ml-100k's u1..u5 base/test files from the staged raw folder, for both.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import SparkSession

from .. import schemas, tables
from ..splits import Fold, k_fold, official_folds, random_holdout, time_holdout, write_folds


def _official(spark: SparkSession, raw: str) -> list[Fold]:
    def read(name: str):
        return spark.read.schema(schemas.ML100K_RATINGS).option("sep", "\t").csv(f"{raw.rstrip('/')}/{name}")

    return official_folds([(read(f"u{i}.base"), read(f"u{i}.test")) for i in range(1, 6)])


def plan(spark: SparkSession, job_input: dict[str, Any]) -> tuple[list[Fold], list[Fold] | None]:
    """The CV folds, and the evaluation folds when they differ from them."""
    protocol: dict[str, Any] = job_input["protocol"]
    kind = protocol["kind"]
    if kind == "official":
        return _official(spark, job_input["raw"]), None
    ratings = tables.read_parquet(spark, job_input["ratings"])
    if kind == "kfold":
        return k_fold(ratings, protocol["k"], protocol["seed"]), None
    if kind == "random":
        holdout = random_holdout(ratings, protocol["testFraction"], protocol["seed"])
    elif kind == "time":
        holdout = time_holdout(ratings, fraction=protocol["testFraction"])
    else:
        raise ValueError(f"unknown split protocol {kind!r}: use random, time, kfold or official")
    train = holdout.train.cache()
    return k_fold(train, protocol["cvFolds"], protocol["seed"]), [Fold(0, train, holdout.test)]


def _uris(spark: SparkSession, folds: list[Fold], uri: str) -> list[dict[str, Any]]:
    """Writes the folds and describes them, counting what was written."""
    write_folds(folds, uri)
    out = []
    for fold in folds:
        train, test = f"{uri}/fold={fold.fold_id}/train", f"{uri}/fold={fold.fold_id}/test"
        n_train, n_test = spark.read.parquet(train).count(), spark.read.parquet(test).count()
        out.append({"fold": fold.fold_id, "train": train, "test": test, "nTrain": n_train, "nTest": n_test})
    return out


def run(spark: SparkSession, job_input: dict[str, Any]) -> dict[str, Any]:
    cv, evaluation = plan(spark, job_input)
    out = job_input["output"].rstrip("/")
    cv_uris = _uris(spark, cv, f"{out}/cv")
    eval_uris = cv_uris if evaluation is None else _uris(spark, evaluation, f"{out}/evaluation")
    return {"job": "split", "protocol": job_input["protocol"], "cv": cv_uris, "evaluation": eval_uris}
