"""ALS: config validation, planted low-rank factors recovered under a threshold, the model contract
(same seed same output, every hyperparameter changes it, save/load, unknown users), the grid-point
evaluation's shape, and RMSE bands on real MovieLens data."""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from dataclasses import replace
from typing import NamedTuple

import numpy as np
import pytest
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lensflow_spark import columns as C
from lensflow_spark import schemas
from lensflow_spark.als import (
    RANK,
    SCORE,
    SOURCE,
    ALSConfig,
    ALSRuntime,
    build_estimator,
    evaluate_grid_point,
    load_model,
    movie_popularity,
    recommend_for_users,
    save_model,
    train_final,
)
from lensflow_spark.splits import Fold, k_fold, official_folds, random_holdout

# Planted factors: 60 users x 40 movies, rank 3, N(0, 1) factors, N(0, 0.05^2) noise; 1,256 of the
# 2,400 ratings (52%) observed for training, the rest held out. Ratings have a standard deviation of 1.56.
N_USERS, N_MOVIES, PLANTED_RANK, NOISE = 60, 40, 3, 0.05
BASE = ALSConfig(rank=PLANTED_RANK, reg_param=0.01, max_iter=10)
RATINGS_DDL = "user_id int, movie_id int, rating double"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory) -> ALSRuntime:
    # Two blocks: exercises ALS's blocking while keeping the tiny fits' task count low.
    return ALSRuntime(checkpoint_dir=str(tmp_path_factory.mktemp("checkpoints")), seed=7, num_blocks=2)


class Planted(NamedTuple):
    train: DataFrame
    test: DataFrame
    train_rows: list[tuple[int, int, float]]
    test_rows: list[tuple[int, int, float]]


@pytest.fixture(scope="module")
def planted(spark) -> Planted:
    rng = np.random.default_rng(7)
    users = rng.normal(size=(N_USERS, PLANTED_RANK))
    movies = rng.normal(size=(N_MOVIES, PLANTED_RANK))
    ratings = users @ movies.T + rng.normal(scale=NOISE, size=(N_USERS, N_MOVIES))
    observed = rng.random((N_USERS, N_MOVIES)) < 0.5
    rows: dict[bool, list[tuple[int, int, float]]] = {True: [], False: []}
    for u in range(N_USERS):
        for m in range(N_MOVIES):
            rows[bool(observed[u, m])].append((u + 1, m + 1, float(ratings[u, m])))
    train = spark.createDataFrame(rows[True], RATINGS_DDL).coalesce(2).cache()
    test = spark.createDataFrame(rows[False], RATINGS_DDL).coalesce(2).cache()
    return Planted(train, test, rows[True], rows[False])


@pytest.fixture(scope="module")
def base_model(spark, planted, runtime):
    return train_final(spark, planted.train, BASE, runtime)


@pytest.fixture(scope="module")
def base_predictions(base_model, planted) -> dict[tuple[int, int], float]:
    return predictions(base_model, planted.test)


def predictions(model, df: DataFrame) -> dict[tuple[int, int], float]:
    return {(r[C.USER_ID], r[C.MOVIE_ID]): r.prediction for r in model.transform(df).collect()}


def rmse(model, df: DataFrame) -> float:
    rows = model.transform(df).select(C.RATING, "prediction").collect()
    return math.sqrt(statistics.fmean((r[C.RATING] - r.prediction) ** 2 for r in rows))


