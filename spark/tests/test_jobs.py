"""Every job, run through `runtime.execute` and chained as the workflow chains them, on a small
generated dataset.

Each job writes its result JSON, validated against the contract the TypeScript side generates;
these tests check the documents and the files the jobs leave behind.
"""

from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lensflow_spark.contracts import ContractError
from lensflow_spark.grid import best_by_objective
from lensflow_spark.jobs import runtime

POINT = {"rank": 3, "regParam": 0.1, "maxIter": 5, "alpha": 1.0, "implicitPrefs": False}
# Tiny per-family grids (keys: the families' own hyperparameter names): two bias_als points, one
# implicit_als point and one torch_ease point, each cross-validated by `model_point`.
FAMILY_POINTS = {
    "bias_als": [{"rank": 3, "reg_param": 0.1, "max_iter": 5}, {"rank": 3, "reg_param": 5.0, "max_iter": 5}],
    "implicit_als": [{"rank": 3, "reg_param": 0.1, "max_iter": 5, "alpha": 5.0}],
    "torch_ease": [{"l2": 50.0}],
}
GENRES = ["Action", "Comedy", "Drama", "Horror", "Romance"]
CONCURRENT_JOBS = 2
"""Independent jobs at once, as the workflow runs them on the warm engine (`--max-concurrent 2`):
on tiny data a job mostly waits on Spark's scheduling, which a second job fills."""


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
    """Runs clean -> split -> als_point, model_point (per family) -> train_final (ALS and the best
    rating family), evaluate, analysis -> recommend -> report; the jobs of one arrow's step side by
    side, as the workflow runs them."""
    raw = run_dir / "raw"
    n_ratings = _write_dataset(raw)
    r = str(run_dir)
    results = {}

    def job(name: str, result_name: str, job_input: dict) -> None:
        result_uri = f"{r}/results/{result_name}.json"
        results[result_name] = runtime.execute(spark, name, job_input, result_uri)
        assert json.loads(Path(result_uri).read_text()) == results[result_name]

    def beside(*jobs: tuple[str, str, dict]) -> None:
        """Independent jobs, `CONCURRENT_JOBS` at a time in the one session; the first error raises."""
        with ThreadPoolExecutor(CONCURRENT_JOBS) as pool:
            for done in [pool.submit(job, *j) for j in jobs]:
                done.result()

    job("clean", "clean", {"dataset": "ml-latest-small", "raw": str(raw), "output": f"{r}/processed"})
    ratings, movies = results["clean"]["outputs"]["ratings"], results["clean"]["outputs"]["movies"]
    protocol = {"kind": "random", "testFraction": 0.25, "cvFolds": 2, "seed": 5}
    job("split", "split", {"ratings": ratings, "raw": str(raw), "protocol": protocol, "output": f"{r}/folds"})
    folds = results["split"]
    model_opts = {"seed": 1, "checkpoint": f"{r}/checkpoints"}
    ranking = {"k": 5, "relevanceThreshold": 4.0}
    beside(
        ("als_point", "grid/000", {"folds": folds["cv"], "point": POINT, **model_opts}),
        *[
            ("model_point", f"families/grid-{family}-{i:03d}",
             {"family": family, "point": point, "folds": folds["cv"], "ranking": ranking, **model_opts})
            for family, points in FAMILY_POINTS.items()
            for i, point in enumerate(points)
        ],
    )  # fmt: skip
    chosen = {
        family: best_by_objective(
            {"point": r["point"], "objective": r["objective"], "score": r["mean"][r["objective"]]}
            for r in (results[f"families/grid-{family}-{i:03d}"] for i in range(len(points)))
        )["point"]
        for family, points in FAMILY_POINTS.items()
    }
    beside(
        ("train_final", "train_final-bias_als",
         {"ratings": ratings, "family": "bias_als", "point": chosen["bias_als"],
          "model": f"{r}/model-bias_als", **model_opts}),
        ("train_final", "train_final",
         {"ratings": ratings, "point": POINT, "model": f"{r}/model", **model_opts}),
        ("evaluate", "evaluate",
         {"folds": folds["evaluation"], "movies": movies, "point": POINT, "families": chosen,
          "ranking": ranking, **model_opts}),
        ("analysis", "analysis",
         {"ratings": ratings, "movies": movies, "output": f"{r}/analysis", "minRatings": 3}),
    )  # fmt: skip
    job(
        "recommend", "recommend",
        {"ranking": {"family": "implicit_als", "point": chosen["implicit_als"]}, "ratings": ratings,
         "movies": movies, "n": 5, "minSupport": 1, "output": f"{r}/recommendations", **model_opts},
    )  # fmt: skip
    job(
        "report", "report",
        {"dataset": "ml-latest-small", "clean": f"{r}/results/clean.json",
         "analysis": f"{r}/analysis/summary.json", "grid": f"{r}/results/grid",
         "evaluation": f"{r}/results/evaluate.json", "families": f"{r}/results/families",
         "output": f"{r}/report"},
    )  # fmt: skip
    return {"results": results, "n_ratings": n_ratings, "dir": run_dir, "chosen": chosen}


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
    assert set(models) == {"als", *FAMILY_POINTS, "global_mean", "user_item_bias", "most_popular"}
    for metrics in models.values():
        assert 0.0 <= metrics["precision_at_k"] <= 1.0
        assert 0.0 <= metrics["catalogue_coverage"] <= 1.0
    # Where evaluate's time went: every model's fit and lists, and the one query judging them all.
    seconds = res["evaluate"]["seconds"]
    assert set(seconds["fit"]) == set(seconds["lists"]) == set(models)
    assert seconds["shared"] > 0 and seconds["metrics"] > 0 and all(t > 0 for t in seconds["lists"].values())


