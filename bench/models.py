"""Benchmark: every model family and baseline on the three protocols, nested selection, with fit times.

    cd spark && PYTHONPATH=. ../.lensflow/venv/bin/python ../bench/models.py \
        --data ../../shared/data/movielens --out ../bench/results [--sections official,recommenders,latest]
        [--families bias_als,torch_autorec,...] [--folds 1,2,3,4,5]

A run of some sections keeps the other sections' recorded results in models.json; finished folds
are recorded as they finish.

Sections (see `lensflow_spark.protocols`):
  official      ml-100k u1..u5: RMSE/MAE/R^2 of the rating families, mean over folds;
  recommenders  ml-100k, Microsoft Recommenders' protocol: NDCG/MAP/precision/recall@10, every
                held-out movie relevant, plus beyond-accuracy metrics;
  latest        ml-latest-small, default split (random 0.2, seed 42), threshold-4 relevance: both.
Every family's grid point is chosen on a validation split carved from the training part of each
evaluation split, never on its test part. Writes `models.json`, `models.md` and `models.png`. A
benchmark, not a test: asserts nothing; grids are small because the bench machine has 2 shared cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from lensflow_spark import columns as C  # noqa: E402
from lensflow_spark import schemas  # noqa: E402
from lensflow_spark.families import FitRuntime  # noqa: E402
from lensflow_spark.protocols import OFFICIAL, RECOMMENDERS, THRESHOLD4, genre_features, select_and_evaluate  # noqa: E402
from lensflow_spark.readers import read_dataset  # noqa: E402
from lensflow_spark.session import local_session  # noqa: E402
from lensflow_spark.splits import official_folds, random_holdout, stratified_holdout  # noqa: E402

# Small grids (2 shared cores): every point costs a fit per official fold (plus the refit). Plain ALS is
# one fixed point (Spark's defaults: nothing is chosen, so nothing can leak).
RATING_GRIDS = {
    "global_mean": [{}],
    "user_item_bias": [{"iterations": 3}, {"iterations": 3, "user_damping": 10.0, "item_damping": 10.0}],
    "als": [{"rank": 10, "reg_param": 0.1, "max_iter": 10}],
    # Backfitted (4 rounds of biases then ALS, see bias_als.py) with light item damping. The two points
    # are the best two of ~20 (rank {50, 100} x reg {0.1..0.2} x damping {0.5..15} x rounds {1..5})
    # tried on a validation split of u1.base alone; each fold chooses between them on its own base.
    "bias_als": [
        {"rank": 50, "reg_param": 0.15, "max_iter": 10, "item_damping": 1.0, "backfit_rounds": 4},
        {"rank": 100, "reg_param": 0.12, "max_iter": 10, "item_damping": 0.5, "backfit_rounds": 4},
    ],
    # l2 1 vs 30 and epochs 50..300 were tried on u1.base alone: 150 and 100 epochs at l2 30 were the
    # best two there; each fold chooses between them on its own base.
    "torch_autorec": [
        {"hidden": 200, "l2": 30.0, "epochs": 150, "learning_rate": 0.01},
        {"hidden": 200, "l2": 30.0, "epochs": 100, "learning_rate": 0.01},
    ],
}

RANKING_GRIDS = {
    "most_popular": [{}],
    "implicit_als": [
        {"rank": 32, "reg_param": 0.1, "max_iter": 10, "alpha": 1.0},
        {"rank": 32, "reg_param": 0.1, "max_iter": 10, "alpha": 5.0},
    ],
    "torch_ease": [{"l2": 200.0, "min_support": 3}, {"l2": 500.0, "min_support": 3}],
}


PROGRESS: list = []
"""Set by `main`: `PROGRESS[0](section, partial_result)` records a section's finished folds so far."""

FOLDS = [1, 2, 3, 4, 5]
"""The official folds to run (`--folds`); the summary is the mean over these."""

DIVERSITY = False
"""Intra-list diversity and serendipity (pairwise joins) are off: too slow for the 2 shared cores."""


def _cached(df):
    df = df.cache()
    df.count()
    return df


