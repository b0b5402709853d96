"""A run's outputs read from a local folder, and a self-contained HTML report of them.

`load_run` reads the run-folder layout described in `analysis` with pandas and json only (no
Spark, no JVM), so the notebook works on a copy of a run, e.g. after
`aws s3 sync s3://<bucket>/<prefix>/runs/<run-id>/ ./<run-id>/`. `render_report` turns the numbers
into one HTML page whose figures are embedded as base64 PNG data URIs: no external resource, and
every piece of text is HTML-escaped. The functions here are pure; the report job reads the inputs
and writes `report_figures` as PNGs and `render_report` as `<run>/report/report.html`.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from . import plots
from .analysis import ANALYSIS_DIR, CLEAN_FILE, EVALUATION_FILE, GRID_DIR, SUMMARY_FILE, TABLE_NAMES
from .contracts import shared_fact
from .grid import best_by_objective

REPORT_TOP_MOVIES = 20

# The report's figures: file stem (`<run>/report/<stem>.png`) -> caption, in page order.
FIGURE_CAPTIONS = {
    "rating_distribution": "Rating distribution",
    "ratings_by_rating_year": "Average rating by year rated",
    "ratings_by_release_year": "Average rating by release year",
    "top_movies": "Top movies by Bayesian average",
    "genre_stats": "Ratings per genre",
    "user_activity": "User activity long tail",
    "cv_heatmap": "Cross-validated RMSE over rank × regParam",
    "model_comparison": "Every model vs the baselines, side by side",
}


@dataclass(frozen=True)
class RunOutputs:
    """What one run left in its folder: the analysis summary, and the job results present so far."""

    run_dir: Path
    summary: dict[str, Any]
    grid: list[dict[str, Any]] | None
    """Cross-validation rows as `grid_rows` makes them; None before the grid search."""
    evaluation: dict[str, dict[str, Any]] | None
    """Test-set metrics per model ({"als": {"rmse", ...}, ...}); None before evaluation."""
    clean: dict[str, Any] | None
    """The clean job's result ({"counts": {"ratings": {"raw", "clean", "quarantined"}, ...}})."""

    def has_table(self, name: str) -> bool:
        """Whether `<run>/analysis/<name>` exists (a Parquet folder or file)."""
        return (self.run_dir / ANALYSIS_DIR / name).exists()

    def table(self, name: str) -> pd.DataFrame:
        """One analysis table (`analysis.TABLE_NAMES`) read from its Parquet folder with pandas."""
        if name not in TABLE_NAMES:
            raise ValueError(f"unknown analysis table {name!r}; known: {', '.join(TABLE_NAMES)}")
        path = self.run_dir / ANALYSIS_DIR / name
        if not path.exists():
            raise FileNotFoundError(f"no analysis table {name!r} at {path}")
        return pd.read_parquet(path)


def load_run(run_dir: str | Path) -> RunOutputs:
    """Reads a local run folder; `analysis/summary.json` is required, the job results are optional.

    The grid comes from `results/grid/*.json` (one `als_point` result per point, in file-name
    order), the evaluation from the `models` of `results/evaluate.json`, the cleaning counts
    from `results/clean.json`.
    """
    if not str(run_dir):
        raise FileNotFoundError("no run folder given: set LENSFLOW_RUN_DIR or RUN_DIR")
    root = Path(run_dir).expanduser()
    summary_path = root / SUMMARY_FILE
    if not summary_path.is_file():
        raise FileNotFoundError(f"{summary_path} not found: is {root} a run folder with the analysis done?")
    point_files = sorted((root / GRID_DIR).glob("*.json"))
    evaluation = _read_json(root / EVALUATION_FILE)
    return RunOutputs(
        run_dir=root,
        summary=_read_json(summary_path),
        grid=grid_rows(_read_json(f) for f in point_files) if point_files else None,
        evaluation=evaluation["models"] if evaluation else None,
        clean=_read_json(root / CLEAN_FILE),
    )


