"""Evaluation metrics over Spark DataFrames: rating error and top-k ranking quality.

Inputs use the canonical columns (`columns.py`): held-out ratings are (user_id, movie_id, rating),
rating predictions add a `prediction` column, scored candidates carry a `score` column, and top-k
lists are (user_id, movie_id, score, rank) rows as `top_k` builds them, rank 1 being the best.

Every function that returns a DataFrame is lazy. Every metric that returns a Python number runs
exactly one action, the final aggregate (`.first()` of one query), and nothing else: that aggregate
is the point of a metric. `rating_metrics` / `ranking_metrics` give several for one action.

Undefined values are `None`, never NaN (NaN is not valid JSON and the result contracts carry these
numbers): a metric over no usable rows, or a ranking metric with no user to average over, is None.
A defined metric with nothing found is 0.0.
"""

from __future__ import annotations

import decimal
import math

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from . import columns as C
from .exact import exact_avg, exact_sum

PREDICTION, SCORE, RANK = C.PREDICTION, C.SCORE, C.RANK

DEFAULT_RELEVANCE_THRESHOLD = 4.0
"""A held-out rating at or above this counts as relevant (4 of 5 stars, the usual MovieLens cut)."""

RATING_METRICS = ("rmse", "mae")
RANKING_METRICS = ("precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k")


def _is_number(col: Column) -> Column:
    """Not null and not NaN (Spark sorts NaN above every number and `NaN >= x` is true)."""
    return col.isNotNull() & ~F.isnan(col)


