"""Train/test splits of the canonical ratings table: holdouts, k-fold, and ml-100k's official folds.

The splitters are pure and lazy (`DataFrame -> Split` or `-> list[Fold]`). Every assignment is a
function of the row itself (a hash of `(user_id, movie_id, seed)`, or the user's own ratings in
time order), never of how the input happens to be partitioned, so re-running a split (or Spark
recomputing a lost partition) always puts each row on the same side. Unlike `randomSplit` over
unsorted partitions, no sort or cache is needed for that. The hash is Spark's `xxhash64`, a fixed
function of the values and their types (the canonical `int` ids); a golden test pins it, so a Spark
upgrade that changed it would not silently re-split data.

Only `write_folds` and `read_folds` touch storage; job entry points call them to materialise folds
once, so every grid point of a search trains and tests on exactly the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from . import columns as C
from .storage import read_json, write_json

# 53 bits: as many as a double holds exactly, so `_unit_hash` is uniform on [0, 1).
_UNIT_BITS = 53
FOLDS_MANIFEST = "_folds.json"


class Split(NamedTuple):
    """One train/test split."""

    train: DataFrame
    test: DataFrame


class Fold(NamedTuple):
    """One fold of a cross-validation: its id and its train/test split."""

    fold_id: int
    train: DataFrame
    test: DataFrame


def _row_hash(salt: str, seed: int) -> Column:
    """A 64-bit hash of `(salt, user_id, movie_id, seed)`; `salt` keeps different splitters independent."""
    return F.xxhash64(F.lit(salt), F.col(C.USER_ID), F.col(C.MOVIE_ID), F.lit(seed).cast("long"))


def _unit_hash(salt: str, seed: int) -> Column:
    """`_row_hash` mapped to a double uniform on [0, 1): its top 53 bits over 2^53."""
    return F.shiftrightunsigned(_row_hash(salt, seed), 64 - _UNIT_BITS) / float(2**_UNIT_BITS)


def _check_seed(seed: int) -> None:
    if not isinstance(seed, int) or isinstance(seed, bool) or not -(2**63) <= seed < 2**63:
        raise ValueError(f"seed must be a 64-bit int, got {seed!r}")


def random_holdout(ratings: DataFrame, fraction: float, seed: int) -> Split:
    """Seeded random holdout: each rating goes to test with probability `fraction`, independently.

    A row is in test when `xxhash64("holdout", user_id, movie_id, seed)`, scaled to [0, 1), is below
    `fraction`, so the split is reproducible for the same input and seed whatever the partitioning,
    and the test size is `fraction` of the rows in expectation (not exactly). Users or movies may
    end up only in test; evaluate with cold-start `drop` or filter them.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    _check_seed(seed)
    in_test = _unit_hash("holdout", seed) < F.lit(float(fraction))
    return Split(train=ratings.where(~in_test), test=ratings.where(in_test))


def time_holdout(
    ratings: DataFrame, *, n: int | None = None, fraction: float | None = None, min_train: int = 1
) -> Split:
    """Per-user time-ordered holdout: each user's latest ratings go to test, the rest to train.

    Give exactly one of `n` (the latest `n` ratings of each user) or `fraction` (the latest
    `round(fraction * count)` ratings of each user, half up). Ratings are ordered by `rated_at`,
    ties broken by `movie_id` (the larger id counts as later), so the split is deterministic.
    At most `count - min_train` ratings of a user go to test: with the default `min_train=1` every
    user with a test rating also has a training rating, so no test user is cold; users with at most
    `min_train` ratings stay entirely in train.
    """
    if (n is None) == (fraction is None):
        raise ValueError("give exactly one of n or fraction")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    if fraction is not None and not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    if not isinstance(min_train, int) or isinstance(min_train, bool) or min_train < 0:
        raise ValueError(f"min_train must be an int >= 0, got {min_train!r}")

    by_user = Window.partitionBy(C.USER_ID)
    latest_first = by_user.orderBy(F.col(C.RATED_AT).desc(), F.col(C.MOVIE_ID).desc())
    count = F.count(F.lit(1)).over(by_user)
    wanted = F.lit(n) if n is not None else F.round(count * F.lit(float(fraction)))
    n_test = F.least(wanted, count - F.lit(min_train))
    marked = ratings.withColumn("_in_test", F.row_number().over(latest_first) <= n_test)
    cols = ratings.columns
    return Split(
        train=marked.where(~F.col("_in_test")).select(*cols),
        test=marked.where(F.col("_in_test")).select(*cols),
    )


