"""notebooks/visualization.ipynb runs headless on a tiny run folder written with pandas (no Spark, no JVM)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pandas as pd
from nbclient import NotebookClient

from lensflow_spark import analysis

SPARK_DIR = Path(__file__).resolve().parents[1]
NOTEBOOK = SPARK_DIR.parent / "notebooks" / "visualization.ipynb"

TABLES = {
    "top_movies": pd.DataFrame(
        {
            "rank": [1, 2],
            "movie_id": [1, 2],
            "title": ["Blockbuster (1994)", "One Hit (2001)"],
            "year": [1994, 2001],
            "n_ratings": [4, 1],
            "avg_rating": [4.5, 5.0],
            "bayes_rating": [4.148, 3.963],
        }
    ),
    "rating_distribution": pd.DataFrame(
        {"rating": [1.0, 4.5, 5.0], "n_ratings": [1, 4, 1], "share": [1 / 6, 4 / 6, 1 / 6]}
    ),
    "ratings_by_rating_year": pd.DataFrame(
        {"rating_year": [2019, 2020], "n_ratings": [3, 3], "n_users": [2, 3], "avg_rating": [4.0, 3.4]}
    ),
    "ratings_by_release_year": pd.DataFrame(
        {"release_year": [1994, 2001], "n_ratings": [4, 2], "n_movies": [1, 1], "avg_rating": [4.5, 3.0]}
    ),
    "genre_stats": pd.DataFrame(
        {
            "genre": ["Drama", "Comedy"],
            "n_movies": [2, 1],
            "n_rated_movies": [2, 1],
            "n_ratings": [5, 4],
            "avg_rating": [4.6, 4.5],
        }
    ),
    "user_activity": pd.DataFrame({"ratings_per_user": [1, 2, 3], "n_users": [2, 2, 1]}),
}


def write_tiny_run(root: Path) -> Path:
    """A run folder in the layout of `analysis`'s docstring, written with pandas and json only."""
    for name, df in TABLES.items():
        (root / "analysis" / name).mkdir(parents=True)
        df.to_parquet(root / "analysis" / name / "part-00000.parquet", index=False)
    summary = {
        "params": {"min_ratings": 1, "prior_weight": 2.0, "top_n": 2},
        "counts": {"ratings": 6, "users": 5, "movies": 3, "catalogue_movies": 4},
        "global_mean": 4.0,
        "density": 0.4,
        "sparsity": 0.6,
        "first_rated_at": "2019-01-02T03:04:05Z",
        "last_rated_at": "2020-12-31T00:00:00Z",
        "user_activity": {"min": 1, "median": 2.0, "max": 3, "mean": 1.8, "top_10pct_share": 0.5},
        **{name: df.to_dict("records") for name, df in TABLES.items() if name != "user_activity"},
    }
    (root / analysis.SUMMARY_FILE).write_text(json.dumps(summary))
    (root / analysis.GRID_DIR).mkdir(parents=True)
    for i, (rank, reg, rmse) in enumerate([(5, 0.1, 0.91), (10, 0.1, 0.89), (5, 1.0, 1.1), (10, 1.0, 1.2)]):
        point = {"rank": rank, "regParam": reg, "maxIter": 10, "alpha": 1.0, "implicitPrefs": False}
        doc = {"job": "als_point", "point": point, "folds": [], "mean": {"rmse": rmse, "mae": 0.7}, "std": {}}
        (root / analysis.GRID_DIR / f"{i:03d}.json").write_text(json.dumps(doc))
    models = {
        "als": {"rmse": 0.89, "mae": 0.7, "ndcg_at_k": 0.05},
        "global_mean": {"rmse": 1.05, "mae": 0.85, "ndcg_at_k": 0.01},
        "user_item_bias": {"rmse": 0.9, "mae": 0.71, "ndcg_at_k": 0.02},
        "most_popular": {"rmse": None, "mae": None, "ndcg_at_k": 0.04},
    }
    (root / analysis.EVALUATION_FILE).write_text(json.dumps({"job": "evaluate", "models": models}))
    return root


def test_notebook_is_stored_clean_with_a_parameter_cell():
    nb = nbformat.read(NOTEBOOK, as_version=4)

    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), (
        "commit the notebook without outputs"
    )
    assert "parameters" in code[0].metadata.get("tags", [])
    assert 'RUN_DIR = os.environ.get("LENSFLOW_RUN_DIR", "")' in code[0].source
    # Logic belongs in the package: no function or class definitions, no loops in the notebook.
    assert not any(word in c.source for c in code for word in ("def ", "class ", "for ", "while "))


def test_notebook_draws_every_figure_from_a_run_folder(tmp_path, monkeypatch):
    run_dir = write_tiny_run(tmp_path / "run")
    html_path = tmp_path / "out" / "report.html"
    monkeypatch.setenv("LENSFLOW_RUN_DIR", str(run_dir))
    monkeypatch.setenv("LENSFLOW_REPORT_HTML", str(html_path))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(SPARK_DIR), os.environ.get("PYTHONPATH")]))
    )
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)

    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=120,
        startup_timeout=120,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    # distribution, two year plots, user activity, top movies, genres, CV heatmap, ALS vs baselines
    assert len(pngs) == 8
    text = "\n".join(o.get("data", {}).get("text/plain", "") for o in outputs)
    assert "Blockbuster (1994)" in text and "Sparsity" in text and "60.000%" in text
    assert "rank 10, regParam 0.1, maxIter 10: RMSE 0.8900" in text
    assert html_path.read_text("utf-8").count("data:image/png;base64,") == 8
