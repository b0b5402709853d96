"""Every model family behind one surface, so grid search, evaluation and the report need no special case.

A family turns a grid point (a JSON dict of its hyperparameters) into an estimator; `fit(ratings)`
returns a model. Every model has

* `recommend_for_users(users, n, *, exclude)`: top-n `(user_id, movie_id, score, rank, ...)`
  lists, never a movie in `exclude` (the training ratings);
* `score_label`: what its scores are ("predicted rating", "implicit_als preference", ...);
* rating families (`objective == "rmse"`) also `transform(pairs)` -> `prediction`.

| family         | kind    | objective | grid point keys                                          |
|----------------|---------|-----------|----------------------------------------------------------|
| global_mean    | rating  | rmse      | (none)                                                   |
| user_item_bias | rating  | rmse      | item_damping, user_damping, iterations                   |
| most_popular   | ranking | ndcg_at_k | (none)                                                   |
| als            | rating  | rmse      | rank, reg_param, max_iter                                |
| bias_als       | rating  | rmse      | rank, reg_param, max_iter, user_damping, item_damping,   |
|                |         |           | bias_iterations, backfit_rounds                          |
| implicit_als   | ranking | ndcg_at_k | rank, reg_param, max_iter, alpha, min_support            |
| torch_ease     | ranking | ndcg_at_k | l2, min_support                                          |
| torch_autorec  | rating  | rmse      | hidden, l2, epochs, learning_rate                        |

Each family is selected by its own objective: lowest validation RMSE, or highest validation NDCG@k.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyspark.ml.recommendation import ALSModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from . import baselines as B
from . import columns as C
from .als import ALSConfig, ALSRuntime, build_estimator
from .bias_als import BiasALS, BiasALSConfig
from .implicit_als import ImplicitALS, ImplicitALSConfig
from .topn import FEATURES, OFFSET, collect_items, top_n_from_factors
from .torch_autorec import AutoRecConfig, TorchAutoRec
from .torch_ease import EASEConfig, TorchEASE

RATING, RANKING = "rating", "ranking"
OBJECTIVES = {RATING: "rmse", RANKING: "ndcg_at_k"}


@dataclass(frozen=True)
class FitRuntime:
    """How to fit, whatever the family: not part of any grid point."""

    checkpoint_dir: str
    """Spark checkpoint folder for the ALS families."""
    work_dir: str
    """A local folder the PyTorch family may write its fold and weights to."""
    scale: tuple[float, float]
    """(min, max) rating of the release: rating predictions are clipped to it."""
    seed: int = 42
    num_blocks: int = 10
    """ALS user/movie blocks: Spark's 10 suit a cluster; a few cut task overhead on 2 local cores."""

    def als(self) -> ALSRuntime:
        return ALSRuntime(
            checkpoint_dir=self.checkpoint_dir,
            seed=self.seed,
            cold_start_strategy="nan",
            num_blocks=self.num_blocks,
        )


class PlainALSModel:
    """Spark's explicit ALS with the shared surface: unknown pairs get mu, predictions are clipped."""

    family, objective, score_label = "als", "rmse", "predicted rating"

    def __init__(self, factors: ALSModel, global_mean: float, scale: tuple[float, float]):
        self.factors, self.global_mean, self.scale = factors, global_mean, scale

    def transform(self, pairs: DataFrame) -> DataFrame:
        """`pairs` plus `prediction` = clip(p_u . q_i), or clip(mu) for an unknown user or movie. Lazy."""
        raw = F.coalesce(F.nanvl(F.col(C.PREDICTION), F.lit(self.global_mean)), F.lit(self.global_mean))
        clipped = F.least(F.greatest(raw, F.lit(self.scale[0])), F.lit(self.scale[1]))
        return self.factors.transform(pairs).select(*pairs.columns, clipped.alias(C.PREDICTION))

    def recommend_for_users(self, users: DataFrame, n: int, *, exclude: DataFrame, explain: bool = False):
        """Top-n by predicted rating (clipped) for the known users; see `topn`."""
        vectors = self.factors.userFactors.select(
            F.col("id").alias(C.USER_ID), FEATURES, F.lit(0.0).alias(OFFSET)
        ).join(users.select(C.USER_ID).distinct(), C.USER_ID)
        items = collect_items(self.factors.itemFactors)
        return top_n_from_factors(vectors, items, exclude, n, explain=explain, clip=self.scale)

    def unpersist(self) -> None:
        """Nothing cached."""


