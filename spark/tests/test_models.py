"""The model families on planted structure and on real data: bias-aware ALS recovers a planted
bias + low-rank matrix better than the bias model and stays on the rating scale; implicit ALS and
EASE (PyTorch through TorchDistributor) find planted blocks; I-AutoRec (PyTorch through
TorchDistributor) learns planted ratings, deterministically by seed; no family ever serves a rated movie;
save/load round trips; one estimator surface for all."""

from __future__ import annotations

import random

import pytest
from pyspark.sql import functions as F

from lensflow_spark import columns as C
from lensflow_spark import metrics as M
from lensflow_spark.bias_als import BiasALSConfig, BiasALSModel
from lensflow_spark.families import FAMILIES, FitRuntime, family
from lensflow_spark.implicit_als import ImplicitALSConfig, ImplicitALSModel
from lensflow_spark.protocols import THRESHOLD4, select_and_evaluate
from lensflow_spark.readers import read_dataset
from lensflow_spark.splits import random_holdout

RATINGS = "user_id int, movie_id int, rating double"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return FitRuntime(checkpoint_dir=str(root / "ckpt"), work_dir=str(root / "work"), scale=(1.0, 5.0))


@pytest.fixture(scope="module")
def planted(spark):
    """40 users x 30 movies: r = 3 + b_u + b_i + 1.2 s_u t_i + noise, s and t in {-1, +1}, clipped to 1..5."""
    rng = random.Random(7)
    b_u = [rng.uniform(-0.6, 0.6) for _ in range(40)]
    b_i = [rng.uniform(-0.8, 0.8) for _ in range(30)]
    s_u = [rng.choice((-1, 1)) for _ in range(40)]
    t_i = [rng.choice((-1, 1)) for _ in range(30)]
    rows = [
        (u, i, min(5.0, max(1.0, 3 + b_u[u] + b_i[i] + 1.2 * s_u[u] * t_i[i] + rng.gauss(0, 0.1))))
        for u in range(40)
        for i in range(30)
        if rng.random() < 0.7
    ]
    split = random_holdout(spark.createDataFrame(rows, RATINGS), 0.2, 1)
    return split.train.cache(), split.test.cache()


