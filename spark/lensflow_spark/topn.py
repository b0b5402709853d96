"""Top-k lists without a cross join: users scored against the catalogue one block at a time.

As in Spark's own `ALSModel.recommendForAllUsers`, the catalogue side (movie factors, or one term
per movie) is small and shipped to every task, and each task scores a block of users against all
of it with one matrix operation, keeping only each user's k best. No (user, movie) pair table is
ever built: memory is one block (`BLOCK_CELLS` scores) per task, work is users x movies x rank
flops in BLAS rather than a shuffle of users x movies rows.

The lists are exactly what `metrics.top_k` over a full (user, movie, score) table gives: movies a
user rated (in `exclude`) never appear, NaN scores are dropped, ties break by score descending then
movie_id ascending, and a user with fewer than k candidates gets a shorter list.

Two scores are supported:
* `factor_scores`: the dot product <u, v> of float factors, computed in double precision;
* `additive_scores`: u + v for one double per user and one per movie (the baselines'
  mu + b_u + b_i), rounding exactly as Spark's `u + v` does.

The catalogue is collected to the driver once and broadcast: it grows with the number of movies
(62k at ml-25m: 2.5 MB of rank-10 float factors), never with the number of ratings or users.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, IntegerType, StructField, StructType

from . import columns as C

BLOCK_CELLS = 8_000_000
"""Scores held per block of users (64 MB of doubles): users per block = BLOCK_CELLS // movies."""
_RATED = "_rated"
_TERM = "_term"
_FEATURES = "_features"
TOP_K_SCHEMA = StructType(
    [
        StructField(C.USER_ID, IntegerType()),
        StructField(C.MOVIE_ID, IntegerType()),
        StructField(C.SCORE, DoubleType()),
        StructField(C.RANK, IntegerType()),
    ]
)


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}")


