"""Bring your own model: register it, give it a baseline from a file or from logged
predictions, list, activate and compare baselines; from the command line as a new user would."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from monitoring_core import baselines, catalog, config, demo
from monitoring_core.cli import main
from monitoring_core.errors import Forbidden, InvalidInput
from monitoring_core.metrics.comparison import compare_baselines, grid_proportions
from monitoring_core.metrics.drift import psi
from monitoring_core.metrics.profile import build_baseline
from monitoring_core.models.audit import AuditEvent
from monitoring_core.models.common import Actor
from monitoring_core.models.thresholds import MonitoringConfig

# Recent in real time: the CLI's "--last 30d" and "baseline reset" read the days before now.
END = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
LOAN = demo.get_demo_model("loan-approval")
ALICE = Actor(user_id="alice", role="ml_engineer")


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FAIRWATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FAIRWATCH_SEED_DEMO", "false")
    monkeypatch.delenv("MONGODB_URI", raising=False)
    config.get_settings.cache_clear()

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(["--quiet", "--actor", "alice", *argv])
        out, err = capsys.readouterr()
        return code, out, err

    yield run
    config.get_settings.cache_clear()


def test_a_new_user_goes_from_csv_files_to_an_active_baseline(cli, tmp_path):
    validation = demo.generate_reference(LOAN, end=END, rows=2_000).drop(columns=["model_id"])
    logged = demo.generate_predictions(LOAN, end=END, days=10, per_day=300).drop(columns=["model_id"])
    validation.to_csv(tmp_path / "validation.csv", index=False)
    logged.to_csv(tmp_path / "predictions.csv", index=False)

    code, _, err = cli("baseline", "create", "--model-id", "credit", "--from", str(tmp_path / "validation.csv"))
    assert code == 2 and "model 'credit' is not registered" in err
    code, _, err = cli("model", "register", "--model-id", "credit", "--risk", "high", "--positive-class", "Approve",
                       "--classes", "approve,reject")
    assert code == 2 and "did you mean 'approve'?" in err and err.count("\n") == 1
    code, out, _ = cli("model", "register", "--model-id", "credit", "--risk", "high", "--positive-class", "approve",
                       "--protected", "gender,age_group,race", "--intersection", "gender,race",
                       "--display-name", "Credit decisions")
    assert code == 0 and "registered credit: high risk" in out
    code, out, _ = cli("baseline", "create", "--model-id", "credit", "--from", str(tmp_path / "validation.csv"))
    first = out.split("\t")[0]
    assert code == 0 and "active\t2,000 rows" in out and first.startswith("SNAP-")
    assert cli("ingest", str(tmp_path / "predictions.csv"), "--model-id", "credit")[0] == 0
    code, out, _ = cli("analyze", "--model-id", "credit", "--window", "7d", "--json")
    run = json.loads(out.splitlines()[-1])
    assert code == 0 and run["status"] == "completed" and run["max_severity"] == "CRITICAL" and run["incident_ids"]
    code, out, _ = cli("baseline", "create", "--model-id", "credit", "--last", "30d", "--inactive")
    second = out.split("\t")[0]
    assert code == 0 and "inactive" in out

    code, out, _ = cli("baseline", "compare", first, second, "--format", "csv")
    table = pd.read_csv(pd.io.common.StringIO(out))
    drifted = table[(table["measure"] == "PSI") & (table["section"] == "feature")].set_index("name")["candidate"]
    assert drifted["loan_amount"] > 0.25 > drifted["region"]  # the demo's drift shows; a stable feature does not
    assert "gender&race" in set(table.loc[table["section"] == "fairness", "name"])  # the registered intersection

    code, out, _ = cli("baseline", "reset", "--model-id", "credit", "--reason", "confirmed concept drift")
    third, incident_id = out.split("\t")[0], out.split("incident ")[1].split()[0]
    assert code == 0 and "active" in out
    code, out, _ = cli("incidents", "list", "--model-id", "credit", "--json")
    [incident] = [i for i in json.loads(out) if i["incident_id"] == incident_id]
    assert (incident["incident_id"], incident["status"], incident["resolution_category"]) == (
        incident_id, "resolved", "baseline_updated")
    assert third in incident["response_actions"][0]["action"] and "confirmed concept drift" == incident["root_cause"]

    assert cli("baseline", "activate", second)[0] == 0
    code, out, _ = cli("baseline", "list", "--model-id", "credit")
    assert f"{second}\tcredit\tactive" in out and f"{first}\tcredit\tarchived" in out
    assert f"{third}\tcredit\tarchived" in out
    code, out, _ = cli("model", "list")
    assert out.startswith("credit\thigh\tpositive=approve\tprotected=gender,age_group,race\tCredit decisions")
    code, out, _ = cli("audit", "verify")
    assert code == 0


def test_registration_is_checked_audited_and_keeps_what_is_not_given(store):
    config_ = MonitoringConfig(risk_level="low", positive_label="approve", protected_attributes=["gender"])
    with pytest.raises(Forbidden):
        catalog.register_model(store, config_, model_id="credit", actor=Actor(user_id="c", role="compliance_officer"))
    catalog.register_model(store, config_, model_id="credit", actor=ALICE, display_name="Credit")
    changed = catalog.register_model(store, config_.model_copy(update={"risk_level": "high"}), model_id="credit",
                                     actor=ALICE)
    assert (changed.display_name, str(changed.monitoring.risk_level)) == ("Credit", "high")
    events = [e.event_type for e in store.audit.list(model_id="credit")]
    assert sorted(events) == sorted([AuditEvent.MODEL_REGISTERED, AuditEvent.MODEL_UPDATED])


def test_baselines_of_two_models_are_not_compared(store):
    frame = demo.generate_reference(LOAN, end=END, rows=500)
    config_ = MonitoringConfig(risk_level="high", positive_label="approve", protected_attributes=["gender"])
    a = baselines.create_baseline(store, frame, model_id="one", model_version="1", config=config_, actor=ALICE)
    b = baselines.create_baseline(store, frame.assign(model_id="two"), model_id="two", model_version="1",
                                  config=config_, actor=ALICE)
    with pytest.raises(InvalidInput, match="same model"):
        baselines.compare(store, a.snapshot_id, b.snapshot_id)


def test_comparison_matches_the_metrics_on_the_raw_rows():
    config_ = MonitoringConfig(risk_level="high", positive_label="approve", protected_attributes=["gender"])
    reference = demo.generate_reference(LOAN, end=END, rows=20_000)
    candidate = demo.generate_predictions(LOAN, end=END, days=7, per_day=3_000)
    a = build_baseline(reference, config_, model_id="loan", model_version="1")
    b = build_baseline(candidate, config_, model_id="loan", model_version="1")
    table = compare_baselines(a, b).set_index(["section", "name", "measure"])["candidate"]
    for feature in ("purpose", "region"):  # categorical: exact
        raw = psi(reference[f"features.{feature}"], candidate[f"features.{feature}"], kind="categorical")
        assert table["feature", feature, "PSI"] == pytest.approx(raw, abs=1e-12)
    for feature in ("income", "credit_score"):  # numerical: from the stored quantile functions
        raw = psi(reference[f"features.{feature}"], candidate[f"features.{feature}"])
        assert table["feature", feature, "PSI"] == pytest.approx(raw, rel=0.05)
    assert table["fairness", "gender", "demographic_parity"] == pytest.approx(
        b.fairness_metrics["gender"].demographic_parity)


def test_grid_proportions_of_a_uniform_distribution():
    from monitoring_core.metrics.binning import quantile_grid_levels

    grid = quantile_grid_levels()  # the quantile function of U(0, 1) is the identity
    assert grid_proportions(np.array([0.25, 0.5, 0.9]), grid) == pytest.approx([0.25, 0.25, 0.4, 0.1])


def test_health_probe_exits_non_zero_once_a_model_has_gone_twelve_hours_without_analysis(cli):
    from monitoring_core import clock

    with clock.frozen(END) as advance:
        assert cli("model", "register", "--model-id", "credit", "--risk", "low", "--positive-class", "approve")[0] == 0
        code, out, _ = cli("health", "--json")
        assert code == 0 and json.loads(out)["healthy"] is True
        advance(timedelta(hours=12, minutes=1))
        code, out, _ = cli("health")
        assert code == 1 and "credit" in out
