"""Implicit ALS: the ranking model that serves top-N (Hu, Koren, Volinsky 2008, Spark's `implicitPrefs`).

Every rating is an observed interaction: preference p_ui = 1, confidence c_ui = 1 + alpha * r_ui;
every unrated pair has p_ui = 0, c_ui = 1. ALS minimises

    sum_{u,i} c_ui (p_ui - x_u . y_i)^2 + lambda (sum |x_u|^2 + sum |y_i|^2)

so x_u . y_i estimates "would this user watch this movie", not a rating. That is what top-N needs:
explicit ALS ranks every unseen movie by an extrapolated rating, and rarely rated movies with
inflated factors win (issue 12: NDCG@10 0.0001). The served score is that preference, clipped to
[0, 1] after ranking; it is labelled `implicit_als preference`, never a predicted rating.

`min_support` (a documented option, default 0 = off) keeps movies with fewer training ratings
than that out of every list and out of similar movies.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from pyspark.ml.recommendation import ALSModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from . import columns as C
from . import storage
from .als import ALSConfig, ALSRuntime, build_estimator
from .topn import FEATURES, OFFSET, ItemMatrix, collect_items, similar_movies, top_n_from_factors

SCORE_RANGE = (0.0, 1.0)
"""Served scores are preferences clipped to this range."""


@dataclass(frozen=True)
class ImplicitALSConfig:
    """Hyperparameters of `ImplicitALS`: one grid point of the `implicit_als` family."""

    rank: int = 64
    """Latent factors (>= 1)."""
    reg_param: float = 0.1
    """lambda (>= 0), scaled by Spark by each user's/movie's count."""
    max_iter: int = 15
    """ALS sweeps (>= 1)."""
    alpha: float = 1.0
    """Confidence slope (>= 0): c_ui = 1 + alpha * r_ui."""
    min_support: int = 0
    """Movies with fewer training ratings than this are never recommended (>= 0; 0 = off)."""

    def __post_init__(self) -> None:
        for name, low in (("rank", 1), ("max_iter", 1), ("min_support", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        for name in ("reg_param", "alpha"):
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if not ok or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
            object.__setattr__(self, name, float(value))

    def to_dict(self) -> dict[str, Any]:
        """The grid point as JSON with our snake_case names."""
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ImplicitALSConfig:
        """Inverse of `to_dict`; unknown keys are an error naming them, missing ones default."""
        unknown = set(doc) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown implicit_als hyperparameters: {', '.join(sorted(unknown))}")
        return cls(**doc)

    def als_config(self) -> ALSConfig:
        return ALSConfig(
            rank=self.rank,
            reg_param=self.reg_param,
            max_iter=self.max_iter,
            alpha=self.alpha,
            implicit_prefs=True,
        )


class ImplicitALSModel:
    """A fitted implicit ALS: top-N lists with explanations, similar movies. No rating predictions."""

    family: ClassVar[str] = "implicit_als"
    objective: ClassVar[str] = "ndcg_at_k"
    score_label: ClassVar[str] = "implicit_als preference"

    def __init__(self, factors: ALSModel, supports: DataFrame, config: ImplicitALSConfig):
        self.factors = factors
        self.supports = supports
        """(movie_id, support): training ratings per movie, for `min_support`."""
        self.config = config
        self._items: ItemMatrix | None = None

    def item_matrix(self) -> ItemMatrix:
        """Action (once, then cached): item factors, candidates by `min_support`."""
        if self._items is None:
            self._items = collect_items(
                self.factors.itemFactors, None, self.supports, min_support=self.config.min_support
            )
        return self._items

    def user_vectors(self) -> DataFrame:
        """(user_id, features, offset 0) for the users the model knows. Lazy."""
        return self.factors.userFactors.select(
            F.col("id").alias(C.USER_ID), F.col(FEATURES), F.lit(0.0).alias(OFFSET)
        )

    def recommend_for_users(
        self, users: DataFrame, n: int, *, exclude: DataFrame, explain: bool = False
    ) -> DataFrame:
        """Top-`n` (user_id, movie_id, score, rank, because_movie_id) for known users, none in `exclude`.

        Scores are preferences clipped to `SCORE_RANGE` after ranking. Action (the item matrix), then
        lazy. Users the model does not know get no rows.
        """
        wanted = users.select(C.USER_ID).distinct()
        vectors = self.user_vectors().join(wanted, C.USER_ID)
        return top_n_from_factors(vectors, self.item_matrix(), exclude, n, explain=explain, clip=SCORE_RANGE)

    def similar_movies(self, movie_id: int, n: int) -> list[tuple[int, float]]:
        """Action: the `n` candidate movies closest (cosine of item factors) to `movie_id`, best first."""
        return similar_movies(self.item_matrix(), movie_id, n)

    _META = "metadata.json"

    def save(self, path: str) -> None:
        """Writes `factors/` (Spark's ALSModel), `supports/` and metadata.json under `path`, overwriting."""
        root = path.rstrip("/")
        self.factors.write().overwrite().save(f"{root}/factors")
        self.supports.write.mode("overwrite").parquet(f"{root}/supports")
        doc = {"family": self.family, "config": self.config.to_dict()}
        storage.write_json(self.supports.sparkSession, f"{root}/{self._META}", doc)

    @classmethod
    def load(cls, spark: SparkSession, path: str) -> ImplicitALSModel:
        """Reads a model written by `save`; a folder holding another family is a ValueError."""
        root = path.rstrip("/")
        doc = storage.read_json(spark, f"{root}/{cls._META}")
        if doc.get("family") != cls.family:
            raise ValueError(f"{path} holds a {doc.get('family')!r} model, not {cls.family!r}")
        factors = ALSModel.load(f"{root}/factors")
        return cls(
            factors, spark.read.parquet(f"{root}/supports"), ImplicitALSConfig.from_dict(doc["config"])
        )

    def unpersist(self) -> None:
        self.supports.unpersist()


class ImplicitALS:
    """Estimator of `ImplicitALSModel`; see the module doc for the objective."""

    def __init__(self, config: ImplicitALSConfig, runtime: ALSRuntime):
        self.config = config
        self.runtime = runtime

    def fit(self, ratings: DataFrame) -> ImplicitALSModel:
        """Fits on (user_id, movie_id, rating) rows (ratings become confidences). Runs Spark jobs."""
        spark = ratings.sparkSession
        spark.sparkContext.setCheckpointDir(self.runtime.checkpoint_dir)
        train = ratings.select(C.USER_ID, C.MOVIE_ID, F.col(C.RATING).cast("double").alias(C.RATING))
        factors = build_estimator(self.config.als_config(), self.runtime).fit(train)
        supports = train.groupBy(C.MOVIE_ID).agg(F.count(F.lit(1)).alias("support")).cache()
        return ImplicitALSModel(factors, supports, self.config)
