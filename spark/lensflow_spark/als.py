"""Matrix factorisation with Spark MLlib's ALS: config, fitting, cross-validated evaluation, top-n.

`ALSConfig` holds the hyperparameters (one grid point), `ALSRuntime` how to run them (seed,
checkpointing, cold start, blocks). Spark's camelCase parameter names appear only in
`build_estimator`. Fitting always sets a checkpoint directory first: without one, ALS silently
skips checkpointing and long runs fail with a StackOverflowError on the ever-growing lineage.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from pyspark.ml.recommendation import ALS, ALSModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from . import columns as C
from . import metrics as M
from . import topn
from .splits import Fold

PREDICTION, SCORE, RANK = C.PREDICTION, C.SCORE, C.RANK
SOURCE = "source"
"""recommend_for_users: `als` or `popularity`, which of the two produced the row."""
POPULARITY = "popularity"
"""movie_popularity: how many ratings the movie has (double, so other popularity measures fit)."""
SOURCE_ALS = "als"
SOURCE_POPULARITY = "popularity"
COLD_START_STRATEGIES = ("drop", "nan")
ERROR_METRICS = M.RATING_METRICS


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class ALSConfig:
    """ALS hyperparameters: one point of a grid search. Defaults are Spark's."""

    rank: int = 10
    """Number of latent factors per user and per movie (>= 1)."""
    reg_param: float = 0.1
    """L2 regularisation weight lambda (>= 0); Spark scales it by each user's/movie's rating count."""
    max_iter: int = 10
    """Alternating least-squares sweeps (>= 1); each solves users given movies, then movies given users."""
    alpha: float = 1.0
    """Implicit feedback only: confidence is `1 + alpha * rating` (>= 0). Ignored when explicit."""
    implicit_prefs: bool = False
    """Treat ratings as implicit confidence (Hu, Koren, Volinsky 2008) instead of explicit targets."""
    nonnegative: bool = False
    """Constrain factors to be >= 0 (non-negative least squares)."""

    def __post_init__(self) -> None:
        if not _is_int(self.rank) or self.rank < 1:
            raise ValueError(f"rank must be an int >= 1, got {self.rank!r}")
        if not _is_real(self.reg_param) or self.reg_param < 0:
            raise ValueError(f"reg_param must be a finite number >= 0, got {self.reg_param!r}")
        if not _is_int(self.max_iter) or self.max_iter < 1:
            raise ValueError(f"max_iter must be an int >= 1, got {self.max_iter!r}")
        if not _is_real(self.alpha) or self.alpha < 0:
            raise ValueError(f"alpha must be a finite number >= 0, got {self.alpha!r}")
        for name in ("implicit_prefs", "nonnegative"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        # Store reals as floats, so `to_dict` (and the JSON of a grid point) is the same for 1 and 1.0.
        object.__setattr__(self, "reg_param", float(self.reg_param))
        object.__setattr__(self, "alpha", float(self.alpha))

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-serialisable dict with our snake_case names."""
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ALSConfig:
        """Builds a config from `to_dict`'s shape; unknown keys are an error, missing ones default."""
        unknown = set(doc) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown ALS hyperparameters: {', '.join(sorted(unknown))}")
        return cls(**doc)


@dataclass(frozen=True)
class ALSRuntime:
    """How to run ALS, as opposed to what to fit: these do not define a grid point."""

    checkpoint_dir: str
    """Folder URI for RDD checkpoints (HDFS or s3a on a cluster); set before every fit."""
    seed: int = 42
    """Seed of the factors' random initialisation; same seed and input, same model."""
    checkpoint_interval: int = 5
    """Checkpoint the factors every this many iterations (>= 1), cutting the lineage."""
    cold_start_strategy: str = "drop"
    """`drop`: predictions for users/movies absent from training are dropped; `nan`: kept as NaN."""
    num_blocks: int = 10
    """User and movie blocks (partitions) of the factor matrices; Spark's default is 10. The random
    initialisation is per block, so changing it changes the model (slightly)."""

    def __post_init__(self) -> None:
        if not isinstance(self.checkpoint_dir, str) or not self.checkpoint_dir:
            raise ValueError(f"checkpoint_dir must be a non-empty string, got {self.checkpoint_dir!r}")
        if not _is_int(self.seed) or not -(2**63) <= self.seed < 2**63:
            raise ValueError(f"seed must be a 64-bit int, got {self.seed!r}")
        if not _is_int(self.checkpoint_interval) or self.checkpoint_interval < 1:
            raise ValueError(f"checkpoint_interval must be an int >= 1, got {self.checkpoint_interval!r}")
        if self.cold_start_strategy not in COLD_START_STRATEGIES:
            strategy = self.cold_start_strategy
            raise ValueError(f"cold_start_strategy must be one of {COLD_START_STRATEGIES}, got {strategy!r}")
        if not _is_int(self.num_blocks) or self.num_blocks < 1:
            raise ValueError(f"num_blocks must be an int >= 1, got {self.num_blocks!r}")


def build_estimator(config: ALSConfig, runtime: ALSRuntime) -> ALS:
    """The Spark ALS estimator for one config; the only place Spark's parameter names appear."""
    estimator = ALS(
        userCol=C.USER_ID,
        itemCol=C.MOVIE_ID,
        ratingCol=C.RATING,
        rank=config.rank,
        regParam=config.reg_param,
        maxIter=config.max_iter,
        alpha=config.alpha,
        implicitPrefs=config.implicit_prefs,
        nonnegative=config.nonnegative,
        seed=runtime.seed,
        checkpointInterval=runtime.checkpoint_interval,
        coldStartStrategy=runtime.cold_start_strategy,
        numUserBlocks=runtime.num_blocks,
        numItemBlocks=runtime.num_blocks,
    )
    return estimator.setPredictionCol(PREDICTION)


def _fit(spark: SparkSession, ratings: DataFrame, config: ALSConfig, runtime: ALSRuntime) -> ALSModel:
    spark.sparkContext.setCheckpointDir(runtime.checkpoint_dir)
    return build_estimator(config, runtime).fit(ratings)


def train_final(spark: SparkSession, ratings: DataFrame, config: ALSConfig, runtime: ALSRuntime) -> ALSModel:
    """Fits ALS on all of `ratings` (the canonical table), after setting the checkpoint directory.

    Runs Spark jobs. The model keeps `runtime.cold_start_strategy` for its later `transform`s.
    """
    return _fit(spark, ratings, config, runtime)


def save_model(model: ALSModel, uri: str) -> None:
    """I/O: saves a fitted model under `uri` (overwriting), for `load_model`."""
    model.write().overwrite().save(uri)


def load_model(uri: str) -> ALSModel:
    """I/O: loads a model written by `save_model`."""
    return ALSModel.load(uri)


def movie_popularity(ratings: DataFrame) -> DataFrame:
    """Popularity of each movie as its number of ratings: `(movie_id, popularity)`."""
    return ratings.groupBy(C.MOVIE_ID).agg(F.count(F.lit(1)).cast("double").alias(POPULARITY))


def recommend_for_users(
    model: ALSModel, users_df: DataFrame, n: int, rated_df: DataFrame, popularity_df: DataFrame
) -> DataFrame:
    """Top-`n` movies for each user in `users_df`, never one the user rated in `rated_df`.

    Users the model knows get the movies it knows with the highest predicted rating, the dot product
    of the factors (`source` `als`); users it does not know get the most popular movies they have not
    rated (`source` `popularity`, `score` the `popularity` of `popularity_df(movie_id, popularity)`,
    e.g. `movie_popularity(train)`). Returns `(user_id, movie_id, score double, rank int, source)`,
    rank 1-based in order of score descending then movie_id ascending, so ties are deterministic.
    A user gets fewer than `n` rows only when fewer unrated candidates exist. `rated_df` may be
    `topn.rated_lists(ratings)`, cached when several models' lists exclude the same ratings.

    Blocked scoring (`topn`): cost users x movies x rank flops, memory one block of users per task;
    no (user, movie) table is built. Lazy apart from collecting the movie factors and popularity
    (catalogue-sized) for the broadcast.
    """
    if not _is_int(n) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    users = users_df.select(C.USER_ID).distinct()
    rated = topn.rated_lists(rated_df)
    known = model.userFactors.join(users.withColumnRenamed(C.USER_ID, "id"), "id")
    by_model = topn.factor_scores(known, model.itemFactors, n, exclude=rated)
    unknown = users.join(model.userFactors.select(F.col("id").alias(C.USER_ID)), C.USER_ID, "left_anti")
    by_popularity = topn.additive_scores(
        unknown.withColumn(topn.TERM, F.lit(0.0)),
        popularity_df.select(C.MOVIE_ID, F.col(POPULARITY).cast("double").alias(topn.TERM)),
        n,
        exclude=rated,
    )
    return by_model.withColumn(SOURCE, F.lit(SOURCE_ALS)).unionByName(
        by_popularity.withColumn(SOURCE, F.lit(SOURCE_POPULARITY))
    )


def _evaluate_fold(spark: SparkSession, fold: Fold, config: ALSConfig, runtime: ALSRuntime) -> dict[str, Any]:
    model = _fit(spark, fold.train, config, runtime)
    predictions = model.transform(fold.test).cache()
    try:
        n_predicted = predictions.count()
        if n_predicted == 0:
            raise ValueError(f"fold {fold.fold_id}: no test rating has both its user and its movie in train")
        # The project's own metrics, not RegressionEvaluator: its sums merge in task-completion
        # order, so a rerun of the same fold could differ in the last bits.
        errors = M.rating_metrics(predictions)
    finally:
        predictions.unpersist()
    return {"fold": fold.fold_id, **errors, "n_test": fold.test.count(), "n_predicted": n_predicted}


def evaluate_grid_point(
    spark: SparkSession, folds: Sequence[Fold], config: ALSConfig, runtime: ALSRuntime
) -> dict[str, Any]:
    """Cross-validates ONE hyperparameter point: fits on each fold's train, scores its test ratings.

    Runs Spark jobs (one ALS fit per fold). Scores only test ratings whose user and movie are both
    in the fold's train (cold start is always `drop` here, whatever `runtime` says), over those
    `n_predicted` of the fold's `n_test` ratings:
      rmse = sqrt(mean((rating - prediction)^2)),  mae = mean(|rating - prediction|).
    Raises ValueError for a fold where none can be scored. With `implicit_prefs` predictions are
    preferences in [0, 1], not ratings, so these errors say little; rank such models instead.

    Returns a JSON-serialisable dict:
      {"point": config.to_dict(),
       "folds": [{"fold": id, "rmse": .., "mae": .., "n_test": .., "n_predicted": ..}, ...],
       "mean": {"rmse": .., "mae": ..}, "std": {"rmse": .., "mae": ..}}
    in fold order, `std` being the population standard deviation over folds (0 for one fold), as
    scikit-learn's grid search reports it.
    """
    if not folds:
        raise ValueError("no folds to evaluate")
    runtime = replace(runtime, cold_start_strategy="drop")
    per_fold = [_evaluate_fold(spark, fold, config, runtime) for fold in folds]
    return {
        "point": config.to_dict(),
        "folds": per_fold,
        "mean": {m: statistics.fmean(f[m] for f in per_fold) for m in ERROR_METRICS},
        "std": {m: statistics.pstdev(f[m] for f in per_fold) for m in ERROR_METRICS},
    }
