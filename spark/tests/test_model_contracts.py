"""The model families and metric names of the contracts (`src/contracts/models.ts` -> models.json)
are the ones the Spark side registers and computes: a family added to `families.py` without its
contract entry (or the other way round) fails here, naming it."""

from __future__ import annotations

from lensflow_spark import metrics
from lensflow_spark.contracts import shared_fact
from lensflow_spark.families import FAMILIES, OBJECTIVES
from lensflow_spark.jobs.evaluate import BASELINES, metric_names
from lensflow_spark.jobs.recommend import SCORE_RANGES


def test_every_registered_family_is_in_the_contracts_with_its_kind():
    contract = shared_fact("models")["families"]
    assert {name: f.kind for name, f in FAMILIES.items()} == {name: f["kind"] for name, f in contract.items()}
    assert tuple(name for name, f in contract.items() if f["baseline"]) == BASELINES


def test_objectives_and_metric_names_agree_with_the_metrics_module():
    objectives = shared_fact("models")["objectives"]
    assert {kind: o["metric"] for kind, o in objectives.items()} == OBJECTIVES
    assert {kind: o["better"] for kind, o in objectives.items()} == {"rating": "lower", "ranking": "higher"}
    names = metric_names()
    assert set(metrics.RATING_METRICS) | set(metrics.RANKING_METRICS) <= set(names)
    assert all(
        callable(getattr(metrics, n, None))
        for n in ("catalogue_coverage", "distributional_coverage", "novelty")
    )


def test_recommend_serves_exactly_the_families_the_contracts_mark_served():
    contract = shared_fact("models")["families"]
    served = {name for name, f in contract.items() if f["served"]}
    assert set(SCORE_RANGES) == served
    assert all(contract[name]["kind"] == "ranking" for name in served)