def official(spark, data: Path, runtime: FitRuntime) -> dict:
    def read(name):
        return spark.read.schema(schemas.ML100K_RATINGS).option("sep", "\t").csv(str(data / "ml-100k" / name))

    folds = official_folds([(read(f"u{i}.base"), read(f"u{i}.test")) for i in FOLDS])
    per_family: dict[str, list] = {name: [] for name in RATING_GRIDS}
    for fold in folds:
        train, test = _cached(fold.train), _cached(fold.test)
        for name, grid in RATING_GRIDS.items():
            result = select_and_evaluate(name, grid, train, test, OFFICIAL, runtime, ranking=False)
            per_family[name].append({"fold": FOLDS[fold.fold_id], **result})
            print(name, FOLDS[fold.fold_id], result["point"], result["metrics"].get("rmse"), flush=True)  # noqa: T201
        train.unpersist()
        test.unpersist()
        if PROGRESS:
            PROGRESS[0]("official", _official_summary(per_family))
    return _official_summary(per_family)


def _official_summary(per_family: dict[str, list]) -> dict:
    summary = {}
    for name, runs in per_family.items():
        if not runs:
            continue
        summary[name] = {
            metric: statistics.fmean(r["metrics"][metric] for r in runs)
            for metric in ("rmse", "mae", "r2", "explained_variance")
        }
        summary[name]["fit_seconds"] = statistics.fmean(r["fit_seconds"] for r in runs)
        summary[name]["folds"] = [r["fold"] for r in runs]
    return {"summary": summary, "folds": per_family}


def _ranking_section(train, test, protocol, runtime, features, grids) -> dict:
    train, test = _cached(train), _cached(test)
    out = {}
    for name, grid in grids.items():
        result = select_and_evaluate(
            name,
            grid,
            train,
            test,
            protocol,
            runtime,
            item_features=features if DIVERSITY else None,
            beyond_accuracy=True,
        )
        out[name] = result
        print(protocol.name, name, result["point"], result["metrics"].get("ndcg_at_k"), flush=True)  # noqa: T201
    return out


def recommenders(spark, data: Path, runtime: FitRuntime) -> dict:
    ratings = (
        spark.read.schema(schemas.ML100K_RATINGS).option("sep", "\t").csv(str(data / "ml-100k" / "u.data"))
    )
    ratings = official_folds([(ratings, ratings)])[0].train  # canonical columns
    split = stratified_holdout(ratings, 0.25, 42)
    raw = read_dataset(spark, "ml-100k", str(data / "ml-100k"))
    features = genre_features(raw.movies).cache()
    grids = RANKING_GRIDS
    return _ranking_section(split.train, split.test, RECOMMENDERS, runtime, features, grids)


def latest(spark, data: Path, runtime: FitRuntime) -> dict:
    raw = read_dataset(spark, "ml-latest-small", str(data / "ml-latest-small"))
    ratings = raw.ratings.where(F.col("corrupt_record").isNull()).select(
        C.USER_ID, C.MOVIE_ID, C.RATING, C.RATED_AT
    )
    split = random_holdout(ratings, 0.2, 42)
    features = genre_features(raw.movies).cache()
    grids = {**RATING_GRIDS, **RANKING_GRIDS}
    return _ranking_section(split.train, split.test, THRESHOLD4, runtime, features, grids)


def _merge(recorded: dict | None, fresh: dict) -> dict:
    """A `--families` run replaces those families' results in a recorded section, keeping the others'."""
    if not recorded:
        return fresh
    if "folds" in fresh:  # official: per-family fold lists, summary recomputed
        return _official_summary({**recorded["folds"], **fresh["folds"]})
    return {**recorded, **fresh}


def _plot(result: dict, path: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    if "official" in result:
        s = result["official"]["summary"]
        axes[0].barh(list(s), [v["rmse"] for v in s.values()], color="tab:blue")
        axes[0].set_xlim(0.85, max(v["rmse"] for v in s.values()) + 0.02)
        axes[0].set_title("ml-100k u1..u5: mean test RMSE (lower is better)")
    for ax, key, title in (
        (axes[1], "recommenders", "ml-100k Recommenders protocol: NDCG@10"),
        (axes[2], "latest", "ml-latest-small threshold-4: NDCG@10"),
    ):
        if key in result:
            s = result[key]
            ax.barh(list(s), [v["metrics"]["ndcg_at_k"] for v in s.values()], color="tab:green")
            ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _widest(folds: dict) -> int:
    return max([len(r["validation"]) for runs in folds.values() for r in runs] + [1])


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.4f}"


