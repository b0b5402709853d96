"""Issue #11: `make test` (as CI runs it: `bash .ci/run`) several times in a row on this clone
while another Spark job keeps the cores busy. Records each run's outcome, seconds, suite times and
the load average beside it in bench/results/test-beside-load.json and .md.

    python3 bench/test_beside_load.py [--runs 3]   # in a clean clone with ../shared beside it

`make build` installs what is missing first; then `bench/spark_hog.py` (a `local[2]` ALS refit
loop at normal priority, a competitor rather than a background job) starts and runs until the last
`make test` ends. A benchmark of robustness, not of speed: the times say what the load cost.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from suite_time import parse, run_make_test

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
log = logging.getLogger("bench.test_beside_load")


def _markdown(doc: dict) -> str:
    lines = [
        "# `make test` beside another Spark job",
        "",
        (
            f"{doc['when']}, commit `{doc['commit']}`, {os.cpu_count()} cores."
            " Beside every run: `bench/spark_hog.py`"
            f" (ALS refits in `local[2]`, normal priority; {doc['hog_fits']} fits during the runs)."
        ),
        "",
        "| run | passed | seconds | load avg mean / max | jest s | pytest s |",
        "|---|---|---:|---|---:|---:|",
    ]
    for i, r in enumerate(doc["runs"], 1):
        s = r["suites_s"]
        lines.append(
            f"| {i} | {'yes' if r['passed'] else 'NO'} | {r['seconds']:.0f}"
            f" | {r['load_mean']:.1f} / {r['load_max']:.1f}"
            f" | {s.get('jest', '–')} | {s.get('pytest', '–')} |"
        )
    failed = [p for r in doc["runs"] for p in r["jest_failed"]]
    lines += [
        "",
        f"{len(doc['runs'])} of {doc['runs_planned']} runs finished."
        f" All passed: **{all(r['passed'] for r in doc['runs'])}**."
        + (f" Failed jest files: {failed}." if failed else ""),
    ]
    return "\n".join(lines) + "\n"


def _write(doc: dict, logs: Path) -> None:
    doc["hog_fits"] = (logs / "spark-hog.log").read_text().count("spark_hog: fit ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "test-beside-load.json").write_text(json.dumps(doc, indent=2) + "\n")
    (RESULTS / "test-beside-load.md").write_text(_markdown(doc))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    subprocess.run(["make", "build"], cwd=ROOT, check=True)
    logs = ROOT / ".lensflow" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / "spark-hog.log", "w") as hog_log:
        hog = subprocess.Popen(
            [
                str(ROOT / ".lensflow" / "venv" / "bin" / "python"),
                str(ROOT / "bench" / "spark_hog.py"),
            ],
            stdout=hog_log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT / "spark")},
        )
    doc = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip(),
        "runs_planned": args.runs,
        "runs": [],
    }
    try:
        for i in range(args.runs):
            text, seconds, loads, rc = run_make_test(logs / f"make-test-beside-load-{i + 1}.log")
            if hog.poll() is not None:
                raise SystemExit(f"the Spark hog stopped during run {i + 1}: see {logs / 'spark-hog.log'}")
            run = parse(text)
            run.update(rc=rc, seconds=seconds, passed=rc == 0 and run["passed"])
            run.update(load_mean=sum(loads) / max(len(loads), 1), load_max=max(loads, default=0.0))
            doc["runs"].append(run)
            log.info("run %d: %s in %.0f s", i + 1, "passed" if run["passed"] else "FAILED", seconds)
            # Written after every run: a session that ends mid-series still keeps what finished.
            _write(doc, logs)
    finally:
        hog.terminate()
        hog.wait()
    _write(doc, logs)
    raise SystemExit(0 if all(r["passed"] for r in doc["runs"]) else 1)


if __name__ == "__main__":
    main()
