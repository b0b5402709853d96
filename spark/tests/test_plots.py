"""Figures (`plots`) and the HTML report and run-folder reader (`report`), on small hand-made inputs."""

from __future__ import annotations

import base64
import json
import re

import matplotlib
import pandas as pd
import pytest

from lensflow_spark import plots, report

matplotlib.use("Agg")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

DIST = pd.DataFrame(
    {"rating": [1.0, 2.0, 4.5, 5.0], "n_ratings": [1, 2, 4, 1], "share": [0.125, 0.25, 0.5, 0.125]}
)
BY_RATING_YEAR = pd.DataFrame(
    {
        "rating_year": [2019, 2020, 2021],
        "n_ratings": [3, 5, 1],
        "n_users": [2, 4, 1],
        "avg_rating": [4.0, 3.4, 2.0],
    }
)
BY_RELEASE_YEAR = pd.DataFrame(
    {"release_year": [1994, 2001], "n_ratings": [4, 4], "n_movies": [1, 2], "avg_rating": [4.5, 2.75]}
)
GENRES = pd.DataFrame(
    {
        "genre": ["Comedy", "Drama", "Horror"],
        "n_movies": [2, 2, 1],
        "n_rated_movies": [2, 2, 0],
        "n_ratings": [7, 5, 0],
        "avg_rating": [3.43, 4.6, None],
    }
)
TOP = pd.DataFrame(
    {
        "rank": [1, 2, 3],
        "movie_id": [1, 2, 7],
        "title": ["Blockbuster (1994)", "One Hit (2001)", None],
        "year": [1994, 2001, None],
        "n_ratings": [4, 1, 3],
        "avg_rating": [4.5, 5.0, 2.0],
        "bayes_rating": [4.148, 3.963, 2.578],
    }
)
ACTIVITY = pd.DataFrame({"ratings_per_user": [1, 2, 3], "n_users": [2, 2, 1]})
GRID = [
    {"rank": 5, "reg_param": 0.01, "max_iter": 5, "rmse": 0.95},
    {"rank": 5, "reg_param": 0.01, "max_iter": 10, "rmse": 0.93},
    {"rank": 5, "reg_param": 0.1, "max_iter": 5, "rmse": 0.89},
    {"rank": 10, "reg_param": 0.01, "max_iter": 10, "rmse": 0.96},
    {"rank": 10, "reg_param": 0.1, "max_iter": 5, "rmse": 0.87},
    {"rank": 10, "reg_param": 0.1, "max_iter": 10, "rmse": 0.88},
    {"rank": 20, "reg_param": 0.1, "max_iter": 10, "rmse": None},  # a failed point
]
EVALUATION = {
    "global_mean": {"rmse": 1.04, "mae": 0.83, "ndcg_at_k": 0.01},
    "als": {"rmse": 0.8712, "mae": 0.67, "ndcg_at_k": 0.05},
    "user_item_bias": {"rmse": 0.89, "mae": 0.69, "ndcg_at_k": 0.02},
    "most_popular": {"rmse": None, "mae": None, "ndcg_at_k": 0.08},
}


def _saved_png(fig, tmp_path, name):
    path = plots.save_figure(fig, tmp_path / "figs" / f"{name}.png")
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000
    return fig


def test_rating_distribution_figure(tmp_path):
    fig = _saved_png(plots.plot_rating_distribution(DIST), tmp_path, "dist")

    ax = fig.axes[0]
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == ("Rating distribution", "Rating", "Ratings")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "4.5", "5"]
    assert [p.get_height() for p in ax.patches] == [1, 2, 4, 1]


@pytest.mark.parametrize(
    ("table", "column", "title"),
    [
        (BY_RATING_YEAR, "rating_year", "Average rating by year rated"),
        (BY_RELEASE_YEAR, "release_year", "Average rating by release year"),
    ],
)
def test_ratings_over_years_figure(tmp_path, table, column, title):
    fig = _saved_png(plots.plot_ratings_over_years(table, column), tmp_path, column)

    line_ax = next(ax for ax in fig.axes if ax.get_title())
    assert (line_ax.get_title(), line_ax.get_ylabel()) == (title, "Average rating")
    assert list(line_ax.lines[0].get_ydata()) == list(table["avg_rating"])


