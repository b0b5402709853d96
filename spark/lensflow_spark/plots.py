"""Figures of the analysis and of model selection, from small pandas tables and dicts.

Every `plot_*` function returns a new `matplotlib.figure.Figure` built without pyplot, so nothing
is drawn on screen, no global figure state is kept, and any backend (Agg included) can save it.
Input columns are those of `analysis` (`*_COLUMNS`); the notebook and `report` call these.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .contracts import shared_fact
from .grid import best_row

# Metrics in the order they are drawn, with whether lower is better (names as in `evaluate`).
METRICS = {
    "rmse": ("RMSE", True),
    "mae": ("MAE", True),
    "r2": ("R²", False),
    "explained_variance": ("Explained variance", False),
    "precision_at_k": ("Precision@k", False),
    "recall_at_k": ("Recall@k", False),
    "ndcg_at_k": ("NDCG@k", False),
    "map_at_k": ("MAP@k", False),
    "catalogue_coverage": ("Catalogue coverage", False),
    "distributional_coverage": ("Distributional coverage (bits)", False),
    "novelty": ("Novelty (bits)", False),
}
MODEL_LABELS = {
    "als": "ALS",
    "global_mean": "Global mean",
    "user_item_bias": "User + item bias",
    "most_popular": "Most popular",
}


def is_baseline(model: str) -> bool:
    """True for the fixed reference models (`models.json`), false for ALS and the searched families."""
    spec = shared_fact("models")["families"].get(model)
    return bool(spec and spec["baseline"])


_STYLE = "whitegrid"
_ALS_COLOR = "#c0392b"
_FAMILY_COLOR = "#e67e22"
_BASELINE_COLOR = "#7f8c8d"
_BAR_COLOR = "#2c7fb8"


def _figure(width: float = 8.0, height: float = 4.5) -> tuple[Figure, Any]:
    with sns.axes_style(_STYLE):
        fig = Figure(figsize=(width, height), layout="constrained")
        return fig, fig.subplots()


def _require(df: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: missing columns {missing}; got {list(df.columns)}")
    if df.empty:
        raise ValueError(f"{what}: no rows to plot")


def plot_rating_distribution(dist: pd.DataFrame) -> Figure:
    """Bar chart of how many ratings each rating value got (`rating`, `n_ratings`)."""
    _require(dist, ("rating", "n_ratings"), "rating distribution")
    dist = dist.sort_values("rating")
    fig, ax = _figure()
    labels = [f"{r:g}" for r in dist["rating"]]
    ax.bar(labels, dist["n_ratings"], color=_BAR_COLOR)
    ax.set_xlabel("Rating")
    ax.set_ylabel("Ratings")
    ax.set_title("Rating distribution")
    total = dist["n_ratings"].sum()
    for x, n in zip(labels, dist["n_ratings"], strict=True):
        ax.annotate(f"{n / total:.0%}", (x, n), ha="center", va="bottom", fontsize=8)
    return fig


def plot_ratings_over_years(by_year: pd.DataFrame, year_column: str = "rating_year") -> Figure:
    """Average rating per year as a line, with the number of ratings as bars on a second axis.

    `year_column` is `rating_year` (when the ratings were given) or `release_year` (when the
    rated movies came out); the table needs `n_ratings` and `avg_rating` too.
    """
    _require(by_year, (year_column, "n_ratings", "avg_rating"), "ratings over years")
    by_year = by_year.sort_values(year_column)
    when = "year rated" if year_column == "rating_year" else "release year"
    fig, ax = _figure(9.0, 4.5)
    counts = ax.twinx()
    counts.bar(by_year[year_column], by_year["n_ratings"], color=_BAR_COLOR, alpha=0.25, width=0.8)
    counts.set_ylabel("Ratings")
    counts.grid(False)
    marker_size = 6 if len(by_year) <= 30 else 3
    ax.plot(by_year[year_column], by_year["avg_rating"], marker="o", markersize=marker_size, color=_ALS_COLOR)
    ax.set_zorder(counts.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.set_xlabel(when.capitalize())
    ax.set_ylabel("Average rating")
    ax.set_title(f"Average rating by {when}")
    return fig


def plot_top_movies(
    top: pd.DataFrame, n: int = 20, min_ratings: int | None = None, prior_weight: float | None = None
) -> Figure:
    """Horizontal bars of the first `n` movies by Bayesian average (`analysis.top_rated_movies`).

    Each label carries the number of ratings; the raw mean is marked beside the Bayesian one.
    Pass the ranking's `min_ratings` and `prior_weight` to name them in the title.
    """
    _require(top, ("title", "movie_id", "n_ratings", "avg_rating", "bayes_rating"), "top movies")
    order = ["rank"] if "rank" in top.columns else []
    top = top.sort_values(order or ["bayes_rating"], ascending=bool(order)).head(n)
    labels = [
        f"{_shorten(t) if isinstance(t, str) and t else f'movie {m}'} (n={k:,})"
        for t, m, k in zip(top["title"], top["movie_id"], top["n_ratings"], strict=True)
    ]
    fig, ax = _figure(9.0, max(3.0, 0.35 * len(top) + 1.2))
    y = np.arange(len(top))
    ax.barh(y, top["bayes_rating"], color=_BAR_COLOR, label="Bayesian average")
    ax.scatter(top["avg_rating"], y, color=_ALS_COLOR, marker="|", s=200, zorder=3, label="Mean rating")
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    low = min(top["bayes_rating"].min(), top["avg_rating"].min())
    ax.set_xlim(max(0.0, math.floor(low * 2) / 2 - 0.5), max(top["avg_rating"].max(), 5.0) + 0.1)
    ax.set_xlabel("Rating")
    fig.legend(loc="outside lower center", ncols=2)
    params = [f"min {min_ratings} ratings" if min_ratings is not None else None]
    params.append(f"C = {prior_weight:g}" if prior_weight is not None else None)
    detail = ", ".join(p for p in params if p)
    ax.set_title(f"Top {len(top)} movies by Bayesian average" + (f"\n({detail})" if detail else ""))
    return fig


def plot_genres(genres: pd.DataFrame) -> Figure:
    """Ratings per genre as bars, each labelled with the genre's average rating (`genre_stats`)."""
    _require(genres, ("genre", "n_ratings", "avg_rating"), "genres")
    genres = genres.sort_values(["n_ratings", "genre"], ascending=[False, True])
    fig, ax = _figure(9.0, max(3.0, 0.3 * len(genres) + 1.2))
    y = np.arange(len(genres))
    ax.barh(y, genres["n_ratings"], color=_BAR_COLOR)
    ax.set_yticks(y, list(genres["genre"]))
    ax.invert_yaxis()
    for yi, n, avg in zip(y, genres["n_ratings"], genres["avg_rating"], strict=True):
        text = "no ratings" if pd.isna(avg) else f"avg {avg:.2f}"
        ax.annotate(f" {text}", (n, yi), va="center", fontsize=8)
    ax.set_xlabel("Ratings")
    ax.set_title("Ratings per genre (label: average rating)")
    ax.margins(x=0.15)
    return fig