def grid_rows(results: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Grid-search results as the flat rows `plots.plot_cv_heatmap` takes, one per point in the
    order the points first appear.

    Accepts `als_point` job results ({"point": {"rank", "regParam", "maxIter", ...}, "folds": [...],
    "mean": {"rmse", "mae"}, "std": {...}}), the pipeline's `GridRow`s ({"point", "rmse", "mae",
    "rmseStd", "folds"}) or rows that are flat already; returns {"rank", "reg_param", "max_iter",
    "rmse", "mae", "rmse_std", "n_folds"}, a missing value as None. Under successive halving a point
    has one result per fold it reached: they are merged, the means taken over those folds.
    """
    entries: list[dict[str, Any] | list[Mapping[str, Any]]] = []  # a flat row, or a point's results
    per_point: dict[str, list[Mapping[str, Any]]] = {}
    for doc in results:
        if "point" not in doc:
            entries.append(dict(doc))
        elif isinstance(doc.get("folds"), list):  # an als_point result
            key = json.dumps(doc["point"], sort_keys=True)
            if key not in per_point:
                entries.append(per_point.setdefault(key, []))
            per_point[key].append(doc)
        else:
            entries.append(_flat_row(doc["point"], doc, doc.get("rmseStd"), doc.get("folds")))
    return [_merged_row(e) if isinstance(e, list) else e for e in entries]


def _flat_row(point: Mapping[str, Any], mean: Mapping[str, Any], rmse_std: Any, n_folds: Any) -> dict:
    return {
        "rank": point.get("rank"),
        "reg_param": point.get("regParam"),
        "max_iter": point.get("maxIter"),
        "rmse": mean.get("rmse"),
        "mae": mean.get("mae"),
        "rmse_std": rmse_std,
        "n_folds": n_folds,
    }


def _merged_row(docs: list[Mapping[str, Any]]) -> dict[str, Any]:
    """One point from its `als_point` results: one result as it is; several (one per fold, under
    successive halving) by the mean and population deviation over their folds, as `als_point` does."""
    if len(docs) == 1:
        doc = docs[0]
        return _flat_row(doc["point"], doc["mean"], doc.get("std", {}).get("rmse"), len(doc["folds"]))
    folds = sorted((f for d in docs for f in d["folds"]), key=lambda f: f["fold"])
    rmse = [f["rmse"] for f in folds]
    mean = {"rmse": statistics.fmean(rmse), "mae": statistics.fmean(f["mae"] for f in folds)}
    return _flat_row(docs[0]["point"], mean, statistics.pstdev(rmse), len(folds))


def key_numbers(
    summary: Mapping[str, Any],
    grid: Sequence[Mapping[str, Any]] | None = None,
    clean: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """The headline numbers as a two-column table (`measure`, `value`), values formatted for reading."""
    rows = []
    for table, c in ((clean or {}).get("counts") or {}).items():
        dropped = ", ".join(f"{reason} {_fmt(n)}" for reason, n in sorted(c.get("quarantined", {}).items()))
        rows.append((f"Raw {table} read / kept", f"{_fmt(c.get('raw'))} / {_fmt(c.get('clean'))}"))
        rows.append((f"Raw {table} quarantined", dropped or "none"))
    counts = summary.get("counts", {})
    activity = summary.get("user_activity", {})
    rows += [
        ("Ratings", _fmt(counts.get("ratings"))),
        ("Users", _fmt(counts.get("users"))),
        ("Movies rated", _fmt(counts.get("movies"))),
        ("Movies in catalogue", _fmt(counts.get("catalogue_movies"))),
        ("Global mean rating", _fmt(summary.get("global_mean"))),
        ("Sparsity", _pct(summary.get("sparsity"))),
        ("Density", _pct(summary.get("density"))),
        ("Ratings per user (median)", _fmt(activity.get("median"))),
        ("Ratings by the 10 % most active users", _pct(activity.get("top_10pct_share"))),
        ("First rating", _fmt(summary.get("first_rated_at"))),
        ("Last rating", _fmt(summary.get("last_rated_at"))),
    ]
    top = summary.get("top_movies") or []
    if top:
        rows.append(
            ("Top movie (Bayesian average)", f"{top[0].get('title')} ({_fmt(top[0].get('bayes_rating'))})")
        )
    if grid:
        best = plots.best_grid_point(grid)
        rows.append(("Best grid point", _grid_point_text(best)))
    return pd.DataFrame(rows, columns=["measure", "value"])


def model_tables(evaluation: Mapping[str, Mapping[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rating table, ranking table) of the evaluation, metric names from `models.json`.

    The rating table has the models that predict ratings (a number for `rmse`), the ranking table
    every model (each makes top-k lists). Rows: ALS first, then the evaluation's order.
    """
    names = shared_fact("models")
    rating = {m: v for m, v in evaluation.items() if v.get("rmse") is not None}
    out = []
    for models, metrics in ((rating, names["ratingMetrics"]), (evaluation, names["rankingMetrics"])):
        present = [k for k in metrics if any(v.get(k) is not None for v in models.values())]
        order = sorted(models, key=lambda m: (m != "als", list(models).index(m)))
        table = pd.DataFrame(
            [[models[m].get(k) for k in present] for m in order],
            columns=present,
            index=pd.Index([plots.MODEL_LABELS.get(m, m) for m in order], name="model"),
        )
        out.append(table.reset_index())
    return out[0], out[1]


