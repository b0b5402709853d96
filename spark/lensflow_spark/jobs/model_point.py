"""Job `model_point`: cross-validates ONE grid point of one model family over the CV folds.

The unit the per-family grid search fans out (`families.py` names the families; the point's keys
are the family's hyperparameter names). Per fold the point is fitted on train and scored on test by
the family's objective and its companions: rating families by `rmse` and `mae` of their predictions,
ranking families by precision, recall, NDCG and MAP at k of their top-k lists (training movies
excluded, relevance as in the run's ranking settings). The result holds every fold's scores, their
mean and (population) standard deviation, and the fit time summed over folds.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from .. import columns as C
from .. import metrics as M
from ..families import RATING, FitRuntime, family
from . import runtime


def fit_runtime(job_input: dict[str, Any], ratings: DataFrame) -> FitRuntime:
    """How a job fits any family: its seed and checkpoint folder, a scratch folder, and the rating
    scale seen in `ratings` (predictions are clipped to it). One Spark action."""
    low, high = ratings.agg(F.min(C.RATING), F.max(C.RATING)).first()
    return FitRuntime(
        checkpoint_dir=job_input["checkpoint"],
        work_dir=tempfile.mkdtemp(prefix="lensflow-model-"),
        scale=(float(low), float(high)),
        seed=job_input["seed"],
    )


def score(
    model: Any, kind: str, train: DataFrame, test: DataFrame, ranking: dict[str, Any]
) -> dict[str, Any]:
    """The family's objective and companions on `test` (see the module docstring). Runs Spark jobs."""
    if kind == RATING:
        return M.rating_metrics(model.transform(test.select(C.USER_ID, C.MOVIE_ID, C.RATING)))
    k = ranking["k"]
    lists = model.recommend_for_users(test.select(C.USER_ID).distinct(), k, exclude=train).cache()
    out = M.ranking_metrics(lists, test, k, threshold=ranking["relevanceThreshold"])
    lists.unpersist()
    return out


def _summary(folds: list[dict[str, Any]], how) -> dict[str, float | None]:
    names = folds[0]["scores"]
    out = {}
    for name in names:
        values = [f["scores"][name] for f in folds if f["scores"][name] is not None]
        out[name] = how(values) if values else None
    return out


def run(spark: SparkSession, job_input: dict[str, Any]) -> dict[str, Any]:
    fam = family(job_input["family"])
    point = job_input["point"]
    folds = runtime.read_fold_list(spark, job_input["folds"])
    fit = fit_runtime(job_input, folds[0].train)
    scored, fit_seconds = [], 0.0
    for fold in folds:
        train, test = fold.train.cache(), fold.test.cache()
        started = time.perf_counter()
        model = fam.estimator(point, fit).fit(train)  # fitting runs the Spark jobs (or the torch run)
        fit_seconds += time.perf_counter() - started
        scores = score(model, fam.kind, train, test, job_input["ranking"])
        if scores.get(fam.objective) is None:
            raise ValueError(
                f"fold {fold.fold_id} gives {fam.name} no {fam.objective}: its test part has no "
                "rating to predict or no relevant movie; use fewer CV folds or a larger dataset"
            )
        n_test = test.count()
        model.unpersist()
        train.unpersist()
        test.unpersist()
        scored.append({"fold": fold.fold_id, "nTest": n_test, "scores": scores})
    return {
        "job": "model_point",
        "family": fam.name,
        "point": point,
        "objective": fam.objective,
        "folds": scored,
        "mean": _summary(scored, statistics.fmean),
        "std": _summary(scored, statistics.pstdev),
        "fitSeconds": fit_seconds,
    }
