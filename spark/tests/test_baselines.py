"""Baselines on a tiny matrix with hand-computed biases, the unknown-user/movie rules, save/load,
and RMSE bands on ml-100k's u1 split."""

from __future__ import annotations

import dataclasses

import pytest
from pyspark.sql.types import DoubleType, IntegerType, LongType, StructField, StructType

from lensflow_spark import baselines as B
from lensflow_spark import metrics as M

RATINGS = "user_id int, movie_id int, rating double"
PAIRS = "user_id int, movie_id int"

# The tiny matrix: mu = (5 + 3 + 4 + 1 + 2) / 5 = 3.0.
#            movie 1  movie 2  movie 3
#   user 1      5        3        .
#   user 2      4        .        1
#   user 3      .        2        .
TINY = [(1, 1, 5.0), (1, 2, 3.0), (2, 1, 4.0), (2, 3, 1.0), (3, 2, 2.0)]
UNKNOWN = 9  # an id that is neither a training user nor a training movie


def tiny(spark):
    return spark.createDataFrame(TINY, RATINGS)


@pytest.fixture(scope="module")
def bias_model(spark):
    """UserItemBias with lambda_i = 1, lambda_u = 2 and one sweep, fitted once on the tiny matrix."""
    model = B.UserItemBias(DAMPED).fit(tiny(spark))
    yield model
    model.unpersist()


@pytest.fixture(scope="module")
def popular_model(spark):
    model = B.MostPopular().fit(tiny(spark))
    yield model
    model.unpersist()


def predictions(model, spark, pairs) -> dict[tuple[int, int], float]:
    rows = model.transform(spark.createDataFrame(pairs, PAIRS)).collect()
    return {(r.user_id, r.movie_id): r.prediction for r in rows}


def lists(recommendations) -> dict[int, list[int]]:
    """{user: [movie at rank 1, ...]} from a top-k DataFrame or its collected rows."""
    rows = recommendations if isinstance(recommendations, list) else recommendations.collect()
    out: dict[int, list[int]] = {}
    for row in sorted(rows, key=lambda r: (r.user_id, r.rank)):
        out.setdefault(row.user_id, []).append(row.movie_id)
    return out


# --- global mean --------------------------------------------------------------------------------


def test_global_mean_predicts_mu_for_known_and_unknown_pairs(spark):
    model = B.GlobalMean().fit(tiny(spark))
    assert model.global_mean == 3.0
    assert predictions(model, spark, [(1, 3), (UNKNOWN, 1), (UNKNOWN, UNKNOWN)]) == {
        (1, 3): 3.0,
        (UNKNOWN, 1): 3.0,
        (UNKNOWN, UNKNOWN): 3.0,
    }


def test_fitting_on_no_ratings_is_an_error(spark):
    with pytest.raises(ValueError, match="empty ratings"):
        B.UserItemBias().fit(spark.createDataFrame([(1, 1, None)], RATINGS))


# --- user-item bias -------------------------------------------------------------------------------

# lambda_i = 1, lambda_u = 2. First sweep:
#   b_1 = ((5-3) + (4-3)) / (1 + 2) = 1          b_2 = ((3-3) + (2-3)) / (1 + 2) = -1/3
#   b_3 = (1-3) / (1 + 1) = -1
#   b_u1 = ((5-3-1) + (3-3+1/3)) / (2 + 2) = 1/3  b_u2 = ((4-3-1) + (1-3+1)) / (2 + 2) = -1/4
#   b_u3 = (2-3+1/3) / (2 + 1) = -2/9
# Second sweep, movies given those users (these values also show that every hyperparameter,
# lambda_i, lambda_u and the number of sweeps, changes the model):
#   b_1 = ((5-3-1/3) + (4-3+1/4)) / 3 = 35/36     b_2 = ((3-3-1/3) + (2-3+2/9)) / 3 = -10/27
#   b_3 = (1-3+1/4) / 2 = -7/8
#   b_u1 = ((5-3-35/36) + (3-3+10/27)) / 4 = 151/432
#   b_u2 = ((4-3-35/36) + (1-3+7/8)) / 4 = -79/288
#   b_u3 = (2-3+10/27) / 3 = -17/81
DAMPED = B.UserItemBiasConfig(item_damping=1.0, user_damping=2.0)
ONE_SWEEP = ({1: 1.0, 2: -1 / 3, 3: -1.0}, {1: 1 / 3, 2: -1 / 4, 3: -2 / 9})
TWO_SWEEPS = ({1: 35 / 36, 2: -10 / 27, 3: -7 / 8}, {1: 151 / 432, 2: -79 / 288, 3: -17 / 81})


def biases(model) -> tuple[dict[int, float], dict[int, float]]:
    items = {r.movie_id: r.item_bias for r in model.items.collect()}
    users = {r.user_id: r.user_bias for r in model.users.collect()}
    return items, users


def test_user_item_bias_by_hand(spark, bias_model):
    assert bias_model.global_mean == 3.0
    items, users = biases(bias_model)
    assert items == pytest.approx(ONE_SWEEP[0], abs=1e-12)
    assert users == pytest.approx(ONE_SWEEP[1], abs=1e-12)

    items, users = biases(B.UserItemBias(dataclasses.replace(DAMPED, iterations=2)).fit(tiny(spark)))
    assert items == pytest.approx(TWO_SWEEPS[0], abs=1e-12)
    assert users == pytest.approx(TWO_SWEEPS[1], abs=1e-12)


