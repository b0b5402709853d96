"""The one top-N implementation: users scored against the catalogue one block at a time, no cross join.

As in Spark's own `ALSModel.recommendForAllUsers`, the catalogue side (movie factors, per-movie
terms, or an item-item weight matrix) is small and shipped to every task, and each task scores a
block of users against all of it with one matrix operation, keeping only each user's k best. No
(user, movie) pair table is ever built: memory is one block (`BLOCK_CELLS` scores) per task, work
is users x movies x rank flops in BLAS rather than a shuffle of users x movies rows.

Every list is exactly what `metrics.top_k` over a full (user, movie, score) table gives: movies a
user rated (in `exclude`) never appear, nor do non-candidate movies (below a minimum support), NaN
scores are dropped, ties break by score descending then movie_id ascending, and a user with fewer
than k candidates gets a shorter list. Served scores may be clipped to a range after ranking.

Three scores, one kernel (`_score_blocks`):
* factors with offsets: score(u, i) = user_offset(u) + item_offset(i) + p_u . q_i, in double
  precision (ALS: 0, 0, factors; bias-aware ALS: mu + b_u, b_i, residual factors; implicit ALS);
* additive terms u + v (the baselines' mu + b_u + b_i): the factor score with rank 0, which rounds
  exactly as Spark's `u + v` (0 + v + u is one IEEE addition). Being separable, these lists come
  from `separable_top_k`, one global order of v walked per user in O(k + rated), not O(movies);
* item-item weights (EASE): score(u, i) = sum_{j rated by u} W_ji, with the user's history read
  from `exclude`.

With `explain`, each listed movie also names the user's rated movie most similar to it — cosine of
item factors, or the largest weight W_ji for item-item models: "because you rated X".

The catalogue is collected to the driver once and broadcast: it grows with the number of movies
(62k at ml-25m: 2.5 MB of rank-10 float factors), never with the number of ratings or users.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, IntegerType, StructField, StructType

from . import columns as C

BLOCK_CELLS = 8_000_000
"""Scores held per block of users (64 MB of doubles): users per block = BLOCK_CELLS // movies."""
BECAUSE = "because_movie_id"
"""The user's rated movie most similar to the listed one (null without `explain`)."""
FEATURES = "features"
OFFSET = "offset"
TERM = "_term"
"""The column name `additive_scores` reads the per-user and per-movie terms from."""
_RATED = "_rated"
TOP_K_SCHEMA = StructType(
    [
        StructField(C.USER_ID, IntegerType()),
        StructField(C.MOVIE_ID, IntegerType()),
        StructField(C.SCORE, DoubleType()),
        StructField(C.RANK, IntegerType()),
    ]
)
TOP_N_SCHEMA = StructType([*TOP_K_SCHEMA.fields, StructField(BECAUSE, IntegerType())])


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}")


@dataclass(frozen=True)
class ItemMatrix:
    """Movies as rows, in movie_id order: ids, factors (m x rank), additive offsets, candidates."""

    ids: np.ndarray
    vectors: np.ndarray
    offsets: np.ndarray
    candidate: np.ndarray
    """bool per movie: False keeps it out of every list (e.g. below a minimum support)."""

    def unit_vectors(self) -> np.ndarray:
        """Rows scaled to length 1 (zero rows stay zero): cosine similarity is their dot product.

        Computed once per matrix (an executor explains many users with one broadcast copy)."""
        if "_unit" in self.__dict__:
            return self.__dict__["_unit"]
        norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
        unit = np.divide(self.vectors, norms, out=np.zeros_like(self.vectors), where=norms > 0)
        self.__dict__["_unit"] = unit
        return unit

    def unit(self) -> ItemMatrix:
        """The same movies with unit vectors and no offsets: dot products are cosines."""
        return ItemMatrix(self.ids, self.unit_vectors(), np.zeros(len(self.ids)), self.candidate)


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
    pdf = rows.where(F.col(C.MOVIE_ID).isNotNull()).orderBy(C.MOVIE_ID).toPandas()
    ids = pdf[C.MOVIE_ID].to_numpy(dtype=np.int64)
    if len(np.unique(ids)) != len(ids):
        raise ValueError("the catalogue holds a movie_id twice")
    vectors = np.array(pdf[FEATURES].tolist(), dtype=np.float64).reshape(len(pdf), -1)
    support = pdf["support"].fillna(0).to_numpy() if supports is not None else np.full(len(pdf), np.inf)
    return ItemMatrix(
        ids=ids,
        vectors=vectors,
        offsets=pdf[OFFSET].fillna(0.0).to_numpy(dtype=np.float64),
        candidate=support >= min_support,
    )