def _markdown(result: dict) -> str:
    lines = ["# Every model family vs the baselines (nested selection: points chosen on validation only)", ""]
    sections = ", ".join(f"{k} {result[f'{k}_seconds']} s" for k in SECTIONS if f"{k}_seconds" in result)
    lines.append(
        f"On {result['machine']}; sections ({sections}) may come from separate `--sections` runs;"
        f" torch_ease's training: {result.get('torch', 'n/a')}."
    )
    if "official" in result:
        lines += ["", "## ml-100k official folds u1..u5 (mean over folds)", ""]
        folds = result["official"]["folds"]
        lines += [
            "| model | point(s) | RMSE | MAE | R² | expl. var. | "
            + " | ".join(f"u{i} RMSE" for i in range(1, 6))
            + " | fit s |",
            "|---|---|" + "---:|" * 10,
        ]
        for name, v in result["official"]["summary"].items():
            points = sorted({json.dumps(r["point"], sort_keys=True) for r in folds[name]})
            per_fold = {r["fold"]: r["metrics"]["rmse"] for r in folds[name]}
            lines.append(
                f"| {name} | {'<br>'.join(f'`{p}`' for p in points)} | {_fmt(v['rmse'])} | "
                f"{_fmt(v['mae'])} | "
                f"{_fmt(v['r2'])} | {_fmt(v['explained_variance'])} | "
                + " | ".join(_fmt(per_fold.get(i)) for i in range(1, 6))
                + f" | {v['fit_seconds']:.1f} |"
            )
        lines += [
            "",
            "Strictly nested, per fold: for each fold k, each family's point is chosen by RMSE on a"
            " validation split carved from u{k}.base alone (a random 20 %, seed 42), refitted on all of"
            " u{k}.base and scored once on u{k}.test. A one-point grid is fitted as is (nothing chosen)."
            " Anchors: Surprise SVD 0.934 and SVD++ 0.919 (5-fold), GC-MC 0.910 and GLocal-K 0.889 on u1."
            " Fit s is the mean final refit. Grids and each fold's validation RMSEs (chosen in bold):",
            "",
            "| model | fold | "
            + " | ".join(f"point {j + 1}" for j in range(_widest(folds)))
            + " | test RMSE |",
            "|---|---|" + "---:|" * (_widest(folds) + 1),
        ]
        for name, runs in folds.items():
            for r in runs:
                if not r["validation"]:
                    continue
                cells = [
                    f"**{v['rmse']:.4f}**" if v["point"] == r["point"] else f"{v['rmse']:.4f}"
                    for v in r["validation"]
                ]
                cells += [""] * (_widest(folds) - len(cells))
                lines.append(
                    f"| {name} | u{r['fold']} | " + " | ".join(cells) + f" | {_fmt(r['metrics']['rmse'])} |"
                )
        for name, runs in folds.items():
            if runs and runs[0]["validation"]:
                grid = ", ".join(
                    f"{j + 1}: `{json.dumps(v['point'])}`" for j, v in enumerate(runs[0]["validation"])
                )
                lines.append(f"\n{name} grid: {grid}.")
        partial = {n: v["folds"] for n, v in result["official"]["summary"].items() if len(v["folds"]) < 5}
        if partial:
            lines += ["", f"Partial: means over the folds run only: {json.dumps(partial)}."]
    for key, title in (
        (
            "recommenders",
            "ml-100k, Microsoft Recommenders protocol (stratified 75/25, all held-out relevant)",
        ),
        ("latest", "ml-latest-small, default split (random 0.2, seed 42), relevance: rating >= 4"),
    ):
        if key not in result:
            continue
        lines += ["", f"## {title}", ""]
        lines += [
            "| model | point | RMSE | NDCG@10 | MAP@10 | P@10 | R@10 | MAP | R-prec | coverage | entropy"
            " | novelty | ILD | serendipity | fit s |",
            "|---|---|" + "---:|" * 13,
        ]
        for name, v in result[key].items():
            m = v["metrics"]
            lines.append(
                f"| {name} | `{json.dumps(v['point'])}` | {_fmt(m.get('rmse'))} | {_fmt(m['ndcg_at_k'])} | "
                f"{_fmt(m['map_at_k'])} | {_fmt(m['precision_at_k'])} | {_fmt(m['recall_at_k'])} | "
                f"{_fmt(m.get('map_full'))} | {_fmt(m.get('r_precision_full'))} | "
                f"{_fmt(m.get('catalogue_coverage'))} | {_fmt(m.get('distributional_coverage'))} | "
                f"{_fmt(m.get('novelty'))} | {_fmt(m.get('intra_list_diversity'))} | "
                f"{_fmt(m.get('serendipity'))} | {v['fit_seconds']:.1f} |"
            )
        fixed = [name for name, v in result[key].items() if v["point"] and not v["validation"]]
        if fixed:
            lines += ["", f"Fitted as is, one point (nothing chosen on this split): {', '.join(fixed)}."]
    return "\n".join(lines) + "\n"


