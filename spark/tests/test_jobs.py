"""Every job, run through `runtime.execute` and chained as the workflow chains them, on a small
generated dataset.

Each job writes its result JSON, validated against the contract the TypeScript side generates;
these tests check the documents and the files the jobs leave behind.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from lensflow_spark.contracts import ContractError
from lensflow_spark.jobs import runtime

POINT = {"rank": 3, "regParam": 0.1, "maxIter": 5, "alpha": 1.0, "implicitPrefs": False}
GENRES = ["Action", "Comedy", "Drama", "Horror", "Romance"]


def _write_dataset(folder: Path, n_users: int = 40, n_movies: int = 30, seed: int = 3) -> int:
    """A MovieLens-shaped ml-latest folder: ratings from two taste groups; returns the rating count."""
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    with open(folder / "movies.csv", "w") as f:
        f.write("movieId,title,genres\n")
        for m in range(1, n_movies + 1):
            f.write(f"{m},Movie {m} ({1990 + m % 20}),{GENRES[m % 5]}|{GENRES[(m + 2) % 5]}\n")
    rows = 0
    with open(folder / "ratings.csv", "w") as f:
        f.write("userId,movieId,rating,timestamp\n")
        for u in range(1, n_users + 1):
            for m in range(1, n_movies + 1):
                if rng.random() < 0.6:
                    liked = (u % 2) == (m % 2)
                    rating = min(5.0, max(0.5, (4.5 if liked else 2.0) + rng.choice([-0.5, 0.0, 0.5])))
                    f.write(f"{u},{m},{rating},{1_500_000_000 + rng.randrange(10_000_000)}\n")
                    rows += 1
    return rows


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("run")


@pytest.fixture(scope="module")
def chain(spark, run_dir):
    """Runs clean -> split -> als_point -> train_final, evaluate, analysis -> recommend -> report."""
    raw = run_dir / "raw"
    n_ratings = _write_dataset(raw)
    r = str(run_dir)
    results = {}

    def job(name: str, result_name: str, job_input: dict) -> None:
        result_uri = f"{r}/results/{result_name}.json"
        results[result_name] = runtime.execute(spark, name, job_input, result_uri)
        assert json.loads(Path(result_uri).read_text()) == results[result_name]

    job("clean", "clean", {"dataset": "ml-latest-small", "raw": str(raw), "output": f"{r}/processed"})
    ratings, movies = results["clean"]["outputs"]["ratings"], results["clean"]["outputs"]["movies"]
    protocol = {"kind": "random", "testFraction": 0.25, "cvFolds": 2, "seed": 5}
    job("split", "split", {"ratings": ratings, "raw": str(raw), "protocol": protocol, "output": f"{r}/folds"})
    folds = results["split"]
    model_opts = {"seed": 1, "checkpoint": f"{r}/checkpoints"}
    job("als_point", "grid/000", {"folds": folds["cv"], "point": POINT, **model_opts})
    job(
        "train_final",
        "train_final",
        {"ratings": ratings, "point": POINT, "model": f"{r}/model", **model_opts},
    )
    ranking = {"k": 5, "relevanceThreshold": 4.0}
    job(
        "evaluate", "evaluate",
        {"folds": folds["evaluation"], "movies": movies, "point": POINT, "ranking": ranking, **model_opts},
    )  # fmt: skip
    job(
        "analysis", "analysis",
        {"ratings": ratings, "movies": movies, "output": f"{r}/analysis", "minRatings": 3},
    )  # fmt: skip
    job(
        "recommend", "recommend",
        {"model": f"{r}/model", "ratings": ratings, "movies": movies, "n": 5,
         "output": f"{r}/recommendations"},
    )  # fmt: skip
    job(
        "report", "report",
        {"dataset": "ml-latest-small", "clean": f"{r}/results/clean.json",
         "analysis": f"{r}/analysis/summary.json", "grid": f"{r}/results/grid",
         "evaluation": f"{r}/results/evaluate.json", "output": f"{r}/report"},
    )  # fmt: skip
    return {"results": results, "n_ratings": n_ratings, "dir": run_dir}


def test_a_job_input_that_breaks_its_contract_is_refused_before_the_job_runs(spark, run_dir):
    """The input is checked against the generated schema: the error names the field, nothing is written."""
    result_uri = str(run_dir / "results" / "never.json")
    with pytest.raises(ContractError, match=r"point/rank"):
        runtime.execute(
            spark,
            "als_point",
            {"folds": [], "point": {**POINT, "rank": "8"}, "seed": 1, "checkpoint": "x"},
            result_uri,
        )
    with pytest.raises(ValueError, match="unknown job 'cleanup'"):
        runtime.execute(spark, "cleanup", {}, result_uri)
    assert not Path(result_uri).exists()


def test_split_writes_disjoint_folds_that_cover_the_ratings(chain):
    res = chain["results"]
    n = chain["n_ratings"]
    holdout = res["split"]["evaluation"][0]
    assert holdout["nTrain"] + holdout["nTest"] == n
    assert sum(f["nTest"] for f in res["split"]["cv"]) == holdout["nTrain"]
    assert all(f["nTrain"] + f["nTest"] == holdout["nTrain"] for f in res["split"]["cv"])


def test_grid_point_and_evaluation_learn_the_two_taste_groups(chain):
    res = chain["results"]
    point = res["grid/000"]
    assert [f["fold"] for f in point["folds"]] == [0, 1]
    assert point["point"] == POINT
    models = res["evaluate"]["models"]
    # Two clear taste groups: ALS must beat predicting the global mean by a wide margin.
    assert models["als"]["rmse"] < 0.8 * models["global_mean"]["rmse"]
    assert set(models) == {"als", "global_mean", "user_item_bias", "most_popular"}
    for metrics in models.values():
        assert 0.0 <= metrics["precision_at_k"] <= 1.0


def test_recommendations_never_repeat_a_rated_movie(spark, chain):
    res, run_dir = chain["results"], chain["dir"]
    recs = spark.read.parquet(res["recommend"]["outputs"]["userRecs"])
    rated = spark.read.parquet(res["clean"]["outputs"]["ratings"])
    assert recs.join(rated, ["user_id", "movie_id"]).count() == 0
    assert res["recommend"]["nUsers"] == 40
    shard = json.loads((run_dir / "recommendations" / "json" / "users-0.json").read_text())
    assert len(shard) == 40 and all(len(v) == 5 for v in shard.values())
    assert set(shard["2"][0]) == {"movieId", "title", "genres", "score"}
    similar = json.loads((run_dir / "recommendations" / "json" / "similar-movies.json").read_text())
    assert all(str(s["movieId"]) != m for m, lst in similar.items() for s in lst)


def test_final_model_and_report(chain):
    res, run_dir = chain["results"], chain["dir"]
    assert res["train_final"]["nRatings"] == chain["n_ratings"]
    assert res["train_final"]["nUsers"] == 40
    assert (run_dir / "model" / "metadata").exists()
    html = (run_dir / "report" / "report.html").read_text()
    assert "data:image/png;base64," in html
    assert {Path(p).name for p in res["report"]["plots"].values()} >= {
        "cv_heatmap.png",
        "model_comparison.png",
    }
