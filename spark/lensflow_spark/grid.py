"""The best grid point under the rule the contracts define (`best-point-rule.json`), the same one
the workflow uses to pick the point it trains and registers."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .contracts import shared_fact


def _snake(name: str) -> str:
    """The rule names point fields as the contracts do (regParam); flat grid rows use reg_param."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def beats(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """True when row `a` is better than row `b`: lower RMSE beyond the tolerance, then the tie-break keys."""
    rule = shared_fact("best-point-rule")
    metric = rule["metric"]
    if abs(a[metric] - b[metric]) > rule["tolerance"]:
        return a[metric] < b[metric]
    for key in rule["tieBreak"]:
        field = _snake(key["field"])
        x, y = a.get(field), b.get(field)
        if x is None or y is None or x == y:
            continue
        return x < y if key["order"] == "asc" else x > y
    return False


def _depth(row: Mapping[str, Any]) -> float:
    """How many CV folds a row's means are over; a row that does not say counts as every fold."""
    n = row.get("n_folds")
    return math.inf if n is None or (isinstance(n, float) and math.isnan(n)) else n


def best_row(rows: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The best of flat grid rows ({"rank", "reg_param", "max_iter", "rmse", "n_folds", ...}) in
    grid order, among the rows scored on the most folds (successive halving drops points early).

    A scan that keeps a row until a later one beats it, step for step as `bestRow` in
    `src/workflows/grid.ts`: with a tolerance there is no total order to sort by, and this way both
    languages pick the same row. Rows without an rmse (failed points) are skipped.
    """
    rows = [row for row in rows if row.get("rmse") is not None]
    deepest = max(map(_depth, rows), default=None)
    best: Mapping[str, Any] | None = None
    for row in rows:
        if _depth(row) != deepest:
            continue
        if best is None or beats(row, best):
            best = row
    return best


def _better(objective: str) -> str:
    """ "lower" or "higher": which way `objective` improves (`models.json`'s objectives)."""
    for spec in shared_fact("models")["objectives"].values():
        if spec["metric"] == objective:
            return spec["better"]
    raise ValueError(f"unknown objective {objective!r}")


def beats_on_objective(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """True when scored point `a` ({"point", "objective", "score"}) beats `b`: the better score
    beyond the rule's tolerance (lower RMSE, higher NDCG@k), then the tie-break keys (snake_case)."""
    rule = shared_fact("best-point-rule")
    if abs(a["score"] - b["score"]) > rule["tolerance"]:
        lower = _better(a["objective"]) == "lower"
        return a["score"] < b["score"] if lower else a["score"] > b["score"]
    for key in rule["tieBreak"]:
        field = _snake(key["field"])
        x, y = a["point"].get(field), b["point"].get(field)
        if not isinstance(x, int | float) or not isinstance(y, int | float) or x == y:
            continue
        return x < y if key["order"] == "asc" else x > y
    return False


def best_by_objective(rows: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The best of one family's scored points in grid order, step for step as `bestByObjective`
    in `src/workflows/grid.ts`."""
    best: Mapping[str, Any] | None = None
    for row in rows:
        if best is not None and row["objective"] != best["objective"]:
            raise ValueError("rows judged by different objectives cannot be compared")
        if best is None or beats_on_objective(row, best):
            best = row
    return best