SECTIONS = {"latest": latest, "recommenders": recommenders, "official": official}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--sections", default=",".join(SECTIONS))
    p.add_argument("--families", help="comma-separated families to run (default: all)")
    p.add_argument("--folds", default="1,2,3,4,5", help="official folds to run (default: 1,2,3,4,5)")
    p.add_argument("--max-points", type=int, help="keep each grid's first N points (a cheaper run)")
    args = p.parse_args()
    FOLDS[:] = [int(f) for f in args.folds.split(",")]
    if args.max_points:
        for grids in (RATING_GRIDS, RANKING_GRIDS):
            for name in grids:
                del grids[name][args.max_points :]
    if args.families:
        keep = set(args.families.split(","))
        for grids in (RATING_GRIDS, RANKING_GRIDS):
            for name in set(grids) - keep:
                del grids[name]
    wanted = [s for s in args.sections.split(",") if s]
    unknown = set(wanted) - set(SECTIONS)
    if unknown:
        p.error(f"unknown sections {sorted(unknown)}; known: {', '.join(SECTIONS)}")
    started = time.time()
    # Spark's Python workers (the blocked top-N runs in them) must use this interpreter, not `python3`.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = local_session("lensflow-bench-models", cores=2)
    spark.sparkContext.setLogLevel("ERROR")
    work = tempfile.mkdtemp(prefix="lensflow-bench-models-")
    result: dict = {"machine": f"{platform.machine()}, Python {platform.python_version()}, local[2]"}
    if args.sections != ",".join(SECTIONS) and (args.out / "models.json").exists():
        # A partial run (--sections) updates its sections and keeps the others' recorded results.
        result = {**json.loads((args.out / "models.json").read_text()), **result}

    def save() -> None:
        args.out.mkdir(parents=True, exist_ok=True)
        result["seconds"] = round(time.time() - started, 1)
        (args.out / "models.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
        (args.out / "models.md").write_text(_markdown(result))
        _plot(result, args.out / "models.png")

    # With --families, the recorded sections keep the families not run this time.
    recorded = {name: result.get(name) for name in wanted} if args.families else {}
    PROGRESS[:] = [
        lambda section, partial: (result.__setitem__(section, _merge(recorded.get(section), partial)), save())
    ]
    for name in wanted:
        scale = (1.0, 5.0) if name != "latest" else (0.5, 5.0)
        runtime = FitRuntime(f"{work}/checkpoints", f"{work}/{name}", scale, num_blocks=4)
        section_started = time.time()
        result[name] = _merge(recorded.get(name), SECTIONS[name](spark, args.data, runtime))
        result[f"{name}_seconds"] = round(time.time() - section_started, 1)
        save()
    torch_runs = [
        v["torch"] for s in ("recommenders", "latest") for v in result.get(s, {}).values() if "torch" in v
    ]
    if torch_runs:
        result["torch"] = torch_runs[0]
    result["seconds"] = round(time.time() - started, 1)
    (args.out / "models.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (args.out / "models.md").write_text(_markdown(result))
    _plot(result, args.out / "models.png")
    print(_markdown(result))  # noqa: T201
    spark.stop()


if __name__ == "__main__":
    main()
