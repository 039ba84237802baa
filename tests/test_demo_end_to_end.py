"""The demo, stored and analysed: the troubled model breaches what it should, the healthy
one stays quiet. Storage, ingest, baselines and metrics together on the embedded store
(the MongoDB backend runs the same operations in the contract suite)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitoring_core import audit
from monitoring_core.metrics.engine import compute_metrics, required_columns
from monitoring_core.seeding import seed_demo
from monitoring_core.storage.sqlite import SqliteStore

END = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    store = SqliteStore(tmp_path_factory.mktemp("demo") / "fairwatch.db")
    store.ensure_schema()
    report = seed_demo(store, end=END)
    yield store, report
    store.close()


def analyse(store, model_id: str, end: datetime = END, days: int = 7, **settings):
    baseline = store.baselines.active(model_id)
    config = store.models.get(model_id).monitoring.model_copy(update=settings)
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
    assert chain.valid
    assert report.analyses == {"loan-approval": 30, "fraud-screening": 30}  # the pages' first history
    for model_id in report.predictions:
        days = [r.analysis_period for r in store.records.history(model_id)]
        assert [p.end - p.start for p in days] == [timedelta(days=1)] * 30
        assert days[-1].end == END.replace(hour=0, minute=0, second=0, microsecond=0)
    again = seed_demo(store, end=END)  # same seed and end: nothing stored or analysed twice
    assert again.predictions == {"loan-approval": 0, "fraud-screening": 0}
    assert again.analyses == {"loan-approval": 0, "fraud-screening": 0}


def test_the_troubled_model_breaches_data_drift_and_fairness_for_women(seeded):
    store, _ = seeded
    record = analyse(store, "loan-approval")
    breaches = {b.metric_name: b for b in record.breaches()}
    assert record.max_severity == "CRITICAL"
    assert breaches["psi:income"].severity == "CRITICAL"
    assert breaches["demographic_parity:gender"].severity == "CRITICAL"
    assert breaches["demographic_parity:gender"].affected_groups == ["gender=female"]
    assert breaches["disparate_impact:gender"].value < 0.8
    assert breaches["disparate_impact:gender"].affected_groups == ["gender=female"]
    gender = record.metrics.fairness_drift.demographic_parity.by_attribute["gender"]
    assert not gender.inconclusive and gender.p_value_adjusted < 1e-10
    assert record.metric_scores["demographic_parity:gender"] == 1.0
    store.records.insert(record)
    assert store.records.latest("loan-approval").record_id == record.record_id


def test_before_the_drift_and_for_the_healthy_model_all_is_quiet(seeded):
    store, _ = seeded
    healthy = analyse(store, "fraud-screening")
    assert healthy.max_severity == "INFO" and healthy.breaches() == []
    before = analyse(store, "loan-approval", end=END - timedelta(days=30))
    data_breaches = [b for b in before.breaches() if b.metric_name.startswith(("psi", "kl", "wasserstein"))]
    assert data_breaches == []
    assert not fairness_breaches(before)
    assert before.max_severity == "INFO"


FAIRNESS = ("demographic_parity", "equal_opportunity", "disparate_impact")


def fairness_breaches(record) -> list[str]:
    return [b.metric_name for b in record.breaches() if b.metric_name.startswith(FAIRNESS)]


@pytest.mark.parametrize("model_id, days_before_end", [("fraud-screening", d) for d in (0, 3, 6, 9, 12)]
                         + [("loan-approval", d) for d in (18, 21, 24, 27, 30, 33, 36, 39)])
def test_a_daily_window_raises_no_fairness_warning_from_noise(seeded, model_id, days_before_end):
    """About 2,500 predictions a day: point values of the small groups often pass 0.05
    (they did on most of these days), but no such gap is significant, so none is a breach."""
    store, _ = seeded
    record = analyse(store, model_id, end=END - timedelta(days=days_before_end), days=1)
    assert fairness_breaches(record) == []
    for metric in FAIRNESS:
        for value in getattr(record.metrics.fairness_drift, metric).by_attribute.values():
            assert value.severity == "INFO"
            assert value.inconclusive == (value.available and value.point_severity != "INFO")


def test_the_regression_shows_in_a_daily_window_too(seeded):
    store, _ = seeded
    record = analyse(store, "loan-approval", days=1)
    breaches = {b.metric_name: b for b in record.breaches()}
    assert breaches["demographic_parity:gender"].severity == "CRITICAL"
    assert breaches["demographic_parity:gender"].affected_groups == ["gender=female"]


def test_an_intersection_names_its_groups_by_both_attributes(seeded):
    store, _ = seeded
    record = analyse(store, "loan-approval", intersections=[["gender", "race"]])
    crossed = record.metrics.fairness_drift.demographic_parity.by_attribute["gender&race"]
    assert crossed.severity == "CRITICAL"
    assert all(g.startswith("gender=") and "&race=" in g for g in crossed.group_counts)
    assert crossed.affected_groups and all(g.startswith("gender=female&race=") for g in crossed.affected_groups)
    assert sum(crossed.group_counts.values()) + crossed.missing_attribute_count == record.sample_count


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


def test_the_loop_on_the_demo_opens_the_expected_incidents_and_only_those(tmp_path):
    """run_analysis end to end (the path of the CLI, the scheduler and Analyze Now) on a
    fresh copy of the demo: the troubled model gets incidents naming gender=female, the
    healthy model and the troubled one a month earlier get none."""
    from monitoring_core.analysis import Window, run_analysis
    from monitoring_core.models.common import SYSTEM

    store = SqliteStore(tmp_path / "fairwatch.db")
    store.ensure_schema()
    seed_demo(store, end=END)
    week = Window(END - timedelta(days=7), END)
    troubled = run_analysis(store, "loan-approval", week, trigger="cli", actor=SYSTEM)
    incidents = [store.incidents.get(i) for i in troubled.incident_ids]
    assert troubled.max_severity == "CRITICAL" and incidents
    fairness = [m for i in incidents for m in i.metrics_triggered if m.metric_name == "demographic_parity:gender"]
    assert fairness and fairness[0].affected_groups == ["gender=female"]
    assert all(i.assigned_to for i in incidents if i.severity == "CRITICAL")
    assert store.alerts.list("loan-approval")  # and the alerts were raised

    opened = {i.incident_id for i in store.incidents.list()}
    healthy = run_analysis(store, "fraud-screening", week, trigger="cli", actor=SYSTEM)
    earlier = run_analysis(store, "loan-approval", Window(END - timedelta(days=37), END - timedelta(days=30)),
                           trigger="cli", actor=SYSTEM)
    assert healthy.breaches() == [] and earlier.breaches() == []
    assert {i.incident_id for i in store.incidents.list()} == opened  # nothing new opened...
    assert all(store.incidents.get(i).recovered for i in earlier.incident_ids)  # ...the open ones show recovery
    assert audit.verify(store).valid
    store.close()


def test_the_demo_history_is_replayed_at_its_daily_slots(seeded):
    """Records, incidents and audit entries carry the times the schedule would have given
    them, so the Incident Timeline says since when; the first incident was worked in time."""
    from monitoring_core import incidents
    from monitoring_core.models.delivery import DeliveryStatus

    store, _ = seeded
    runs = [r for r in store.records.history("loan-approval")  # the seeded daily runs, not this module's others
            if r.analysis_period.end - r.analysis_period.start == timedelta(days=1)]
    assert len(runs) == 30 and all(r.timestamp == r.analysis_period.end + timedelta(hours=2) for r in runs)
    opened = sorted(store.incidents.list(model_id="loan-approval"), key=lambda i: i.created_at)
    assert opened and all(i.created_at in {r.timestamp for r in runs} for i in opened)
    fairness = next(i for i in opened if "demographic_parity:gender" in i.metric_names)
    assert END - timedelta(days=8) <= fairness.created_at < END  # the regression of the last week
    first = opened[0]
    assert first.status == "investigating" and first.acknowledged_by == "engineer"
    assert not incidents.sla(first).acknowledge_breached and incidents.sla(fairness).acknowledge_breached
    stamps = [e.timestamp for e in reversed(store.audit.list())]
    assert stamps == sorted(stamps) and stamps[0] < runs[0].timestamp
    assert all(d.status is DeliveryStatus.CANCELLED for d in store.deliveries.due(datetime.now(UTC))
               if d.created_at < runs[-1].timestamp)