# --- config -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rank": 0},
        {"rank": 2.0},
        {"rank": True},
        {"reg_param": -0.1},
        {"reg_param": float("nan")},
        {"max_iter": 0},
        {"alpha": -1.0},
        {"implicit_prefs": 1},
        {"nonnegative": "no"},
    ],
)
def test_config_rejects_invalid_hyperparameters(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        ALSConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [{"checkpoint_dir": ""}, {"seed": 1.5}, {"checkpoint_interval": 0}, {"cold_start_strategy": "error"}],
)
def test_runtime_rejects_invalid_options(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        ALSRuntime(**{"checkpoint_dir": "/tmp/ckpt", **kwargs})


def test_config_round_trips_through_a_dict_and_rejects_unknown_keys():
    config = ALSConfig(rank=4, reg_param=1, max_iter=3, alpha=2, implicit_prefs=True, nonnegative=True)
    doc = config.to_dict()

    assert doc == {
        "rank": 4,
        "reg_param": 1.0,
        "max_iter": 3,
        "alpha": 2.0,
        "implicit_prefs": True,
        "nonnegative": True,
    }
    assert ALSConfig.from_dict(json.loads(json.dumps(doc))) == config
    with pytest.raises(ValueError, match="regParam"):
        ALSConfig.from_dict({"rank": 4, "regParam": 0.1})


def test_build_estimator_maps_every_field(spark):
    config = ALSConfig(rank=4, reg_param=0.2, max_iter=3, alpha=2.0, implicit_prefs=True, nonnegative=True)
    runtime = ALSRuntime(
        checkpoint_dir="/tmp/ckpt", seed=11, checkpoint_interval=3, cold_start_strategy="nan", num_blocks=3
    )
    als = build_estimator(config, runtime)

    assert (als.getUserCol(), als.getItemCol(), als.getRatingCol()) == (C.USER_ID, C.MOVIE_ID, C.RATING)
    assert (als.getRank(), als.getRegParam(), als.getMaxIter(), als.getAlpha()) == (4, 0.2, 3, 2.0)
    assert (als.getImplicitPrefs(), als.getNonnegative()) == (True, True)
    assert (als.getSeed(), als.getCheckpointInterval(), als.getColdStartStrategy()) == (11, 3, "nan")
    assert (als.getNumUserBlocks(), als.getNumItemBlocks()) == (3, 3)


# --- planted factors and the model contract -----------------------------------------------------


def test_planted_low_rank_factors_are_recovered(spark, planted, base_model, runtime):
    # Observed: train 0.058, held-out 0.074 (noise floor 0.05; predicting 0 would give ~1.56).
    assert rmse(base_model, planted.train) < 0.15
    assert rmse(base_model, planted.test) < 0.25
    assert spark.sparkContext.getCheckpointDir().startswith("file:" + runtime.checkpoint_dir)


def test_same_seed_gives_the_same_predictions(spark, planted, base_predictions, runtime):
    again = train_final(spark, planted.train, BASE, runtime)

    assert predictions(again, planted.test) == base_predictions


@pytest.mark.parametrize(
    ("config", "seed"),
    [
        (replace(BASE, rank=2), 7),
        (replace(BASE, reg_param=0.5), 7),
        (replace(BASE, max_iter=3), 7),
        (BASE, 8),
    ],
    ids=["rank", "reg_param", "max_iter", "seed"],
)
def test_every_hyperparameter_changes_the_predictions(
    spark, planted, base_predictions, runtime, config, seed
):
    other = train_final(spark, planted.train, config, replace(runtime, seed=seed))

    base, changed = base_predictions, predictions(other, planted.test)
    assert base.keys() == changed.keys()
    assert max(abs(base[key] - changed[key]) for key in base) > 1e-3


def test_save_load_round_trip_gives_identical_predictions(planted, base_model, base_predictions, tmp_path):
    uri = str(tmp_path / "model")
    save_model(base_model, uri)
    loaded = load_model(uri)

    assert loaded.rank == PLANTED_RANK
    assert predictions(loaded, planted.test) == base_predictions
    save_model(base_model, uri)  # overwrites


def test_recommendations_exclude_rated_movies_and_fall_back_to_popularity(
    spark, planted, base_model, base_predictions
):
    popularity = Counter(movie for _, movie, _ in planted.train_rows)
    by_popularity = sorted(popularity, key=lambda m: (-popularity[m], m))
    # User 999 is unknown to the model and has rated the two most popular movies.
    newcomer = spark.createDataFrame([(999, m, 4.0) for m in by_popularity[:2]], RATINGS_DDL)
    users = spark.createDataFrame([(1,), (999,), (1,)], "user_id int")

    recs = recommend_for_users(
        base_model, users, 5, planted.train.unionByName(newcomer), movie_popularity(planted.train)
    ).collect()
    rows = {u: sorted((r for r in recs if r[C.USER_ID] == u), key=lambda r: r[RANK]) for u in (1, 999)}

    assert len(recs) == 10
    assert [r[C.MOVIE_ID] for r in rows[999]] == by_popularity[2:7]  # ties broken by movie_id
    assert [r[SCORE] for r in rows[999]] == [popularity[m] for m in by_popularity[2:7]]
    assert {r[SOURCE] for r in rows[999]} == {"popularity"}

    # Every movie user 1 did not rate is in the held-out set, so base_predictions scores them all.
    unrated = {movie: p for (user, movie), p in base_predictions.items() if user == 1}
    expected = sorted(unrated, key=lambda m: (-unrated[m], m))[:5]
    assert [r[RANK] for r in rows[1]] == [1, 2, 3, 4, 5]
    assert [r[C.MOVIE_ID] for r in rows[1]] == expected
    assert [r[SCORE] for r in rows[1]] == pytest.approx([unrated[m] for m in expected], rel=1e-5)
    assert {r[SOURCE] for r in rows[1]} == {"als"}


def test_evaluate_grid_point_reports_every_fold_and_their_mean_and_std(spark, planted, runtime):
    everything = planted.train.unionByName(planted.test)
    folds = k_fold(everything, k=2, seed=1)
    config = replace(BASE, max_iter=4)

    result = evaluate_grid_point(spark, folds, config, replace(runtime, cold_start_strategy="nan"))

    assert json.loads(json.dumps(result)) == result
    assert set(result) == {"point", "folds", "mean", "std"}
    assert result["point"] == config.to_dict()
    assert [f["fold"] for f in result["folds"]] == [0, 1]
    for fold in result["folds"]:
        assert set(fold) == {"fold", "rmse", "mae", "n_test", "n_predicted"}
        assert 0 < fold["n_predicted"] <= fold["n_test"]  # cold start dropped, never NaN
        assert 0 < fold["mae"] <= fold["rmse"] < 0.5  # observed 0.16 and 0.14
    assert sum(f["n_test"] for f in result["folds"]) == N_USERS * N_MOVIES
    for metric in ("rmse", "mae"):
        values = [f[metric] for f in result["folds"]]
        assert result["mean"][metric] == pytest.approx(statistics.fmean(values))
        assert result["std"][metric] == pytest.approx(statistics.pstdev(values))


def test_evaluate_grid_point_rejects_a_fold_with_nothing_to_score(spark, planted, runtime):
    train = planted.train.where("user_id <= 30")
    cold = Fold(0, train, planted.test.where("user_id > 30"))

    with pytest.raises(ValueError, match="fold 0: no test rating"):
        evaluate_grid_point(spark, [cold], replace(BASE, max_iter=1), runtime)


# --- real data: RMSE bands (rank 10, reg 0.1, 10 iterations) ------------------------------------

REAL = ALSConfig(rank=10, reg_param=0.1, max_iter=10)


def test_ml100k_official_u1_fold_rmse_band(spark, movielens_dir, runtime):
    folder = movielens_dir / "ml-100k"

    def read(name: str) -> DataFrame:
        return spark.read.schema(schemas.ML100K_RATINGS).option("sep", "\t").csv(str(folder / name))

    fold = official_folds([(read("u1.base"), read("u1.test"))])[0]
    result = evaluate_grid_point(spark, [fold], REAL, runtime)

    # Observed 0.934 (seed 7, 2 blocks; 0.936-0.938 with seed 42 and 1, 2 or 4 blocks; u2-u5 give
    # 0.919-0.926). 32 test ratings have a movie that u1.base lacks, so they are not scored.
    assert 0.91 <= result["mean"]["rmse"] <= 0.96
    assert (result["folds"][0]["n_test"], result["folds"][0]["n_predicted"]) == (20_000, 19_968)


def test_ml_latest_small_random_holdout_rmse_band(spark, movielens_dir, runtime):
    ratings = (
        spark.read.schema(schemas.LATEST_RATINGS)
        .option("header", True)
        .csv(str(movielens_dir / "ml-latest-small" / "ratings.csv"))
        .select(
            F.col("userId").alias(C.USER_ID),
            F.col("movieId").alias(C.MOVIE_ID),
            F.col("rating").alias(C.RATING),
            F.timestamp_seconds("timestamp").alias(C.RATED_AT),
        )
    )
    split = random_holdout(ratings, fraction=0.2, seed=42)
    result = evaluate_grid_point(spark, [Fold(0, split.train, split.test)], REAL, runtime)

    # Observed 0.887 (holdout seeds 1 and 2: 0.878, 0.881), scoring 19,033 of the 19,852 held-out
    # ratings: the rest have a movie (or user) with no training rating.
    assert 0.86 <= result["mean"]["rmse"] <= 0.92
    assert (result["folds"][0]["n_test"], result["folds"][0]["n_predicted"]) == (19_852, 19_033)
