"""Job `report`: the plots as PNG files and one self-contained HTML report of the run.

Reads the clean counts, the analysis summary and user-activity table, every grid point's result and
the evaluation; writes `<output>/<figure>.png` and `<output>/report.html`.
"""

from __future__ import annotations

import argparse
from typing import Any

from pyspark.sql import SparkSession

from ..plots import figure_png
from ..report import grid_rows, render_report, report_figures
from ..storage import list_files, read_json, write_bytes
from . import runtime


def build_parser() -> argparse.ArgumentParser:
    p = runtime.parser("report", __doc__)
    p.add_argument("--dataset", required=True, help="dataset name, for the title")
    p.add_argument("--clean", required=True, help="URI of the clean job's result JSON")
    p.add_argument("--analysis", required=True, help="URI of the analysis summary.json")
    p.add_argument("--grid", required=True, help="folder URI of the grid points' result JSONs")
    p.add_argument("--evaluation", required=True, help="URI of the evaluate job's result JSON")
    p.add_argument("--output", required=True, help="folder URI for the PNGs and report.html")
    return p


def run(spark: SparkSession, args: argparse.Namespace) -> dict[str, Any]:
    summary = read_json(spark, args.analysis)
    clean = read_json(spark, args.clean)
    grid = grid_rows(read_json(spark, uri) for uri in list_files(spark, args.grid, ".json"))
    evaluation = read_json(spark, args.evaluation)["models"]
    activity_uri = args.analysis.rsplit("/", 1)[0] + "/user_activity"
    user_activity = spark.read.parquet(activity_uri).toPandas()

    out = args.output.rstrip("/")
    images = {
        name: figure_png(fig)
        for name, fig in report_figures(summary, grid, evaluation, user_activity).items()
    }
    plots = {}
    for name, png in images.items():
        plots[name] = f"{out}/{name}.png"
        write_bytes(spark, plots[name], png)
    html_text = render_report(
        summary, grid, evaluation, clean, images, title=f"lensflow run report: {args.dataset}"
    )
    report_uri = f"{out}/report.html"
    write_bytes(spark, report_uri, html_text.encode("utf-8"))
    return runtime.publish(
        spark, "report", args.result, {"job": "report", "reportUri": report_uri, "plots": plots}
    )


def main(argv: list[str] | None = None) -> None:
    runtime.run_job("report", build_parser, run, argv)
