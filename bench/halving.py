"""Benchmark: successive halving against full cross-validation, same data, folds and grids.

    make up   # then, with .lensflow/local.env sourced:
    cd spark && PYTHONPATH=. nice -n 10 ../.lensflow/venv/bin/python ../bench/halving.py \
        --out ../bench/results

For each grid (issue #7's 6 points, and 12 points where halving is on by default) `lensflow run`
on ml-latest-small twice, one after the other: `"halving": false` (every point on every fold) and
`"halving": true` (`src/workflows/halving.ts`: every point on fold 0, the better half on the next
fold, ...). Same split (random 0.2, 3 CV folds, seed 42), so both searches see the same folds.
Records per run the chosen point, its CV RMSE, the grid stage's seconds and the ALS fits (one per
point and fold scored, from the run's full result document, `--json`), and whether halving chose full
cross-validation's point. Writes `halving.json` and `.md`. A benchmark: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("bench.halving")

REPO = Path(__file__).resolve().parents[1]
SPLIT = {"kind": "random", "testFraction": 0.2, "cvFolds": 3, "seed": 42}
GRIDS = {
    "6 points (issue #7)": {"rank": [10, 20], "regParam": [0.05, 0.1, 0.2], "maxIter": [10]},
    "12 points": {"rank": [5, 10, 20, 40], "regParam": [0.03, 0.1, 0.3], "maxIter": [10]},
}
CONCURRENT = 3


def lensflow_run(grid: dict[str, Any], halving: bool) -> dict[str, Any]:
    cmd = ["node", str(REPO / "dist" / "cli" / "main.js"), "run", "--dataset", "ml-latest-small",
           "--grid", json.dumps({**grid, "halving": halving}), "--split", json.dumps(SPLIT),
           "--prefix", f"bench-halving-{uuid.uuid4().hex[:8]}", "--max-concurrent", str(CONCURRENT),
           "--no-register", "--json"]  # fmt: skip
    t0 = time.perf_counter()
    # --json prints the run's full result document.
    full = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    total = time.perf_counter() - t0
    stages = {s["stage"]: s["seconds"] for s in full["stages"]}
    best, len_folds = full["best"], SPLIT["cvFolds"]
    return {
        "halving": halving,
        "runId": full["runId"],
        "total": total,
        "grid": stages["grid"],
        "fits": sum(len(r["folds"]) for r in full["details"]["grid"]),
        "best": {"point": best["point"], "cvRmse": best["rmse"], "folds": best.get("folds", len_folds)},
        "testRmse": full["test"]["als"]["rmse"],
    }


def _point(p: dict[str, Any]) -> str:
    return f"rank {p['rank']}, regParam {p['regParam']}, maxIter {p['maxIter']}"


def markdown(doc: dict[str, Any]) -> str:
    lines = [
        "# Successive halving vs full cross-validation (ml-latest-small, 3 CV folds)",
        "",
        f"{doc['when']}, commit `{doc['commit']}`, {doc['cores']} cores, {CONCURRENT} steps at once;"
        f" load average (1 min) at start / end {doc['load'][0]:.1f} / {doc['load'][1]:.1f}.",
        "",
        "| grid | search | chosen point | CV RMSE | ALS fits | grid s | test RMSE |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for name, g in doc["grids"].items():
        for r in (g["full"], g["halving"]):
            lines.append(
                f"| {name} | {'halving' if r['halving'] else 'full CV'} | {_point(r['best']['point'])}"
                f" | {r['best']['cvRmse']:.4f} | {r['fits']} | {r['grid']:.1f} | {r['testRmse']:.4f} |"
            )
    lines += [""]
    for name, g in doc["grids"].items():
        lines.append(
            f"- {name}: halving chose full CV's point: **{g['samePoint']}**; grid stage"
            f" {g['gridRatio']:.2f}x full CV's with {g['halving']['fits']} of {g['full']['fits']} fits."
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    doc: dict[str, Any] = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit.stdout.strip(),
        "cores": os.cpu_count(),
        "split": SPLIT,
        "grids": {},
    }
    load_start = os.getloadavg()[0]
    for name, grid in GRIDS.items():
        full, halving = lensflow_run(grid, False), lensflow_run(grid, True)
        doc["grids"][name] = {
            "grid": grid,
            "full": full,
            "halving": halving,
            "samePoint": full["best"]["point"] == halving["best"]["point"],
            "gridRatio": halving["grid"] / full["grid"],
        }
        log.info("%s: %s", name, json.dumps(doc["grids"][name]))
    doc["load"] = [load_start, os.getloadavg()[0]]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "halving.json").write_text(json.dumps(doc, indent=2) + "\n")
    (args.out / "halving.md").write_text(markdown(doc))


if __name__ == "__main__":
    main()