def test_top_movies_figure_labels_counts_and_untitled_movies(tmp_path):
    fig = _saved_png(plots.plot_top_movies(TOP, n=2, min_ratings=1, prior_weight=2.0), tmp_path, "top")

    ax = fig.axes[0]
    assert ax.get_title() == "Top 2 movies by Bayesian average\n(min 1 ratings, C = 2)"
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "Blockbuster (1994) (n=4)",
        "One Hit (2001) (n=1)",
    ]
    untitled = plots.plot_top_movies(TOP).axes[0]
    assert untitled.get_yticklabels()[2].get_text() == "movie 7 (n=3)"


def test_genre_figure(tmp_path):
    fig = _saved_png(plots.plot_genres(GENRES), tmp_path, "genres")

    ax = fig.axes[0]
    assert ax.get_title() == "Ratings per genre (label: average rating)"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Comedy", "Drama", "Horror"]
    assert [t.get_text().strip() for t in ax.texts] == ["avg 3.43", "avg 4.60", "no ratings"]


def test_user_activity_figure(tmp_path):
    fig = _saved_png(plots.plot_user_activity(ACTIVITY), tmp_path, "activity")

    ax = fig.axes[0]
    assert ax.get_title() == "User activity long tail (5 users, median 2 ratings)"
    assert ax.get_yscale() == "log"
    assert list(ax.lines[0].get_ydata()) == [3, 2, 2, 1, 1]