def family_table(points: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The per-family grid search: one row per `model_point` result (grid order per family), its
    mean CV objective and spread, fit time, and a mark on each family's chosen point (`best_by_objective`)."""
    points = list(points)
    chosen = set()
    for name in dict.fromkeys(p["family"] for p in points):
        rows = [
            {"point": p["point"], "objective": p["objective"], "score": p["mean"][p["objective"]], "i": i}
            for i, p in enumerate(points)
            if p["family"] == name
        ]
        chosen.add(best_by_objective(rows)["i"])
    return pd.DataFrame(
        [
            {
                "family": p["family"],
                "point": ", ".join(f"{k} {_short(v)}" for k, v in p["point"].items()) or "(defaults)",
                "objective": p["objective"],
                "CV mean": p["mean"][p["objective"]],
                "CV std": p["std"].get(p["objective"]),
                "fit s": p["fitSeconds"],
                "chosen": "✓" if i in chosen else "",
            }
            for i, p in enumerate(points)
        ]
    )


def top_movies_table(
    top_movies: Iterable[Mapping[str, Any]] | pd.DataFrame, n: int = REPORT_TOP_MOVIES
) -> pd.DataFrame:
    """The first `n` ranked movies with the columns a reader wants: rank, title, year, counts, averages."""
    df = top_movies if isinstance(top_movies, pd.DataFrame) else pd.DataFrame(list(top_movies))
    columns = [
        c for c in ("rank", "title", "year", "n_ratings", "avg_rating", "bayes_rating") if c in df.columns
    ]
    if "rank" in df.columns:
        df = df.sort_values("rank")
    df = df[columns].head(n).reset_index(drop=True)
    if "year" in df.columns:  # a year reads 1994, not 1,994 or 1994.0000
        df["year"] = [None if pd.isna(y) else str(int(y)) for y in df["year"]]
    return df


def report_figures(
    summary: Mapping[str, Any],
    grid: Sequence[Mapping[str, Any]] | None = None,
    evaluation: Mapping[str, Mapping[str, Any]] | None = None,
    user_activity: pd.DataFrame | None = None,
) -> dict[str, Figure]:
    """The report's figures keyed by `FIGURE_CAPTIONS` stem, for the parts that have data.

    The analysis figures are drawn from the summary's lists; the user-activity histogram is not
    in the summary, so that figure needs the `user_activity` table.
    """
    params = summary.get("params", {})
    draw = {
        "rating_distribution": plots.plot_rating_distribution,
        "ratings_by_rating_year": plots.plot_ratings_over_years,
        "ratings_by_release_year": lambda df: plots.plot_ratings_over_years(df, "release_year"),
        "top_movies": lambda df: plots.plot_top_movies(
            df, REPORT_TOP_MOVIES, params.get("min_ratings"), params.get("prior_weight")
        ),
        "genre_stats": plots.plot_genres,
    }
    figures = {key: plot(pd.DataFrame(summary[key])) for key, plot in draw.items() if summary.get(key)}
    if user_activity is not None and not user_activity.empty:
        figures["user_activity"] = plots.plot_user_activity(user_activity)
    if grid:
        figures["cv_heatmap"] = plots.plot_cv_heatmap(grid)
    if evaluation:
        figures["model_comparison"] = plots.plot_model_comparison(evaluation)
    return figures


def render_report(
    summary: Mapping[str, Any],
    grid: Sequence[Mapping[str, Any]] | None = None,
    evaluation: Mapping[str, Mapping[str, Any]] | None = None,
    clean: Mapping[str, Any] | None = None,
    images: Mapping[str, bytes] | None = None,
    title: str = "lensflow run report",
    families: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """One self-contained HTML page: key numbers, best grid point, ALS vs baselines, top movies, figures.

    `images` maps a `FIGURE_CAPTIONS` stem to PNG bytes (what the report job also writes as
    files); without it the figures of `report_figures` are drawn here. Images are inlined as
    `data:image/png;base64,` URIs. All text (titles, genres, the report title) is escaped, so a
    movie called `<script>` is shown, never run.
    """
    if images is None:
        images = {k: plots.figure_png(fig) for k, fig in report_figures(summary, grid, evaluation).items()}
    sections = [
        f"<h1>{_esc(title)}</h1>",
        "<h2>Key numbers</h2>",
        _html_table(key_numbers(summary, grid, clean)),
    ]
    if grid:
        best = plots.best_grid_point(grid)
        sections += ["<h2>Best grid point</h2>", f"<p>{_esc(_grid_point_text(best))}</p>"]
    if families:
        note = "Each family is selected by its own objective: lowest CV RMSE, or highest CV NDCG@k."
        sections += [
            "<h2>Model families: grid search</h2>",
            f"<p>{_esc(note)}</p>",
            _html_table(family_table(families)),
        ]
    if evaluation:
        rating, ranking = model_tables(evaluation)
        sections += [
            "<h2>Rating models vs the baselines (test set)</h2>",
            _html_table(rating),
            "<h2>Ranking: every model's top-k lists vs the baselines (test set)</h2>",
            _html_table(ranking),
        ]
    if summary.get("top_movies"):
        params = summary.get("params", {})
        note = (
            f"Movies with at least {_short(params.get('min_ratings'))} ratings, ranked by the Bayesian "
            f"average (C·m + Σr) / (C + n) with C = {_short(params.get('prior_weight'))} and m the "
            "global mean rating."
        )
        sections += [
            "<h2>Top movies</h2>",
            f"<p>{_esc(note)}</p>",
            _html_table(top_movies_table(summary["top_movies"])),
        ]
    if images:
        sections.append("<h2>Figures</h2>")
    ordered = [k for k in FIGURE_CAPTIONS if k in images] + sorted(set(images) - set(FIGURE_CAPTIONS))
    for key in ordered:
        caption = FIGURE_CAPTIONS.get(key, key)
        data = base64.b64encode(images[key]).decode("ascii")
        sections.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{_esc(caption)}">'
            f"<figcaption>{_esc(caption)}</figcaption></figure>"
        )
    body = "\n".join(sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def render_run_report(run: RunOutputs, title: str | None = None) -> str:
    """`render_report` of a loaded run folder, the user-activity figure included when its table is there."""
    activity = run.table("user_activity") if run.has_table("user_activity") else None
    figures = report_figures(run.summary, run.grid, run.evaluation, activity)
    return render_report(
        run.summary,
        run.grid,
        run.evaluation,
        run.clean,
        images={k: plots.figure_png(fig) for k, fig in figures.items()},
        title=title or f"lensflow run {run.run_dir.name}",
    )


def write_report(html_text: str, path: str | Path) -> Path:
    """Writes the HTML page (UTF-8, parent folders created) and returns its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html_text, "utf-8")
    return path


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:60em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}"
    "th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}"
    "th{background:#f3f3f3}figure{margin:2em 0}img{max-width:100%}"
)


def _html_table(df: pd.DataFrame) -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in df.columns)
    body = []
    for row in df.itertuples(index=False):
        cells = "".join(
            f'<td class="num">{_esc(_fmt(v))}</td>' if _is_numeric(v) else f"<td>{_esc(_fmt(v))}</td>"
            for v in row
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>"


def _grid_point_text(best: Mapping[str, Any]) -> str:
    text = f"rank {_short(best.get('rank'))}, regParam {_short(best.get('reg_param'))}"
    if best.get("max_iter") is not None:
        text += f", maxIter {_short(best.get('max_iter'))}"
    return text + f": RMSE {_fmt(best.get('rmse'))}"


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text("utf-8")) if path.is_file() else None


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _is_numeric(value: Any) -> bool:
    """A finite number (NaN, a missing metric in a pandas column, is not one)."""
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and math.isfinite(value)


def _fmt(value: Any) -> str:
    """Integers with thousands separators, floats with 4 decimals, missing values as n/a."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "n/a"
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        return f"{value:.4f}"
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return str(value)


def _short(value: Any) -> str:
    """A parameter as written: 0.1, 20, 2 (not 2.0000)."""
    return f"{value:g}" if _is_numeric(value) else _fmt(value)


def _pct(value: Any) -> str:
    return f"{value:.3%}" if _is_numeric(value) else "n/a"