def _require_columns(df: DataFrame, what: str, *names: str) -> None:
    missing = [n for n in names if n not in df.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {', '.join(missing)}; it has {', '.join(df.columns)}")


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")


def float_or_none(value) -> float | None:
    """A metric as Python reads it from a result row (a Decimal of the exact sums, say), None kept."""
    return None if value is None else float(value)


def _keys(groups: DataFrame | None) -> list[str]:
    """The grouping columns of a `groups` frame of distinct key rows; none without one."""
    return [] if groups is None else list(groups.columns)


# ---------------------------------------------------------------------------------------------
# Rating prediction error
# ---------------------------------------------------------------------------------------------


def rating_metrics(
    predictions: DataFrame, *, label_col: str = C.RATING, prediction_col: str = PREDICTION
) -> dict[str, float | None]:
    """`{"rmse": ..., "mae": ...}` in one action.

    Rows whose prediction or rating is null or NaN are excluded (ALS's cold-start NaNs, say), so
    the metrics cover only the rows a model could score; count them separately if that matters.
    Both are None when no row is left.

        rmse = sqrt( (1/N) * sum (r_ui - p_ui)^2 )
        mae  = (1/N) * sum |r_ui - p_ui|
    """
    return _rating_fit(
        rating_moments(predictions, label_col=label_col, prediction_col=prediction_col).first()
    )[0]


def rmse(
    predictions: DataFrame, *, label_col: str = C.RATING, prediction_col: str = PREDICTION
) -> float | None:
    """Root mean squared error, sqrt((1/N) * sum (r_ui - p_ui)^2), one action.

    Rows with a null or NaN prediction (or rating) are excluded; None when no row is left.
    """
    return rating_metrics(predictions, label_col=label_col, prediction_col=prediction_col)["rmse"]


def mae(
    predictions: DataFrame, *, label_col: str = C.RATING, prediction_col: str = PREDICTION
) -> float | None:
    """Mean absolute error, (1/N) * sum |r_ui - p_ui|, one action.

    Rows with a null or NaN prediction (or rating) are excluded; None when no row is left.
    """
    return rating_metrics(predictions, label_col=label_col, prediction_col=prediction_col)["mae"]


# ---------------------------------------------------------------------------------------------
# Top-k lists
# ---------------------------------------------------------------------------------------------


def top_k(
    scored: DataFrame, k: int, *, exclude: DataFrame | None = None, score_col: str = SCORE
) -> DataFrame:
    """Each user's k best movies as (user_id, movie_id, score, rank), rank 1..k. Lazy.

    `scored` holds candidate (user_id, movie_id, score) rows, at most one per pair. Pairs present
    in `exclude` (the training ratings: anything with user_id and movie_id) are removed first, so a
    user is never recommended a movie already rated. Rows with a null or NaN score are dropped.
    Ties break deterministically: score descending, then movie_id ascending. A user with fewer
    than k candidates gets a shorter list. The output score column is always named `score`.
    """
    _check_k(k)
    _require_columns(scored, "scored", C.USER_ID, C.MOVIE_ID, score_col)
    candidates = scored.select(C.USER_ID, C.MOVIE_ID, F.col(score_col).cast("double").alias(SCORE)).where(
        _is_number(F.col(SCORE))
    )
    if exclude is not None:
        _require_columns(exclude, "exclude", C.USER_ID, C.MOVIE_ID)
        rated = exclude.select(C.USER_ID, C.MOVIE_ID)
        candidates = candidates.join(rated, [C.USER_ID, C.MOVIE_ID], "left_anti")
    order = Window.partitionBy(C.USER_ID).orderBy(F.col(SCORE).desc(), F.col(C.MOVIE_ID).asc())
    return candidates.withColumn(RANK, F.row_number().over(order)).where(F.col(RANK) <= k)


# ---------------------------------------------------------------------------------------------
# Ranking metrics
# ---------------------------------------------------------------------------------------------


def _is_relevant(threshold: float) -> Column:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or math.isnan(threshold):
        raise ValueError(f"threshold must be a number, got {threshold!r}")
    rating = F.col(C.RATING)
    known = F.col(C.USER_ID).isNotNull() & F.col(C.MOVIE_ID).isNotNull()
    return known & _is_number(rating) & (rating >= F.lit(float(threshold)))


def relevant_items(held_out: DataFrame, threshold: float = DEFAULT_RELEVANCE_THRESHOLD) -> DataFrame:
    """Distinct (user_id, movie_id) pairs whose held-out rating is >= `threshold`. Lazy.

    This is the relevance of every ranking metric here. Null or NaN ratings are never relevant;
    `threshold=float("-inf")` makes every held-out movie relevant (implicit-feedback style).
    """
    _require_columns(held_out, "held_out", C.USER_ID, C.MOVIE_ID, C.RATING)
    return held_out.where(_is_relevant(threshold)).select(C.USER_ID, C.MOVIE_ID).distinct()


def _ideal_dcg(n: Column) -> Column:
    """sum_{i=1..n} 1 / log2(i + 1), 0.0 for n = 0."""
    return F.aggregate(
        F.sequence(F.lit(1), F.greatest(n, F.lit(1))),
        F.lit(0.0),
        lambda acc, i: acc + F.when(i <= n, 1.0 / F.log2(i + 1)).otherwise(0.0),
    )


def relevant_sets(held_out: DataFrame, threshold: float = DEFAULT_RELEVANCE_THRESHOLD) -> DataFrame:
    """(user_id, _relevant array<long>): each user's relevant held-out movies, for users with any. Lazy.

    Cached, it lets `ranking_metrics` judge many models' lists against one held-out set without
    grouping the held-out ratings again for each (`relevant=`)."""
    return (
        held_out.where(_is_relevant(threshold))
        .groupBy(C.USER_ID)
        .agg(F.collect_set(F.col(C.MOVIE_ID).cast("long")).alias("_relevant"))
    )


def ranking_metrics_by_user(
    recommendations: DataFrame,
    held_out: DataFrame,
    k: int,
    *,
    threshold: float = DEFAULT_RELEVANCE_THRESHOLD,
    relevant: DataFrame | None = None,
    groups: DataFrame | None = None,
) -> DataFrame:
    """Per-user precision/recall/NDCG/AP at k, one row per user with a relevant held-out item. Lazy.

    Output columns: user_id, n_relevant, hits, precision_at_k, recall_at_k, ndcg_at_k, map_at_k
    (the last is the user's AP@k; its mean over users is MAP@k).

    `recommendations` are top-k lists (user_id, movie_id, rank) with unique movies and ranks
    1, 2, ... per user, as `top_k` builds them from candidates that exclude each user's training
    items (this function does not know the training set, so the lists must already exclude it).
    Rows with rank > k are ignored, so lists built once for the largest k serve every smaller k.
    A list shorter than k is not padded: its missing slots count as misses.

    Relevance is binary: rel(u, i) = 1 when u's held-out rating of i is >= `threshold`, else 0
    (see `relevant_items`). With R_u the user's relevant set, L_u the list cut at k and
    hit(j) = 1 when the movie at rank j is in R_u:

        precision@k(u) = |L_u ∩ R_u| / k                      (k even when the list is shorter)
        recall@k(u)    = |L_u ∩ R_u| / |R_u|
        ndcg@k(u)      = DCG / IDCG,  DCG  = sum_{j=1..k} hit(j) / log2(j + 1),
                                      IDCG = sum_{j=1..min(|R_u|, k)} 1 / log2(j + 1)
        ap@k(u)        = (1 / min(|R_u|, k)) * sum_{j=1..k} hit(j) * precision@j(u)

    Users with no relevant held-out item have no row: every metric is undefined for them (0/0
    recall) and they are left out of every mean. Users with relevant items but no list get a row
    of zeros. These are the formulas and the rule of Spark's `RankingEvaluator` (mllib
    `RankingMetrics`, binary relevance) when it is fed one row per user with a non-empty label
    set; fed rows with empty label sets, Spark would count them as 0.0 instead.

    `relevant`: `relevant_sets(held_out, threshold)`, when the caller has it cached (then
    `held_out` and `threshold` are not read again).

    `groups`: distinct key rows (a `model` column, say) when `recommendations` holds several
    groups' lists under those keys: each group is judged on its own, every relevant user once per
    group, and the rows carry the keys first.
    """
    _check_k(k)
    keys = _keys(groups)
    _require_columns(recommendations, "recommendations", *keys, C.USER_ID, C.MOVIE_ID, RANK)
    _require_columns(held_out, "held_out", C.USER_ID, C.MOVIE_ID, C.RATING)
    # The user's list as (rank, movie) structs, grouped by user beside the user's relevant set; the
    # metrics are then array expressions per user. Users without a list get an empty one.
    entry = F.struct(F.col(RANK).cast("int").alias("_rank"), F.col(C.MOVIE_ID).cast("long").alias("_listed"))
    listed = recommendations.where((F.col(RANK) <= k) & F.col(C.MOVIE_ID).isNotNull())
    lists = listed.groupBy(*keys, C.USER_ID).agg(F.array_sort(F.collect_list(entry)).alias("_list"))
    empty = F.array().cast(lists.schema["_list"].dataType)
    relevant = relevant_sets(held_out, threshold) if relevant is None else relevant
    if groups is not None:
        relevant = groups.crossJoin(relevant)
    per_user = relevant.join(lists, [*keys, C.USER_ID], "left").select(
        *keys, C.USER_ID, "_relevant", F.coalesce("_list", empty).alias("_list")
    )
    # Ranks of the hits, ascending (structs sort by their first field, the rank).
    hit_ranks = F.transform(
        F.filter("_list", lambda entry: F.array_contains(F.col("_relevant"), entry["_listed"])),
        lambda entry: entry["_rank"],
    )
    with_hits = per_user.select(
        *keys, C.USER_ID, F.size("_relevant").alias("n_relevant"), hit_ranks.alias("_hit_ranks")
    )
    ranks = F.col("_hit_ranks")
    dcg = F.aggregate(ranks, F.lit(0.0), lambda acc, rank: acc + 1.0 / F.log2(rank + 1))
    # The j-th hit (1-based), at rank r, contributes precision@r = j / r to the AP sum.
    precision_sum = F.aggregate(
        F.transform(ranks, lambda rank, j: (j + 1) / rank), F.lit(0.0), lambda acc, x: acc + x
    )
    n_relevant, hits = F.col("n_relevant"), F.size(ranks)
    cut = F.least(n_relevant, F.lit(k))
    return with_hits.select(
        *keys,
        C.USER_ID,
        n_relevant,
        hits.alias("hits"),
        (hits / F.lit(float(k))).alias("precision_at_k"),
        (hits / n_relevant).alias("recall_at_k"),
        (dcg / _ideal_dcg(cut)).alias("ndcg_at_k"),
        (precision_sum / cut).alias("map_at_k"),
    )


def ranking_metrics(
    recommendations: DataFrame,
    held_out: DataFrame,
    k: int,
    *,
    threshold: float = DEFAULT_RELEVANCE_THRESHOLD,
    relevant: DataFrame | None = None,
) -> dict[str, float | None]:
    """Mean precision@k, recall@k, NDCG@k and MAP@k over users, in one action.

    Formulas, relevance and the user rule are those of `ranking_metrics_by_user`: the mean is
    over users with at least one held-out rating >= `threshold`. Every value is None when there
    is no such user (empty held-out set); a user with no hit, or no list at all, counts as 0.0.
    """
    row = ranking_means(recommendations, held_out, k, threshold=threshold, relevant=relevant).first()
    return {name: float_or_none(row[name]) for name in RANKING_METRICS}


def ranking_means(
    recommendations: DataFrame,
    held_out: DataFrame,
    k: int,
    *,
    threshold: float = DEFAULT_RELEVANCE_THRESHOLD,
    relevant: DataFrame | None = None,
    groups: DataFrame | None = None,
) -> DataFrame:
    """`ranking_metrics` as a lazy frame: one row per group (one row in all without `groups`),
    the means null where the group has no user to average over."""
    per_user = ranking_metrics_by_user(
        recommendations, held_out, k, threshold=threshold, relevant=relevant, groups=groups
    )
    keys = _keys(groups)
    return per_user.groupBy(*keys).agg(*(exact_avg(name).alias(name) for name in RANKING_METRICS))


def precision_at_k(
    recommendations: DataFrame,
    held_out: DataFrame,
    k: int,
    *,
    threshold: float = DEFAULT_RELEVANCE_THRESHOLD,
) -> float | None:
    """Mean over users of |top-k ∩ relevant| / k, one action. See `ranking_metrics_by_user`."""
    return ranking_metrics(recommendations, held_out, k, threshold=threshold)["precision_at_k"]


def recall_at_k(
    recommendations: DataFrame,
    held_out: DataFrame,
    k: int,
    *,
    threshold: float = DEFAULT_RELEVANCE_THRESHOLD,
) -> float | None:
    """Mean over users of |top-k ∩ relevant| / |relevant|, one action. See `ranking_metrics_by_user`."""
    return ranking_metrics(recommendations, held_out, k, threshold=threshold)["recall_at_k"]


def ndcg_at_k(
    recommendations: DataFrame,
    held_out: DataFrame,
    k: int,
    *,
    threshold: float = DEFAULT_RELEVANCE_THRESHOLD,
) -> float | None:
    """Mean over users of binary-relevance DCG@k / IDCG@k, one action.

    DCG@k = sum_{j<=k} hit(j) / log2(j + 1); IDCG@k = sum_{j<=min(|relevant|, k)} 1 / log2(j + 1).
    See `ranking_metrics_by_user`.
    """
    return ranking_metrics(recommendations, held_out, k, threshold=threshold)["ndcg_at_k"]


def map_at_k(
    recommendations: DataFrame,
    held_out: DataFrame,
    k: int,
    *,
    threshold: float = DEFAULT_RELEVANCE_THRESHOLD,
) -> float | None:
    """Mean over users of AP@k = sum_{j<=k} hit(j) * precision@j / min(|relevant|, k), one action.

    See `ranking_metrics_by_user`.
    """
    return ranking_metrics(recommendations, held_out, k, threshold=threshold)["map_at_k"]


def catalogue_coverage(recommendations: DataFrame, catalogue: DataFrame, k: int) -> float | None:
    """Fraction of the catalogue's distinct movies that appear in at least one top-k list, one action.

        catalogue_coverage = |{i in catalogue : rank(u, i) <= k for some u}| / |catalogue|

    `catalogue` is any DataFrame with movie_id (the movies table, or the training movies);
    recommended movies outside it are not counted, so the value lies in [0, 1]. None for an empty
    catalogue; 0.0 when there are no recommendations.
    """
    return coverage_ratio(catalogue_counts(recommendations, catalogue, k).first())


def catalogue_counts(
    recommendations: DataFrame, catalogue: DataFrame, k: int, *, groups: DataFrame | None = None
) -> DataFrame:
    """Lazy (keys..., movies, covered): the catalogue's distinct movies and how many of them the
    group's top-k lists hold, one row per group (`catalogue_coverage` = covered / movies)."""
    _check_k(k)
    keys = _keys(groups)
    _require_columns(recommendations, "recommendations", *keys, C.MOVIE_ID, RANK)
    _require_columns(catalogue, "catalogue", C.MOVIE_ID)
    movies = catalogue.select(C.MOVIE_ID).where(F.col(C.MOVIE_ID).isNotNull()).distinct()
    listed = recommendations.where(F.col(RANK) <= k).select(*keys, C.MOVIE_ID).distinct()
    covered = listed.join(movies, C.MOVIE_ID).groupBy(*keys).agg(F.count(F.lit(1)).alias("covered"))
    counted = movies.agg(F.count(F.lit(1)).alias("movies"))
    if groups is None:
        return counted.crossJoin(covered)
    return groups.join(covered, keys, "left").crossJoin(counted)


def coverage_ratio(row) -> float | None:
    """covered / movies of a `catalogue_counts` row: None for an empty catalogue, 0.0 unlisted."""
    return None if not row["movies"] else (row["covered"] or 0) / row["movies"]


# ---------------------------------------------------------------------------------------------
# Beyond the top-k cut, rating fit, and beyond accuracy
# ---------------------------------------------------------------------------------------------


def explained_rating_metrics(
    predictions: DataFrame, *, label_col: str = C.RATING, prediction_col: str = PREDICTION
) -> dict[str, float | None]:
    """`{"r2": ..., "explained_variance": ...}` in one action (scikit-learn's definitions).

    With e = r - p over the rows where both are numbers, and r-bar the mean rating:

        r2                 = 1 - sum (r - p)^2 / sum (r - r-bar)^2
        explained_variance = 1 - Var(e) / Var(r)      (population variances)

    They differ when the errors have a non-zero mean (a biased model). None without rows, or when
    every rating is the same (0/0).
    """
    return _rating_fit(
        rating_moments(predictions, label_col=label_col, prediction_col=prediction_col).first()
    )[1]


def rating_fit_metrics(
    predictions: DataFrame, *, label_col: str = C.RATING, prediction_col: str = PREDICTION
) -> dict[str, float | None]:
    """`rating_metrics` and `explained_rating_metrics` together, from one action (one pass)."""
    return rating_fit(rating_moments(predictions, label_col=label_col, prediction_col=prediction_col).first())


def rating_moments(
    predictions: DataFrame,
    *,
    label_col: str = C.RATING,
    prediction_col: str = PREDICTION,
    keys: tuple[str, ...] = (),
) -> DataFrame:
    """Lazy: n and the exact sums of e, e^2, |e|, r and r^2 (e = r - p) over rows where both are
    numbers, one row per `keys` group (one row in all without keys); `rating_fit` reads a row.

    Exact sums, not Spark's avg or var_pop, whose floating-point merges depend on the order
    partitions arrive in; every rating-fit metric derives from this one row."""
    _require_columns(predictions, "predictions", *keys, label_col, prediction_col)
    label, pred = F.col(label_col).cast("double"), F.col(prediction_col).cast("double")
    err = label - pred
    return (
        predictions.where(_is_number(label) & _is_number(pred))
        .groupBy(*keys)
        .agg(
            F.count(F.lit(1)).alias("n"),
            exact_sum(err).alias("e"),
            exact_sum(err * err).alias("ee"),
            exact_sum(F.abs(err)).alias("ae"),
            exact_sum(label).alias("r"),
            exact_sum(label * label).alias("rr"),
        )
    )


def rating_fit(row) -> dict[str, float | None]:
    """rmse, mae, r2 and explained_variance from a `rating_moments` row (None without rows)."""
    errors, explained = _rating_fit(row)
    return {**errors, **explained}


def _rating_fit(row) -> tuple[dict[str, float | None], dict[str, float | None]]:
    """({rmse, mae}, {r2, explained_variance}) from a `rating_moments` row, in exact decimal arithmetic."""
    if not row["n"]:
        return dict.fromkeys(RATING_METRICS), {"r2": None, "explained_variance": None}
    with decimal.localcontext() as exact:
        exact.prec = 100
        n = decimal.Decimal(row["n"])
        errors = {"rmse": math.sqrt(float(row["ee"] / n)), "mae": float(row["ae"] / n)}
        sst = row["rr"] - row["r"] * row["r"] / n  # n * Var(r)
        sse_centred = row["ee"] - row["e"] * row["e"] / n  # n * Var(e)
        if not sst:
            return errors, {"r2": None, "explained_variance": None}
        return errors, {"r2": float(1 - row["ee"] / sst), "explained_variance": float(1 - sse_centred / sst)}


def full_list_metrics(
    recommendations: DataFrame, held_out: DataFrame, *, threshold: float = DEFAULT_RELEVANCE_THRESHOLD
) -> dict[str, float | None]:
    """`{"map": ..., "r_precision": ...}` over each user's whole list, in one action.

    Relevance, the user rule and the hit(j) notation are `ranking_metrics_by_user`'s; L_u is the
    user's whole list (every rank), R_u the relevant set:

        ap(u)          = (1 / |R_u|) * sum_{j in L_u} hit(j) * precision@j(u)   (Spark's meanAveragePrecision)
        r_precision(u) = |{j <= |R_u| : hit(j)}| / |R_u|                          (precision at R = |R_u|)

    A list shorter than |R_u| counts its missing slots as misses. Means over users with a relevant
    item; None when there is none.
    """
    _require_columns(recommendations, "recommendations", C.USER_ID, C.MOVIE_ID, RANK)
    labels = held_out.where(_is_relevant(threshold)).select(C.USER_ID, C.MOVIE_ID).distinct()
    n_relevant = labels.groupBy(C.USER_ID).agg(F.count(F.lit(1)).alias("_n"))
    hits = (
        recommendations.select(C.USER_ID, C.MOVIE_ID, F.col(RANK).cast("int").alias(RANK))
        .join(labels, [C.USER_ID, C.MOVIE_ID])
        .withColumn("_j", F.row_number().over(Window.partitionBy(C.USER_ID).orderBy(RANK)))
        .groupBy(C.USER_ID)
        .agg(F.array_sort(F.collect_list(F.struct("_j", RANK))).alias("_hits"))
    )
    per_user = n_relevant.join(hits, C.USER_ID, "left").select(
        F.col("_n"), F.coalesce(F.col("_hits"), F.array().cast("array<struct<_j:int,rank:int>>")).alias("_h")
    )
    ap = F.aggregate("_h", F.lit(0.0), lambda acc, h: acc + h["_j"] / h[RANK]) / F.col("_n")
    within_r = F.size(F.filter("_h", lambda h: h[RANK] <= F.col("_n"))) / F.col("_n")
    row = per_user.agg(exact_avg(ap).alias("map"), exact_avg(within_r).alias("r_precision")).first()
    return {"map": float_or_none(row["map"]), "r_precision": float_or_none(row["r_precision"])}


def distributional_coverage(recommendations: DataFrame, k: int) -> float | None:
    """Shannon entropy (bits) of how often each movie appears in the top-k lists, one action.

        p(i) = |{u : rank(u, i) <= k}| / (number of list slots)
        distributional_coverage = - sum_i p(i) * log2 p(i)

    0 when every list is the same single movie; log2(catalogue size) when every movie is listed
    equally often (Recommenders' `distributional_coverage`). None without recommendations.
    """
    return float_or_none(slot_entropy(recommendations, k).first()["distributional_coverage"])


def slot_entropy(recommendations: DataFrame, k: int, *, groups: DataFrame | None = None) -> DataFrame:
    """`distributional_coverage` as a lazy frame, one row per group present in the lists."""
    _check_k(k)
    keys = _keys(groups)
    _require_columns(recommendations, "recommendations", *keys, C.MOVIE_ID, RANK)
    counts = (
        recommendations.where(F.col(RANK) <= k).groupBy(*keys, C.MOVIE_ID).agg(F.count(F.lit(1)).alias("_c"))
    )
    total = F.sum("_c").over(Window.partitionBy(*keys))
    return (
        counts.select(*keys, (F.col("_c") / total).alias("_p"))
        .groupBy(*keys)
        .agg(exact_sum(-F.col("_p") * F.log2("_p")).alias("distributional_coverage"))
    )


def self_information(train: DataFrame) -> DataFrame:
    """(movie_id, _information): -log2(|U_i| / |U|) per training movie, novelty's per-movie term. Lazy.

    Two aggregations of the training ratings: cache it to judge several models' lists (`novelty`'s
    `information`) on one training set without repeating them."""
    users = train.select(C.USER_ID).distinct().agg(F.count(F.lit(1)).alias("_users"))
    item_users = train.groupBy(C.MOVIE_ID).agg(F.countDistinct(C.USER_ID).alias("_u"))
    return item_users.crossJoin(users).select(
        C.MOVIE_ID, (-F.log2(F.col("_u") / F.col("_users"))).alias("_information")
    )


def novelty(
    recommendations: DataFrame, train: DataFrame, k: int, *, information: DataFrame | None = None
) -> float | None:
    """Mean self-information of the recommended movies, in bits, one action.

        novelty(i) = -log2( |U_i| / |U| )    (U_i: training users who rated i; U: all training users)
        novelty    = mean over users of the mean novelty(i) over their top-k list

    (Vargas and Castells 2011; Recommenders' `novelty` weights by list slot instead, which equals
    this when every list has k movies). A movie absent from training is skipped. None when no
    listed movie is known. `information`: `self_information(train)`, when the caller has it cached.
    """
    info = self_information(train) if information is None else information
    return float_or_none(mean_novelty(recommendations, info, k).first()["novelty"])


def mean_novelty(
    recommendations: DataFrame, information: DataFrame, k: int, *, groups: DataFrame | None = None
) -> DataFrame:
    """`novelty` as a lazy frame from `self_information`, one row per group with a known movie."""
    _check_k(k)
    keys = _keys(groups)
    _require_columns(recommendations, "recommendations", *keys, C.USER_ID, C.MOVIE_ID, RANK)
    per_user = (
        recommendations.where(F.col(RANK) <= k)
        .join(information, C.MOVIE_ID)
        .groupBy(*keys, C.USER_ID)
        .agg(exact_avg("_information").alias("_n"))
    )
    return per_user.groupBy(*keys).agg(exact_avg("_n").alias("novelty"))


def _cosine(a: Column, b: Column) -> Column:
    dot = F.aggregate(F.zip_with(a, b, lambda x, y: x * y), F.lit(0.0), lambda acc, x: acc + x)
    norm = lambda v: F.sqrt(F.aggregate(v, F.lit(0.0), lambda acc, x: acc + x * x))  # noqa: E731
    return F.try_divide(dot, norm(a) * norm(b))  # null for a zero vector (ANSI mode raises on x / 0)


def intra_list_diversity(recommendations: DataFrame, item_features: DataFrame, k: int) -> float | None:
    """Mean over users of the mean pairwise dissimilarity 1 - cos(f_i, f_j) within the top-k list.

        ild(u) = (2 / (n (n - 1))) * sum_{i < j in L_u} (1 - cos(f_i, f_j))

    `item_features(movie_id, features array<double>)`: genre indicators, or a model's item factors
    (Ziegler et al. 2005; Recommenders' `diversity` with cosine similarity). Movies without features
    and users with fewer than two featured movies are skipped; a zero vector's cosine counts as 0.
    None when no user has a pair. One action.
    """
    _check_k(k)
    feats = item_features.select(C.MOVIE_ID, F.col("features").alias("_f"))
    listed = recommendations.where(F.col(RANK) <= k).select(C.USER_ID, C.MOVIE_ID).join(feats, C.MOVIE_ID)
    a, b = listed.alias("a"), listed.alias("b")
    pairs = a.join(
        b,
        (F.col(f"a.{C.USER_ID}") == F.col(f"b.{C.USER_ID}"))
        & (F.col(f"a.{C.MOVIE_ID}") < F.col(f"b.{C.MOVIE_ID}")),
    )
    cos = F.coalesce(F.nanvl(_cosine(F.col("a._f"), F.col("b._f")), F.lit(0.0)), F.lit(0.0))
    per_user = pairs.groupBy(F.col(f"a.{C.USER_ID}").alias(C.USER_ID)).agg(exact_avg(1.0 - cos).alias("_d"))
    return float_or_none(per_user.agg(exact_avg("_d")).first()[0])


def serendipity(
    recommendations: DataFrame,
    train: DataFrame,
    held_out: DataFrame,
    item_features: DataFrame,
    k: int,
    *,
    threshold: float = DEFAULT_RELEVANCE_THRESHOLD,
) -> float | None:
    """Mean over users of the mean over their top-k list of unexpectedness x relevance (one action).

        unexpectedness(u, i) = 1 - mean_{j in H_u} cos(f_i, f_j)    (H_u: u's training movies)
        serendipity(u)       = (1 / |L_u|) * sum_{i in L_u} unexpectedness(u, i) * rel(u, i)

    rel(u, i) = 1 when u's held-out rating of i is >= `threshold` (Recommenders' `serendipity`,
    after Kotkov et al. 2016, with binary relevance). Listed movies without features, and users
    without a featured training movie, are skipped. None when nothing is left.
    """
    _check_k(k)
    feats = item_features.select(C.MOVIE_ID, F.col("features").alias("_f"))
    listed = recommendations.where(F.col(RANK) <= k).select(C.USER_ID, C.MOVIE_ID).join(feats, C.MOVIE_ID)
    history = train.select(C.USER_ID, F.col(C.MOVIE_ID).alias("_h")).join(
        feats.select(F.col(C.MOVIE_ID).alias("_h"), F.col("_f").alias("_hf")), "_h"
    )
    cos = F.coalesce(F.nanvl(_cosine(F.col("_f"), F.col("_hf")), F.lit(0.0)), F.lit(0.0))
    unexpected = (
        listed.join(history, C.USER_ID)
        .groupBy(C.USER_ID, C.MOVIE_ID)
        .agg((1.0 - exact_avg(cos)).alias("_unexpected"))
    )
    relevant = relevant_items(held_out, threshold).withColumn("_rel", F.lit(1.0))
    per_user = (
        unexpected.join(relevant, [C.USER_ID, C.MOVIE_ID], "left")
        .groupBy(C.USER_ID)
        .agg(exact_avg(F.col("_unexpected") * F.coalesce(F.col("_rel"), F.lit(0.0))).alias("_s"))
    )
    return float_or_none(per_user.agg(exact_avg("_s")).first()[0])