def test_cv_heatmap_uses_the_best_max_iter_per_cell_and_says_so(tmp_path):
    fig = _saved_png(plots.plot_cv_heatmap(GRID), tmp_path, "cv")

    ax = fig.axes[0]
    assert ax.get_title() == "Cross-validated RMSE by rank × regParam\n(best over maxIter ∈ {5, 10} per cell)"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("rank", "regParam")
    cells = sorted(t.get_text() for t in ax.texts)
    # (rank 5, 0.01): 0.93 at 10 beats 0.95 at 5; (10, 0.1): 0.87 at 5 beats 0.88 at 10; rank 20 failed.
    assert cells == ["0.8700\nit=5", "0.8900\nit=5", "0.9300\nit=10", "0.9600\nit=10"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["5", "10"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0.01", "0.1"]


def test_cv_heatmap_with_one_max_iter_names_it():
    fig = plots.plot_cv_heatmap([r for r in GRID if r["max_iter"] == 10])

    assert fig.axes[0].get_title() == "Cross-validated RMSE by rank × regParam (maxIter = 10)"
    assert sorted(t.get_text() for t in fig.axes[0].texts) == ["0.8800", "0.9300", "0.9600"]


def test_best_grid_point_breaks_ties_by_smaller_rank():
    grid = [{"rank": 20, "reg_param": 0.1, "max_iter": 10, "rmse": 0.87}] + GRID

    assert plots.best_grid_point(grid) == {"rank": 10, "reg_param": 0.1, "max_iter": 5, "rmse": 0.87}


def test_model_comparison_puts_als_first_and_marks_missing_metrics(tmp_path):
    fig = _saved_png(plots.plot_model_comparison(EVALUATION), tmp_path, "models")

    assert fig.get_suptitle() == "ALS vs baselines on the test set"
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["RMSE (lower is better)", "MAE (lower is better)", "NDCG@k (higher is better)"]
    rmse_ax = fig.axes[0]
    assert [t.get_text() for t in rmse_ax.get_xticklabels()] == [
        "ALS",
        "Global mean",
        "User + item bias",
        "Most popular",
    ]
    assert [t.get_text() for t in rmse_ax.texts] == ["0.871", "1.040", "0.890", "n/a"]


def test_model_comparison_shows_every_family_beside_the_baselines():
    evaluation = {**EVALUATION, "bias_als": {"rmse": 0.85, "mae": 0.66, "ndcg_at_k": 0.04}}
    evaluation["torch_ease"] = {"rmse": None, "mae": None, "ndcg_at_k": 0.12}

    fig = plots.plot_model_comparison(evaluation)

    assert fig.get_suptitle() == "Every model family vs the baselines on the test set"
    ndcg = fig.axes[2]
    labels = [t.get_text() for t in ndcg.get_xticklabels()]
    assert labels[0] == "ALS" and {"bias_als", "torch_ease"} <= set(labels)
    colors = {label: bar.get_facecolor() for label, bar in zip(labels, ndcg.patches, strict=True)}
    assert colors["bias_als"] == colors["torch_ease"] != colors["Global mean"] != colors["ALS"]
    assert [t.get_text() for t in fig.axes[0].texts][labels.index("torch_ease")] == "n/a"


def test_family_table_marks_each_familys_point_chosen_by_its_objective():
    def point(family, objective, score, **p):
        return {"family": family, "point": p, "objective": objective, "mean": {objective: score},
                "std": {objective: 0.01}, "fitSeconds": 1.0}  # fmt: skip

    table = report.family_table(
        [
            point("bias_als", "rmse", 0.86, rank=10),
            point("bias_als", "rmse", 0.85, rank=20),
            point("torch_ease", "ndcg_at_k", 0.30, l2=200.0),
            point("torch_ease", "ndcg_at_k", 0.25, l2=500.0),
        ]
    )

    assert list(table["chosen"]) == ["", "✓", "✓", ""]
    assert list(table["point"]) == ["rank 10", "rank 20", "l2 200", "l2 500"]


def test_model_tables_split_rating_and_ranking_metrics():
    rating, ranking = report.model_tables({**EVALUATION, "torch_ease": {"rmse": None, "ndcg_at_k": 0.12}})

    assert list(rating["model"]) == ["ALS", "Global mean", "User + item bias"]
    assert list(rating.columns) == ["model", "rmse", "mae"]
    assert list(ranking["model"]) == ["ALS", "Global mean", "User + item bias", "Most popular", "torch_ease"]
    assert list(ranking.columns) == ["model", "ndcg_at_k"]


def test_model_comparison_wraps_many_metrics_into_rows():
    metrics = ["rmse", "mae", "precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k", "catalogue_coverage"]
    evaluation = {m: {k: 0.5 for k in metrics} for m in ("als", "global_mean")}

    fig = plots.plot_model_comparison(evaluation)

    assert len(fig.axes) == 7
    assert [ax.get_title() for ax in fig.axes][-1] == "Catalogue coverage (higher is better)"


@pytest.mark.parametrize(
    ("draw", "message"),
    [
        (lambda: plots.plot_rating_distribution(DIST.iloc[:0]), "no rows"),
        (lambda: plots.plot_genres(GENRES.drop(columns="avg_rating")), "missing columns"),
        (lambda: plots.plot_cv_heatmap([]), "no rows"),
        (lambda: plots.plot_cv_heatmap([{"rank": 5, "reg_param": 0.1, "rmse": None}]), "no row has an rmse"),
        (lambda: plots.plot_model_comparison({}), "no models"),
    ],
)
def test_unusable_inputs_are_rejected(draw, message):
    with pytest.raises(ValueError, match=message):
        draw()


# ----- report -------------------------------------------------------------------------------------

SUMMARY = {
    "params": {"min_ratings": 1, "prior_weight": 2.0, "top_n": 3},
    "counts": {"ratings": 100836, "users": 610, "movies": 9724, "catalogue_movies": 9742},
    "global_mean": 3.501556983616962,
    "density": 0.016999683055613623,
    "sparsity": 0.9830003169443864,
    "first_rated_at": "1996-03-29T18:36:55Z",
    "last_rated_at": "2018-09-24T14:27:30Z",
    "user_activity": {"min": 20, "median": 70.5, "max": 2698, "mean": 165.3, "top_10pct_share": 0.4772},
    "rating_distribution": DIST.to_dict("records"),
    "ratings_by_rating_year": BY_RATING_YEAR.to_dict("records"),
    "ratings_by_release_year": BY_RELEASE_YEAR.to_dict("records"),
    "genre_stats": GENRES.to_dict("records"),
    "top_movies": [
        {**TOP.iloc[0].to_dict(), "title": "<script>alert('x')</script> & Co (1994)", "year": 1994},
        {**TOP.iloc[1].to_dict(), "year": 2001},
    ],
}


CLEAN = {
    "job": "clean",
    "dataset": "ml-latest-small",
    "outputs": {"ratings": "r", "movies": "m"},
    "counts": {
        "ratings": {"raw": 100840, "clean": 100836, "quarantined": {"duplicate": 1, "missing_value": 3}},
        "movies": {"raw": 9742, "clean": 9742, "quarantined": {}},
    },
}


def _point_result(row, folds=3):
    """An `als_point` job result, as the grid search writes one per point to results/grid/NNN.json."""
    point = {"rank": row["rank"], "regParam": row["reg_param"], "maxIter": row["max_iter"], "alpha": 1.0}
    scores = {"rmse": row["rmse"], "mae": 0.7}
    return {
        "job": "als_point",
        "point": {**point, "implicitPrefs": False},
        "folds": [{"fold": f, **scores, "nTest": 100, "nPredicted": 100} for f in range(folds)],
        "mean": scores,
        "std": {"rmse": 0.0, "mae": 0.0},
    }


def test_grid_rows_flatten_point_results_and_pipeline_rows():
    pipeline_row = {
        "index": 3,
        "point": {"rank": 8, "regParam": 0.05, "maxIter": 15},
        "rmse": 0.9,
        "mae": 0.7,
    }

    rows = report.grid_rows([_point_result(GRID[0]), pipeline_row, GRID[1]])

    assert rows == [
        {
            "rank": 5,
            "reg_param": 0.01,
            "max_iter": 5,
            "rmse": 0.95,
            "mae": 0.7,
            "rmse_std": 0.0,
            "n_folds": 3,
        },
        {
            "rank": 8,
            "reg_param": 0.05,
            "max_iter": 15,
            "rmse": 0.9,
            "mae": 0.7,
            "rmse_std": None,
            "n_folds": None,
        },
        GRID[1],
    ]


def test_grid_rows_merge_a_points_per_fold_results_and_the_best_point_reached_every_fold():
    """Successive halving writes one result per point and fold; a point dropped after fold 0 with a
    lucky score there does not win over one scored on every fold."""
    lucky = _point_result({**GRID[0], "rmse": 0.80}, folds=1)
    deep = [_point_result({**GRID[3], "rmse": rmse}, folds=1) for rmse in (0.86, 0.90)]
    deep[1]["folds"][0]["fold"] = 1

    rows = report.grid_rows([lucky, *deep])

    assert [(r["rank"], r["n_folds"]) for r in rows] == [(GRID[0]["rank"], 1), (GRID[3]["rank"], 2)]
    assert rows[1]["rmse"] == pytest.approx(0.88) and rows[1]["rmse_std"] == pytest.approx(0.02)
    assert plots.best_grid_point(rows)["rank"] == GRID[3]["rank"]
    assert "successive halving" in plots.plot_cv_heatmap(rows).axes[0].get_title()


def test_report_holds_the_key_numbers_tables_and_embedded_images():
    html = report.render_report(SUMMARY, GRID, EVALUATION, CLEAN, title="Run <42>")

    for text in (
        "100,836",
        "610",
        "9,724",
        "3.5016",
        "98.300%",
        "70.5000",
        "47.720%",
        "1996-03-29T18:36:55Z",
    ):
        assert text in html
    assert "<td>Raw ratings read / kept</td><td>100,840 / 100,836</td>" in html
    assert "<td>Raw ratings quarantined</td><td>duplicate 1, missing_value 3</td>" in html
    assert "rank 10, regParam 0.1, maxIter 5: RMSE 0.8700" in html  # best grid point
    assert '<td>ALS</td><td class="num">0.8712</td><td class="num">0.6700</td>' in html
    # Two tables: the rating models (most_popular predicts no rating), then every model's lists.
    rating, ranking = html.split("<h2>Ranking: every model's top-k lists")
    assert "<td>Most popular</td>" not in rating.split("<h2>Rating models")[1]
    assert '<td>Most popular</td><td class="num">0.0800</td>' in ranking
    assert "<td>One Hit (2001)</td><td>2001</td>" in html  # a year is not 2,001 or 2001.0000
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]*)"', html)
    assert [alt for _, alt in images] == [
        "Rating distribution",
        "Average rating by year rated",
        "Average rating by release year",
        "Top movies by Bayesian average",
        "Ratings per genre",
        "Cross-validated RMSE over rank × regParam",
        "Every model vs the baselines, side by side",
    ]
    assert all(base64.b64decode(img).startswith(PNG_MAGIC) for img, _ in images)
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", html)  # self-contained