def test_each_family_is_cross_validated_and_selected_by_its_own_objective(chain):
    res, chosen = chain["results"], chain["chosen"]
    bias = [res[f"families/grid-bias_als-{i:03d}"] for i in range(2)]
    assert [r["objective"] for r in bias] == ["rmse", "rmse"]
    assert all([f["fold"] for f in r["folds"]] == [0, 1] and set(r["mean"]) == {"rmse", "mae"} for r in bias)
    # reg_param 5 shrinks the residual factors to nothing: the lower CV RMSE must be the 0.1 point.
    assert bias[0]["mean"]["rmse"] < bias[1]["mean"]["rmse"]
    assert chosen["bias_als"] == FAMILY_POINTS["bias_als"][0]
    for family in ("implicit_als", "torch_ease"):
        r = res[f"families/grid-{family}-000"]
        assert r["objective"] == "ndcg_at_k" and r["point"] == FAMILY_POINTS[family][0]
        assert 0.0 < r["mean"]["ndcg_at_k"] <= 1.0 and r["fitSeconds"] > 0
    models = res["evaluate"]["models"]
    assert res["evaluate"]["families"] == chosen
    # Ranking families make lists, not ratings; the rating family predicts and beats the global mean.
    assert models["implicit_als"]["rmse"] is None and models["torch_ease"]["r2"] is None
    assert models["bias_als"]["rmse"] < 0.8 * models["global_mean"]["rmse"]
    assert models["bias_als"]["r2"] > 0.3
    assert res["train_final-bias_als"]["family"] == "bias_als"
    assert (chain["dir"] / "model-bias_als" / "factors").exists()


def test_a_family_point_with_an_unknown_hyperparameter_is_refused(spark, chain, run_dir):
    folds = chain["results"]["split"]["cv"]
    job_input = {
        "family": "bias_als", "point": {"rank": 3, "regParm": 0.1}, "folds": folds,
        "ranking": {"k": 5, "relevanceThreshold": 4.0}, "seed": 1, "checkpoint": str(run_dir / "checkpoints"),
    }  # fmt: skip
    with pytest.raises(ValueError, match="regParm"):
        runtime.execute(spark, "model_point", job_input, str(run_dir / "results" / "never.json"))


def test_recommendations_never_repeat_a_rated_movie(spark, chain):
    res, run_dir = chain["results"], chain["dir"]
    recs = spark.read.parquet(res["recommend"]["outputs"]["userRecs"])
    rated = spark.read.parquet(res["clean"]["outputs"]["ratings"])
    assert recs.join(rated, ["user_id", "movie_id"]).count() == 0
    assert res["recommend"]["nUsers"] == 40
    assert set(res["recommend"]["seconds"]) == {"fit", "lists", "shards", "similar"}
    assert all(t > 0 for t in res["recommend"]["seconds"].values())
    shard = json.loads((run_dir / "recommendations" / "json" / "users-0.json").read_text())
    assert len(shard) == 40 and all(len(v) == 5 for v in shard.values())
    assert set(shard["2"][0]) == {"movieId", "title", "genres", "score", "because"}
    assert res["recommend"]["model"]["family"] == "implicit_als"
    similar = json.loads((run_dir / "recommendations" / "json" / "similar-movies.json").read_text())
    assert all(str(s["movieId"]) != m for m, lst in similar.items() for s in lst)


def test_final_model_and_report(chain):
    res, run_dir = chain["results"], chain["dir"]
    assert res["train_final"]["nRatings"] == chain["n_ratings"]
    assert res["train_final"]["nUsers"] == 40
    assert (run_dir / "model" / "metadata").exists()
    html = (run_dir / "report" / "report.html").read_text()
    assert "data:image/png;base64," in html
    assert "Model families: grid search" in html and "Ranking: every model" in html
    assert all(f"<td>{family}</td>" in html for family in FAMILY_POINTS)
    assert {Path(p).name for p in res["report"]["plots"].values()} >= {
        "cv_heatmap.png",
        "model_comparison.png",
    }