def plot_user_activity(hist: pd.DataFrame) -> Figure:
    """The long tail of user activity: ratings per user, users ranked from most to least active.

    Input is the `user_activity` histogram (ratings_per_user, n_users); the y axis is logarithmic.
    """
    _require(hist, ("ratings_per_user", "n_users"), "user activity")
    per_user = np.sort(np.repeat(hist["ratings_per_user"].to_numpy(), hist["n_users"].to_numpy()))[::-1]
    fig, ax = _figure()
    ranks = np.arange(1, len(per_user) + 1)
    ax.fill_between(ranks, per_user, step="mid", color=_BAR_COLOR, alpha=0.3)
    ax.plot(ranks, per_user, drawstyle="steps-mid", color=_BAR_COLOR)
    ax.set_yscale("log")
    ax.set_xlim(1, max(len(per_user), 2))
    ax.set_xlabel("Users, most active first")
    ax.set_ylabel("Ratings per user")
    ax.set_title(f"User activity long tail ({len(per_user):,} users, median {np.median(per_user):g} ratings)")
    return fig


def best_grid_point(grid: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The best grid row under the contracts' best-point rule (`grid.best_row`), with plain values."""
    rows = _grid_frame(grid)
    records = [{k: _plain(v) for k, v in row.items()} for row in rows.to_dict("records")]
    best = dict(best_row(records) or {})
    for key in ("rank", "max_iter"):  # a column with gaps comes back as floats
        if isinstance(best.get(key), float) and best[key].is_integer():
            best[key] = int(best[key])
    return best


def plot_cv_heatmap(grid: Iterable[Mapping[str, Any]]) -> Figure:
    """Heatmap of cross-validated RMSE over rank × reg_param; the best cell is outlined.

    `grid` holds rows like {"rank": 10, "reg_param": 0.1, "max_iter": 10, "rmse": 0.9}. With
    several max_iter values a cell shows the best RMSE over them, labelled with its max_iter, and
    the title says so. Rows whose rmse is null are failed points and are left out.
    """
    rows = _grid_frame(grid)
    iters = sorted(rows["max_iter"].dropna().unique())
    best_per_cell = (
        rows.sort_values(["rmse", "max_iter"], kind="stable")
        .groupby(["reg_param", "rank"], as_index=False)
        .first()
    )
    rmse = best_per_cell.pivot(index="reg_param", columns="rank", values="rmse").sort_index()
    rmse = rmse.reindex(sorted(rmse.columns), axis=1)
    cell_iters = best_per_cell.pivot(index="reg_param", columns="rank", values="max_iter").reindex_like(rmse)
    annot = np.empty(rmse.shape, dtype=object)
    for (i, j), value in np.ndenumerate(rmse.to_numpy()):
        text = "" if np.isnan(value) else f"{value:.4f}"
        if text and len(iters) > 1:
            text += f"\nit={int(cell_iters.iat[i, j])}"
        annot[i, j] = text
    fig, ax = _figure(1.2 * len(rmse.columns) + 3.0, 0.7 * len(rmse.index) + 2.0)
    sns.heatmap(
        rmse,
        ax=ax,
        annot=annot,
        fmt="",
        cmap="viridis_r",
        cbar_kws={"label": "RMSE"},
        linewidths=0.5,
    )
    best = best_grid_point(rows.to_dict("records"))
    r, c = list(rmse.index).index(best["reg_param"]), list(rmse.columns).index(best["rank"])
    ax.add_patch(Rectangle((c, r), 1, 1, fill=False, edgecolor=_ALS_COLOR, linewidth=3))
    ax.set_xlabel("rank")
    ax.set_ylabel("regParam")
    ax.set_yticklabels([f"{v:g}" for v in rmse.index], rotation=0)
    title = "Cross-validated RMSE by rank × regParam"
    if len(iters) > 1:
        title += f"\n(best over maxIter ∈ {{{', '.join(f'{int(i)}' for i in iters)}}} per cell)"
    elif iters:
        title += f" (maxIter = {int(iters[0])})"
    if "n_folds" in rows and rows["n_folds"].nunique() > 1:
        title += "\n(successive halving: each point's mean over the folds it reached)"
    ax.set_title(title)
    return fig


def plot_model_comparison(evaluation: Mapping[str, Mapping[str, Any]]) -> Figure:
    """Every model side by side: one panel per metric, one bar per model, ALS first and highlighted,
    the searched families in orange, the baselines in grey.

    `evaluation` maps a model name (`als`, `bias_als`, ..., `global_mean`, `most_popular`) to its
    metrics ({"rmse", "mae", "ndcg_at_k", ...}); a metric a model lacks (a null, or a ranking
    model's RMSE) is shown as "n/a". Metrics follow `METRICS` order, then any others.
    """
    if not evaluation:
        raise ValueError("model comparison: no models to plot")
    models = sorted(evaluation, key=lambda m: (m != "als", list(evaluation).index(m)))
    present = {k for metrics in evaluation.values() for k, v in metrics.items() if _is_number(v)}
    metrics = [m for m in METRICS if m in present] + sorted(present - set(METRICS))
    if not metrics:
        raise ValueError("model comparison: no numeric metrics")
    ncols = min(len(metrics), 4)
    nrows = math.ceil(len(metrics) / ncols)
    with sns.axes_style(_STYLE):
        fig = Figure(figsize=(3.6 * ncols + 0.5, 4.0 * nrows + 0.3), layout="constrained")
        grid = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for unused in grid[len(metrics) :]:
        fig.delaxes(unused)
    axes = grid[: len(metrics)]
    labels = [MODEL_LABELS.get(m, m) for m in models]
    colors = [
        _ALS_COLOR if m == "als" else _BASELINE_COLOR if is_baseline(m) else _FAMILY_COLOR for m in models
    ]
    for ax, metric in zip(axes, metrics, strict=True):
        values = [evaluation[m].get(metric) for m in models]
        heights = [v if _is_number(v) else 0.0 for v in values]
        x = np.arange(len(models))
        ax.bar(x, heights, color=colors)
        for xi, v in zip(x, values, strict=True):
            text = f"{v:.3f}" if _is_number(v) else "n/a"
            ax.annotate(text, (xi, v if _is_number(v) else 0.0), ha="center", va="bottom", fontsize=8)
        ax.set_xticks(x, labels, rotation=30, ha="right")
        name, lower_better = METRICS.get(metric, (metric, False))
        ax.set_title(f"{name} ({'lower' if lower_better else 'higher'} is better)")
        ax.margins(y=0.15)
    families = any(m != "als" and not is_baseline(m) for m in models)
    fig.suptitle(
        "Every model family vs the baselines on the test set"
        if families
        else "ALS vs baselines on the test set"
    )
    return fig


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """The figure rendered as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def save_figure(fig: Figure, path: str | Path, dpi: int = 100) -> Path:
    """Writes the figure as a PNG file (parent folders created) and returns its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(figure_png(fig, dpi))
    return path


def _shorten(text: str, width: int = 48) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _grid_frame(grid: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    rows = pd.DataFrame(list(grid))
    if rows.empty:
        raise ValueError("grid: no rows")
    missing = [c for c in ("rank", "reg_param", "rmse") if c not in rows.columns]
    if missing:
        raise ValueError(f"grid: missing fields {missing}; got {list(rows.columns)}")
    if "max_iter" not in rows.columns:
        rows["max_iter"] = np.nan
    rows = rows[rows["rmse"].map(_is_number)].astype({"rmse": float})
    if rows.empty:
        raise ValueError("grid: no row has an rmse")
    return rows


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and math.isfinite(value)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
