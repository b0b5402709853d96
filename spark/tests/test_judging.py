"""`judge_models` judges several models in one query and must give each exactly the numbers the
single-model metric functions give it (evaluate publishes them; the e2e tests compare runs)."""

from __future__ import annotations

import random

import pytest

from lensflow_spark import metrics as M
from lensflow_spark.judging import judge_models

HELD_OUT = "user_id int, movie_id int, rating double"
TRAIN = "user_id int, movie_id int, rating double"
PREDICTIONS = "user_id int, movie_id int, rating double, prediction double"
LISTS = "user_id int, movie_id int, score double, rank int"
USERS, MOVIES, K = 50, 30, 4


def _lists(rnd: random.Random, users: range, length: int) -> list[tuple]:
    return [
        (u, m, rnd.random(), rank)
        for u in users
        for rank, m in enumerate(rnd.sample(range(MOVIES + 5), length), 1)  # some outside the catalogue
    ]


@pytest.fixture(scope="module")
def fold(spark):
    rnd = random.Random(11)
    rows = [(u, m, rnd.choice([0.5 * s for s in range(1, 11)])) for u in range(USERS) for m in range(MOVIES)]
    rnd.shuffle(rows)
    train, test = rows[: len(rows) * 3 // 4], rows[len(rows) * 3 // 4 :]
    models = {
        "full": _lists(rnd, range(USERS), K),
        "short": _lists(rnd, range(0, USERS, 2), 2),  # half the users, lists shorter than k
        "long": _lists(rnd, range(USERS), K + 3),  # ranks beyond k are cut
        "none": [],  # a model that listed nothing
    }
    predictions = {
        "full": [(u, m, r, r + rnd.gauss(0.0, 0.8)) for u, m, r in test],
        "short": [(u, m, r, float("nan") if m % 3 == 0 else 3.5) for u, m, r in test],
    }
    return {
        "train": spark.createDataFrame(train, TRAIN),
        "test": spark.createDataFrame(test, HELD_OUT),
        "catalogue": spark.createDataFrame([(m,) for m in range(MOVIES)], "movie_id int"),
        "lists": {n: spark.createDataFrame(r, LISTS) for n, r in models.items()},
        "predictions": {n: spark.createDataFrame(r, PREDICTIONS) for n, r in predictions.items()},
    }


def test_every_model_gets_the_numbers_the_single_model_functions_give(spark, fold):
    train, test, catalogue = fold["train"], fold["test"], fold["catalogue"]
    information = M.self_information(train)
    judged = judge_models(
        spark,
        fold["lists"],
        fold["predictions"],
        held_out=test,
        relevant=M.relevant_sets(test),
        catalogue=catalogue,
        information=information,
        k=K,
    )
    assert set(judged) == set(fold["lists"])
    for name, lists in fold["lists"].items():
        alone = {
            **M.ranking_metrics(lists, test, K),
            "catalogue_coverage": M.catalogue_coverage(lists, catalogue, K),
            "distributional_coverage": M.distributional_coverage(lists, K),
            "novelty": M.novelty(lists, train, K),
        }
        if name in fold["predictions"]:
            alone.update(M.rating_fit_metrics(fold["predictions"][name]))
        assert judged[name] == alone, name  # equal to the last bit, not approximately
    # The cases the fixture plants mean something: a model without lists scores 0 where a list is
    # needed and None where there is nothing to average; only rating models have rating metrics.
    assert judged["none"]["precision_at_k"] == 0.0 and judged["none"]["catalogue_coverage"] == 0.0
    assert judged["none"]["novelty"] is None and judged["none"]["distributional_coverage"] is None
    assert "rmse" not in judged["long"] and judged["short"]["rmse"] is not None
    # Every catalogue movie is listed, and the five listed movies outside it do not count (35 / 30).
    assert judged["full"]["catalogue_coverage"] == 1.0


def test_predictions_of_a_model_without_lists_are_refused(spark, fold):
    with pytest.raises(ValueError, match=r"predictions for models without lists: \['full'\]"):
        judge_models(
            spark,
            {"short": fold["lists"]["short"]},
            {"full": fold["predictions"]["full"]},
            held_out=fold["test"],
            relevant=M.relevant_sets(fold["test"]),
            catalogue=fold["catalogue"],
            information=M.self_information(fold["train"]),
            k=K,
        )
