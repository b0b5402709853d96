"""Why the EMR test server's step JVMs stop at C1: a test-sized Spark job (3 ALS fits on 100k
synthetic ratings in `local[2]`, in a fresh JVM, as every EMR test step is) with the JVM's default
tiers and with `-XX:TieredStopAtLevel=1`, alternating, in one command. Records the JVM's
CPU seconds (its own /proc counters, read before it stops) and the job's wall time; writes
bench/results/test-jit.json and .md.

    PYTHONPATH=spark .lensflow/venv/bin/python bench/test_jit.py [--reps 2]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
C1 = "-XX:TieredStopAtLevel=1"
log = logging.getLogger("bench.test_jit")


def job() -> None:
    """The measured job; prints one JSON line with the JVM's CPU seconds and the wall time."""
    from pyspark.ml.recommendation import ALS
    from spark_hog import hashed_ratings

    from lensflow_spark.session import local_session

    start = time.monotonic()
    quiet = {"spark.ui.showConsoleProgress": "false"}
    spark = local_session("lensflow-test-jit", 2, driver_memory="1g", extra=quiet)
    ratings = hashed_ratings(spark, 100_000, users=2_000, items=500)
    for seed in range(3):
        ALS(rank=8, maxIter=5, seed=seed).fit(ratings).userFactors.count()  # count forces the fit
    wall = time.monotonic() - start
    pid = spark._jvm.java.lang.ProcessHandle.current().pid()
    # utime and stime, fields 14 and 15 of /proc/<pid>/stat, counted after the command name
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    spark.stop()
    sys.stdout.write(json.dumps({"jvm_cpu_s": cpu, "wall_s": wall}) + "\n")


def measure(opts: str) -> dict:
    env = {**os.environ, "SPARK_SUBMIT_OPTS": opts, "PYTHONPATH": str(ROOT / "spark")}
    out = subprocess.run(
        [sys.executable, __file__, "--job"], env=env, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--job", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.job:
        job()
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    runs: dict[str, list[dict]] = {"default": [], "c1": []}
    for rep in range(args.reps):
        for name, opts in (("default", ""), ("c1", C1)):
            runs[name].append(measure(opts))
            log.info("rep %d %s: %s", rep + 1, name, runs[name][-1])

    def mean(name: str, key: str) -> float:
        return sum(r[key] for r in runs[name]) / len(runs[name])

    doc = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_1min": os.getloadavg()[0],
        "runs": runs,
        "cpu_ratio": mean("c1", "jvm_cpu_s") / mean("default", "jvm_cpu_s"),
        "wall_ratio": mean("c1", "wall_s") / mean("default", "wall_s"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "test-jit.json").write_text(json.dumps(doc, indent=2) + "\n")
    rows = "\n".join(
        f"| {name} | {mean(name, 'jvm_cpu_s'):.1f} | {mean(name, 'wall_s'):.1f} |"
        for name in ("default", "c1")
    )
    (RESULTS / "test-jit.md").write_text(
        "# EMR test steps' JVMs at C1\n\n"
        f"{doc['when']}, {os.cpu_count()} cores,"
        f" `PYTHONPATH=spark .lensflow/venv/bin/python bench/test_jit.py --reps {args.reps}`"
        f" (load average {doc['load_1min']:.1f} at the end). A test-sized Spark job in a fresh JVM:"
        " 3 ALS fits (rank 8, 5 iterations) on 100k synthetic ratings in `local[2]`, means over the reps,"
        " alternating.\n\n"
        "| JIT | JVM CPU s | wall s |\n|---|---:|---:|\n"
        f"{rows}\n\n"
        f"C1 only (`{C1}`): **{doc['cpu_ratio']:.2f}x the CPU, {doc['wall_ratio']:.2f}x the wall time**."
        " C2 compiles hot methods again, on the same 2 cores, for code that a job this size runs too briefly"
        " to win the time back. So the EMR test server runs its steps' JVMs (one per step, seconds of work)"
        " at C1. Long-lived JVMs lose with it: `make test` with C1 in every Spark JVM (the warm engine and"
        " pytest's session too) took longer, not shorter (test-time.md), and product runs keep the default"
        " tiers.\n"
    )


if __name__ == "__main__":
    main()
