"""Where `make test`'s time goes: runs it with load-average samples beside it, then writes
bench/results/test-time.json (this run) and adds this run's section at the top of
bench/results/test-time.md, below the earlier runs' (per suite, per jest file, pytest's slowest tests).

    python bench/suite_time.py              # runs `bash .ci/run` (the stack ports come from the env)
    python bench/suite_time.py --log FILE   # only parses a saved `make test` log (no load samples)

The times are what this machine did under its load at the time: the load average is recorded
beside them, because other work on a 2-core machine slows every suite.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
log = logging.getLogger("bench.suite_time")

# The reference: the last quiet clean-clone run before the figure being measured (ci5, c81fa3b,
# 2026-12-03, bench/results/test-time.md), per suite and per slow jest file.
BEFORE = {
    "total_s": 2152,
    "jest_files_s": {
        "test/pipeline.emr.e2e.test.ts": 611,
        "test/pipeline.e2e.test.ts": 262,
        "test/outage.e2e.test.ts": 195,
        "test/cluster.e2e.test.ts": 191,
        "test/sparkEngine.test.ts": 67,
        "test/emrRunner.test.ts": 58,
    },
    "pytest_s": 651,
}

JEST_FILE = re.compile(r"^(PASS|FAIL)\s+(\S+\.ts)\s+\((\d+(?:\.\d+)?)\s*s\)", re.M)
SUITE = re.compile(r"^check: (\w+) took (\d+) s$", re.M)
SLOW = re.compile(r"^(\d+\.\d+)s (call|setup|teardown)\s+(\S+)$", re.M)


def parse(text: str) -> dict:
    """The per-suite, per-jest-file and slowest-pytest seconds a `make test` log reports."""
    return {
        "suites_s": {name: int(s) for name, s in SUITE.findall(text)},
        "jest_files_s": {path: float(s) for _, path, s in JEST_FILE.findall(text)},
        "jest_failed": [path for status, path, _ in JEST_FILE.findall(text) if status == "FAIL"],
        "pytest_slowest_s": [{"s": float(s), "when": w, "test": t} for s, w, t in SLOW.findall(text)],
        "passed": "FAILED" not in text.split("check summary:")[-1],
    }


def run_make_test(log_path: Path) -> tuple[str, float, list[float], int]:
    """Runs `bash .ci/run` (CI's command: `make test` with the shared MovieLens copies beside the
    clone), teeing its output to `log_path`; returns the log, seconds, 1-min loads and the exit code."""
    loads: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(15):
            loads.append(os.getloadavg()[0])

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.monotonic()
    log_path.parent.mkdir(parents=True, exist_ok=True)  # a fresh clone has no .lensflow yet
    with open(log_path, "w") as out:
        proc = subprocess.run(["bash", ".ci/run"], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.monotonic() - t0
    done.set()
    log.info("make test exited %d after %.0f s", proc.returncode, seconds)
    return log_path.read_text(), seconds, loads, proc.returncode


TITLE = "# `make test` time"


def markdown(doc: dict) -> str:
    """This run's section of test-time.md."""
    after, before = doc["after"], doc["before"]
    lines = [
        f"## {doc['when']}, commit `{doc['commit']}` (bench/suite_time.py)",
        "",
        f"Measured on {os.cpu_count()} cores; load average (1 min) during the run: "
        + (
            f"mean {doc['load']['mean']:.1f}, max {doc['load']['max']:.1f}."
            if doc["load"]["samples"]
            else "not sampled (parsed from a saved log)."
        ),
        "",
        (f"Total: **{after['total_s']} s**" if after["total_s"] is not None else "Total: not timed")
        + f" (before: {before['total_s']} s, clean clone). "
        f"Passed: {after['passed']}.",
        "",
        "| suite | seconds |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in after["suites_s"].items()],
        "",
        "| jest file | before s | after s |",
        "|---|---|---|",
        *[
            f"| {f} | {before['jest_files_s'].get(f, '')} | {after['jest_files_s'].get(f, '')} |"
            for f in sorted(set(before["jest_files_s"]) | set(after["jest_files_s"]))
        ],
        "",
        "Slowest pytest tests:",
        "",
        *[f"- {t['s']} s {t['when']} `{t['test']}`" for t in after["pytest_slowest_s"][:15]],
        "",
    ]
    return "\n".join(lines)


def with_section(history: str, section: str) -> str:
    """test-time.md with `section` first below the title: earlier runs (and their notes written by
    hand) are kept, newest first, so a comparison can always point at the figures it compares."""
    body = history.removeprefix(TITLE).lstrip("\n")
    return f"{TITLE}\n\n{section}\n{body}"


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--log", type=Path, help="parse this saved `make test` log instead of running it")
    args = parser.parse_args()
    if args.log:
        text, seconds, loads = args.log.read_text(), None, []
    else:
        text, seconds, loads, _ = run_make_test(ROOT / ".lensflow" / "logs" / "make-test.log")
    after = {"total_s": round(seconds) if seconds is not None else None, **parse(text)}
    doc = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
        "load": {
            "samples": loads,
            "mean": round(sum(loads) / len(loads), 2) if loads else None,
            "max": max(loads) if loads else None,
        },
        "before": BEFORE,
        "after": after,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "test-time.json").write_text(json.dumps(doc, indent=2) + "\n")
    md = RESULTS / "test-time.md"
    section = markdown(doc)
    md.write_text(with_section(md.read_text() if md.exists() else "", section))
    log.info("%s", section)


if __name__ == "__main__":
    main()