def stratified_holdout(ratings: DataFrame, fraction: float, seed: int, *, salt: str = "stratified") -> Split:
    """Per-user random holdout: each user's ratings in a seeded random order, the last ones to test.

    Microsoft Recommenders' `python_stratified_split(ratio=1 - fraction)`: a user with n ratings
    keeps `round((1 - fraction) * n)` (half up) in train and the rest in test, so every user is in
    both sides when n >= 2 and the per-user test share is `fraction` up to rounding. The order is
    `xxhash64(salt, user_id, movie_id, seed)` (ties by movie_id), reproducible whatever the
    partitioning; a different `salt` gives an independent split of the same rows (e.g. a
    validation split carved from a training part).
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    _check_seed(seed)
    by_user = Window.partitionBy(C.USER_ID)
    order = by_user.orderBy(_row_hash(salt, seed), F.col(C.MOVIE_ID))
    n_train = F.round(F.count(F.lit(1)).over(by_user) * F.lit(1.0 - float(fraction)))
    marked = ratings.withColumn("_in_train", F.row_number().over(order) <= n_train)
    cols = ratings.columns
    return Split(
        train=marked.where(F.col("_in_train")).select(*cols),
        test=marked.where(~F.col("_in_train")).select(*cols),
    )


def validation_holdout(train: DataFrame, fraction: float, seed: int, *, stratified: bool = False) -> Split:
    """A validation split carved from an evaluation fold's TRAINING part, for nested selection.

    Hyperparameters are chosen on `(fit, validation)` = this split of `train`; only the chosen point
    is then refitted on all of `train` and scored on the fold's test, so test rows never steer a
    choice. `stratified` mirrors a per-user protocol (`stratified_holdout`), otherwise a random
    holdout; either way with its own salt, so it is independent of the split that made `train`.
    """
    if stratified:
        return stratified_holdout(train, fraction, seed, salt="validation")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    _check_seed(seed)
    in_validation = _unit_hash("validation", seed) < F.lit(float(fraction))
    return Split(train=train.where(~in_validation), test=train.where(in_validation))


def k_fold(ratings: DataFrame, k: int, seed: int) -> list[Fold]:
    """Seeded k-fold cross-validation: fold `i` tests on the rows whose bucket is `i`, trains on the rest.

    A row's bucket is `pmod(xxhash64("kfold", user_id, movie_id, seed), k)`, so every row is in
    exactly one test set, the assignment is reproducible for the same seed whatever the
    partitioning, and fold sizes are `1/k` of the rows in expectation. Fold ids are `0 .. k-1`.
    """
    if not isinstance(k, int) or isinstance(k, bool) or k < 2:
        raise ValueError(f"k must be an int >= 2, got {k!r}")
    _check_seed(seed)
    bucket = F.pmod(_row_hash("kfold", seed), F.lit(k))
    return [Fold(i, train=ratings.where(bucket != i), test=ratings.where(bucket == i)) for i in range(k)]


def _canonical_ml100k(df: DataFrame) -> DataFrame:
    """ml-100k's `user item rating timestamp` rows as canonical ratings, by position, whatever the names."""
    if len(df.columns) != 4:
        raise ValueError(f"expected 4 columns (user, item, rating, timestamp), got {df.columns}")
    user, movie, rating, seconds = (F.col(f"`{name}`") for name in df.columns)
    return df.select(
        user.cast("int").alias(C.USER_ID),
        movie.cast("int").alias(C.MOVIE_ID),
        rating.cast("double").alias(C.RATING),
        F.timestamp_seconds(seconds.cast("long")).alias(C.RATED_AT),
    )


def official_folds(pairs: Sequence[tuple[DataFrame, DataFrame]]) -> list[Fold]:
    """ml-100k's official five-fold split as canonical folds.

    `pairs` holds `(u1.base, u1.test), ..., (u5.base, u5.test)`, each read like `u.data` (e.g. with
    `schemas.ML100K_RATINGS`: tab-separated user, item, rating, unix seconds; no header). Columns
    are taken by position. `u{i}` becomes fold `i - 1`, matching `k_fold`'s 0-based ids. The files
    are GroupLens' own split, so nothing is re-split here.
    """
    if not pairs:
        raise ValueError("no folds given")
    return [
        Fold(i, train=_canonical_ml100k(base), test=_canonical_ml100k(test))
        for i, (base, test) in enumerate(pairs)
    ]


def _fold_uri(uri: str, fold_id: int, part: str) -> str:
    return f"{uri.rstrip('/')}/fold={fold_id}/{part}"


def write_folds(folds: Sequence[Fold], uri: str) -> None:
    """I/O: writes folds as Parquet under `<uri>/fold=<i>/train` and `.../test`, then a manifest.

    Called by job entry points, once per dataset and split, so every grid point reads the same
    rows. Overwrites what is there. The manifest `<uri>/_folds.json` (the fold ids) is written last,
    so `read_folds` never sees a half-written set.
    """
    if not folds:
        raise ValueError("no folds to write")
    ids = [fold.fold_id for fold in folds]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate fold ids: {ids}")
    for fold in folds:
        fold.train.write.mode("overwrite").parquet(_fold_uri(uri, fold.fold_id, "train"))
        fold.test.write.mode("overwrite").parquet(_fold_uri(uri, fold.fold_id, "test"))
    write_json(folds[0].train.sparkSession, f"{uri.rstrip('/')}/{FOLDS_MANIFEST}", {"fold_ids": ids})


def read_folds(spark: SparkSession, uri: str) -> list[Fold]:
    """I/O: reads back the folds that `write_folds` wrote under `uri`, in fold-id order.

    Raises if the manifest is missing (nothing written there, or the write did not finish).
    """
    manifest = read_json(spark, f"{uri.rstrip('/')}/{FOLDS_MANIFEST}")
    return [
        Fold(
            i,
            train=spark.read.parquet(_fold_uri(uri, i, "train")),
            test=spark.read.parquet(_fold_uri(uri, i, "test")),
        )
        for i in sorted(manifest["fold_ids"])
    ]