def test_report_escapes_every_text_and_skips_missing_results():
    html = report.render_report(SUMMARY, images={"top_movies": PNG_MAGIC}, title="Run <42>")

    assert "<script>" not in html and "<42>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; Co (1994)" in html
    assert "<title>Run &lt;42&gt;</title>" in html
    assert "Rating models" not in html and "Best grid point" not in html and "quarantined" not in html
    assert html.count("data:image/png;base64,") == 1  # the images given, none drawn


def _write_run(root):
    (root / "analysis" / "user_activity").mkdir(parents=True)
    (root / "results" / "grid").mkdir(parents=True)
    (root / "analysis" / "summary.json").write_text(json.dumps(SUMMARY))
    ACTIVITY.to_parquet(root / "analysis" / "user_activity" / "part-00000.parquet")
    for i, row in enumerate(GRID):
        (root / "results" / "grid" / f"{i:03d}.json").write_text(json.dumps(_point_result(row)))
    evaluation = {"job": "evaluate", "point": {}, "ranking": {"k": 10}, "folds": 1, "models": EVALUATION}
    (root / "results" / "evaluate.json").write_text(json.dumps(evaluation))
    (root / "results" / "clean.json").write_text(json.dumps(CLEAN))
    return root


def test_load_run_reads_the_pipeline_layout(tmp_path):
    run = report.load_run(_write_run(tmp_path / "run"))

    assert run.summary == json.loads(json.dumps(SUMMARY))
    assert [(r["rank"], r["reg_param"], r["max_iter"], r["rmse"]) for r in run.grid] == [
        (r["rank"], r["reg_param"], r["max_iter"], r["rmse"]) for r in GRID
    ]
    assert run.evaluation == EVALUATION
    assert run.clean == CLEAN
    assert run.has_table("user_activity") and not run.has_table("top_movies")
    pd.testing.assert_frame_equal(run.table("user_activity"), ACTIVITY)