@pytest.fixture(scope="module")
def blocks(spark):
    """Two user groups, two movie groups: group g users rate 10 of group g's 15 movies, nothing else,
    so each has 5 unrated movies of its own group to find (which 5 varies with the user)."""
    rng = random.Random(3)
    rows = [
        (u, i + 15 * (u % 2), float(rng.choice((3, 4, 5))))
        for u in range(30)
        for i in range(15)
        if (u // 2 + i) % 3 != 0
    ]
    return spark.createDataFrame(rows, RATINGS).cache()


def _fit(name, point, runtime, ratings):
    return family(name).estimator(point, runtime).fit(ratings)


def test_bias_als_beats_the_bias_model_on_planted_interactions_and_stays_on_scale(spark, planted, runtime):
    train, test = planted
    bias = _fit("user_item_bias", {"iterations": 3, "user_damping": 1.0, "item_damping": 1.0}, runtime, train)
    model = _fit(
        "bias_als",
        {"rank": 2, "reg_param": 0.05, "max_iter": 8, "user_damping": 1.0, "item_damping": 1.0},
        runtime,
        train,
    )
    bias_rmse = M.rmse(bias.transform(test))
    model_rmse = M.rmse(model.transform(test))
    assert model_rmse < 0.5 * bias_rmse, (model_rmse, bias_rmse)
    # Every pair, including unknown ones, gets a prediction on the scale.
    pairs = spark.createDataFrame(
        [(u, i) for u in range(-1, 41) for i in range(-1, 31)], "user_id int, movie_id int"
    )
    row = model.transform(pairs).agg(F.min(C.PREDICTION), F.max(C.PREDICTION), F.count(C.PREDICTION)).first()
    assert row[0] >= 1.0 and row[1] <= 5.0 and row[2] == 42 * 32
    unknown = model.transform(spark.createDataFrame([(99, 99)], "user_id int, movie_id int")).first()
    assert unknown.prediction == pytest.approx(model.global_mean)


@pytest.fixture(scope="module")
def generous_by_taste(spark):
    """40 users x 30 movies, r = 3 + b_u + b_i + s_u t_i, s and t in {-1, +1}, but users mostly rate
    the movies they like (s_u t_i = +1: 90 %, else 30 %), so a user's mean rating mixes b_u with taste."""
    rng = random.Random(11)
    b_u = [rng.uniform(-0.5, 0.5) for _ in range(40)]
    b_i = [rng.uniform(-0.5, 0.5) for _ in range(30)]
    s_u = [rng.choice((-1, 1)) for _ in range(40)]
    t_i = [rng.choice((-1, 1)) for _ in range(30)]
    rows = [
        (u, i, 3 + b_u[u] + b_i[i] + s_u[u] * t_i[i] + rng.gauss(0, 0.05))
        for u in range(40)
        for i in range(30)
        if rng.random() < (0.9 if s_u[u] * t_i[i] > 0 else 0.3)
    ]
    split = random_holdout(spark.createDataFrame(rows, RATINGS), 0.2, 1)
    return split.train.cache(), split.test.cache()


def test_backfitting_hands_taste_back_from_the_biases_to_the_factors(generous_by_taste, runtime):
    """Round 1's user biases absorb taste (users rate what they like); a rank-1 factor cannot also
    carry the resulting per-user offset. Backfitting refits the biases on r - p_u . q_i and recovers."""
    train, test = generous_by_taste
    point = {"rank": 1, "reg_param": 0.01, "max_iter": 10, "user_damping": 1.0, "item_damping": 1.0}
    once = M.rmse(_fit("bias_als", point, runtime, train).transform(test))
    backfitted = M.rmse(_fit("bias_als", {**point, "backfit_rounds": 4}, runtime, train).transform(test))
    assert backfitted < 0.7 * once, (backfitted, once)


def _lists(df):
    out = {}
    for r in sorted(df.collect(), key=lambda r: (r.user_id, r.rank)):
        out.setdefault(r.user_id, []).append(r)
    return out


@pytest.mark.parametrize(
    ("name", "point"),
    [
        ("implicit_als", {"rank": 2, "reg_param": 0.1, "max_iter": 10, "alpha": 2.0}),
        ("torch_ease", {"l2": 10.0}),
    ],
)
def test_ranking_families_find_planted_blocks_explain_and_never_serve_rated(
    spark, blocks, runtime, name, point
):
    model = _fit(name, point, runtime, blocks)
    recs = _lists(model.recommend_for_users(blocks, 3, exclude=blocks, explain=True))
    rated = {}
    for r in blocks.collect():
        rated.setdefault(r.user_id, set()).add(r.movie_id)
    assert len(recs) == 30
    for user, rows in recs.items():
        group = user % 2
        assert [r.rank for r in rows] == [1, 2, 3]
        for r in rows:
            assert r.movie_id not in rated[user]
            assert r.movie_id // 15 == group, (user, r.movie_id)
            assert 0.0 <= r.score <= 1.0
            assert r.because_movie_id in rated[user] and r.because_movie_id // 15 == group
    similar = model.similar_movies(0, 5)
    assert len(similar) == 5 and all(m // 15 == 0 and m != 0 for m, _ in similar)
    if name == "torch_ease":
        assert model.info["device"] in ("cpu", "cuda") and model.info["fit_seconds"] >= 0


def test_min_support_keeps_rare_movies_out_of_every_list(spark, blocks, runtime):
    rare = spark.createDataFrame([(0, 100, 5.0)], RATINGS)  # one rating: support 1
    ratings = blocks.unionByName(rare)
    for support in (0, 2):
        model = _fit("implicit_als", {"rank": 4, "max_iter": 5, "min_support": support}, runtime, ratings)
        listed = {r.movie_id for r in model.recommend_for_users(ratings, 20, exclude=ratings).collect()}
        assert (100 in listed) == (support == 0)


def test_save_load_round_trip(spark, planted, blocks, runtime, tmp_path):
    train, test = planted
    bias_als = _fit("bias_als", {"rank": 2, "max_iter": 3}, runtime, train)
    bias_als.save(str(tmp_path / "bias_als"))
    again = BiasALSModel.load(spark, str(tmp_path / "bias_als"))
    assert again.config == bias_als.config and again.scale == (1.0, 5.0)
    assert M.rmse(again.transform(test)) == pytest.approx(M.rmse(bias_als.transform(test)), abs=1e-6)
    implicit = _fit("implicit_als", {"rank": 3, "max_iter": 3, "min_support": 2}, runtime, blocks)
    implicit.save(str(tmp_path / "implicit"))
    loaded = ImplicitALSModel.load(spark, str(tmp_path / "implicit"))
    assert loaded.config == ImplicitALSConfig(rank=3, max_iter=3, min_support=2)
    before = implicit.recommend_for_users(blocks, 3, exclude=blocks).orderBy("user_id", "rank").collect()
    assert (
        loaded.recommend_for_users(blocks, 3, exclude=blocks).orderBy("user_id", "rank").collect() == before
    )
    with pytest.raises(ValueError, match="implicit_als"):
        BiasALSModel.load(spark, str(tmp_path / "implicit"))


def test_configs_reject_bad_points_naming_the_problem(runtime):
    with pytest.raises(ValueError, match="rank must be an int >= 1"):
        BiasALSConfig(rank=0)
    with pytest.raises(ValueError, match="backfit_rounds must be an int >= 1"):
        BiasALSConfig(backfit_rounds=0)
    with pytest.raises(ValueError, match="unknown bias_als hyperparameters: alpha"):
        family("bias_als").estimator({"alpha": 1.0}, runtime)
    with pytest.raises(ValueError, match="hidden must be an int >= 1"):
        family("torch_autorec").estimator({"hidden": 0}, runtime)
    with pytest.raises(ValueError, match="unknown torch_autorec hyperparameters: rank"):
        family("torch_autorec").estimator({"rank": 4}, runtime)
    with pytest.raises(ValueError, match="unknown model family 'svd'"):
        family("svd")
    with pytest.raises(ValueError, match="use implicit_als"):
        family("als").estimator({"implicit_prefs": True}, runtime)
    assert {f.objective for f in FAMILIES.values()} == {"rmse", "ndcg_at_k"}


def test_real_data_lists_never_hold_rated_movies_and_scores_stay_in_range(spark, movielens_dir, tmp_path):
    """ml-latest-small, 60 users: every family's served lists, small ranks and few sweeps (cheap)."""
    raw = read_dataset(spark, "ml-latest-small", str(movielens_dir / "ml-latest-small"))
    ratings = (
        raw.ratings.where(F.col("corrupt_record").isNull()).select(C.USER_ID, C.MOVIE_ID, C.RATING).cache()
    )
    users = ratings.select(C.USER_ID).distinct().orderBy(C.USER_ID).limit(60)
    rt = FitRuntime(checkpoint_dir=str(tmp_path / "ckpt"), work_dir=str(tmp_path / "work"), scale=(0.5, 5.0))
    ranges = {
        "bias_als": (0.5, 5.0),
        "als": (0.5, 5.0),
        "implicit_als": (0.0, 1.0),
        "torch_ease": (0.0, 1.0),
        "torch_autorec": (0.5, 5.0),
    }
    points = {
        "bias_als": {"rank": 4, "max_iter": 3},
        "als": {"rank": 4, "max_iter": 3},
        "implicit_als": {"rank": 4, "max_iter": 3},
        "torch_ease": {"l2": 200.0, "min_support": 5},
        "torch_autorec": {"hidden": 8, "epochs": 10},
    }
    for name, (lo, hi) in ranges.items():
        model = _fit(name, points[name], rt, ratings)
        recs = model.recommend_for_users(users, 10, exclude=ratings).cache()
        row = recs.agg(F.count(F.lit(1)), F.min(C.SCORE), F.max(C.SCORE)).first()
        assert row[0] == 600, name
        assert lo <= row[1] and row[2] <= hi, (name, row)
        assert recs.join(ratings, [C.USER_ID, C.MOVIE_ID]).count() == 0, name
        recs.unpersist()


def test_nested_selection_never_reads_the_test_part(spark, planted, runtime):
    """Selection depends on train alone: the same train with a different test picks the same point."""
    train, test = planted
    grid = [{"iterations": 1, "user_damping": 100.0, "item_damping": 100.0}, {"iterations": 3}]
    a = select_and_evaluate("user_item_bias", grid, train, test, THRESHOLD4, runtime)
    b = select_and_evaluate("user_item_bias", grid, train, test.limit(3), THRESHOLD4, runtime)
    assert a["point"] == b["point"] and a["point"] in grid
    assert [(v["point"], v["rmse"]) for v in a["validation"]] == [
        (v["point"], v["rmse"]) for v in b["validation"]
    ]


AUTOREC = {"hidden": 8, "l2": 0.5, "epochs": 500, "learning_rate": 0.05}  # tiny data: many cheap steps


def test_autorec_runs_through_torch_distributor_beats_the_mean_and_stays_on_scale(
    spark, planted, blocks, runtime
):
    train, test = planted
    model = _fit("torch_autorec", AUTOREC, runtime, train)
    assert model.info["device"] in ("cpu", "cuda") and model.info["distributor_seconds"] > 0
    mean_rmse = M.rmse(_fit("global_mean", {}, runtime, train).transform(test))
    assert M.rmse(model.transform(test)) < 0.5 * mean_rmse
    # Every pair, unknown users and movies included, gets a prediction on the scale; unknown user: mu.
    pairs = spark.createDataFrame(
        [(u, i) for u in range(-1, 41) for i in range(-1, 31)], "user_id int, movie_id int"
    )
    row = model.transform(pairs).agg(F.min(C.PREDICTION), F.max(C.PREDICTION), F.count(C.PREDICTION)).first()
    assert row[0] >= 1.0 and row[1] <= 5.0 and row[2] == 42 * 32
    unknown = model.transform(spark.createDataFrame([(99, 0)], "user_id int, movie_id int")).first()
    assert unknown.prediction == pytest.approx(model.global_mean)
    lists = model.recommend_for_users(train, 5, exclude=train, explain=True).cache()
    assert lists.join(train, [C.USER_ID, C.MOVIE_ID]).count() == 0
    assert lists.where((F.col(C.SCORE) < 1.0) | (F.col(C.SCORE) > 5.0)).count() == 0
    assert lists.select(C.USER_ID).distinct().count() == 40
    similar = model.similar_movies(0, 3)
    assert len(similar) == 3 and 0 not in {m for m, _ in similar}


def test_autorec_is_deterministic_by_seed(tmp_path, planted):
    """The function TorchDistributor runs, called in process: same seed same weights, another seed not."""
    from lensflow_spark.torch_autorec import TorchAutoRecModel, train_autorec

    train, _ = planted
    path = str(tmp_path / "train")
    train.write.parquet(path)
    weights = {}
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        train_autorec(path, str(tmp_path / name), AUTOREC, seed)
        weights[name] = TorchAutoRecModel.load(str(tmp_path / name), (1.0, 5.0)).user_vectors
    assert (weights["a"] == weights["b"]).all()
    assert not (weights["a"] == weights["c"]).all()