class PlainALS:
    def __init__(self, config: ALSConfig, runtime: FitRuntime):
        self.config, self.runtime = config, runtime

    def fit(self, ratings: DataFrame) -> PlainALSModel:
        spark = ratings.sparkSession
        spark.sparkContext.setCheckpointDir(self.runtime.checkpoint_dir)
        mu = ratings.agg(F.avg(C.RATING)).first()[0]
        factors = build_estimator(self.config, self.runtime.als()).fit(ratings)
        return PlainALSModel(factors, float(mu), self.runtime.scale)


class _Baseline:
    """A baseline estimator with the shared surface (its models already have it, bar the label)."""

    def __init__(self, estimator: Any, family: str):
        self.estimator, self.family = estimator, family

    def fit(self, ratings: DataFrame):
        model = self.estimator.fit(ratings)
        model.family = self.family
        model.objective = FAMILIES[self.family].objective
        model.score_label = "predicted rating" if self.family != "most_popular" else "training ratings count"
        recommend = model.recommend_for_users
        model.recommend_for_users = lambda users, n, *, exclude, explain=False: recommend(
            users, n, exclude=exclude
        )
        return model


@dataclass(frozen=True)
class Family:
    """A model family: its kind (rating/ranking) and how a grid point becomes an estimator."""

    name: str
    kind: str
    build: Callable[[dict[str, Any], FitRuntime], Any]

    @property
    def objective(self) -> str:
        """`rmse` (lower is better) for rating families, `ndcg_at_k` (higher is better) for ranking."""
        return OBJECTIVES[self.kind]

    def estimator(self, point: dict[str, Any], runtime: FitRuntime):
        """The estimator for one grid point; unknown or invalid hyperparameters raise ValueError."""
        return self.build(dict(point), runtime)


def _no_params(name: str, point: dict[str, Any]) -> None:
    if point:
        raise ValueError(f"{name} takes no hyperparameters, got {', '.join(sorted(point))}")


def _global_mean(point, runtime):
    _no_params("global_mean", point)
    return _Baseline(B.GlobalMean(), "global_mean")


def _most_popular(point, runtime):
    _no_params("most_popular", point)
    return _Baseline(B.MostPopular(), "most_popular")


def _user_item_bias(point, runtime):
    return _Baseline(B.UserItemBias(B.UserItemBiasConfig(**point)), "user_item_bias")


def _als(point, runtime):
    config = ALSConfig.from_dict(point)
    if config.implicit_prefs:
        raise ValueError("family als is explicit; use implicit_als for implicit preferences")
    return PlainALS(config, runtime)


def _torch_ease(point, runtime):
    return TorchEASE(EASEConfig.from_dict(point), os.path.join(runtime.work_dir, "torch_ease"))


def _torch_autorec(point, runtime):
    work_dir = os.path.join(runtime.work_dir, "torch_autorec")
    return TorchAutoRec(AutoRecConfig.from_dict(point), work_dir, runtime.scale, seed=runtime.seed)


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("global_mean", RATING, _global_mean),
        Family("user_item_bias", RATING, _user_item_bias),
        Family("most_popular", RANKING, _most_popular),
        Family("als", RATING, _als),
        Family("bias_als", RATING, lambda p, r: BiasALS(BiasALSConfig.from_dict(p), r.als(), r.scale)),
        Family("implicit_als", RANKING, lambda p, r: ImplicitALS(ImplicitALSConfig.from_dict(p), r.als())),
        Family("torch_ease", RANKING, _torch_ease),
        Family("torch_autorec", RATING, _torch_autorec),
    )
}


def family(name: str) -> Family:
    """The family called `name`; an unknown name is a ValueError listing the known ones."""
    if name not in FAMILIES:
        raise ValueError(f"unknown model family {name!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES[name]
