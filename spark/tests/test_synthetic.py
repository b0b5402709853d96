"""Synthetic MovieLens: ml-25m's format read by the real readers, its shape, and planted structure."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from pyspark.sql import functions as F

from lensflow_spark import columns as C
from lensflow_spark import synthetic
from lensflow_spark.als import ALSConfig, ALSRuntime, train_final
from lensflow_spark.baselines import UserItemBias
from lensflow_spark.clean import clean_movies, clean_ratings
from lensflow_spark.readers import dataset_spec, read_dataset
from lensflow_spark.splits import random_holdout

N = 60_000


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic")
    synthetic.write_release(folder, N, seed=7)
    return folder


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_same_bytes_other_seed_other_data(release, tmp_path):
    synthetic.write_release(tmp_path / "again", N, seed=7)
    synthetic.write_release(tmp_path / "other", N, seed=8)
    for name in ("ratings.csv", "movies.csv"):
        assert _digest(tmp_path / "again" / name) == _digest(release / name)
    assert _digest(tmp_path / "other" / "ratings.csv") != _digest(release / "ratings.csv")


def test_shape_follows_ml25m(release):
    ratings = np.loadtxt(release / "ratings.csv", delimiter=",", skiprows=1)
    users, movies, stars, times = ratings.T
    shape = synthetic.Shape.for_ratings(N)
    assert len(ratings) == N
    assert len(np.unique(users)) == shape.n_users
    assert movies.max() <= shape.n_movies
    assert shape.n_users / shape.n_movies == pytest.approx(162_541 / 62_423, rel=0.01)
    assert N / (shape.n_users * shape.n_movies) <= synthetic.MAX_DENSITY * 1.01
    big = synthetic.Shape.for_ratings(25_000_095)
    assert (big.n_users, big.n_movies) == (162_541, 62_423), "ml-25m's own size gets ml-25m's shape"
    assert len(np.unique(users * 1e6 + movies)) == N, "a (user, movie) pair is rated twice"
    per_user = np.bincount(users.astype(int))[1:]
    assert per_user.min() >= 20
    # Heavy tail, capped at half the catalogue (240 movies at this size; ml-25m's heaviest: 32k).
    assert per_user.max() > 5 * np.median(per_user), "user activity should have a heavy tail"
    per_movie = np.sort(np.bincount(movies.astype(int)))[::-1]
    assert per_movie[: len(per_movie) // 10].sum() > 0.4 * N, (
        "the top tenth of movies should get most ratings"
    )
    shares = np.array([(stars == s).mean() for s in synthetic.HALF_STARS])
    target = synthetic.ML25M_RATING_SHARES / synthetic.ML25M_RATING_SHARES.sum()
    assert np.abs(shares - target).max() < 0.02, (
        f"half-star shares {shares.round(3)} vs ml-25m {target.round(3)}"
    )
    assert synthetic.FIRST_TIMESTAMP <= times.min() and times.max() <= synthetic.LAST_TIMESTAMP
    assert times.max() - times.min() > 10 * 365 * 86_400, "timestamps should span years"


def test_parse_size_reads_suffixes_and_names_bad_input():
    assert synthetic.parse_size("25M") == 25_000_000
    assert synthetic.parse_size("100k") == 100_000
    assert synthetic.parse_size("1.5m") == 1_500_000
    with pytest.raises(ValueError, match="1000000, 100k or 25M"):
        synthetic.parse_size("lots")
    with pytest.raises(ValueError, match="at least 1000"):
        synthetic.write_release("/nonexistent-never-created", 10)


def test_real_reader_and_cleaning_accept_it_unchanged(spark, release):
    raw = read_dataset(spark, "ml-25m", str(release))
    movies = clean_movies(raw.movies)
    ratings = clean_ratings(raw.ratings, movies.clean, dataset_spec("ml-25m").scale)
    assert raw.ratings.where(F.col(C.CORRUPT_RECORD).isNotNull()).count() == 0
    assert ratings.quarantined.count() == 0 and movies.quarantined.count() == 0
    assert ratings.clean.count() == N
    assert movies.clean.where(F.col(C.YEAR).isNull()).count() == 0, "every title carries a year"


def test_als_beats_the_bias_baseline_on_planted_structure(spark, release, tmp_path):
    raw = read_dataset(spark, "ml-25m", str(release))
    ratings = raw.ratings.select(C.USER_ID, C.MOVIE_ID, C.RATING).cache()
    split = random_holdout(ratings, 0.2, seed=1)
    runtime = ALSRuntime(checkpoint_dir=str(tmp_path / "ckpt"), num_blocks=2)
    als = train_final(spark, split.train, ALSConfig(rank=8, reg_param=0.1, max_iter=8), runtime)
    bias = UserItemBias().fit(split.train)

    def rmse(predictions):
        err = F.col(C.RATING) - F.col(C.PREDICTION)
        return predictions.where(~F.isnan(C.PREDICTION)).agg(F.sqrt(F.avg(err * err))).first()[0]

    # Both on the test ratings whose user and movie are in train, the ones ALS can score.
    known = split.test.join(split.train.select(C.USER_ID).distinct(), C.USER_ID).join(
        split.train.select(C.MOVIE_ID).distinct(), C.MOVIE_ID
    )
    als_rmse, bias_rmse = rmse(als.transform(known)), rmse(bias.transform(known))
    ratings.unpersist()
    assert als_rmse < bias_rmse - 0.03, f"ALS {als_rmse:.3f} vs bias {bias_rmse:.3f}"
