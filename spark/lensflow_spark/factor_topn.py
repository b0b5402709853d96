"""Blocked top-N for factor models: user vectors x broadcast item matrix, in Arrow batches, no cross join.

Every factor model here scores a (user, movie) pair as

    score(u, i) = user_offset(u) + item_offset(i) + p_u . q_i

(the bias-aware ALS: mu + b_u, b_i and the residual factors; implicit ALS: 0, 0 and the factors).
`top_n_from_factors` scores each batch of users against all movies with one matrix product, masks
the movies the user rated (and the movies that are not candidates), and keeps the best `n` per user,
so no (user x movie) DataFrame is ever built. With `explain`, each recommended movie also names the
user's rated movie closest to it by cosine of item factors: "because you rated X".

The item matrix is collected to the driver and shipped with the task (m x rank floats: 9,724 x 64
is 2.5 MB for ml-latest-small).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from . import columns as C

BECAUSE = "because_movie_id"
"""Top-N lists with explanations: the user's rated movie most similar to the recommended one."""
FEATURES = "features"
OFFSET = "offset"

TOP_N_SCHEMA = f"{C.USER_ID} int, {C.MOVIE_ID} int, {C.SCORE} double, {C.RANK} int, {BECAUSE} int"


@dataclass(frozen=True)
class ItemMatrix:
    """Movies as rows: ids, factors (m x rank), additive offsets, and which may be recommended."""

    ids: np.ndarray
    vectors: np.ndarray
    offsets: np.ndarray
    candidate: np.ndarray
    """bool per movie: False keeps it out of every list (e.g. below a minimum support)."""

    def unit_vectors(self) -> np.ndarray:
        """Rows scaled to length 1 (zero rows stay zero): cosine similarity is their dot product."""
        norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
        return np.divide(self.vectors, norms, out=np.zeros_like(self.vectors), where=norms > 0)


def collect_items(
    item_factors: DataFrame,
    offsets: DataFrame | None = None,
    supports: DataFrame | None = None,
    *,
    min_support: int = 0,
) -> ItemMatrix:
    """Action: collects `(id, features)` item factors (ALSModel.itemFactors' shape) into an `ItemMatrix`.

    `offsets` (movie_id, offset) adds a per-movie term (0 when absent); `supports` (movie_id, support)
    with `min_support` marks movies with fewer training ratings than that as non-candidates.
    """
    rows = item_factors.select(F.col("id").alias(C.MOVIE_ID), F.col(FEATURES))
    if offsets is not None:
        rows = rows.join(offsets.select(C.MOVIE_ID, OFFSET), C.MOVIE_ID, "left")
    else:
        rows = rows.withColumn(OFFSET, F.lit(0.0))
    if supports is not None:
        rows = rows.join(supports.select(C.MOVIE_ID, "support"), C.MOVIE_ID, "left")
    else:
        rows = rows.withColumn("support", F.lit(None).cast("long"))
    pdf = rows.orderBy(C.MOVIE_ID).toPandas()
    vectors = np.array(pdf[FEATURES].tolist(), dtype=np.float64).reshape(len(pdf), -1)
    support = pdf["support"].fillna(0).to_numpy() if supports is not None else np.full(len(pdf), np.inf)
    return ItemMatrix(
        ids=pdf[C.MOVIE_ID].to_numpy(dtype=np.int64),
        vectors=vectors,
        offsets=pdf[OFFSET].fillna(0.0).to_numpy(dtype=np.float64),
        candidate=support >= min_support,
    )


def _top_n_batches(items: ItemMatrix, n: int, explain: bool, clip: tuple[float, float] | None) -> callable:
    ids, vectors, offsets, candidate = items.ids, items.vectors, items.offsets, items.candidate
    unit = items.unit_vectors() if explain else None
    position = pd.Series(np.arange(len(ids)), index=ids)

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            if batch.empty:
                continue
            users = np.array(batch[FEATURES].tolist(), dtype=np.float64).reshape(len(batch), -1)
            scores = users @ vectors.T + offsets + batch[OFFSET].to_numpy(dtype=np.float64)[:, None]
            scores[:, ~candidate] = -np.inf
            rated_rows = []
            for row, rated in enumerate(batch["_rated"]):
                known = position.reindex(np.asarray(rated if rated is not None else [], dtype=np.int64))
                cols = known.dropna().to_numpy(dtype=np.int64)
                scores[row, cols] = -np.inf
                rated_rows.append(cols)
            out = []
            for row, user in enumerate(batch[C.USER_ID].to_numpy()):
                s = scores[row]
                finite = np.flatnonzero(np.isfinite(s))
                if finite.size == 0:
                    continue
                # Score descending, then movie id ascending: deterministic ties.
                order = finite[np.lexsort((ids[finite], -s[finite]))][:n]
                served = s[order] if clip is None else np.clip(s[order], clip[0], clip[1])
                because = np.full(order.size, -1, dtype=np.int64)
                if explain and rated_rows[row].size:
                    similarity = unit[order] @ unit[rated_rows[row]].T
                    because = ids[rated_rows[row][np.argmax(similarity, axis=1)]]
                out.append(
                    pd.DataFrame(
                        {
                            C.USER_ID: np.full(order.size, user, dtype=np.int32),
                            C.MOVIE_ID: ids[order].astype(np.int32),
                            C.SCORE: served.astype(np.float64),
                            C.RANK: np.arange(1, order.size + 1, dtype=np.int32),
                            BECAUSE: pd.array(np.where(because < 0, None, because), dtype="Int32"),
                        }
                    )
                )
            if out:
                yield pd.concat(out, ignore_index=True)

    return run


def top_n_from_factors(
    user_vectors: DataFrame,
    items: ItemMatrix,
    rated: DataFrame,
    n: int,
    *,
    explain: bool = False,
    clip: tuple[float, float] | None = None,
) -> DataFrame:
    """Top-`n` movies per user of `user_vectors(user_id, features, offset)`, none rated in `rated`. Lazy.

    Returns `(user_id, movie_id, score, rank, because_movie_id)`: rank 1-based by score descending,
    then movie_id ascending; `because_movie_id` is null unless `explain` (and the user rated a movie
    the model knows). `clip=(lo, hi)` clips the served scores after ranking (a rating scale).
    Users absent from `user_vectors` get no rows: the caller decides their fallback.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    lists = rated.groupBy(C.USER_ID).agg(F.collect_list(C.MOVIE_ID).alias("_rated"))
    users = user_vectors.select(C.USER_ID, FEATURES, OFFSET).join(lists, C.USER_ID, "left")
    return users.mapInPandas(_top_n_batches(items, n, explain, clip), TOP_N_SCHEMA)


def similar_movies(items: ItemMatrix, movie_id: int, n: int) -> list[tuple[int, float]]:
    """The `n` candidate movies closest to `movie_id` by cosine of item factors, best first.

    Raises ValueError for a movie the model does not know.
    """
    where = np.flatnonzero(items.ids == movie_id)
    if where.size == 0:
        raise ValueError(f"movie {movie_id} is not in the model; similar movies need a trained movie")
    unit = items.unit_vectors()
    similarity = unit @ unit[where[0]]
    similarity[where[0]] = -np.inf
    similarity[~items.candidate] = -np.inf
    finite = np.flatnonzero(np.isfinite(similarity))
    order = finite[np.lexsort((items.ids[finite], -similarity[finite]))][:n]
    return [(int(items.ids[i]), float(similarity[i])) for i in order]