def test_load_run_before_model_selection_has_no_results(tmp_path):
    (tmp_path / "analysis").mkdir()
    (tmp_path / "analysis" / "summary.json").write_text(json.dumps(SUMMARY))

    run = report.load_run(tmp_path)

    assert (run.grid, run.evaluation, run.clean) == (None, None, None)


def test_run_report_is_titled_by_the_run_folder(tmp_path):
    run = report.load_run(_write_run(tmp_path / "ml-latest-small-20260101-abc"))

    html = report.render_run_report(run)

    assert "<title>lensflow run ml-latest-small-20260101-abc</title>" in html
    assert html.count("data:image/png;base64,") == 8  # with the user-activity table from Parquet


def test_load_run_needs_a_summary_and_a_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="LENSFLOW_RUN_DIR"):
        report.load_run("")
    with pytest.raises(FileNotFoundError, match="summary.json"):
        report.load_run(tmp_path)
    with pytest.raises(ValueError, match="unknown analysis table"):
        report.load_run(_write_run(tmp_path / "run")).table("secrets")


def test_write_report(tmp_path):
    path = report.write_report("<!DOCTYPE html><p>é</p>", tmp_path / "out" / "report.html")

    assert path.read_text("utf-8") == "<!DOCTYPE html><p>é</p>"
