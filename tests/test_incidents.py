"""Incidents from records, their lifecycle, risk acceptance, SLA and model freeze, on every backend."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest

from monitoring_core import cli, clock, incidents
from monitoring_core.config import load_settings
from monitoring_core.errors import Conflict, Forbidden, InvalidInput
from monitoring_core.ingest.sdk import PredictionLogger
from monitoring_core.models.alerts import SuppressionType
from monitoring_core.models.audit import AuditEvent
from monitoring_core.models.common import Actor, Severity
from monitoring_core.models.record import FairnessMetric, FairnessValue, FeatureMetric
from monitoring_core.models.registry import RegisteredModel
from monitoring_core.models.thresholds import MonitoringConfig, Threshold
from tests.factories import NOW, make_record

from .conftest import BACKENDS

ESCALATION = incidents.EscalationTable(fairness_owner="cora-oncall", ml_owner="lead-oncall")
ADMIN = Actor(user_id="ada", role="admin")
ENGINEER = Actor(user_id="eli", role="ml_engineer")
OFFICER = Actor(user_id="cora", role="compliance_officer")
OFFICER_2 = Actor(user_id="carl", role="compliance_officer")
AUDITOR = Actor(user_id="aud", role="auditor")
VIEWER = Actor(user_id="vi", role="viewer")
RUNNER = Actor(user_id="scheduler", role="admin", system=True)

PSI = Threshold(metric="psi", warning=0.1, critical=0.25, warning_inclusive=True, critical_inclusive=True)
DP = Threshold(metric="demographic_parity", warning=0.05, critical=0.10)


def record(at=NOW, *, psi: float | None = None, dp: float | None = None, model_id: str = "loan"):
    """A record whose only items are PSI of ``income`` and DP of ``gender`` (when given)."""
    base = make_record(model_id, at)
    data = base.metrics.data_drift.model_copy(update={"psi": {} if psi is None else {"income": FeatureMetric(
        feature="income", value=psi, severity=PSI.severity(psi), threshold=PSI)}})
    fairness = base.metrics.fairness_drift
    if dp is not None:
        item = dict(value=dp, severity=DP.severity(dp), threshold=DP, attribute="gender", ci_low=dp - 0.02,
                    ci_high=dp + 0.02, affected_groups=["gender=female"] if DP.severity(dp) != Severity.INFO else [])
        fairness = fairness.model_copy(update={"demographic_parity": FairnessMetric(
            **item, by_attribute={"gender": FairnessValue(**item)})})
    metrics = base.metrics.model_copy(update={"data_drift": data, "fairness_drift": fairness})
    return base.model_copy(update={"metrics": metrics})


def apply(store, rec, **kwargs):
    return incidents.apply_record(store, rec, actor=RUNNER, escalation=ESCALATION, **kwargs)


def events(store, *kinds: AuditEvent):
    return [e.event_type for e in reversed(store.audit.list(event_types=[str(k) for k in kinds] or None))]


def opened(store, **record_kwargs):
    [incident_id] = apply(store, record(**record_kwargs))
    return incident_id


# -- from records --------------------------------------------------------------------------


@pytest.mark.parametrize("psi, severity", [(0.15, Severity.WARNING), (0.31, Severity.CRITICAL)])
def test_a_breaching_record_opens_one_incident_listing_its_metrics(store, psi, severity):
    rec = record(psi=psi, dp=0.12)
    ids = apply(store, rec)
    [incident] = store.incidents.list()
    assert ids == [incident.incident_id]
    assert incident.severity == Severity.CRITICAL and incident.status == "open"  # DP 0.12 is CRITICAL
    by_name = {m.metric_name: m for m in incident.metrics_triggered}
    assert set(by_name) == {"psi:income", "demographic_parity:gender"}
    assert by_name["psi:income"].value == psi and by_name["psi:income"].severity == severity
    assert by_name["psi:income"].threshold == (0.25 if severity == Severity.CRITICAL else 0.1)
    dp = by_name["demographic_parity:gender"]
    assert (dp.value, dp.threshold, dp.ci_low, dp.ci_high) == (0.12, 0.10, pytest.approx(0.10), pytest.approx(0.14))
    assert incident.affected_groups == ["gender=female"]
    assert incident.monitoring_record_id == rec.record_id and incident.record_ids == [rec.record_id]
    assert incident.occurrence_count == 1 and incident.last_seen_at == rec.timestamp
    assert events(store) == [AuditEvent.INCIDENT_CREATED]


def test_a_warning_record_opens_an_unassigned_warning_incident(store):
    incident = store.incidents.get(opened(store, psi=0.15))
    assert incident.severity == Severity.WARNING and incident.assigned_to is None


def test_an_info_record_opens_nothing(store):
    assert apply(store, record(psi=0.05, dp=0.01)) == []
    assert store.incidents.list() == [] and events(store) == []


def test_repeated_runs_update_one_incident(store):
    first, second, third = (record(NOW + timedelta(hours=h), psi=v) for h, v in ((0, 0.15), (1, 0.2), (2, 0.18)))
    ids = [apply(store, rec) for rec in (first, second, third)]
    [incident] = store.incidents.list()
    assert ids == [[incident.incident_id]] * 3
    assert incident.occurrence_count == 3
    assert incident.record_ids == [first.record_id, second.record_id, third.record_id]
    assert incident.metrics_triggered[0].value == 0.18 and incident.last_seen_at == third.timestamp
    assert incident.first_seen_at == first.timestamp
    assert events(store) == [AuditEvent.INCIDENT_CREATED, AuditEvent.INCIDENT_UPDATED, AuditEvent.INCIDENT_UPDATED]


def test_a_new_metric_opens_its_own_incident_while_the_known_one_is_updated(store):
    psi_incident = opened(store, psi=0.15)
    ids = apply(store, record(NOW + timedelta(hours=1), psi=0.16, dp=0.07))
    assert ids[0] == psi_incident and len(ids) == 2
    dp_incident = store.incidents.get(ids[1])
    assert dp_incident.metric_names == ["demographic_parity:gender"]
    assert store.incidents.get(psi_incident).metric_names == ["psi:income"]


def test_the_same_record_twice_changes_nothing(store):
    rec = record(psi=0.31, dp=0.12)
    first = apply(store, rec)
    before = [store.incidents.list(), store.audit.tip()]
    assert apply(store, rec) == first
    assert [store.incidents.list(), store.audit.tip()] == before


def test_a_record_half_applied_before_a_crash_is_finished_on_retry(store):
    psi_incident = opened(store, psi=0.15)
    rec = record(NOW + timedelta(hours=1), psi=0.2, dp=0.07)
    original = incidents._open

    def crash(*args, **kwargs):
        raise RuntimeError("crash after updating, before opening")

    incidents._open = crash
    try:
        with pytest.raises(RuntimeError):
            apply(store, rec)
    finally:
        incidents._open = original
    ids = apply(store, rec)
    assert ids[0] == psi_incident and len(ids) == 2
    assert store.incidents.get(psi_incident).occurrence_count == 2  # not counted twice
    assert len(store.incidents.list()) == 2


def test_a_record_that_opened_an_incident_since_resolved_does_not_reopen_it(store):
    rec = record(psi=0.15)
    incident_id = apply(store, rec)[0]
    incidents.acknowledge(store, incident_id, actor=ENGINEER)
    incidents.resolve(store, incident_id, actor=ENGINEER, root_cause_category="concept_drift",
                      resolution_category="baseline_updated", notes="new applicant mix")
    assert apply(store, rec) == [incident_id]
    assert len(store.incidents.list()) == 1


def test_a_run_after_resolution_opens_a_new_incident(store):
    incident_id = opened(store, psi=0.15)
    incidents.acknowledge(store, incident_id, actor=ENGINEER)
    incidents.resolve(store, incident_id, actor=ENGINEER, root_cause_category="data_quality",
                      resolution_category="data_fixed", notes="pipeline fixed")
    [new] = apply(store, record(NOW + timedelta(hours=1), psi=0.15))
    assert new != incident_id and store.incidents.get(new).status == "open"


def test_recovery_is_shown_but_the_incident_stays_open(store):
    incident_id = opened(store, psi=0.15)
    normal = record(NOW + timedelta(hours=1), psi=0.02)
    assert apply(store, normal) == [incident_id]
    incident = store.incidents.get(incident_id)
    assert incident.status == "open" and incident.recovered and incident.recovered_at == normal.timestamp
    assert incident.occurrence_count == 1
    # Still normal: nothing changes; back above the bound: no longer recovered.
    assert apply(store, record(NOW + timedelta(hours=2), psi=0.03)) == []
    apply(store, record(NOW + timedelta(hours=3), psi=0.2))
    incident = store.incidents.get(incident_id)
    assert not incident.recovered and incident.recovered_at is None and incident.occurrence_count == 2


def test_escalation_warning_to_critical_raises_severity_and_assigns(store):
    incident_id = opened(store, dp=0.07)
    assert store.incidents.get(incident_id).assigned_to is None
    with clock.frozen(NOW + timedelta(hours=2)):
        assert apply(store, record(NOW + timedelta(hours=2), dp=0.12)) == [incident_id]
    incident = store.incidents.get(incident_id)
    assert incident.severity == Severity.CRITICAL and incident.assigned_to == "cora-oncall"
    assert incident.escalated_at == NOW + timedelta(hours=2)
    assert store.audit.list(event_types=["incident_updated"])[0].details["change"] == "escalated"


@pytest.mark.parametrize("kwargs, owner", [({"dp": 0.12}, "cora-oncall"), ({"psi": 0.31}, "lead-oncall"),
                                           ({"psi": 0.31, "dp": 0.07}, "lead-oncall")])
def test_critical_incidents_are_assigned_by_the_escalation_table(store, kwargs, owner):
    incident = store.incidents.get(opened(store, **kwargs))
    assert incident.severity == Severity.CRITICAL and incident.assigned_to == owner


def test_the_escalation_table_comes_from_the_settings():
    table = incidents.EscalationTable.from_settings(load_settings(escalation_ml_owner="priya"))
    assert (table.fairness_owner, table.ml_owner) == ("compliance-officer", "priya")


def test_applying_a_record_needs_the_right_to_trigger_an_analysis(store):
    for actor in (OFFICER, AUDITOR, VIEWER):
        with pytest.raises(Forbidden, match="trigger analysis"):
            incidents.apply_record(store, record(psi=0.3), actor=actor, escalation=ESCALATION)
    assert store.incidents.list() == []


# -- lifecycle -----------------------------------------------------------------------------


def test_acknowledge_then_resolve_sets_the_sla_figures(store):
    with clock.frozen(NOW) as advance:
        incident_id = opened(store, psi=0.15)
        advance(timedelta(minutes=10))
        acked = incidents.acknowledge(store, incident_id, actor=ENGINEER)
        advance(timedelta(minutes=50))
        resolved = incidents.resolve(store, incident_id, actor=ENGINEER, root_cause_category="concept_drift",
                                     resolution_category="retrained", notes="retrained on Q3", root_cause="season")
    assert acked.status == "investigating" and acked.acknowledged_by == "eli" and acked.assigned_to == "eli"
    assert acked.time_to_acknowledge_minutes == 10
    assert resolved.status == "resolved" and resolved.resolved_by == "eli" and resolved.time_to_resolve_minutes == 60
    assert (resolved.root_cause_category, resolved.resolution_category) == ("concept_drift", "retrained")
    assert resolved.resolution_notes == "retrained on Q3" and resolved.root_cause == "season"
    assert events(store)[-2:] == [AuditEvent.INCIDENT_ACKNOWLEDGED, AuditEvent.INCIDENT_RESOLVED]


def test_assign_and_response_actions_are_recorded_and_audited(store):
    incident_id = opened(store, psi=0.15)
    with clock.frozen(NOW + timedelta(minutes=5)):
        incidents.assign(store, incident_id, "maya", actor=OFFICER)
        incident = incidents.add_action(store, incident_id, "checked raw logs", actor=ENGINEER, notes="no outage")
    assert incident.assigned_to == "maya" and incident.assigned_at == NOW + timedelta(minutes=5)
    [action] = incident.response_actions
    assert (action.action, action.taken_by, action.taken_at, action.notes) == (
        "checked raw logs", "eli", NOW + timedelta(minutes=5), "no outage")
    assert events(store)[-2:] == [AuditEvent.INCIDENT_ASSIGNED, AuditEvent.INCIDENT_ACTION_ADDED]
    entry = store.audit.list(event_types=["incident_action_added"])[0]
    assert entry.actor.user_id == "eli" and entry.target.incident_id == incident_id


@pytest.mark.parametrize("step, status, rule", [
    ("acknowledge", "investigating", "only an open incident can be acknowledged"),
    ("resolve", "open", "acknowledge it first"),
    ("acknowledge", "resolved", "only an open incident can be acknowledged"),
    ("resolve", "resolved", "only an investigating incident can be resolved"),
    ("assign", "resolved", "only an open or investigating incident can be assigned"),
    ("request", "resolved", "only an open or investigating incident's risk can be accepted"),
])
def test_illegal_transitions_are_refused_naming_the_rule(store, step, status, rule):
    incident_id = opened(store, psi=0.15)
    if status != "open":
        incidents.acknowledge(store, incident_id, actor=ENGINEER)
    if status == "resolved":
        incidents.resolve(store, incident_id, actor=ENGINEER, root_cause_category="other",
                          resolution_category="false_positive", notes="noise")
    before = store.incidents.get(incident_id)
    calls = {"acknowledge": lambda: incidents.acknowledge(store, incident_id, actor=ADMIN),
             "resolve": lambda: incidents.resolve(store, incident_id, actor=ADMIN, root_cause_category="other",
                                                  resolution_category="false_positive", notes="x"),
             "assign": lambda: incidents.assign(store, incident_id, "maya", actor=ADMIN),
             "request": lambda: incidents.request_accept_risk(store, incident_id, actor=ADMIN, rationale="r")}
    with pytest.raises(Conflict, match=rule):
        calls[step]()
    assert store.incidents.get(incident_id) == before


@pytest.mark.parametrize("actor", [AUDITOR, VIEWER])
def test_auditors_and_viewers_cannot_change_anything(store, actor):
    incident_id = opened(store, psi=0.15)
    before = (store.incidents.get(incident_id), store.audit.tip())
    changes = [lambda: incidents.acknowledge(store, incident_id, actor=actor),
               lambda: incidents.assign(store, incident_id, "maya", actor=actor),
               lambda: incidents.add_action(store, incident_id, "x", actor=actor),
               lambda: incidents.resolve(store, incident_id, actor=actor, root_cause_category="other",
                                         resolution_category="false_positive", notes="x"),
               lambda: incidents.request_accept_risk(store, incident_id, actor=actor, rationale="r"),
               lambda: incidents.approve_accept_risk(store, incident_id, actor=actor)]
    for change in changes:
        with pytest.raises(Forbidden, match=f"{actor.user_id} \\({actor.role}\\) may not manage incidents"):
            change()
    assert (store.incidents.get(incident_id), store.audit.tip()) == before


def test_bad_resolution_input_is_refused_naming_the_field(store):
    incident_id = opened(store, psi=0.15)
    incidents.acknowledge(store, incident_id, actor=ENGINEER)
    for kwargs, field in [({"root_cause_category": "gremlins"}, "root_cause_category"),
                          ({"resolution_category": "accepted_risk"}, "accept-risk"),
                          ({"notes": " "}, "notes")]:
        args = dict(root_cause_category="other", resolution_category="data_fixed", notes="n") | kwargs
        with pytest.raises(InvalidInput, match=field):
            incidents.resolve(store, incident_id, actor=ENGINEER, **args)
    assert store.incidents.get(incident_id).status == "investigating"


def test_two_users_acknowledging_at_once_one_wins(store):
    incident_id = opened(store, psi=0.15)
    barrier, outcomes = threading.Barrier(2), {}

    def ack(actor):
        barrier.wait()
        try:
            outcomes[actor.user_id] = incidents.acknowledge(store, incident_id, actor=actor).acknowledged_by
        except Conflict as exc:
            outcomes[actor.user_id] = exc

    threads = [threading.Thread(target=ack, args=(a,)) for a in (ENGINEER, ADMIN)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [v for v in outcomes.values() if isinstance(v, str)]
    losers = [v for v in outcomes.values() if isinstance(v, Conflict)]
    assert len(winners) == 1 and len(losers) == 1
    assert store.incidents.get(incident_id).acknowledged_by == winners[0]
    assert events(store, AuditEvent.INCIDENT_ACKNOWLEDGED) == [AuditEvent.INCIDENT_ACKNOWLEDGED]


# Not on the embedded store: it serialises writers, so nobody can write between a run's read
# and its write there.
@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "embedded"], indirect=True)
def test_a_run_racing_a_person_routes_again_on_fresh_state(store, backend, monkeypatch):
    incident_id = opened(store, psi=0.15)
    original, raced = incidents._routable, []

    def racing(*args):
        found = original(*args)
        if not raced:  # a person acknowledges between the run's read and its write
            raced.append(incidents.acknowledge(store, incident_id, actor=ENGINEER))
        return found

    monkeypatch.setattr(incidents, "_routable", racing)
    assert apply(store, record(NOW + timedelta(hours=1), psi=0.2)) == [incident_id]
    incident = store.incidents.get(incident_id)
    assert incident.status == "investigating" and incident.occurrence_count == 2


def test_a_write_based_on_a_stale_read_is_refused(store):
    with clock.frozen(NOW):  # both writes in one millisecond: the same updated_at (CI once did this)
        incident_id = opened(store, psi=0.15)
        stale = store.incidents.get(incident_id)
        incidents.assign(store, incident_id, "maya", actor=ADMIN)
        with pytest.raises(Conflict, match="changed by someone else"):
            incidents._write(store, stale, {"assigned_to": "zed"})
    assert store.incidents.get(incident_id).assigned_to == "maya"


# -- SLA -----------------------------------------------------------------------------------


def test_sla_figures_and_breach_flags(store):
    with clock.frozen(NOW) as advance:
        critical, warning = opened(store, psi=0.31), None
        [warning] = apply(store, record(dp=0.07, model_id="fraud"))
        advance(timedelta(minutes=20))
        late = incidents.sla(store.incidents.get(critical))
        assert (late.acknowledge_target_minutes, late.acknowledge_elapsed_minutes, late.acknowledge_breached) == (
            15, 20, True)
        assert (late.investigate_target_minutes, late.investigate_elapsed_minutes, late.investigate_breached) == (
            60, 20, False)
        incidents.acknowledge(store, warning, actor=OFFICER)
        advance(timedelta(minutes=50))
        assert incidents.sla(store.incidents.get(critical)).investigate_breached
        w = incidents.sla(store.incidents.get(warning))
        assert (w.acknowledge_elapsed_minutes, w.acknowledge_breached) == (20, True)
        assert (w.investigate_target_minutes, w.investigate_elapsed_minutes, w.investigate_breached) == (
            1440, 70, False)
        incidents.add_action(store, warning, "compared group rates", actor=OFFICER)
        advance(timedelta(days=2))
        w = incidents.sla(store.incidents.get(warning))
        assert (w.investigate_elapsed_minutes, w.investigate_breached) == (70, False)


def test_an_acknowledgement_in_time_is_no_breach(store):
    with clock.frozen(NOW) as advance:
        incident_id = opened(store, psi=0.31)
        advance(timedelta(minutes=15))
        incidents.acknowledge(store, incident_id, actor=ENGINEER, notes="looking")
        advance(timedelta(hours=3))
        figures = incidents.sla(store.incidents.get(incident_id))
    assert (figures.acknowledge_elapsed_minutes, figures.acknowledge_breached) == (15, False)
    # Acknowledged (with a note) but no documented investigation for 3 h.
    assert figures.investigate_breached and figures.investigate_elapsed_minutes == 195


# -- accepting a risk (policy 12) ----------------------------------------------------------


def test_a_fairness_risk_needs_another_compliance_officer(store):
    incident_id = opened(store, dp=0.07)
    with clock.frozen(NOW):
        pending = incidents.request_accept_risk(store, incident_id, actor=OFFICER, rationale="seasonal", days=14)
        assert pending.status == "open" and pending.risk_acceptance.approved_by is None
        with pytest.raises(Conflict, match="already has a risk acceptance request by cora"):
            incidents.request_accept_risk(store, incident_id, actor=OFFICER_2, rationale="again")
        with pytest.raises(Forbidden, match="cora requested this risk acceptance and may not approve it"):
            incidents.approve_accept_risk(store, incident_id, actor=OFFICER)
        with pytest.raises(Forbidden, match="fairness incident needs a compliance officer or admin"):
            incidents.approve_accept_risk(store, incident_id, actor=ENGINEER)
        accepted = incidents.approve_accept_risk(store, incident_id, actor=OFFICER_2)
    assert accepted.status == "accepted_risk" and accepted.resolution_category == "accepted_risk"
    assert accepted.risk_acceptance.approved_by == "carl" and accepted.risk_acceptance.until == NOW + timedelta(days=14)
    [suppression] = store.suppressions.list(model_id="loan")
    assert suppression.suppression_type == SuppressionType.ACCEPTED_RISK
    assert suppression.metric_name == "demographic_parity:gender" and suppression.approved_by == "carl"
    assert suppression.end_time - suppression.start_time == timedelta(days=14) <= timedelta(days=30)
    assert suppression.suppress_severities == [Severity.WARNING]
    assert accepted.risk_acceptance.suppression_ids == [suppression.suppression_id]
    assert events(store)[-3:] == [AuditEvent.INCIDENT_RISK_ACCEPTANCE_REQUESTED, AuditEvent.INCIDENT_RISK_ACCEPTED,
                                  AuditEvent.SUPPRESSION_CREATED]


def test_a_data_risk_is_accepted_at_once_by_an_engineer(store):
    incident_id = opened(store, psi=0.15)
    accepted = incidents.request_accept_risk(store, incident_id, actor=ENGINEER, rationale="holiday season")
    assert accepted.status == "accepted_risk" and accepted.risk_acceptance.approved_by == "eli"
    [suppression] = store.suppressions.list()
    assert suppression.end_time - suppression.start_time == timedelta(days=30)


def test_risk_acceptance_input_is_checked(store):
    incident_id = opened(store, psi=0.15)
    with pytest.raises(InvalidInput, match="rationale"):
        incidents.request_accept_risk(store, incident_id, actor=ENGINEER, rationale="  ")
    with pytest.raises(InvalidInput, match="1 to 30 days"):
        incidents.request_accept_risk(store, incident_id, actor=ENGINEER, rationale="r", days=31)
    with pytest.raises(Conflict, match="no risk acceptance request"):
        incidents.approve_accept_risk(store, incident_id, actor=OFFICER)
    assert store.suppressions.list() == [] and store.incidents.get(incident_id).status == "open"


def test_an_accepted_risk_keeps_tracking_its_level_but_a_worse_breach_opens_a_new_incident(store):
    incident_id = opened(store, psi=0.15)
    incidents.request_accept_risk(store, incident_id, actor=ENGINEER, rationale="season", days=7)
    assert apply(store, record(NOW + timedelta(hours=1), psi=0.2)) == [incident_id]
    assert store.incidents.get(incident_id).occurrence_count == 2
    [worse] = apply(store, record(NOW + timedelta(hours=2), psi=0.4))
    assert worse != incident_id and store.incidents.get(worse).severity == Severity.CRITICAL


# -- model freeze (policy 2.2) -------------------------------------------------------------


def register(store, freeze: bool) -> None:
    store.models.upsert(RegisteredModel(model_id="loan", monitoring=MonitoringConfig(
        positive_label="approve", freeze_on_critical_fairness=freeze)))


def test_a_critical_fairness_incident_freezes_a_model_that_asks_for_it(store):
    register(store, freeze=True)
    logger = PredictionLogger(store, flush_interval=60)
    try:
        apply(store, record(psi=0.31))  # CRITICAL, but not fairness
        assert not logger.is_frozen("loan")
        with clock.frozen(NOW):
            _, incident_id = apply(store, record(NOW + timedelta(hours=1), psi=0.31, dp=0.12))
        assert logger.is_frozen("loan")
    finally:
        logger.close()
    model = store.models.get("loan")
    assert model.frozen_at == NOW and model.frozen_by_incident == incident_id
    assert "demographic_parity:gender" in model.frozen_reason
    assert events(store, AuditEvent.MODEL_FROZEN) == [AuditEvent.MODEL_FROZEN]


def test_no_freeze_unless_configured(store):
    register(store, freeze=False)
    apply(store, record(dp=0.12))
    assert not incidents.is_frozen(store, "loan") and events(store, AuditEvent.MODEL_FROZEN) == []


def test_an_accepted_critical_fairness_risk_does_not_freeze_again(store):
    register(store, freeze=True)
    [incident_id] = apply(store, record(dp=0.12))
    incidents.request_accept_risk(store, incident_id, actor=OFFICER, rationale="known, mitigated by manual review")
    incidents.approve_accept_risk(store, incident_id, actor=OFFICER_2)
    incidents.unfreeze(store, "loan", actor=OFFICER_2, reason="risk accepted")
    assert apply(store, record(NOW + timedelta(hours=1), dp=0.13)) == [incident_id]
    assert not incidents.is_frozen(store, "loan")


def test_only_a_compliance_officer_or_admin_lifts_a_freeze(store):
    register(store, freeze=True)
    apply(store, record(dp=0.12))
    for actor in (ENGINEER, AUDITOR, VIEWER):
        with pytest.raises(Forbidden, match="only a compliance officer or admin"):
            incidents.unfreeze(store, "loan", actor=actor, reason="fixed")
    assert incidents.is_frozen(store, "loan")
    with pytest.raises(InvalidInput, match="reason"):
        incidents.unfreeze(store, "loan", actor=OFFICER, reason="")
    incidents.unfreeze(store, "loan", actor=OFFICER, reason="retrained and verified")
    assert not incidents.is_frozen(store, "loan")
    with pytest.raises(Conflict, match="not frozen"):
        incidents.unfreeze(store, "loan", actor=ADMIN, reason="again")
    entry = store.audit.list(event_types=["model_unfrozen"])[0]
    assert entry.actor.user_id == "cora" and entry.details["reason"] == "retrained and verified"


# -- CLI -----------------------------------------------------------------------------------


def test_cli_round_trip(store, monkeypatch, capsys):
    monkeypatch.setattr(cli.common, "store", lambda: store)
    register(store, freeze=True)
    incident_id = opened(store, psi=0.15, dp=0.12)

    def run(*argv):
        capsys.readouterr()
        status = cli.main(list(argv))
        return status, capsys.readouterr()

    status, out = run("incidents", "list", "--model-id", "loan", "--json")
    [listed] = json.loads(out.out)
    assert status == 0 and listed["incident_id"] == incident_id and listed["affected_groups"] == ["gender=female"]
    assert {m["metric_name"] for m in listed["metrics_triggered"]} == {"psi:income", "demographic_parity:gender"}
    assert listed["sla"]["acknowledge_target_minutes"] == 15
    status, out = run("incidents", "ack", incident_id, "--actor", "vi", "--role", "viewer")
    assert status == 2 and "may not manage incidents" in out.err
    assert run("incidents", "ack", incident_id, "--actor", "eli", "--role", "ml_engineer")[0] == 0
    status, out = run("incidents", "resolve", incident_id, "--actor", "eli", "--root-cause-category", "data_quality",
                      "--resolution-category", "data_fixed", "--notes", "feed repaired")
    assert status == 0 and "resolved" in out.out
    assert store.incidents.get(incident_id).resolved_by == "eli"
    status, out = run("incidents", "list", "--status", "open")
    assert out.out.strip() == "no incidents"
    status, out = run("model", "status", "--model-id", "loan")
    assert status == 0 and "FROZEN" in out.out
    assert run("model", "unfreeze", "--model-id", "loan", "--reason", "ok", "--role", "ml_engineer")[0] == 2
    assert run("model", "unfreeze", "--model-id", "loan", "--reason", "ok", "--actor", "cora",
               "--role", "compliance_officer")[0] == 0
    assert "not frozen" in run("model", "status", "--model-id", "loan")[1].out