def block_top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The k best finite cells of each row of `scores` (users x movies, movies in id order).

    Returns (row, column, rank) arrays, rank 1-based; ties by column ascending, i.e. movie_id.
    Exact: a row keeps every cell above its k-th best score, then the cells tied with it in column
    order until it has k. So at most k cells per row reach the sort, even when a whole row ties (the
    global-mean baseline scores every movie alike: sorting all its cells took minutes at 5M ratings).
    """
    n_rows, n_cols = scores.shape
    finite = np.isfinite(scores)
    if k < n_cols:
        masked = np.where(finite, scores, -np.inf)
        kth = np.partition(masked, n_cols - k, axis=1)[:, n_cols - k, None]
        candidates = finite & (masked >= kth)
        crowded = candidates.sum(axis=1) > k  # rows with more than k cells tied at their k-th best
        if crowded.any():
            sub, tied = candidates[crowded], masked[crowded] == kth[crowded]
            room = k - (sub & ~tied).sum(axis=1, keepdims=True)
            candidates[crowded] = sub & (~tied | (np.cumsum(sub & tied, axis=1, dtype=np.int32) <= room))
    else:
        candidates = finite
    rows, cols = np.nonzero(candidates)
    order = np.lexsort((cols, -scores[rows, cols], rows))
    rows, cols = rows[order], cols[order]
    starts = np.searchsorted(rows, rows, side="left")
    rank = np.arange(rows.size) - starts + 1
    keep = rank <= k
    return rows[keep], cols[keep], rank[keep]


def rated_lists(exclude: DataFrame) -> DataFrame:
    """(user_id, _rated array<int>): each user's rated movies, one shuffle of the ratings. Lazy.

    Every `exclude` below may be this table instead of the ratings: cached, it serves many models'
    lists on one training set (evaluate) without grouping the ratings again for each."""
    if _RATED in exclude.columns:
        return exclude.select(C.USER_ID, _RATED)
    by_user = exclude.select(C.USER_ID, C.MOVIE_ID).groupBy(C.USER_ID)
    return by_user.agg(F.collect_list(C.MOVIE_ID).alias(_RATED))


def _users_with_rated(users: DataFrame, exclude: DataFrame | None) -> DataFrame:
    if exclude is None:
        return users.withColumn(_RATED, F.lit(None).cast("array<int>"))
    return users.join(rated_lists(exclude), C.USER_ID, "left")


Scorer = Callable[[pd.DataFrame, object, np.ndarray, np.ndarray], np.ndarray]
"""(block of users, catalogue payload, history rows, history columns) -> users x movies scores."""
Explainer = Callable[[object, np.ndarray, np.ndarray], np.ndarray]
"""(catalogue payload, listed columns, history columns) -> listed x history similarities."""


def _score_blocks(
    users: DataFrame,
    ids: np.ndarray,
    candidate: np.ndarray,
    payload: object,
    score: Scorer,
    k: int,
    *,
    explain: Explainer | None = None,
    clip: tuple[float, float] | None = None,
) -> DataFrame:
    """mapInPandas over (user_id, <user values>, _rated): each block scored, masked, cut to k. Lazy.

    Rated and non-candidate movies are masked; clip applies to the served scores after ranking.
    """
    spark = users.sparkSession
    shipped = spark.sparkContext.broadcast((ids, candidate, payload))
    block = max(1, BLOCK_CELLS // max(1, len(ids)))

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        movie_ids, is_candidate, items = shipped.value
        for batch in batches:
            for start in range(0, len(batch), block):
                part = batch.iloc[start : start + block]
                if movie_ids.size == 0 or part.empty:
                    continue
                rated = part[_RATED].to_numpy()
                lens = np.array([0 if r is None else len(r) for r in rated])
                flat = np.concatenate([np.asarray(r, dtype=np.int64) for r in rated if r is not None] or [[]])
                row = np.repeat(np.arange(len(part)), lens)
                col = np.minimum(np.searchsorted(movie_ids, flat), movie_ids.size - 1)
                hit = movie_ids[col] == flat.astype(np.int64)
                hist_rows, hist_cols = row[hit], col[hit]
                scores = score(part, items, hist_rows, hist_cols)
                scores[hist_rows, hist_cols] = np.nan
                scores[:, ~is_candidate] = np.nan
                r, c, rank = block_top_k(scores, k)
                served = scores[r, c] if clip is None else np.clip(scores[r, c], *clip)
                because = pd.array([None] * r.size, dtype="Int32")
                if explain is not None and r.size:
                    because = _explanations(items, movie_ids, explain, r, c, hist_rows, hist_cols)
                yield pd.DataFrame(
                    {
                        C.USER_ID: part[C.USER_ID].to_numpy()[r].astype(np.int32),
                        C.MOVIE_ID: movie_ids[c].astype(np.int32),
                        C.SCORE: served.astype(np.float64),
                        C.RANK: rank.astype(np.int32),
                        BECAUSE: because,
                    }
                )

    return users.mapInPandas(run, TOP_N_SCHEMA)


def _explanations(items, movie_ids, explain: Explainer, r, c, hist_rows, hist_cols) -> pd.array:
    """Per listed (row r, column c): the movie id of the history column most similar to c."""
    because = np.full(r.size, -1, dtype=np.int64)
    # r and hist_rows are sorted by row, so each user's slots and history are slices: finding them
    # by a mask per user cost users x ratings per block (tens of seconds per 5M-rating run).
    user_rows, starts = np.unique(r, return_index=True)
    ends = np.append(starts[1:], r.size)
    h_starts = np.searchsorted(hist_rows, user_rows, side="left")
    h_ends = np.searchsorted(hist_rows, user_rows, side="right")
    for start, end, h_start, h_end in zip(starts, ends, h_starts, h_ends, strict=True):
        if h_end == h_start:
            continue
        history = hist_cols[h_start:h_end]
        because[start:end] = movie_ids[history[np.argmax(explain(items, c[start:end], history), axis=1)]]
    return pd.array(np.where(because < 0, None, because), dtype="Int32")


def _factor_score(part: pd.DataFrame, items: ItemMatrix, hist_rows, hist_cols) -> np.ndarray:
    users = np.array(part[FEATURES].tolist(), dtype=np.float64).reshape(len(part), items.vectors.shape[1])
    return users @ items.vectors.T + items.offsets + part[OFFSET].to_numpy(dtype=np.float64)[:, None]


def _cosine(items: ItemMatrix, listed: np.ndarray, history: np.ndarray) -> np.ndarray:
    unit = items.unit_vectors()
    return unit[listed] @ unit[history].T


def top_n_from_factors(
    user_vectors: DataFrame,
    items: ItemMatrix,
    rated: DataFrame | None,
    n: int,
    *,
    explain: bool = False,
    clip: tuple[float, float] | None = None,
) -> DataFrame:
    """Top-`n` movies per user of `user_vectors(user_id, features, offset)`, none rated in `rated`. Lazy.

    Returns `(user_id, movie_id, score, rank, because_movie_id)`: rank 1-based by score descending,
    then movie_id ascending; `because_movie_id` is the user's rated movie closest by cosine of item
    factors when `explain` (null otherwise, or when the user rated no movie the model knows).
    `clip=(lo, hi)` clips the served scores after ranking. Users absent from `user_vectors` get no
    rows: the caller decides their fallback.
    """
    _check_k(n)
    users = _users_with_rated(user_vectors.select(C.USER_ID, FEATURES, OFFSET), rated)
    why = _cosine if explain else None
    return _score_blocks(users, items.ids, items.candidate, items, _factor_score, n, explain=why, clip=clip)


def factor_scores(
    user_factors: DataFrame, movie_factors: DataFrame, k: int, *, exclude: DataFrame | None = None
) -> DataFrame:
    """Top-k by <user factors, movie factors>: both `(id, features array<float>)` as ALS gives them.

    `user_factors` may hold only the users wanted; the candidates are every movie of `movie_factors`
    not rated in `exclude`. Returns (user_id, movie_id, score, rank). Lazy apart from collecting the
    movie factors (catalogue-sized) for the broadcast.
    """
    _check_k(k)
    users = user_factors.select(F.col("id").alias(C.USER_ID), FEATURES, F.lit(0.0).alias(OFFSET))
    return top_n_from_factors(users, collect_items(movie_factors), exclude, k).drop(BECAUSE)


def additive_scores(
    user_terms: DataFrame, movie_terms: DataFrame, k: int, *, exclude: DataFrame | None = None
) -> DataFrame:
    """Top-k by u + v: `user_terms(user_id, _term double)`, `movie_terms(movie_id, _term double)`.

    Scored as rank-0 factors with offsets would be, 0 + v + u (one IEEE double addition, as Spark
    computes `u + v`), so scores and ties are exactly those of the SQL expression; but listed by
    `separable_top_k`, without scoring the whole catalogue. Returns (user_id, movie_id, score, rank).
    Lazy apart from collecting the movie terms (catalogue-sized) for the broadcast.
    """
    _check_k(k)
    no_factors = F.array().cast("array<float>")
    items = collect_items(
        movie_terms.select(F.col(C.MOVIE_ID).alias("id"), no_factors.alias(FEATURES)),
        movie_terms.select(C.MOVIE_ID, F.col(TERM).cast("double").alias(OFFSET)),
    )
    users = user_terms.select(C.USER_ID, F.col(TERM).cast("double").alias(OFFSET))
    return separable_top_k(_users_with_rated(users, exclude), items, k)


def separable_top_k(users: DataFrame, items: ItemMatrix, k: int) -> DataFrame:
    """Top-k by u + v for `users(user_id, offset u, _rated)` against `items` (offsets v, no factors). Lazy.

    Every user ranks the movies in one global order, v descending then movie_id ascending, because
    rounding is monotone (v1 > v2 gives u + v1 >= u + v2). So a user's list is that order with the
    rated movies skipped: the first k + (rated movies among them) positions, O(k + rated) per user
    instead of O(movies). The lists equal `_score_blocks`' exactly: where rounding makes two distinct
    v tie at the k-th score (the tie group then spans two levels of v, and movie_id must decide
    across them), the user is scored against the whole catalogue as before; so is a user whose
    scores are not all finite. Returns (user_id, movie_id, score, rank).
    """
    _check_k(k)
    live = np.flatnonzero(items.candidate & np.isfinite(items.offsets))
    order = live[np.lexsort((items.ids[live], -items.offsets[live]))]
    v = items.offsets[order]
    # Per position, the value of the next distinct v above and below (NaN at the ends): the only
    # levels that rounding can tie with a user's k-th score.
    new_level = np.r_[True, v[1:] != v[:-1]] if v.size else np.zeros(0, dtype=bool)
    level = np.cumsum(new_level) - 1
    level_v = v[new_level]
    above = np.r_[np.nan, level_v][level]
    below = np.r_[level_v[1:], np.nan][level]
    position = np.full(items.ids.size, -1, dtype=np.int64)
    position[order] = np.arange(order.size)
    shipped = users.sparkSession.sparkContext.broadcast((items, order, above, below, position))

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        catalogue, by_v, v_above, v_below, pos = shipped.value
        for batch in batches:
            if batch.empty or by_v.size == 0:
                continue
            yield _separable_block(batch, catalogue, by_v, v_above, v_below, pos, k)

    return users.select(C.USER_ID, OFFSET, _RATED).mapInPandas(run, TOP_K_SCHEMA)


def _separable_block(batch, items: ItemMatrix, by_v, v_above, v_below, pos, k: int) -> pd.DataFrame:
    """The lists of one batch of users (see `separable_top_k`), as (user_id, movie_id, score, rank)."""
    n, m = len(batch), by_v.size
    u = batch[OFFSET].to_numpy(dtype=np.float64)
    v = items.offsets[by_v]
    # Rated movies as sorted (row, position in the global order); unknown or non-candidate ones drop.
    rated = batch[_RATED].to_numpy()
    lens = np.array([0 if r is None else len(r) for r in rated], dtype=np.int64)
    flat = np.concatenate([np.asarray(r, dtype=np.int64) for r in rated if r is not None] or [[]]).astype(
        np.int64
    )
    col = np.minimum(np.searchsorted(items.ids, flat), items.ids.size - 1)
    known = items.ids[col] == flat
    hist_row = np.repeat(np.arange(n), lens)[known]
    hist_pos = pos[col[known]]
    keep = hist_pos >= 0
    # Sorted (row, position) keys, a movie rated twice once; by sorting: np.unique's hashing took
    # 2.5 s for 0.8M keys, most of a 10k-user batch.
    cell = np.sort(hist_row[keep] * m + hist_pos[keep])
    cell = cell[np.r_[True, cell[1:] != cell[:-1]]] if cell.size else cell
    hist_row, hist_pos = cell // m, cell % m
    # The k-th unrated position: k - 1 plus the rated positions r_i (i-th of the user) with
    # r_i - i <= k - 1, i.e. those with fewer than k unrated movies before them.
    first = np.searchsorted(hist_row, np.arange(n))
    ahead = hist_pos - (np.arange(hist_row.size) - first[hist_row]) <= k - 1
    kth = k - 1 + np.bincount(hist_row[ahead], minlength=n)
    length = np.minimum(kth + 1, m)
    # Users scored against the whole catalogue: a rounding tie across levels at the k-th score, or
    # a score that is not finite (dropped there, so the list may reach further).
    full = ~np.isfinite(u)
    has_k = kth < m
    at = np.minimum(kth, m - 1)
    kth_score = (0.0 + v[at]) + u
    for neighbour in (v_above[at], v_below[at]):
        full |= has_k & ~np.isnan(neighbour) & ((0.0 + neighbour) + u == kth_score)
    row = np.repeat(np.arange(n), length)
    slot = np.arange(row.size) - np.repeat(np.cumsum(length) - length, length)
    score = (0.0 + v[slot]) + u[row]
    bad = ~np.isfinite(score)
    full[row[bad]] = True
    key = row * m + slot
    found = np.minimum(np.searchsorted(cell, key), max(cell.size - 1, 0))
    unrated = cell[found] != key if cell.size else np.ones(key.size, dtype=bool)
    take = unrated & ~full[row]
    r, c, s = row[take], by_v[slot[take]], score[take]
    everything = np.flatnonzero(full)
    block = max(1, BLOCK_CELLS // max(1, items.ids.size))
    for start in range(0, everything.size, block):
        rows = everything[start : start + block]
        r_full, c_full, s_full = _whole_catalogue(u, items, rows, hist_row, by_v[hist_pos], k)
        r, c, s = np.r_[r, r_full], np.r_[c, c_full], np.r_[s, s_full]
    ordered = np.lexsort((items.ids[c], -s, r))
    r, c, s = r[ordered], c[ordered], s[ordered]
    rank = np.arange(r.size) - np.searchsorted(r, r, side="left") + 1
    return pd.DataFrame(
        {
            C.USER_ID: batch[C.USER_ID].to_numpy()[r].astype(np.int32),
            C.MOVIE_ID: items.ids[c].astype(np.int32),
            C.SCORE: s.astype(np.float64),
            C.RANK: rank.astype(np.int32),
        }
    )


def _whole_catalogue(u, items: ItemMatrix, rows, hist_row, hist_col, k: int):
    """(row, column, score) of the top-k for `rows` scored against every movie, as `_score_blocks` does."""
    scores = (0.0 + items.offsets)[None, :] + u[rows, None]
    sub = np.searchsorted(rows, hist_row)
    mine = (sub < rows.size) & (rows[np.minimum(sub, rows.size - 1)] == hist_row)
    scores[sub[mine], hist_col[mine]] = np.nan
    scores[:, ~items.candidate] = np.nan
    r, c, _ = block_top_k(scores, k)
    return rows[r], c, scores[r, c]


@dataclass(frozen=True)
class ItemWeights:
    """An item-item model (EASE): W (m x m, float32), W_ji how much rating j speaks for movie i."""

    ids: np.ndarray
    weights: np.ndarray


def _history_score(part: pd.DataFrame, items: ItemWeights, hist_rows, hist_cols) -> np.ndarray:
    x = np.zeros((len(part), items.ids.size), dtype=np.float32)
    x[hist_rows, hist_cols] = 1.0
    scores = (x @ items.weights).astype(np.float64)
    scores[~x.any(axis=1)] = np.nan  # no known history, no list
    return scores


def _weight_of(items: ItemWeights, listed: np.ndarray, history: np.ndarray) -> np.ndarray:
    return items.weights[np.ix_(history, listed)].T


def top_n_from_item_weights(
    users: DataFrame,
    items: ItemWeights,
    rated: DataFrame,
    n: int,
    *,
    candidate: np.ndarray | None = None,
    explain: bool = False,
    clip: tuple[float, float] | None = None,
) -> DataFrame:
    """Top-`n` by x_u W for the users in `users(user_id)`, x_u their rated movies in `rated`. Lazy.

    Same columns and order as `top_n_from_factors`; `because_movie_id` is the rated movie j with the
    largest W_ji. Users who rated no movie of the model get no rows. `candidate` (bool per movie,
    default all) keeps movies out of every list.
    """
    _check_k(n)
    wanted = _users_with_rated(users.select(C.USER_ID).distinct(), rated)
    ok = np.ones(items.ids.size, dtype=bool) if candidate is None else candidate
    return _score_blocks(
        wanted, items.ids, ok, items, _history_score, n, explain=_weight_of if explain else None, clip=clip
    )


def _as_similar(lists: DataFrame, similarity: str) -> DataFrame:
    return lists.select(
        F.col(C.USER_ID).alias(C.MOVIE_ID),
        F.col(C.MOVIE_ID).alias("similar_movie_id"),
        F.col(C.SCORE).alias(similarity),
        F.col(C.RANK).alias(C.RANK),
    )


def similar_by_factors(items: ItemMatrix, movie_ids: DataFrame, n: int) -> DataFrame:
    """For each movie of `movie_ids(movie_id)` the model knows, the `n` candidates of highest cosine.

    similarity(i, j) = <f_i, f_j> / (|f_i| |f_j|), in double precision; ties by movie_id ascending;
    a movie is never its own neighbour. Returns (movie_id, similar_movie_id, similarity, rank). Lazy.
    """
    _check_k(n)
    unit = items.unit()
    known = [(int(i), v.tolist()) for i, v in zip(unit.ids, unit.vectors, strict=True)]
    spark = movie_ids.sparkSession
    queries = spark.createDataFrame(known, f"{C.MOVIE_ID} int, {FEATURES} array<double>").join(
        movie_ids.select(C.MOVIE_ID).distinct(), C.MOVIE_ID
    )
    users = queries.select(F.col(C.MOVIE_ID).alias(C.USER_ID), FEATURES, F.lit(0.0).alias(OFFSET))
    self_pairs = queries.select(F.col(C.MOVIE_ID).alias(C.USER_ID), C.MOVIE_ID)
    return _as_similar(top_n_from_factors(users, unit, self_pairs, n), "similarity")


def similar_by_item_weights(
    items: ItemWeights, movie_ids: DataFrame, n: int, *, candidate: np.ndarray | None = None
) -> DataFrame:
    """For each movie j of `movie_ids`, the `n` movies i with the largest weight W_ji: the item-item
    model's list for someone who rated only j. Returns (movie_id, similar_movie_id, weight, rank). Lazy.
    """
    queries = movie_ids.select(C.MOVIE_ID).distinct()
    one_movie = queries.select(F.col(C.MOVIE_ID).alias(C.USER_ID), C.MOVIE_ID)
    users = queries.withColumnRenamed(C.MOVIE_ID, C.USER_ID)
    lists = top_n_from_item_weights(users, items, one_movie, n, candidate=candidate)
    return _as_similar(lists, "similarity")


def similar_movies(items: ItemMatrix, movie_id: int, n: int) -> list[tuple[int, float]]:
    """Driver-side lookup for one movie: the `n` candidates closest by cosine of item factors.

    Raises ValueError for a movie the model does not know.
    """
    where = np.flatnonzero(items.ids == movie_id)
    if where.size == 0:
        raise ValueError(f"movie {movie_id} is not in the model; similar movies need a trained movie")
    unit = items.unit_vectors()
    similarity = unit @ unit[where[0]]
    similarity[where[0]] = np.nan
    similarity[~items.candidate] = np.nan
    _, cols, _ = block_top_k(similarity[None, :], n)
    return [(int(items.ids[i]), float(similarity[i])) for i in cols]