def block_top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The k best finite cells of each row of `scores` (users x movies, movies in id order).

    Returns (row, column, rank) arrays, rank 1-based; ties by column ascending, i.e. movie_id.
    Exact: every cell tied with a row's k-th best score is a candidate before the tie-break.
    """
    n_rows, n_cols = scores.shape
    finite = np.isfinite(scores)
    if k < n_cols:
        masked = np.where(finite, scores, -np.inf)
        kth = np.partition(masked, n_cols - k, axis=1)[:, n_cols - k]
        candidates = finite & (scores >= kth[:, None])
    else:
        candidates = finite
    rows, cols = np.nonzero(candidates)
    order = np.lexsort((cols, -scores[rows, cols], rows))
    rows, cols = rows[order], cols[order]
    starts = np.searchsorted(rows, rows, side="left")
    rank = np.arange(rows.size) - starts + 1
    keep = rank <= k
    return rows[keep], cols[keep], rank[keep]


def _users_with_rated(users: DataFrame, exclude: DataFrame | None) -> DataFrame:
    if exclude is None:
        return users.withColumn(_RATED, F.lit(None).cast("array<int>"))
    rated = (
        exclude.select(C.USER_ID, C.MOVIE_ID).groupBy(C.USER_ID).agg(F.collect_list(C.MOVIE_ID).alias(_RATED))
    )
    return users.join(rated, C.USER_ID, "left")


def _catalogue(items: DataFrame, value: str) -> tuple[np.ndarray, np.ndarray]:
    """(movie_ids sorted, values in that order) of the catalogue, on the driver."""
    rows = items.select(C.MOVIE_ID, value).where(F.col(C.MOVIE_ID).isNotNull()).orderBy(C.MOVIE_ID).collect()
    movie_ids = np.array([r[0] for r in rows], dtype=np.int64)
    if len(np.unique(movie_ids)) != len(movie_ids):
        raise ValueError("the catalogue holds a movie_id twice")
    return movie_ids, [r[1] for r in rows]


def _score_blocks(users: DataFrame, movie_ids, user_values, score_block, k: int) -> DataFrame:
    """mapInPandas over (user_id, <user value>, _rated): each block scored, masked and cut to k."""
    spark = users.sparkSession
    catalogue = spark.sparkContext.broadcast((movie_ids, user_values))
    block = max(1, BLOCK_CELLS // max(1, len(movie_ids)))

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        ids, item_values = catalogue.value
        for batch in batches:
            for start in range(0, len(batch), block):
                part = batch.iloc[start : start + block]
                if ids.size == 0 or part.empty:
                    continue
                scores = score_block(part, item_values)
                rated = part[_RATED].to_numpy()
                lens = np.array([0 if r is None else len(r) for r in rated])
                if lens.any():
                    flat = np.concatenate([np.asarray(r, dtype=np.int64) for r in rated if r is not None])
                    row = np.repeat(np.arange(len(part)), lens)
                    col = np.minimum(np.searchsorted(ids, flat), ids.size - 1)
                    hit = ids[col] == flat
                    scores[row[hit], col[hit]] = np.nan
                r, c, rank = block_top_k(scores, k)
                yield pd.DataFrame(
                    {
                        C.USER_ID: part[C.USER_ID].to_numpy()[r].astype(np.int32),
                        C.MOVIE_ID: ids[c].astype(np.int32),
                        C.SCORE: scores[r, c],
                        C.RANK: rank.astype(np.int32),
                    }
                )

    return users.mapInPandas(score, TOP_K_SCHEMA)


def factor_scores(
    user_factors: DataFrame, movie_factors: DataFrame, k: int, *, exclude: DataFrame | None = None
) -> DataFrame:
    """Top-k by <user factors, movie factors>: both `(id, features array<float>)` as ALS gives them.

    `user_factors` may hold only the users wanted; the candidates are every movie of `movie_factors`
    not rated in `exclude`. Returns (user_id, movie_id, score, rank). Lazy apart from collecting the
    movie factors (catalogue-sized) for the broadcast.
    """
    _check_k(k)
    movie_ids, vectors = _catalogue(movie_factors.withColumnRenamed("id", C.MOVIE_ID), "features")
    rank = len(vectors[0]) if vectors else 0
    matrix = np.array(vectors, dtype=np.float64).reshape(len(vectors), rank)
    users = user_factors.select(F.col("id").alias(C.USER_ID), F.col("features").alias(_FEATURES))

    def score_block(part: pd.DataFrame, items: np.ndarray) -> np.ndarray:
        block = np.array(part[_FEATURES].tolist(), dtype=np.float64).reshape(len(part), rank)
        return block @ items.T

    return _score_blocks(_users_with_rated(users, exclude), movie_ids, matrix, score_block, k)


def additive_scores(
    user_terms: DataFrame, movie_terms: DataFrame, k: int, *, exclude: DataFrame | None = None
) -> DataFrame:
    """Top-k by u + v: `user_terms(user_id, _term double)`, `movie_terms(movie_id, _term double)`.

    The sum is one IEEE double addition, as Spark computes `u + v`, so scores and ties are exactly
    those of the SQL expression. Returns (user_id, movie_id, score, rank). Lazy apart from collecting
    the movie terms (catalogue-sized) for the broadcast.
    """
    _check_k(k)
    movie_ids, values = _catalogue(movie_terms, _TERM)
    terms = np.array(values, dtype=np.float64)

    def score_block(part: pd.DataFrame, items: np.ndarray) -> np.ndarray:
        return part[_TERM].to_numpy(dtype=np.float64)[:, None] + items[None, :]

    users = user_terms.select(C.USER_ID, F.col(_TERM).cast("double").alias(_TERM))
    return _score_blocks(_users_with_rated(users, exclude), movie_ids, terms, score_block, k)


TERM = _TERM
"""The column name `additive_scores` reads the per-user and per-movie terms from."""


def similar_movies(item_factors: DataFrame, movie_ids: DataFrame, n: int) -> DataFrame:
    """For each movie in `movie_ids`, the `n` others among them with the most similar factors.

    similarity(i, j) = <f_i, f_j> / (|f_i| |f_j|), in double precision; ties by movie_id ascending.
    Returns (movie_id, similar_movie_id, similarity, rank). Blocked like the top-k lists, so the cost
    is movies x movies x rank flops and one block of scores per task, never a pair table.
    """
    _check_k(n)
    wanted = item_factors.join(movie_ids.select(F.col(C.MOVIE_ID).alias("id")), "id")
    norm = F.sqrt(
        F.aggregate(F.transform("features", lambda x: x.cast("double") * x), F.lit(0.0), lambda a, x: a + x)
    )
    unit = wanted.select("id", F.transform("features", lambda x: x.cast("double") / norm).alias("features"))
    self_pairs = unit.select(F.col("id").alias(C.USER_ID), F.col("id").alias(C.MOVIE_ID))
    lists = factor_scores(unit, unit, n, exclude=self_pairs)
    return lists.select(
        F.col(C.USER_ID).alias(C.MOVIE_ID),
        F.col(C.MOVIE_ID).alias("similar_movie_id"),
        F.col(C.SCORE).alias("similarity"),
        F.col(C.RANK).alias("rank"),
    )
