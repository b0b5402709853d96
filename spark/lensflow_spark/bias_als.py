"""Bias-aware ALS: a regularised bias model, then explicit Spark ALS on what it leaves unexplained.

    r_ui ~ mu + b_u + b_i + p_u . q_i,   prediction clipped to the release's rating scale

Stage 1 is `baselines.UserItemBias` (Koren's baseline predictors: alternating closed-form damped
means, separate damping for users and movies, fitted in Spark). Stage 2 fits Spark's explicit ALS on
the residuals r_ui - mu - b_u - b_i. Plain ALS has to spend factors (and fight its regulariser) to
express "this user rates high" or "this movie is liked"; with the biases taken out, the factors model
only the interaction, which is why this beats both plain ALS and the bias baseline (bench/models.py).

Backfitting (`backfit_rounds` > 1) then fits the two parts jointly, as SGD-trained biased MF does:
each further round refits the biases (mu included) on r_ui - p_u . q_i, what the factors leave, and
ALS on what the new biases leave. The first round's biases absorb some interaction (a user who loves
one genre looks generous); later rounds hand it back to the factors. Each round costs one bias fit
and one ALS fit.

Unknown users or movies keep whatever part is known: the biases default to 0 and a missing factor
term is 0, so an unknown pair gets mu.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from pyspark.ml.recommendation import ALSModel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from . import columns as C
from . import storage
from .als import ALSConfig, ALSRuntime, build_estimator
from .baselines import ITEM_BIAS, USER_BIAS, UserItemBias, UserItemBiasConfig, UserItemBiasModel
from .topn import FEATURES, OFFSET, ItemMatrix, collect_items, similar_movies, top_n_from_factors


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class BiasALSConfig:
    """Hyperparameters of `BiasALS`: one grid point of the `bias_als` family."""

    rank: int = 50
    """Latent factors of the residual model (>= 1)."""
    reg_param: float = 0.1
    """Spark ALS lambda on the residual factors (>= 0; scaled by each user's/movie's rating count)."""
    max_iter: int = 15
    """ALS sweeps on the residuals (>= 1)."""
    user_damping: float = 5.0
    """lambda_u of the bias model (>= 0): shrinks each user's bias towards 0."""
    item_damping: float = 5.0
    """lambda_i of the bias model (>= 0): shrinks each movie's bias towards 0."""
    bias_iterations: int = 3
    """Alternating sweeps of the bias model (>= 1)."""
    backfit_rounds: int = 1
    """Rounds of (biases, then ALS) (>= 1); round > 1 fits the biases on r - p_u . q_i (module doc)."""

    def __post_init__(self) -> None:
        for name in ("rank", "max_iter", "bias_iterations", "backfit_rounds"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        for name in ("reg_param", "user_damping", "item_damping"):
            value = getattr(self, name)
            if not _is_real(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
            object.__setattr__(self, name, float(value))

    def to_dict(self) -> dict[str, Any]:
        """The grid point as JSON with our snake_case names."""
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> BiasALSConfig:
        """Inverse of `to_dict`; unknown keys are an error naming them, missing ones default."""
        unknown = set(doc) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown bias_als hyperparameters: {', '.join(sorted(unknown))}")
        return cls(**doc)

    def bias_config(self) -> UserItemBiasConfig:
        return UserItemBiasConfig(
            item_damping=self.item_damping, user_damping=self.user_damping, iterations=self.bias_iterations
        )

    def als_config(self) -> ALSConfig:
        return ALSConfig(rank=self.rank, reg_param=self.reg_param, max_iter=self.max_iter)


def _check_scale(scale: tuple[float, float]) -> tuple[float, float]:
    lo, hi = scale
    if not (_is_real(lo) and _is_real(hi)) or lo >= hi:
        raise ValueError(f"rating scale must be (min, max) with min < max, got {scale!r}")
    return float(lo), float(hi)


class BiasALSModel:
    """A fitted bias-aware ALS: `transform` predicts ratings, `recommend_for_users` serves top-N."""

    family: ClassVar[str] = "bias_als"
    objective: ClassVar[str] = "rmse"
    score_label: ClassVar[str] = "predicted rating"

    def __init__(
        self, biases: UserItemBiasModel, factors: ALSModel, config: BiasALSConfig, scale: tuple[float, float]
    ):
        self.biases = biases
        self.factors = factors
        self.config = config
        self.scale = _check_scale(scale)
        """(min, max) of the release's ratings: every prediction and served score lies within it."""

    @property
    def global_mean(self) -> float:
        return self.biases.global_mean

    def _clip(self, column: Column) -> Column:
        return F.least(F.greatest(column, F.lit(self.scale[0])), F.lit(self.scale[1]))

    def transform(self, pairs: DataFrame) -> DataFrame:
        """`pairs` plus `prediction` = clip(mu + b_u + b_i + p_u . q_i). Lazy; row order is not kept."""
        if C.PREDICTION in pairs.columns:
            raise ValueError(f"pairs already have a {C.PREDICTION!r} column")
        baseline = self.biases.transform(pairs).withColumnRenamed(C.PREDICTION, "_baseline")
        interaction = self.factors.transform(baseline)  # cold start `nan` keeps every row
        term = F.nanvl(F.col(C.PREDICTION), F.lit(0.0))
        return interaction.select(*pairs.columns, self._clip(F.col("_baseline") + term).alias(C.PREDICTION))

    def user_vectors(self) -> DataFrame:
        """(user_id, features, offset = mu + b_u) for the users the factors know. Lazy."""
        users = self.factors.userFactors.select(F.col("id").alias(C.USER_ID), F.col(FEATURES))
        bias = F.coalesce(F.col(USER_BIAS), F.lit(0.0)) + F.lit(self.global_mean)
        return users.join(self.biases.users, C.USER_ID, "left").select(
            C.USER_ID, FEATURES, bias.alias(OFFSET)
        )

    def item_matrix(self, min_support: int = 0) -> ItemMatrix:
        """Action: item factors with b_i as offsets (`min_support` needs training counts: unused here)."""
        offsets = self.biases.items.select(C.MOVIE_ID, F.col(ITEM_BIAS).alias(OFFSET))
        return collect_items(self.factors.itemFactors, offsets)

    def recommend_for_users(
        self, users: DataFrame, n: int, *, exclude: DataFrame, explain: bool = False
    ) -> DataFrame:
        """Top-`n` by predicted rating (clipped to the scale) for the known users in `users`, none in
        `exclude`. Action (collects the item matrix), then lazy. See `topn.top_n_from_factors`."""
        wanted = users.select(C.USER_ID).distinct()
        vectors = self.user_vectors().join(wanted, C.USER_ID)
        return top_n_from_factors(vectors, self.item_matrix(), exclude, n, explain=explain, clip=self.scale)

    def similar_movies(self, movie_id: int, n: int) -> list[tuple[int, float]]:
        """Action: the `n` movies whose residual factors are closest (cosine) to `movie_id`'s."""
        return similar_movies(self.item_matrix(), movie_id, n)

    _META = "metadata.json"

    def save(self, path: str) -> None:
        """Writes `biases/`, `factors/` (Spark's ALSModel) and metadata.json under `path`, overwriting."""
        root = path.rstrip("/")
        self.biases.save(f"{root}/biases")
        self.factors.write().overwrite().save(f"{root}/factors")
        doc = {"family": self.family, "config": self.config.to_dict(), "scale": list(self.scale)}
        storage.write_json(self.biases.items.sparkSession, f"{root}/{self._META}", doc)

    @classmethod
    def load(cls, spark: SparkSession, path: str) -> BiasALSModel:
        """Reads a model written by `save`; a folder holding another family is a ValueError."""
        root = path.rstrip("/")
        doc = storage.read_json(spark, f"{root}/{cls._META}")
        if doc.get("family") != cls.family:
            raise ValueError(f"{path} holds a {doc.get('family')!r} model, not {cls.family!r}")
        biases = UserItemBiasModel.load(spark, f"{root}/biases")
        factors = ALSModel.load(f"{root}/factors")
        return cls(biases, factors, BiasALSConfig.from_dict(doc["config"]), tuple(doc["scale"]))

    def unpersist(self) -> None:
        self.biases.unpersist()


class BiasALS:
    """Estimator of `BiasALSModel`: the bias model, then ALS on its residuals. See the module doc."""

    def __init__(self, config: BiasALSConfig, runtime: ALSRuntime, scale: tuple[float, float]):
        self.config = config
        self.runtime = runtime
        self.scale = _check_scale(scale)

    def fit(self, ratings: DataFrame) -> BiasALSModel:
        """Fits on (user_id, movie_id, rating) rows. Runs Spark jobs (the bias sweeps and ALS, per round)."""
        spark = ratings.sparkSession
        spark.sparkContext.setCheckpointDir(self.runtime.checkpoint_dir)
        estimator = build_estimator(self.config.als_config(), self.runtime).setColdStartStrategy("nan")
        rows = ratings.select(C.USER_ID, C.MOVIE_ID, C.RATING)
        biases: UserItemBiasModel | None = None
        factors: ALSModel | None = None
        for _ in range(self.config.backfit_rounds):
            target = rows if factors is None else _minus(rows, factors, "interaction").cache()
            fitted = UserItemBias(self.config.bias_config()).fit(target)
            residuals = _minus(rows, fitted, "baseline").cache()
            try:
                factors = estimator.fit(residuals)
            finally:
                residuals.unpersist()
                if target is not rows:
                    target.unpersist()
            if biases is not None:
                biases.unpersist()
            biases = fitted
        assert biases is not None and factors is not None  # backfit_rounds >= 1
        return BiasALSModel(biases, factors, self.config, self.scale)


def _minus(rows: DataFrame, part: UserItemBiasModel | ALSModel, name: str) -> DataFrame:
    """(user_id, movie_id, rating - what `part` predicts): the bias model's or the factors' share.
    Rows the part cannot score (NaN/null) are dropped; every training pair is known to both. Lazy."""
    scored = part.transform(rows).withColumnRenamed(C.PREDICTION, f"_{name}")
    left = (F.col(C.RATING) - F.col(f"_{name}")).alias(C.RATING)
    return scored.select(C.USER_ID, C.MOVIE_ID, left).where(F.col(C.RATING).isNotNull() & ~F.isnan(C.RATING))
