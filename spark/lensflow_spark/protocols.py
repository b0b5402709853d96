"""Evaluation protocols, and nested selection so no hyperparameter is chosen on test data.

Three protocols make our numbers comparable with published ones:

* `official`: ml-100k's GroupLens folds u1..u5 (`splits.official_folds`); rating metrics, mean
  over folds (Surprise, GC-MC and GLocal-K report RMSE/MAE this way).
* `recommenders`: Microsoft Recommenders' ml-100k benchmark: per-user stratified 75/25 random
  split (`splits.stratified_holdout(fraction=0.25)`), every held-out movie relevant
  (threshold -inf), top-10 over all movies the user did not rate in train; precision, recall,
  NDCG and MAP at 10.
* `threshold4`: the product's default: `random_holdout(0.2, seed 42)`, a held-out rating >= 4 is
  relevant, top-10 excluding training movies.

`select_and_evaluate` is the nested procedure for one evaluation split: carve a validation split
from ITS training part (`splits.validation_holdout`), fit every grid point on the rest, pick the
point by the family's objective on validation (RMSE lowest, NDCG@k highest; ties to the earlier
point), refit that point on the whole training part and only then score the test part.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from . import columns as C
from . import metrics as M
from .families import RATING, FitRuntime, family
from .splits import validation_holdout

ALL_RELEVANT = float("-inf")


@dataclass(frozen=True)
class Protocol:
    """How a split is scored: the cut k, what counts as relevant, how validation is carved."""

    name: str
    k: int = 10
    threshold: float = M.DEFAULT_RELEVANCE_THRESHOLD
    validation_fraction: float = 0.2
    stratified_validation: bool = False
    seed: int = 42


OFFICIAL = Protocol("official")
RECOMMENDERS = Protocol(
    "recommenders", threshold=ALL_RELEVANT, validation_fraction=0.25, stratified_validation=True
)
THRESHOLD4 = Protocol("threshold4")


def evaluate_model(
    model: Any,
    train: DataFrame,
    test: DataFrame,
    protocol: Protocol,
    *,
    item_features: DataFrame | None = None,
    beyond_accuracy: bool = False,
    ranking: bool = True,
) -> dict[str, float | None]:
    """Scores a fitted model on `test`: rating metrics for rating families, ranking metrics for all.

    Lists are top-`k` for the test users, excluding their training movies. With `beyond_accuracy`
    also catalogue and distributional coverage, novelty, MAP and R-precision over the whole list,
    and (given `item_features`) intra-list diversity and serendipity; `ranking=False` skips the lists
    (rating-only protocols). Runs Spark jobs.
    """
    k = protocol.k
    out: dict[str, float | None] = {}
    if model.objective == "rmse":
        predictions = model.transform(test.select(C.USER_ID, C.MOVIE_ID, C.RATING)).cache()
        out.update(M.rating_metrics(predictions))
        out.update(M.explained_rating_metrics(predictions))
        predictions.unpersist()
    if not ranking:
        return out
    users = test.select(C.USER_ID).distinct()
    lists = model.recommend_for_users(users, k, exclude=train).cache()
    out.update(M.ranking_metrics(lists, test, k, threshold=protocol.threshold))
    if beyond_accuracy:
        out.update(
            {
                f"{name}_full": v
                for name, v in M.full_list_metrics(lists, test, threshold=protocol.threshold).items()
            }
        )
        out["catalogue_coverage"] = M.catalogue_coverage(lists, train, k)
        out["distributional_coverage"] = M.distributional_coverage(lists, k)
        out["novelty"] = M.novelty(lists, train, k)
        if item_features is not None:
            out["intra_list_diversity"] = M.intra_list_diversity(lists, item_features, k)
            out["serendipity"] = M.serendipity(
                lists, train, test, item_features, k, threshold=protocol.threshold
            )
    lists.unpersist()
    return out


def _objective_value(model: Any, fit: DataFrame, validation: DataFrame, protocol: Protocol) -> float:
    if model.objective == "rmse":
        value = M.rmse(model.transform(validation.select(C.USER_ID, C.MOVIE_ID, C.RATING)))
    else:
        users = validation.select(C.USER_ID).distinct()
        lists = model.recommend_for_users(users, protocol.k, exclude=fit)
        value = M.ndcg_at_k(lists, validation, protocol.k, threshold=protocol.threshold)
    if value is None:
        raise ValueError(f"validation split of protocol {protocol.name} scores nothing: too few rows")
    return value


def select_point(
    family_name: str,
    grid: Sequence[dict[str, Any]],
    train: DataFrame,
    protocol: Protocol,
    runtime: FitRuntime,
) -> dict[str, Any]:
    """Nested selection on `train` alone: `{"point", "validation": [{point, objective value, fit_seconds}]}`.

    One grid point is returned as is, without fitting (nothing to choose).
    """
    fam = family(family_name)
    if not grid:
        raise ValueError(f"empty grid for {family_name}")
    if len(grid) == 1:
        return {"point": dict(grid[0]), "validation": []}
    split = validation_holdout(
        train, protocol.validation_fraction, protocol.seed, stratified=protocol.stratified_validation
    )
    fit, validation = split.train.cache(), split.test.cache()
    scored = []
    try:
        for point in grid:
            started = time.perf_counter()
            model = fam.estimator(point, runtime).fit(fit)
            value = _objective_value(model, fit, validation, protocol)
            model.unpersist()
            scored.append(
                {"point": dict(point), fam.objective: value, "fit_seconds": time.perf_counter() - started}
            )
    finally:
        fit.unpersist()
        validation.unpersist()
    sign = 1.0 if fam.kind == RATING else -1.0
    best = min(range(len(scored)), key=lambda i: (sign * scored[i][fam.objective], i))
    return {"point": scored[best]["point"], "validation": scored}


def select_and_evaluate(
    family_name: str,
    grid: Sequence[dict[str, Any]],
    train: DataFrame,
    test: DataFrame,
    protocol: Protocol,
    runtime: FitRuntime,
    **evaluate_options: Any,
) -> dict[str, Any]:
    """Nested: `select_point` on `train`, refit the chosen point on all of `train`, score `test`.

    Returns `{"family", "point", "validation", "fit_seconds", "metrics"}`; `fit_seconds` is the
    final refit's (forced: `fit` runs the Spark jobs or the torch run).
    """
    chosen = select_point(family_name, grid, train, protocol, runtime)
    started = time.perf_counter()
    model = family(family_name).estimator(chosen["point"], runtime).fit(train)
    fit_seconds = time.perf_counter() - started
    metrics = evaluate_model(model, train, test, protocol, **evaluate_options)
    info = getattr(model, "info", None)
    model.unpersist()
    result = {"family": family_name, **chosen, "fit_seconds": fit_seconds, "metrics": metrics}
    if info:
        result["torch"] = info
    return result


def genre_features(movies: DataFrame) -> DataFrame:
    """(movie_id, features): genre indicator vectors from the canonical movies table (`genres` array)."""
    genres = sorted(r[0] for r in movies.select(F.explode(C.GENRES)).distinct().collect())
    vector = F.array(*(F.array_contains(C.GENRES, g).cast("double") for g in genres))
    return movies.select(C.MOVIE_ID, vector.alias("features"))
