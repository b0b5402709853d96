"""Splits: hand-checked per-user time holdouts, hash-based holdout and k-fold invariants, the official
ml-100k folds against their published counts, and the Parquet round trip of written folds."""

from __future__ import annotations

from datetime import datetime, timezone
from functools import reduce

import pytest
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lensflow_spark import columns as C
from lensflow_spark import schemas
from lensflow_spark.splits import (
    FOLDS_MANIFEST,
    Fold,
    Split,
    k_fold,
    official_folds,
    random_holdout,
    read_folds,
    stratified_holdout,
    time_holdout,
    validation_holdout,
    write_folds,
)

RATINGS_DDL = "user_id int, movie_id int, rating double, rated_at timestamp"


def ts(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def pairs(df: DataFrame) -> list[tuple[int, int]]:
    return sorted((r[C.USER_ID], r[C.MOVIE_ID]) for r in df.select(C.USER_ID, C.MOVIE_ID).collect())


def sides(folds: list[Fold]) -> dict[tuple[int, str], list[tuple[int, int]]]:
    """`(fold_id, "train" | "test") -> sorted (user_id, movie_id) pairs`, in one Spark job."""
    tagged = [
        df.select(C.USER_ID, C.MOVIE_ID, F.lit(f.fold_id).alias("fold"), F.lit(side).alias("side"))
        for f in folds
        for side, df in (("train", f.train), ("test", f.test))
    ]
    out: dict[tuple[int, str], list[tuple[int, int]]] = {
        (f.fold_id, s): [] for f in folds for s in ("train", "test")
    }
    for r in reduce(DataFrame.unionByName, tagged).collect():
        out[(r.fold, r.side)].append((r[C.USER_ID], r[C.MOVIE_ID]))
    return {key: sorted(value) for key, value in out.items()}


def held_out(folds: list[Fold]) -> list[list[tuple[int, int]]]:
    """Each fold's sorted test pairs, in fold order, in one Spark job."""
    tagged = [f.test.select(C.USER_ID, C.MOVIE_ID, F.lit(f.fold_id).alias("fold")) for f in folds]
    out: dict[int, list[tuple[int, int]]] = {f.fold_id: [] for f in folds}
    for r in reduce(DataFrame.unionByName, tagged).collect():
        out[r.fold].append((r[C.USER_ID], r[C.MOVIE_ID]))
    return [sorted(out[f.fold_id]) for f in folds]


def split_sides(split: Split) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(train pairs, test pairs) of a holdout, in one Spark job."""
    got = sides([Fold(0, split.train, split.test)])
    return got[(0, "train")], got[(0, "test")]


TINY_PAIRS = [(1, 10), (1, 20), (1, 30), (1, 40), (2, 10), (2, 50), (3, 20)]


@pytest.fixture(scope="module")
def tiny(spark) -> DataFrame:
    # User 1 rated movies 30 and 40 in the same second: 40 (larger id) counts as the later one.
    # User 3 has a single rating.
    rows = [
        (1, 10, 4.0, ts(100)),
        (1, 20, 3.0, ts(200)),
        (1, 30, 5.0, ts(300)),
        (1, 40, 2.0, ts(300)),
        (2, 10, 3.0, ts(50)),
        (2, 50, 4.0, ts(60)),
        (3, 20, 5.0, ts(10)),
    ]
    return spark.createDataFrame(rows, RATINGS_DDL)


GRID_PAIRS = sorted((user, movie) for user in range(1, 51) for movie in range(1, 41))


@pytest.fixture(scope="module")
def grid(spark) -> DataFrame:
    """2,000 ratings: 50 users x 40 movies, as 7 partitions."""
    return (
        spark.range(2000, numPartitions=7)
        .select(
            (F.col("id") % 50 + 1).cast("int").alias(C.USER_ID),
            (F.col("id") / 50 + 1).cast("int").alias(C.MOVIE_ID),
            (F.col("id") % 5 + 1).cast("double").alias(C.RATING),
            F.timestamp_seconds(F.col("id") * 60).alias(C.RATED_AT),
        )
        .cache()
    )


@pytest.mark.parametrize(
    ("kwargs", "expected_test"),
    [
        ({"n": 1}, [(1, 40), (2, 50)]),
        # User 2 keeps one training rating (min_train=1), so gives only one; user 3 gives none.
        ({"n": 2}, [(1, 30), (1, 40), (2, 50)]),
        # round(4 * 0.5) = 2, round(2 * 0.5) = 1, round(1 * 0.5) = 1 but user 3 keeps its only rating.
        ({"fraction": 0.5}, [(1, 30), (1, 40), (2, 50)]),
        ({"n": 1, "min_train": 0}, [(1, 40), (2, 50), (3, 20)]),
    ],
)
def test_time_holdout_puts_each_users_latest_ratings_in_test(tiny, kwargs, expected_test):
    split = time_holdout(tiny, **kwargs)
    train, test = split_sides(split)

    assert test == expected_test
    assert sorted(train + test) == TINY_PAIRS
    assert split.train.columns == split.test.columns == tiny.columns


def test_time_holdout_every_test_rating_is_later_than_the_users_training_ratings(grid):
    split = time_holdout(grid, fraction=0.25)
    tagged = split.train.withColumn("in_test", F.lit(False)).unionByName(
        split.test.withColumn("in_test", F.lit(True))
    )
    latest_train: dict[int, datetime] = {}
    test_times: dict[int, list[datetime]] = {}
    for r in tagged.collect():
        if r.in_test:
            test_times.setdefault(r[C.USER_ID], []).append(r[C.RATED_AT])
        else:
            latest_train[r[C.USER_ID]] = max(r[C.RATED_AT], latest_train.get(r[C.USER_ID], r[C.RATED_AT]))

    # 40 ratings per user: round(40 * 0.25) = 10 in test, all later than the user's 30 in train.
    assert sorted(test_times) == sorted(latest_train) == list(range(1, 51))
    assert all(len(times) == 10 and min(times) > latest_train[u] for u, times in test_times.items())


@pytest.mark.parametrize(
    "kwargs", [{}, {"n": 1, "fraction": 0.2}, {"n": 0}, {"fraction": 1.0}, {"n": 1, "min_train": -1}]
)
def test_time_holdout_rejects_bad_arguments(tiny, kwargs):
    with pytest.raises(ValueError):
        time_holdout(tiny, **kwargs)


def test_random_holdout_is_disjoint_complete_and_independent_of_partitioning(grid):
    train, test = split_sides(random_holdout(grid, fraction=0.2, seed=42))

    assert not set(test) & set(train)
    assert sorted(test + train) == GRID_PAIRS
    assert 300 <= len(test) <= 500  # 400 expected
    assert pairs(random_holdout(grid.coalesce(1), fraction=0.2, seed=42).test) == test
    assert pairs(random_holdout(grid, fraction=0.2, seed=43).test) != test


def test_hash_assignment_is_pinned(spark):
    # Golden values: if a Spark upgrade changed xxhash64, stored folds would no longer match re-splits.
    rows = [(u, m, 3.0, ts(0)) for u in (1, 2, 3) for m in (10, 20, 30, 40)]
    df = spark.createDataFrame(rows, RATINGS_DDL)

    _, test = split_sides(random_holdout(df, fraction=0.5, seed=42))
    assert test == [(1, 10), (1, 20), (1, 30), (1, 40), (2, 20), (2, 30), (2, 40), (3, 30), (3, 40)]
    assert held_out(k_fold(df, k=3, seed=42)) == [
        [(1, 10), (1, 30), (2, 20), (2, 30), (3, 20), (3, 30)],
        [(1, 40), (2, 10), (2, 40), (3, 40)],
        [(1, 20), (3, 10)],
    ]


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_random_holdout_rejects_fractions_outside_0_1(grid, fraction):
    with pytest.raises(ValueError, match="fraction"):
        random_holdout(grid, fraction=fraction, seed=1)


def test_k_fold_tests_every_row_exactly_once_reproducibly(grid):
    folds = k_fold(grid, k=3, seed=7)
    got = sides(folds)

    assert [f.fold_id for f in folds] == [0, 1, 2]
    tests = [got[(i, "test")] for i in range(3)]
    assert sorted(p for t in tests for p in t) == GRID_PAIRS
    for i, test in enumerate(tests):
        assert sorted(got[(i, "train")] + test) == GRID_PAIRS
        assert 560 <= len(test) <= 780  # 667 expected

    assert held_out(k_fold(grid.coalesce(1), k=3, seed=7)) == tests
    assert held_out(k_fold(grid, k=3, seed=8)) != tests


def test_k_fold_rejects_fewer_than_two_folds_and_non_integer_seeds(grid):
    with pytest.raises(ValueError, match="k must be"):
        k_fold(grid, k=1, seed=7)
    with pytest.raises(ValueError, match="seed must be"):
        k_fold(grid, k=2, seed=1.5)


def test_official_ml100k_folds_match_the_published_counts(spark, movielens_dir):
    folder = movielens_dir / "ml-100k"

    def read(name: str) -> DataFrame:
        return spark.read.schema(schemas.ML100K_RATINGS).option("sep", "\t").csv(str(folder / name))

    folds = official_folds([(read(f"u{i}.base"), read(f"u{i}.test")) for i in range(1, 6)])
    assert [f.fold_id for f in folds] == [0, 1, 2, 3, 4]
    assert [(f.name, f.dataType.simpleString()) for f in folds[0].test.schema] == [
        (C.USER_ID, "int"),
        (C.MOVIE_ID, "int"),
        (C.RATING, "double"),
        (C.RATED_AT, "timestamp"),
    ]

    udata = official_folds([(read("u.data"), read("u.data"))])[0].train
    parts = [
        df.withColumn("fold", F.lit(f.fold_id)).withColumn("side", F.lit(side))
        for f in folds
        for side, df in (("base", f.train), ("test", f.test))
    ]
    tagged = reduce(DataFrame.unionByName, parts).cache()

    per_fold = tagged.groupBy("fold").agg(
        F.sum((F.col("side") == "base").cast("int")).alias("base"),
        F.sum((F.col("side") == "test").cast("int")).alias("test"),
        F.count_distinct(C.USER_ID, C.MOVIE_ID).alias("pairs"),
    )
    assert sorted(tuple(r) for r in per_fold.collect()) == [(i, 80_000, 20_000, 100_000) for i in range(5)]
    # Every row is a row of u.data, and within a fold no (user, movie) pair repeats (base and test
    # are disjoint); with 100,000 rows per fold and 100,000 in u.data, base + test == u.data.
    assert tagged.drop("fold", "side").join(udata, udata.columns, "left_anti").count() == 0
    assert udata.count() == 100_000
    tagged.unpersist()


def test_write_folds_then_read_folds_round_trips(spark, grid, tmp_path):
    folds = k_fold(grid, k=2, seed=3)
    uri = str(tmp_path / "folds")

    write_folds(folds, uri)
    back = read_folds(spark, uri)

    assert (tmp_path / "folds" / FOLDS_MANIFEST).exists()
    assert (tmp_path / "folds" / "fold=1" / "test").is_dir()
    assert [f.fold_id for f in back] == [0, 1]
    assert sides(back) == sides(folds)
    assert back[1].test.schema.simpleString() == grid.schema.simpleString()  # Parquet: all nullable


def test_read_folds_without_a_manifest_fails(spark, tmp_path):
    with pytest.raises(Exception, match=FOLDS_MANIFEST):
        read_folds(spark, str(tmp_path / "nothing-here"))


def test_stratified_holdout_holds_out_a_quarter_of_every_user_reproducibly(grid):
    """Recommenders' per-user split: 40 ratings per user -> round(0.75 * 40) = 30 train, 10 test."""
    train, test = split_sides(stratified_holdout(grid, 0.25, 42))
    assert not set(test) & set(train) and sorted(test + train) == GRID_PAIRS
    per_user = {u: sum(1 for v, _ in test if v == u) for u in range(1, 51)}
    assert set(per_user.values()) == {10}
    assert pairs(stratified_holdout(grid.coalesce(1), 0.25, 42).test) == test
    assert pairs(stratified_holdout(grid, 0.25, 43).test) != test


def test_validation_holdout_carves_only_the_training_part_independently_of_the_outer_split(grid):
    outer = random_holdout(grid, fraction=0.2, seed=42)
    outer_train, outer_test = split_sides(outer)
    for stratified in (False, True):
        fit, validation = split_sides(validation_holdout(outer.train, 0.2, 42, stratified=stratified))
        assert sorted(fit + validation) == outer_train and not set(validation) & set(outer_test)
        assert 0.1 * len(outer_train) < len(validation) < 0.3 * len(outer_train)
    # Its own salt: the same seed does not reproduce the outer split's choice on the same rows.
    _, again = split_sides(validation_holdout(grid, 0.2, 42))
    assert again != outer_test
