"""Alert rules: raising, deduplication windows, suppressions with approval, their CLI.

Time is moved with ``clock.frozen``; every test runs on both backends (``store`` fixture).
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from pydantic import ValidationError

from monitoring_core import clock
from monitoring_core.alerts import suppressions
from monitoring_core.alerts.manager import SILENCE_METRIC, Outcome, raise_alert, raise_silence_alert
from monitoring_core.errors import Conflict, Forbidden, InvalidInput, NotFound
from monitoring_core.models.alerts import AlertStatus, AlertSuppression, SuppressionStatus
from monitoring_core.models.audit import AuditEvent
from monitoring_core.models.common import Actor
from monitoring_core.models.registry import RegisteredModel
from monitoring_core.models.thresholds import MonitoringConfig

from .factories import NOW

ANA = Actor(user_id="ana", role="ml_engineer")
CARLA = Actor(user_id="carla", role="compliance_officer")
ROOT = Actor(user_id="root", role="admin")
HOUR = timedelta(hours=1)


@pytest.fixture
def store(store):
    store.models.upsert(RegisteredModel(model_id="loan", monitoring=MonitoringConfig(positive_label="approve")))
    return store


def breach(store, metric="psi:income", severity="WARNING", *, model_id="loan", value=0.2, **extra):
    return raise_alert(store, incident_id="INC-1", model_id=model_id, metric_name=metric, value=value, threshold=0.1,
                       severity=severity, **extra)


def rule(store, actor=ANA, *, model_id="loan", end_time=None, reason="feature store migration",
         suppression_type="maintenance", **scope):
    return suppressions.create(store, actor, model_id=model_id, end_time=end_time or clock.now() + 4 * HOUR,
                               reason=reason, suppression_type=suppression_type, **scope)


def test_info_raises_nothing(store):
    assert breach(store, severity="INFO") is None
    assert store.alerts.list() == []


def test_a_repeat_within_the_window_is_folded_into_the_first_alert(store):
    with clock.frozen(NOW) as advance:
        first = breach(store)
        assert first.outcome is Outcome.NEW and first.deliver
        assert first.alert.status == AlertStatus.PENDING and first.alert.last_seen_at == NOW
        advance(2 * HOUR)
        repeat = breach(store, value=0.22)
        assert repeat.outcome is Outcome.DEDUPLICATED and not repeat.deliver
        assert repeat.alert.alert_id == first.alert.alert_id
        advance(HOUR)
        breach(store)
        stored = store.alerts.get(first.alert.alert_id)
        assert (stored.deduplicated_count, stored.last_seen_at) == (2, NOW + 3 * HOUR)
        assert stored.metric_value == 0.2  # the alert keeps what was first reported
        assert len(store.alerts.list()) == 1


def test_the_window_counts_from_the_first_alert_and_is_configurable(store):
    with clock.frozen(NOW) as advance:
        first = breach(store)
        advance(6 * HOUR - timedelta(milliseconds=1))
        assert breach(store).outcome is Outcome.DEDUPLICATED
        advance(timedelta(milliseconds=1))
        second = breach(store)
        assert second.outcome is Outcome.NEW and second.alert.alert_id != first.alert.alert_id
        assert store.alerts.get(first.alert.alert_id).dedup_key is None  # released to the new alert
        advance(HOUR)
        assert breach(store, dedup_window=HOUR).outcome is Outcome.NEW
    assert len(store.alerts.list()) == 3


def test_other_models_metrics_and_severities_are_separate_alerts(store):
    with clock.frozen(NOW):
        keys = [("loan", "psi:income", "WARNING"), ("loan", "psi:age", "WARNING"), ("credit", "psi:income", "WARNING"),
                ("loan", "psi:income", "CRITICAL")]
        outcomes = [breach(store, model_id=m, metric=n, severity=s).outcome for m, n, s in keys]
    assert outcomes == [Outcome.NEW] * 4


def test_an_escalation_is_a_new_alert_naming_the_warning(store):
    with clock.frozen(NOW) as advance:
        warning = breach(store, severity="WARNING")
        advance(HOUR)
        critical = breach(store, severity="CRITICAL", value=0.3)
        assert critical.outcome is Outcome.NEW and critical.deliver
        assert critical.alert.deduplicated_from == warning.alert.alert_id
        assert store.alerts.get(warning.alert.alert_id).deduplicated_count == 0
        advance(HOUR)
        assert breach(store, severity="CRITICAL").alert.alert_id == critical.alert.alert_id
        advance(7 * HOUR)  # the warning is outside the window now: nothing to name
        assert breach(store, severity="CRITICAL").alert.deduplicated_from is None


def test_concurrent_raisers_create_one_alert(store):
    raisers = 8
    start = threading.Barrier(raisers)
    results = []

    def raise_one():
        start.wait()
        results.append(breach(store))

    with clock.frozen(NOW):
        threads = [threading.Thread(target=raise_one) for _ in range(raisers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(r.outcome for r in results) == sorted([Outcome.NEW] + [Outcome.DEDUPLICATED] * (raisers - 1))
    (alert,) = store.alerts.list()
    assert alert.deduplicated_count == raisers - 1


def stale_first_read(monkeypatch, store, stale):
    """The raiser's first read of the key's holder returns ``stale``: what it sees when
    another process writes between its read and its write."""
    real, reads = store.alerts.holding, []

    def holding(key):
        reads.append(key)
        return stale if len(reads) == 1 else real(key)

    monkeypatch.setattr(store.alerts, "holding", holding)
    return reads


def test_a_raiser_that_missed_a_new_holder_counts_its_repeat(store, monkeypatch):
    with clock.frozen(NOW):
        first = breach(store)
        reads = stale_first_read(monkeypatch, store, None)  # as if "first" did not exist yet
        repeat = breach(store)
    assert len(reads) == 2  # refused by the unique key, then read again
    assert (repeat.outcome, repeat.alert.alert_id, repeat.alert.deduplicated_count) == (
        Outcome.DEDUPLICATED, first.alert.alert_id, 1)
    assert len(store.alerts.list()) == 1


def test_a_raiser_that_read_an_old_count_does_not_lose_a_repeat(store, monkeypatch):
    with clock.frozen(NOW):
        first = breach(store)
        breach(store)
        reads = stale_first_read(monkeypatch, store, first.alert)  # the count before the repeat above
        assert breach(store).alert.deduplicated_count == 2
    assert len(reads) == 2


def test_only_one_alert_holds_a_dedup_key(store):
    with clock.frozen(NOW):
        first = breach(store)
        with pytest.raises(Conflict, match="already holds the deduplication key"):
            store.alerts.insert(first.alert.model_copy(update={"alert_id": "ALR-other"}))
        released = store.alerts.update(first.alert.alert_id, {"dedup_key": None})
        store.alerts.insert(released.model_copy(update={"alert_id": "ALR-other"}))  # None is held by no one


@pytest.mark.parametrize(("offset", "suppressed"), [
    (-timedelta(milliseconds=1), False), (timedelta(0), True), (2 * HOUR - timedelta(milliseconds=1), True),
    (2 * HOUR, False)])
def test_a_suppression_covers_its_window_only(store, offset, suppressed):
    with clock.frozen(NOW) as advance:
        window = rule(store, metric_name="psi", start_time=NOW + HOUR, end_time=NOW + 3 * HOUR)
        assert window.status == SuppressionStatus.ACTIVE  # no fairness metric: no approval needed
        advance(HOUR + offset)
        raised = breach(store, metric="psi:income")
    assert raised.outcome is (Outcome.SUPPRESSED if suppressed else Outcome.NEW)
    assert raised.deliver is not suppressed


def test_a_suppressed_alert_is_recorded_naming_the_rule_and_never_delivered(store):
    with clock.frozen(NOW) as advance:
        silence = rule(store, metric_name="psi:income")
        raised = breach(store)
        assert (raised.outcome, raised.deliver, raised.suppression) == (Outcome.SUPPRESSED, False, silence)
        stored = store.alerts.get(raised.alert.alert_id)
        assert (stored.status, stored.suppressed_by) == (AlertStatus.SUPPRESSED, silence.suppression_id)
        (entry,) = store.audit.list(event_types=[AuditEvent.ALERT_SUPPRESSED])
        assert (entry.target.alert_id, entry.target.suppression_id) == (stored.alert_id, silence.suppression_id)
        advance(HOUR)
        repeat = breach(store)
        assert (repeat.outcome, repeat.deliver, repeat.alert.alert_id) == (Outcome.DEDUPLICATED, False, stored.alert_id)
        suppressions.expire(store, ANA, silence.suppression_id)
        advance(HOUR)
        after = breach(store)  # within the window of the suppressed alert, but that one was never sent
        assert (after.outcome, after.deliver) == (Outcome.NEW, True)
    assert [a.status for a in store.alerts.list()] == [AlertStatus.PENDING, AlertStatus.SUPPRESSED]


def test_category_and_severity_scopes(store):
    with clock.frozen(NOW):
        rule(store, metric_category="data", severities=["WARNING"])
        assert breach(store, metric="psi:income").outcome is Outcome.SUPPRESSED
        assert breach(store, metric="kl_divergence:income").outcome is Outcome.SUPPRESSED
        assert breach(store, metric="psi:income", severity="CRITICAL").outcome is Outcome.NEW
        assert breach(store, metric="accuracy_drop").outcome is Outcome.NEW
        assert breach(store, metric=SILENCE_METRIC).outcome is Outcome.NEW


def test_an_all_metrics_suppression_waits_for_approval_then_covers_everything(store):
    metrics = ["psi:income", "accuracy_drop", "shap_kl_divergence", "demographic_parity:gender", SILENCE_METRIC]
    with clock.frozen(NOW) as advance:
        everything = rule(store)
        assert everything.status == SuppressionStatus.PENDING and everything.scope == "all metrics"
        assert [breach(store, metric=m).outcome for m in metrics] == [Outcome.NEW] * len(metrics)
        suppressions.approve(store, CARLA, everything.suppression_id)
        advance(HOUR)
        assert [breach(store, metric=m).outcome for m in metrics] == [Outcome.SUPPRESSED] * len(metrics)


@pytest.mark.parametrize("scope", [{"metric_name": "demographic_parity"}, {"metric_name": "disparate_impact:race"},
                                   {"metric_category": "fairness"}])
def test_a_fairness_suppression_has_no_effect_until_approved(store, scope):
    with clock.frozen(NOW) as advance:
        pending = rule(store, **scope)
        assert pending.status == SuppressionStatus.PENDING and pending.approved_by is None
        metric = "disparate_impact:race" if "disparate" in str(scope) else "demographic_parity:race"
        assert store.suppressions.active("loan", NOW) == []
        assert not pending.covers(metric, "WARNING", NOW + HOUR)
        assert breach(store, metric=metric).outcome is Outcome.NEW
        advance(HOUR)
        approved = suppressions.approve(store, CARLA, pending.suppression_id)
        assert (approved.status, approved.approved_by, approved.approved_at) == (SuppressionStatus.ACTIVE, "carla",
                                                                                 NOW + HOUR)
        raised = breach(store, metric=metric)
        assert (raised.outcome, raised.alert.suppressed_by) == (Outcome.SUPPRESSED, pending.suppression_id)


def test_approval_by_the_requester_or_a_role_without_the_right_is_refused(store):
    with clock.frozen(NOW):
        by_admin = rule(store, actor=ROOT, metric_category="fairness")
        with pytest.raises(Forbidden, match="root created suppression .* cannot approve it"):
            suppressions.approve(store, ROOT, by_admin.suppression_id)
        with pytest.raises(Forbidden, match=r"ana \(ml_engineer\) may not approve fairness suppressions"):
            suppressions.approve(store, ANA, by_admin.suppression_id)
        assert store.suppressions.get(by_admin.suppression_id).status == SuppressionStatus.PENDING
        assert suppressions.approve(store, Actor(user_id="bo", role="admin"), by_admin.suppression_id).approved_by == "bo"
        with pytest.raises(Conflict, match="is active: only a pending suppression"):
            suppressions.approve(store, CARLA, by_admin.suppression_id)
        with pytest.raises(NotFound):
            suppressions.approve(store, CARLA, "SUP-nope")


def test_a_stored_suppression_cannot_name_its_creator_as_approver():
    rule_fields = {"model_id": "loan", "metric_category": "fairness", "start_time": NOW, "end_time": NOW + HOUR,
                   "reason": "r", "suppression_type": "other", "created_by": "ana"}
    assert AlertSuppression(**rule_fields, approved_by="carla").status == SuppressionStatus.ACTIVE
    with pytest.raises(ValidationError, match="approver must be someone other than created_by"):
        AlertSuppression(**rule_fields, approved_by="ana")


def test_a_pending_suppression_whose_window_ended_cannot_be_approved(store):
    with clock.frozen(NOW) as advance:
        pending = rule(store, metric_category="fairness", end_time=NOW + HOUR)
        advance(HOUR)
        with pytest.raises(Conflict, match="ended at .* before it was approved"):
            suppressions.approve(store, CARLA, pending.suppression_id)


@pytest.mark.parametrize(("fields", "error", "message"), [
    ({"start_time": NOW + HOUR, "end_time": NOW}, InvalidInput, "end_time must be after start_time"),
    ({"end_time": NOW - HOUR, "start_time": NOW - 2 * HOUR}, InvalidInput, "is in the past"),
    ({"suppression_type": "accepted_risk", "end_time": NOW + timedelta(days=30, seconds=1)}, InvalidInput,
     "30 days at most"),
    ({"metric_name": "psi", "metric_category": "data"}, InvalidInput, "metric_name or metric_category, not both"),
    ({"metric_category": "vibes"}, InvalidInput, "metric_category"),
    ({"severities": []}, InvalidInput, "suppress_severities"),
    ({"reason": ""}, InvalidInput, "reason"),
    ({"model_id": "ghost"}, NotFound, "model 'ghost' is not registered"),
    ({"actor": CARLA}, Forbidden, "carla .* may not manage suppressions"),
])
def test_bad_suppressions_are_refused_when_requested_and_nothing_is_written(store, fields, error, message):
    with clock.frozen(NOW), pytest.raises(error, match=message):
        rule(store, **fields)
    assert store.suppressions.list() == []
    assert store.audit.list() == []


def test_an_accepted_risk_suppression_may_last_30_days(store):
    with clock.frozen(NOW):
        accepted = rule(store, metric_name="psi", suppression_type="accepted_risk", end_time=NOW + timedelta(days=30))
    assert accepted.end_time - accepted.start_time == timedelta(days=30)


def test_expire_ends_a_suppression_now(store):
    with clock.frozen(NOW) as advance:
        silence = rule(store, metric_name="psi")
        assert breach(store).outcome is Outcome.SUPPRESSED
        advance(HOUR)
        ended = suppressions.expire(store, ROOT, silence.suppression_id)
        assert (ended.status, ended.ended_by, ended.ended_at) == (SuppressionStatus.EXPIRED, "root", NOW + HOUR)
        assert ended.end_time == silence.end_time  # the planned window stays on record
        assert store.suppressions.active("loan", NOW + HOUR) == []
        assert breach(store).outcome is Outcome.NEW
        with pytest.raises(Conflict, match="already ended by root"):
            suppressions.expire(store, ROOT, silence.suppression_id)
        with pytest.raises(Forbidden):
            suppressions.expire(store, CARLA, silence.suppression_id)
        assert suppressions.list_suppressions(store, CARLA) == []
        assert suppressions.list_suppressions(store, CARLA, include_expired=True) == [ended]
        with pytest.raises(Forbidden):
            suppressions.list_suppressions(store, Actor(user_id="vic", role="viewer"))


def test_every_change_to_a_suppression_is_audited(store):
    with clock.frozen(NOW):
        created = rule(store, metric_name="equal_opportunity", severities=["CRITICAL"])
        suppressions.approve(store, CARLA, created.suppression_id)
        suppressions.expire(store, ANA, created.suppression_id)
    entries = store.audit.list()[::-1]
    assert [(e.event_type, e.actor.user_id, e.actor.role) for e in entries] == [
        (AuditEvent.SUPPRESSION_CREATED, "ana", "ml_engineer"),
        (AuditEvent.SUPPRESSION_APPROVED, "carla", "compliance_officer"),
        (AuditEvent.SUPPRESSION_ENDED, "ana", "ml_engineer")]
    assert {(e.target.model_id, e.target.suppression_id) for e in entries} == {("loan", created.suppression_id)}
    assert [e.details["status"] for e in entries] == ["pending", "active", "expired"]
    assert entries[0].details["severities"] == ["CRITICAL"] and entries[0].details["reason"] == "feature store migration"


def test_a_silent_analysis_raises_one_warning(store):
    last_run = NOW - 11 * HOUR
    with clock.frozen(NOW) as advance:
        assert raise_silence_alert(store, "loan", last_run) is None
        advance(2 * HOUR)
        raised = raise_silence_alert(store, "loan", last_run)
        assert (raised.outcome, raised.alert.severity, raised.alert.metric_name) == (Outcome.NEW, "WARNING",
                                                                                     SILENCE_METRIC)
        assert (raised.alert.metric_value, raised.alert.threshold) == (13.0, 12.0)
        advance(HOUR)
        assert raise_silence_alert(store, "loan", last_run).outcome is Outcome.DEDUPLICATED


def test_cli_round_trip(tmp_path, monkeypatch, capsys):
    from monitoring_core import config
    from monitoring_core.cli import main
    from monitoring_core.storage.sqlite import SqliteStore

    monkeypatch.setenv("FAIRWATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MONGODB_URI", raising=False)
    config.get_settings.cache_clear()
    try:
        seeded = SqliteStore(tmp_path / "data" / "fairwatch.db")
        seeded.ensure_schema()
        seeded.models.upsert(RegisteredModel(model_id="loan", monitoring=MonitoringConfig(positive_label="approve")))
        seeded.close()
        end = (clock.now() + 2 * HOUR).isoformat()
        assert main(["--actor", "ana", "suppressions", "create", "--role", "ml_engineer", "--model-id", "loan",
                     "--metric", "demographic_parity", "--severity", "WARNING", "--end", end,
                     "--type", "accepted_risk", "--reason", "seasonal shift"]) == 0
        out = capsys.readouterr().out
        assert "pending" in out and "metric demographic_parity" in out and "[WARNING]" in out
        suppression_id = out.split()[0]
        assert main(["--actor", "ana", "suppressions", "approve", suppression_id]) == 2
        assert "ana created suppression" in capsys.readouterr().err
        assert main(["--actor", "carla", "suppressions", "approve", "--role", "compliance_officer", suppression_id]) == 0
        assert main(["--actor", "carla", "suppressions", "list", "--role", "compliance_officer"]) == 0
        listed = capsys.readouterr().out
        assert f"{suppression_id}  active" in listed and "approved by carla" in listed
        assert main(["--actor", "ana", "suppressions", "expire", "--role", "ml_engineer", suppression_id]) == 0
        assert f"{suppression_id}  expired" in capsys.readouterr().out
        assert main(["suppressions", "list"]) == 0
        assert suppression_id not in capsys.readouterr().out
        assert main(["suppressions", "list", "--all"]) == 0
        assert f"{suppression_id}  expired" in capsys.readouterr().out
        assert main(["suppressions", "create", "--model-id", "loan", "--end", "2020-01-01", "--type", "other",
                     "--reason", "x"]) == 2
        assert "end_time must be after start_time" in capsys.readouterr().err
        check = SqliteStore(tmp_path / "data" / "fairwatch.db")
        assert [e.event_type for e in check.audit.list()][::-1] == [
            AuditEvent.SUPPRESSION_CREATED, AuditEvent.SUPPRESSION_APPROVED, AuditEvent.SUPPRESSION_ENDED]
        check.close()
    finally:
        config.get_settings.cache_clear()