def test_user_item_bias_unknown_user_or_movie_drops_that_bias(spark, bias_model):
    got = predictions(bias_model, spark, [(1, 3), (UNKNOWN, 1), (1, UNKNOWN), (UNKNOWN, UNKNOWN)])
    assert got == pytest.approx(
        {
            (1, 3): 3.0 + 1 / 3 - 1.0,  # mu + b_u1 + b_3
            (UNKNOWN, 1): 3.0 + 1.0,  # mu + b_1
            (1, UNKNOWN): 3.0 + 1 / 3,  # mu + b_u1
            (UNKNOWN, UNKNOWN): 3.0,  # mu
        },
        abs=1e-12,
    )


def test_user_item_bias_recommends_by_movie_bias_without_rated_movies(spark, bias_model):
    model = bias_model
    users = spark.createDataFrame([(1,), (3,), (UNKNOWN,)], "user_id int")
    got = model.recommend_for_users(users, 2, exclude=tiny(spark))
    # b_1 = 1 > b_2 = -1/3 > b_3 = -1; user 1 rated 1 and 2, user 3 rated 2.
    assert lists(got) == {1: [3], 3: [1, 3], UNKNOWN: [1, 2]}
    [row] = model.score(spark.createDataFrame([(3, 1)], PAIRS)).collect()
    assert row.score == pytest.approx(3.0 - 2 / 9 + 1.0, abs=1e-12)  # mu + b_u3 + b_1


@pytest.mark.parametrize(
    ("field", "value"),
    [("item_damping", -1.0), ("user_damping", float("nan")), ("iterations", 0), ("iterations", 1.5)],
)
def test_user_item_bias_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        B.UserItemBiasConfig(**{field: value})


# --- most popular ---------------------------------------------------------------------------------


def test_most_popular_ranks_by_count_without_rated_movies(spark, popular_model):
    users = spark.createDataFrame([(1,), (3,), (UNKNOWN,)], "user_id int")
    # Counts: movie 1 -> 2, movie 2 -> 2 (tie: lower id first), movie 3 -> 1.
    rows = popular_model.recommend_for_users(users, 2, exclude=tiny(spark)).collect()
    assert lists(rows) == {1: [3], 3: [1, 3], UNKNOWN: [1, 2]}
    assert [r.score for r in rows if r.user_id == UNKNOWN] == [2.0, 2.0]


def test_most_popular_predicts_the_movie_mean_or_mu(spark, popular_model):
    assert predictions(popular_model, spark, [(1, 1), (UNKNOWN, 2), (1, UNKNOWN)]) == {
        (1, 1): 4.5,
        (UNKNOWN, 2): 2.5,
        (1, UNKNOWN): 3.0,
    }


# --- save / load ----------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["bias", "popular"])
def test_save_and_load_round_trip(spark, tmp_path, bias_model, popular_model, which):
    model, model_class, other_class = {
        "bias": (bias_model, B.UserItemBiasModel, B.MostPopularModel),
        "popular": (popular_model, B.MostPopularModel, B.GlobalMeanModel),
    }[which]
    path = str(tmp_path / "model")
    model.save(path)
    loaded = model_class.load(spark, path)
    pairs = [(1, 3), (3, 1), (UNKNOWN, 2), (2, UNKNOWN)]
    assert predictions(loaded, spark, pairs) == pytest.approx(predictions(model, spark, pairs), abs=1e-12)
    assert loaded.global_mean == model.global_mean
    assert getattr(loaded, "config", None) == getattr(model, "config", None)
    with pytest.raises(ValueError, match=f"holds a '{model.kind}' model, not '{other_class.kind}'"):
        other_class.load(spark, path)


# --- ml-100k u1 ----------------------------------------------------------------------------------

ML100K_SPLIT = StructType(
    [
        StructField("user_id", IntegerType()),
        StructField("movie_id", IntegerType()),
        StructField("rating", DoubleType()),
        StructField("timestamp", LongType()),
    ]
)


def test_rmse_bands_on_ml100k_u1(spark, movielens_dir):
    folder = movielens_dir / "ml-100k"
    read = spark.read.schema(ML100K_SPLIT).option("sep", "\t").csv
    train = read(str(folder / "u1.base")).cache()
    test = read(str(folder / "u1.test")).cache()

    results = {}
    for name, estimator in [
        ("global_mean", B.GlobalMean()),
        ("user_item_bias", B.UserItemBias()),
        ("most_popular", B.MostPopular()),
    ]:
        model = estimator.fit(train)
        results[name] = M.rating_metrics(model.transform(test))
        model.unpersist()
    train.unpersist()
    test.unpersist()

    # Measured: global mean 1.1537, bias (damping 5/5, one sweep) 0.9575, movie mean 1.0334.
    assert 1.10 <= results["global_mean"]["rmse"] <= 1.20
    assert 0.945 <= results["user_item_bias"]["rmse"] <= 0.970
    assert 1.00 <= results["most_popular"]["rmse"] <= 1.06
    assert results["user_item_bias"]["mae"] < results["global_mean"]["mae"]
