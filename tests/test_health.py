"""Meta-monitoring on every backend: a model without a recent analysis is stale."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from monitoring_core import clock, health, leases
from monitoring_core.models.common import Severity
from monitoring_core.models.registry import RegisteredModel
from monitoring_core.models.thresholds import MonitoringConfig

from .factories import NOW, make_record

HOUR = timedelta(hours=1)


def register(store, model_id: str, registered_at=NOW - timedelta(days=30)) -> None:
    store.models.upsert(RegisteredModel(model_id=model_id, display_name=model_id.title(), created_at=registered_at,
                                        monitoring=MonitoringConfig(positive_label="approve")))


def record(store, model_id: str, at, severity: Severity = Severity.CRITICAL) -> str:
    return store.records.insert(make_record(model_id, at).model_copy(update={"max_severity": severity})).record_id


def test_a_recently_analysed_model_is_healthy_with_its_last_record(store):
    register(store, "loan")
    record(store, "loan", NOW - 30 * HOUR, Severity.INFO)
    latest = record(store, "loan", NOW - 2 * HOUR, Severity.CRITICAL)
    report = health.report(store, NOW)
    assert report.healthy and len(report.models) == 1
    loan = report.models[0]
    assert (loan.model_id, loan.last_record_id, loan.last_analysis_at) == ("loan", latest, NOW - 2 * HOUR)
    assert loan.max_severity is Severity.CRITICAL and loan.age == 2 * HOUR and not loan.stale
    assert loan.reason == "last analysed 2.0 h ago"


@pytest.mark.parametrize(("last", "stale"), [(12 * HOUR - timedelta(milliseconds=1), False), (12 * HOUR, True),
                                             (13 * HOUR, True)])
def test_a_model_is_stale_after_twelve_hours_without_an_analysis(store, last, stale):
    register(store, "loan")
    record(store, "loan", NOW - last)
    report = health.report(store, NOW)
    assert report.models[0].stale is stale and report.healthy is not stale
    assert report.models[0].age == last


def test_one_stale_model_makes_the_report_unhealthy_and_is_named(store):
    register(store, "loan")
    register(store, "fraud")
    record(store, "loan", NOW - HOUR)
    record(store, "fraud", NOW - 13 * HOUR, Severity.WARNING)
    report = health.report(store, NOW)
    assert not report.healthy
    assert [m.model_id for m in report.stale_models] == ["fraud"]
    assert report.stale_models[0].reason == "stale: no analysis for 13.0 h (limit 12.0 h)"


def test_a_never_analysed_model_counts_from_its_registration(store):
    register(store, "new", registered_at=NOW - 3 * HOUR)
    register(store, "forgotten", registered_at=NOW - 13 * HOUR)
    by_id = {m.model_id: m for m in health.report(store, NOW).models}
    assert not by_id["new"].stale and by_id["new"].last_record_id is None and by_id["new"].max_severity is None
    assert by_id["new"].reason == "never analysed, registered 3.0 h ago (not yet stale)"
    assert by_id["forgotten"].stale and by_id["forgotten"].age == 13 * HOUR
    assert by_id["forgotten"].reason == "never analysed, registered 13.0 h ago (stale: more than 12.0 h)"


def test_records_of_unregistered_models_are_not_reported(store):
    register(store, "loan")
    record(store, "loan", NOW - HOUR)
    record(store, "ghost", NOW - 40 * HOUR)
    assert [m.model_id for m in health.report(store, NOW).models] == ["loan"]


def test_an_empty_registry_is_healthy(store):
    report = health.report(store, NOW)
    assert report.healthy and report.models == []
    assert health.format_report(report).endswith("no models are registered")


def test_now_comes_from_the_clock_and_the_period_is_a_parameter(store):
    register(store, "loan")
    record(store, "loan", NOW - 3 * HOUR)
    with clock.frozen(NOW + 10 * HOUR):
        assert health.report(store).models[0].stale
        assert health.report(store).generated_at == NOW + 10 * HOUR
    assert health.report(store, NOW, stale_after=2 * HOUR).models[0].stale
    assert not health.report(store, NOW, stale_after=4 * HOUR).models[0].stale


def test_an_analysis_in_progress_is_shown(store):
    register(store, "loan")
    with clock.frozen(NOW), leases.analysis(store, "loan", started_by="alice", renew_every=None):
        loan = health.report(store).models[0]
        assert loan.analysis_in_progress == (f"an analysis of loan started by alice at {NOW:%H:%M} UTC is in progress "
                                             f"(lease expires at {NOW + leases.ANALYSIS_TTL:%H:%M} UTC)")
    assert health.report(store, NOW).models[0].analysis_in_progress is None


def test_json_has_the_verdict_and_durations_in_seconds(store):
    register(store, "loan")
    record(store, "loan", NOW - 13 * HOUR, Severity.WARNING)
    data = json.loads(health.report(store, NOW).model_dump_json())
    assert data["healthy"] is False and data["stale_after"] == 12 * 3600
    assert data["models"][0]["age"] == 13 * 3600 and data["models"][0]["max_severity"] == "WARNING"
    assert data["models"][0]["stale"] is True


def test_the_table_lists_stale_models_first_with_their_reason(store):
    register(store, "alpha")
    register(store, "zulu")
    record(store, "alpha", NOW - HOUR)
    record(store, "zulu", NOW - 20 * HOUR, Severity.INFO)
    text = health.format_report(health.report(store, NOW))
    title, header, first, second = text.splitlines()
    assert "1 of 2 model(s) STALE" in title and "12.0 h" in title
    assert header.split() == ["MODEL", "STATE", "LAST", "ANALYSIS", "SEVERITY", "DETAIL"]
    assert first.split()[:2] == ["zulu", "STALE"] and "no analysis for 20.0 h" in first and "INFO" in first
    assert second.split()[:2] == ["alpha", "ok"] and f"{NOW - HOUR:%Y-%m-%d %H:%M} UTC" in second


@pytest.mark.parametrize(("delta", "text"), [(timedelta(minutes=45), "45 min"), (13 * HOUR, "13.0 h"),
                                             (timedelta(days=3, hours=12), "3.5 d")])
def test_durations_read_in_the_unit_that_fits(delta, text):
    assert health.duration(delta) == text


def test_a_skipped_run_does_not_count_as_an_analysis_and_a_disabled_model_is_not_checked(store):
    from monitoring_core.models.record import AnalysisPeriod, MonitoringRecord, Reason, RunStatus, unjudged_metrics

    register(store, "loan")
    record(store, "loan", NOW - 13 * HOUR, Severity.INFO)
    store.records.insert(MonitoringRecord(
        model_id="loan", timestamp=NOW - HOUR, analysis_period=AnalysisPeriod(start=NOW - 2 * HOUR, end=NOW - HOUR),
        sample_count=0, metrics=unjudged_metrics(Reason.INSUFFICIENT_DATA, "no predictions"), aggregated_score=0.0,
        max_severity=Severity.INFO,
        analyzer_version="test", status=RunStatus.SKIPPED, reason="no predictions"))
    loan = health.report(store, NOW).models[0]
    assert loan.stale and loan.age == 13 * HOUR  # the skipped run an hour ago judged nothing

    store.models.upsert(store.models.get("loan").model_copy(update={"enabled": False}))
    assert health.report(store, NOW).models == []
