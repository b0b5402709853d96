"""Baseline recommenders as estimator/model pairs, like Spark's `ALS`/`ALSModel`.

An estimator takes its config and `fit(ratings)` returns a model; every model can

* `transform(pairs)`: add a rating `prediction` to (user_id, movie_id) rows, as `ALSModel` does;
* `score(pairs)`: add the ranking `score` that orders its recommendations;
* `recommend_for_users(users, k, exclude=train)`: top-k lists over the training catalogue, without
  the movies each user already rated, ready for the ranking metrics in `metrics.py`;
* `save(path)` and `<Model>.load(spark, path)`.

Unknown users and movies (absent from the training ratings) fall back as each model documents;
in every case a pair neither seen as user nor as movie is predicted the global mean.

`fit` runs one action, the global mean, which the models keep as a Python float; the tables a
model holds (biases, counts) are lazy and persisted, so the first use computes and caches them
(`unpersist()` drops them). `transform`, `score` and `recommend_for_users` are lazy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from . import columns as C
from . import storage, topn
from .exact import exact_sum
from .metrics import PREDICTION, SCORE

USER_BIAS = "user_bias"
ITEM_BIAS = "item_bias"
ITEM_COUNT = "item_count"
ITEM_MEAN = "item_mean"

_METADATA = "metadata.json"


def _join(folder: str, name: str) -> str:
    return folder.rstrip("/") + "/" + name


def _training_rows(ratings: DataFrame) -> DataFrame:
    """(user_id, movie_id, rating double) rows with no null or NaN: the rows every fit uses."""
    rating = F.col(C.RATING).cast("double")
    return (
        ratings.select(C.USER_ID, C.MOVIE_ID, rating.alias(C.RATING))
        .where(F.col(C.USER_ID).isNotNull() & F.col(C.MOVIE_ID).isNotNull())
        .where(F.col(C.RATING).isNotNull() & ~F.isnan(C.RATING))
    )


def _global_mean(train: DataFrame) -> float:
    """The one action of every `fit`; an empty training set is an error, not a NaN model."""
    mu = train.agg(F.avg(C.RATING)).first()[0]
    if mu is None:
        raise ValueError("cannot fit a baseline on an empty ratings DataFrame")
    return float(mu)


def _keep(df: DataFrame) -> DataFrame:
    """Persist lazily: the first use fills the cache, so fitting stays free of hidden actions."""
    return df.persist(StorageLevel.MEMORY_AND_DISK)


class _BaselineModel:
    """What the three models share: global mean, training catalogue, scoring and top-k lists."""

    kind: ClassVar[str]
    tables: ClassVar[tuple[str, ...]] = ("items",)
    """The DataFrame attributes `save` writes and `load` reads, one Parquet folder each."""

    def __init__(self, global_mean: float, items: DataFrame):
        self.global_mean = global_mean
        """mu, the mean training rating: the prediction of last resort."""
        self.items = items
        """The training catalogue (movie_id plus the model's per-movie columns)."""

    # Subclasses say how to predict and score; both get the pairs with their own columns joined.
    def _with_parameters(self, pairs: DataFrame) -> DataFrame:
        return pairs

    def _prediction(self) -> Column:
        raise NotImplementedError

    def _score(self) -> Column:
        return self._prediction()

    def _config(self) -> dict:
        return {}

    def _project(self, pairs: DataFrame, column: Column, name: str) -> DataFrame:
        original = pairs.columns
        if C.USER_ID not in original or C.MOVIE_ID not in original:
            raise ValueError(f"pairs need {C.USER_ID} and {C.MOVIE_ID}; got {', '.join(original)}")
        if name in original:
            raise ValueError(f"pairs already have a {name!r} column")
        return self._with_parameters(pairs).select(*original, column.alias(name))

    def transform(self, pairs: DataFrame) -> DataFrame:
        """`pairs` plus a double `prediction` column, the predicted rating. Lazy; row order is not kept."""
        return self._project(pairs, self._prediction(), PREDICTION)

    def score(self, pairs: DataFrame) -> DataFrame:
        """`pairs` plus a double `score` column, the model's ranking score (higher is better). Lazy."""
        return self._project(pairs, self._score(), SCORE)

    def _score_terms(self) -> tuple[Column, Column]:
        """(per-user term over `users` columns, per-movie term over `items` columns) whose sum is
        the score, summed in the same order as `_score()`, so ranks and ties are the same."""
        raise NotImplementedError

    def recommend_for_users(self, users: DataFrame, k: int, *, exclude: DataFrame | None = None) -> DataFrame:
        """Top-k (user_id, movie_id, score, rank) lists for the distinct users in `users`. Lazy.

        Candidates are every movie of the training catalogue; pass the training ratings as
        `exclude` so no user is recommended a movie already rated (the ranking metrics assume it).
        Users unknown to the model get lists too, scored by the model's unknown-user rule. Ties
        break by movie_id ascending, as `metrics.top_k` does. Every score is a per-user term plus a
        per-movie term, so the lists are scored in blocks (`topn.additive_scores`), not as a users
        x catalogue cross join; the per-movie terms (catalogue-sized) are collected to broadcast.
        """
        user_term, movie_term = self._score_terms()
        wanted = users.select(C.USER_ID).where(F.col(C.USER_ID).isNotNull()).distinct()
        user_terms = self._with_user_parameters(wanted).select(C.USER_ID, user_term.alias(topn.TERM))
        movie_terms = self.items.select(C.MOVIE_ID, movie_term.alias(topn.TERM))
        return topn.additive_scores(user_terms, movie_terms, k, exclude=exclude)

    def _with_user_parameters(self, users: DataFrame) -> DataFrame:
        return users

    def unpersist(self) -> None:
        """Drops the model's cached tables."""
        for name in self.tables:
            getattr(self, name).unpersist()

    def save(self, path: str) -> None:
        """Writes the model under `path` (local or s3a://), replacing what is there.

        Layout: metadata.json (kind, global mean, config) and one Parquet folder per table.
        """
        spark = self.items.sparkSession
        for name in self.tables:
            getattr(self, name).write.mode("overwrite").parquet(_join(path, name))
        storage.write_json(
            spark,
            _join(path, _METADATA),
            {"kind": self.kind, "global_mean": self.global_mean, "config": self._config()},
        )

    @classmethod
    def _read(cls, spark: SparkSession, path: str) -> tuple[dict, dict[str, DataFrame]]:
        metadata = storage.read_json(spark, _join(path, _METADATA))
        if metadata.get("kind") != cls.kind:
            raise ValueError(f"{path} holds a {metadata.get('kind')!r} model, not {cls.kind!r}")
        return metadata, {name: spark.read.parquet(_join(path, name)) for name in cls.tables}


# ---------------------------------------------------------------------------------------------
# Global mean
# ---------------------------------------------------------------------------------------------


class GlobalMeanModel(_BaselineModel):
    """Predicts mu for every pair, known or not. Its score is mu too, so its top-k lists are just
    the catalogue in movie_id order (the tie-break): no ranking signal at all, only a reference.
    """

    kind = "global_mean"

    def _prediction(self) -> Column:
        return F.lit(self.global_mean)

    def _score_terms(self) -> tuple[Column, Column]:
        return F.lit(self.global_mean), F.lit(0.0)

    @classmethod
    def load(cls, spark: SparkSession, path: str) -> GlobalMeanModel:
        """Reads a model written by `save`."""
        metadata, tables = cls._read(spark, path)
        return cls(metadata["global_mean"], tables["items"])


class GlobalMean:
    """Estimator of `GlobalMeanModel`: mu = (1/N) * sum r_ui over the training ratings."""

    def fit(self, ratings: DataFrame) -> GlobalMeanModel:
        """Fits on (user_id, movie_id, rating) rows; null/NaN rows are ignored; empty is a ValueError."""
        train = _training_rows(ratings)
        return GlobalMeanModel(_global_mean(train), _keep(train.select(C.MOVIE_ID).distinct()))


# ---------------------------------------------------------------------------------------------
# User-item bias
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserItemBiasConfig:
    """Hyperparameters of `UserItemBias`. Defaults measured on ml-100k u1 (test RMSE about 0.957)."""

    item_damping: float = 5.0
    """lambda_i >= 0: pulls each movie's bias towards 0 as if it had this many extra ratings of mu."""

    user_damping: float = 5.0
    """lambda_u >= 0: the same for each user's bias."""

    iterations: int = 1
    """Alternating sweeps (item biases, then user biases) >= 1. 1 is the classic one-pass baseline;
    more sweeps minimise the regularised squared error further (coordinate descent)."""

    def __post_init__(self):
        for name in ("item_damping", "user_damping"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        if isinstance(self.iterations, bool) or not isinstance(self.iterations, int) or self.iterations < 1:
            raise ValueError(f"iterations must be an int >= 1, got {self.iterations!r}")


class UserItemBiasModel(_BaselineModel):
    """Predicts r_ui = mu + b_u + b_i, with b_u = 0 for an unknown user and b_i = 0 for an unknown
    movie (so an unknown pair gets mu). The score is the prediction; per user it orders movies by
    b_i, the damped "better than average" of each movie.
    """

    kind = "user_item_bias"
    tables = ("items", "users")

    def __init__(self, global_mean: float, items: DataFrame, users: DataFrame, config: UserItemBiasConfig):
        super().__init__(global_mean, items)
        self.users = users
        """(user_id, user_bias) for every training user."""
        self.config = config

    def _with_parameters(self, pairs: DataFrame) -> DataFrame:
        return pairs.join(self.users, C.USER_ID, "left").join(self.items, C.MOVIE_ID, "left")

    def _prediction(self) -> Column:
        return (
            F.lit(self.global_mean)
            + F.coalesce(F.col(USER_BIAS), F.lit(0.0))
            + F.coalesce(F.col(ITEM_BIAS), F.lit(0.0))
        )

    def _score_terms(self) -> tuple[Column, Column]:
        user = F.lit(self.global_mean) + F.coalesce(F.col(USER_BIAS), F.lit(0.0))
        return user, F.coalesce(F.col(ITEM_BIAS), F.lit(0.0))

    def _with_user_parameters(self, users: DataFrame) -> DataFrame:
        return users.join(self.users, C.USER_ID, "left")

    def _config(self) -> dict:
        return asdict(self.config)

    @classmethod
    def load(cls, spark: SparkSession, path: str) -> UserItemBiasModel:
        """Reads a model written by `save`."""
        metadata, tables = cls._read(spark, path)
        config = UserItemBiasConfig(**metadata["config"])
        return cls(metadata["global_mean"], tables["items"], tables["users"], config)


class UserItemBias:
    """Estimator of the classic biased baseline (Koren 2010, LensKit `Bias`, Surprise `BaselineOnly`).

    With mu the mean training rating, R(i) the ratings of movie i and R(u) those of user u, one
    sweep computes, starting from b_u = 0:

        b_i = sum_{u in R(i)} (r_ui - mu - b_u) / (lambda_i + |R(i)|)
        b_u = sum_{i in R(u)} (r_ui - mu - b_i) / (lambda_u + |R(u)|)

    and `iterations` sweeps alternate them. Each step is the exact minimiser over its block of
        sum (r_ui - mu - b_u - b_i)^2 + lambda_i * sum b_i^2 + lambda_u * sum b_u^2,
    so more sweeps never raise that objective. Predictions are not clipped to the rating scale.
    """

    def __init__(self, config: UserItemBiasConfig | None = None):
        self.config = config if config is not None else UserItemBiasConfig()

    def fit(self, ratings: DataFrame) -> UserItemBiasModel:
        """Fits on (user_id, movie_id, rating) rows; null/NaN rows are ignored; empty is a ValueError."""
        train = _training_rows(ratings)
        mu = _global_mean(train)
        residual = train.select(C.USER_ID, C.MOVIE_ID, (F.col(C.RATING) - F.lit(mu)).alias("_residual"))
        cfg = self.config
        item_rows = residual
        users: DataFrame | None = None
        items: DataFrame | None = None
        for _ in range(cfg.iterations):
            if users is not None:
                item_rows = residual.join(users, C.USER_ID).withColumn(
                    "_residual", F.col("_residual") - F.col(USER_BIAS)
                )
            items = _damped_mean(item_rows, C.MOVIE_ID, cfg.item_damping, ITEM_BIAS)
            user_rows = residual.join(items, C.MOVIE_ID).withColumn(
                "_residual", F.col("_residual") - F.col(ITEM_BIAS)
            )
            users = _damped_mean(user_rows, C.USER_ID, cfg.user_damping, USER_BIAS)
        assert items is not None and users is not None  # iterations >= 1
        return UserItemBiasModel(mu, _keep(items), _keep(users), cfg)


def _damped_mean(rows: DataFrame, by: str, damping: float, name: str) -> DataFrame:
    """(by, name): sum(_residual) / (damping + count) per `by` value."""
    shrunk = (exact_sum("_residual") / (F.count(F.lit(1)) + F.lit(float(damping)))).cast("double")
    return rows.groupBy(by).agg(shrunk.alias(name))


# ---------------------------------------------------------------------------------------------
# Most popular
# ---------------------------------------------------------------------------------------------


class MostPopularModel(_BaselineModel):
    """Ranks movies by their number of training ratings (most first, movie_id breaking ties), the
    same list for every user less what each has rated. The score is that count; an unknown movie
    scores 0. For rating prediction it predicts the movie's mean training rating, and mu for a
    movie it has not seen; users play no part.
    """

    kind = "most_popular"

    def _with_parameters(self, pairs: DataFrame) -> DataFrame:
        return pairs.join(self.items, C.MOVIE_ID, "left")

    def _prediction(self) -> Column:
        return F.coalesce(F.col(ITEM_MEAN), F.lit(self.global_mean))

    def _score(self) -> Column:
        return F.coalesce(F.col(ITEM_COUNT), F.lit(0)).cast("double")

    def _score_terms(self) -> tuple[Column, Column]:
        return F.lit(0.0), F.col(ITEM_COUNT).cast("double")

    @classmethod
    def load(cls, spark: SparkSession, path: str) -> MostPopularModel:
        """Reads a model written by `save`."""
        metadata, tables = cls._read(spark, path)
        return cls(metadata["global_mean"], tables["items"])


class MostPopular:
    """Estimator of `MostPopularModel`: per movie i, count |R(i)| and mean (1/|R(i)|) * sum r_ui."""

    def fit(self, ratings: DataFrame) -> MostPopularModel:
        """Fits on (user_id, movie_id, rating) rows; null/NaN rows are ignored; empty is a ValueError."""
        train = _training_rows(ratings)
        items = train.groupBy(C.MOVIE_ID).agg(
            F.count(F.lit(1)).alias(ITEM_COUNT), F.avg(C.RATING).alias(ITEM_MEAN)
        )
        return MostPopularModel(_global_mean(train), _keep(items))
