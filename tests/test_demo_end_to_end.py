"""The demo, stored and analysed: the troubled model breaches what it should, the healthy
one stays quiet. Storage, ingest, baselines and metrics together on the embedded store
(the MongoDB backend runs the same operations in the contract suite)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitoring_core import audit
from monitoring_core.seeding import seed_demo
from monitoring_core.metrics.engine import compute_metrics, required_columns
from monitoring_core.storage.sqlite import SqliteStore

END = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    store = SqliteStore(tmp_path_factory.mktemp("demo") / "fairwatch.db")
    store.ensure_schema()
    report = seed_demo(store, end=END)
    yield store, report
    store.close()


def analyse(store, model_id: str, end: datetime = END, days: int = 7):
    baseline = store.baselines.active(model_id)
    config = store.models.get(model_id).monitoring
    start = end - timedelta(days=days)
    window = store.predictions.window(model_id, start, end, required_columns(baseline, config))
    return compute_metrics(window, baseline, config, period_start=start, period_end=end, model_id=model_id)


def test_the_demo_is_stored_with_active_baselines_and_an_intact_audit_chain(seeded):
    store, report = seeded
    assert set(report.predictions) == {"loan-approval", "fraud-screening"}
    for model_id, count in report.predictions.items():
        summary = store.predictions.summary(model_id)
        assert summary.count == count > 100_000
        assert 0.35 < summary.labelled / summary.count < 0.55
        assert summary.last < END and summary.first >= END - timedelta(days=60)
        assert store.baselines.active(model_id).snapshot_id == report.baselines[model_id]
    assert store.models.get("loan-approval").monitoring.positive_label == "approve"
    chain = audit.verify(store)
    assert chain.valid and chain.total_entries == 8
    again = seed_demo(store, end=END)  # same seed and end: nothing stored twice
    assert again.predictions == {"loan-approval": 0, "fraud-screening": 0}


def test_the_troubled_model_breaches_data_drift_and_fairness_for_women(seeded):
    store, _ = seeded
    record = analyse(store, "loan-approval")
    breaches = {b.metric_name: b for b in record.breaches()}
    assert record.max_severity == "CRITICAL"
    assert breaches["psi:income"].severity == "CRITICAL"
    assert breaches["demographic_parity:gender"].severity == "CRITICAL"
    assert breaches["demographic_parity:gender"].affected_groups == ["gender=female"]
    assert breaches["disparate_impact:gender"].value < 0.8
    store.records.insert(record)
    assert store.records.latest("loan-approval").record_id == record.record_id


def test_before_the_drift_and_for_the_healthy_model_all_is_quiet(seeded):
    store, _ = seeded
    healthy = analyse(store, "fraud-screening")
    assert healthy.max_severity == "INFO" and healthy.breaches() == []
    before = analyse(store, "loan-approval", end=END - timedelta(days=30))
    data_breaches = [b for b in before.breaches() if b.metric_name.startswith(("psi", "kl", "wasserstein"))]
    assert data_breaches == []
    assert not [b for b in before.breaches() if b.metric_name.startswith(("demographic_parity", "disparate_impact"))]


@pytest.mark.parametrize("label", ["Approve", "approve "])
def test_a_positive_class_the_data_does_not_have_is_named_never_a_silent_zero(seeded, label):
    """The demo's loan model configured with "Approve": demographic parity used to read 0.0
    (INFO) where the truth is about 0.15 (CRITICAL)."""
    store, _ = seeded
    baseline = store.baselines.active("loan-approval")
    config = store.models.get("loan-approval").monitoring.model_copy(update={"positive_label": label})
    start = END - timedelta(days=7)
    window = store.predictions.window("loan-approval", start, END, required_columns(baseline, config))
    record = compute_metrics(window, baseline, config, period_start=start, period_end=END)
    fairness = record.metrics.fairness_drift
    expected = (f"positive class {label!r} not among the classes seen (window predictions and labels, baseline) "
                "['approve', 'reject']; did you mean 'approve'?")
    for metric in (fairness.demographic_parity, fairness.equal_opportunity, fairness.disparate_impact):
        assert metric.value is None and metric.reason == "unknown_positive_class"
        assert metric.by_attribute["gender"].detail == expected
    accuracy = record.metrics.model_drift.accuracy_drop
    assert accuracy.reason == "unknown_positive_class" and accuracy.detail == expected
    assert not [b for b in record.breaches() if b.metric_name.startswith("demographic_parity")]
    assert record.category_scores.get("fairness") is None  # unavailable, not a score of 0
