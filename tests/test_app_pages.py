"""The monitoring pages with Streamlit's AppTest: each role sees its pages and only its
actions (policy 6), the core refuses the rest, the URL carries model and range, every page
explains an empty or impossible state, and page views and lifecycle steps are audited."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from monitoring_core import analysis, config, incidents, scheduler, views
from monitoring_core.errors import Forbidden
from monitoring_core.models.audit import AuditEvent
from monitoring_core.models.common import Actor
from monitoring_core.seeding import seed_demo
from monitoring_core.storage import open_store
from monitoring_core.users import ensure_demo_users

from .test_app import ROOT, sign_in

PAGES = {"drift": "Drift Overview", "fairness": "Fairness Monitor", "health": "Model Health",
         "incidents": "Incident Timeline", "models": "Monitored models"}
ROLE_PAGES = {
    "admin": {"drift", "fairness", "health", "incidents", "models"},
    "engineer": {"drift", "fairness", "health", "incidents", "models"},
    "compliance": {"drift", "fairness", "incidents"},
    "auditor": {"drift", "fairness", "health", "incidents"},
    "viewer": {"drift"},
}
ROLES = {"admin": "admin", "engineer": "ml_engineer", "compliance": "compliance_officer", "auditor": "auditor",
         "viewer": "viewer"}


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory):
    """The demo (with its 30 days of analyses) seeded once; each test gets a copy."""
    folder = tmp_path_factory.mktemp("demo")
    settings = config.load_settings(data_dir=folder, seed_demo=True)
    store = open_store(settings)
    seed_demo(store)
    ensure_demo_users(store)
    store.close()
    return folder / "fairwatch.db"


@pytest.fixture
def environment(monkeypatch, tmp_path, demo_file):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(demo_file, data / "fairwatch.db")
    monkeypatch.setenv("FAIRWATCH_DATA_DIR", str(data))
    monkeypatch.setenv("FAIRWATCH_SECRETS_FILE", str(tmp_path / "none.toml"))
    monkeypatch.setenv("FAIRWATCH_SCHEDULER", "off")
    monkeypatch.delenv("MONGODB_URI", raising=False)
    monkeypatch.chdir(ROOT)
    config.get_settings.cache_clear()
    st.cache_resource.clear()
    st.cache_data.clear()
    yield tmp_path
    scheduler.stop_process_scheduler()
    config.get_settings.cache_clear()
    st.cache_resource.clear()


def open_as(username: str, **query: str) -> AppTest:
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    for key, value in query.items():
        app.query_params[key] = value
    app.run()
    sign_in(app, username, f"{username}-demo")
    assert not app.exception, app.exception
    return app


def visit(app: AppTest, page: str) -> AppTest:
    app.switch_page(f"app_pages/{page}.py").run()
    assert not app.exception, app.exception
    return app


def actor(username: str) -> Actor:
    return Actor(user_id=username, role=ROLES[username])


def store_of(app: AppTest):
    return app.session_state["store"]


@pytest.mark.parametrize("username", list(ROLE_PAGES))
def test_each_role_sees_exactly_its_pages(environment, username):
    app = open_as(username, model="loan-approval")
    assert app.title[0].value == "Drift Overview"
    for page, title in PAGES.items():
        if page in ROLE_PAGES[username]:
            assert visit(app, page).title[0].value == title
        else:  # not in the role's navigation at all
            with pytest.raises(ValueError, match="Could not find a navigation page"):
                app.switch_page(f"app_pages/{page}.py")
    viewed = {e.details["page"] for e in store_of(app).audit.list(event_types=[AuditEvent.PAGE_VIEWED])}
    assert viewed == ROLE_PAGES[username]


@pytest.mark.parametrize("username", list(ROLE_PAGES))
def test_only_the_roles_that_may_trigger_an_analysis_get_the_button(environment, username):
    app = open_as(username, model="loan-approval")
    buttons = [b.label for b in app.main.button]
    assert ("Analyze Now" in buttons) == (username in {"admin", "engineer"})


@pytest.mark.parametrize("username", ["compliance", "auditor", "viewer"])
def test_the_core_refuses_what_the_pages_hide(environment, username):
    app = open_as(username)
    store, who = store_of(app), actor(username)
    with pytest.raises(Forbidden):
        scheduler.analyze_now("loan-approval", analysis.Window.last(timedelta(hours=24)), who)
    for spec in views.PAGES:
        if spec.key not in ROLE_PAGES[username]:
            with pytest.raises(Forbidden):
                views.history(store, who, "loan-approval", views.time_range("30d"), spec.permission)
            with pytest.raises(Forbidden):
                views.record_export(store, who, spec, "table", 1)
    incident = store.incidents.list(model_id="loan-approval")[0]
    if username != "compliance":
        with pytest.raises(Forbidden):
            incidents.acknowledge(store, incident.incident_id, actor=who)


def test_drift_overview_shows_the_score_cards_features_and_a_distribution(environment):
    app = open_as("engineer", model="loan-approval", range="30d")
    assert app.sidebar.selectbox[0].value == "loan-approval"
    cards = {m.label.split(" · ")[0]: m.value for m in app.metric}
    assert set(cards) == {"PSI", "KL divergence", "Wasserstein distance"}
    assert float(cards["PSI"]) > 0.25  # the demo's loan model has drifted
    features, runs = app.dataframe[0].value, app.dataframe[1].value
    assert features.iloc[0]["severity"] == "CRITICAL" and {"income", "loan_amount"} <= set(features["feature"])
    assert len(runs) == 30 and runs["aggregated_score"].iloc[-1] > 0.3
    assert set(app.selectbox(key="fw_feature").options) == set(features["feature"])


def test_analyze_now_shows_progress_and_the_new_run(environment):
    app = open_as("engineer", model="loan-approval")
    before = len(store_of(app).records.history("loan-approval"))
    next(b for b in app.main.button if b.label == "Analyze Now").click().run()
    assert not app.exception
    assert any("Analysis finished" in s.label for s in app.status)
    records = store_of(app).records.history("loan-approval")
    assert len(records) == before + 1
    assert app.dataframe[1].value["record_id"].iloc[-1] == records[-1].record_id  # the new run is on the page
    triggered = store_of(app).audit.list(event_types=[AuditEvent.MANUAL_ANALYSIS_TRIGGERED])
    assert triggered and triggered[0].actor.user_id == "engineer"


def test_fairness_monitor_names_the_breach_and_the_affected_group(environment):
    app = open_as("compliance", model="loan-approval")
    visit(app, "fairness")
    assert app.title[0].value == "Fairness Monitor"
    subheaders = [s.value for s in app.subheader]
    assert any(s.startswith("gender") and "CRITICAL" in s for s in subheaders)
    metrics = app.dataframe[1].value
    gender_di = metrics[(metrics["attribute"] == "gender") & (metrics["metric"] == "Disparate impact")].iloc[0]
    assert gender_di["value"] < 0.8 and gender_di["status"] == "CRITICAL" and gender_di["affected_groups"] == "gender=female"
    groups = app.dataframe[0].value
    female = groups[(groups["attribute"] == "gender") & (groups["group"] == "female")].iloc[0]
    assert female["affected"] and female["selection_rate_ci_low"] < female["selection_rate"] < female["selection_rate_ci_high"]
    calm = metrics[metrics["attribute"] == "age_group"]
    assert set(calm["status"]) <= {"ok", "inconclusive", "unavailable: no_ground_truth"}


def test_model_health_says_when_there_are_no_labels(environment):
    app = open_as("auditor", model="loan-approval")
    visit(app, "health")
    assert app.title[0].value == "Model Health"
    texts = " ".join(i.value for i in app.info)
    latest = store_of(app).records.latest("loan-approval")
    if latest.metrics.model_drift.accuracy_drop.current_accuracy is None:
        assert "No ground truth has arrived" in texts
    else:
        assert "Current accuracy" in [m.label for m in app.metric]
    assert len(app.dataframe[0].value) == 30


def test_incident_lifecycle_from_the_timeline_and_read_only_for_the_auditor(environment):
    app = open_as("engineer", model="loan-approval", range="30d")
    store = store_of(app)
    incident = next(i for i in store.incidents.list(model_id="loan-approval") if i.status == "open")
    app.query_params["incident"] = incident.incident_id
    visit(app, "incidents")
    assert app.title[0].value == "Incident Timeline"
    assert incident.incident_id in app.dataframe[0].value["incident_id"].tolist()
    app.button(key="FormSubmitter:acknowledge-Acknowledge").click().run()
    assert store.incidents.get(incident.incident_id).status == "investigating"
    app.selectbox(key="fw_resolve_cause").select("pipeline_error")
    app.text_area(key="fw_resolve_notes").input("upstream pipeline fixed and verified by a re-run")
    app.button(key="FormSubmitter:resolve-Resolve").click().run()
    resolved = store.incidents.get(incident.incident_id)
    assert resolved.status == "resolved" and resolved.resolved_by == "engineer"
    assert resolved.root_cause_category == "pipeline_error"
    assert f"{incident.incident_id} resolved" in app.success[0].value
    events = [e.event_type for e in store.audit.list(event_types=[AuditEvent.INCIDENT_ACKNOWLEDGED,
                                                                   AuditEvent.INCIDENT_RESOLVED])
              if e.target.incident_id == incident.incident_id]
    assert sorted(events) == [AuditEvent.INCIDENT_ACKNOWLEDGED, AuditEvent.INCIDENT_RESOLVED]

    auditor = open_as("auditor", model="loan-approval", incident=incident.incident_id)
    visit(auditor, "incidents")
    assert "Read-only" in auditor.caption[0].value
    assert not [b for b in auditor.button if "FormSubmitter" in (b.key or "")] and not auditor.tabs


def test_a_link_opens_the_model_and_range_and_a_bad_link_says_what_was_wrong(environment):
    app = open_as("engineer", model="fraud-screening", range="7d")
    assert app.sidebar.selectbox[0].value == "fraud-screening" and app.sidebar.selectbox[1].value == "7d"
    assert app.query_params["model"] == "fraud-screening" and app.query_params["range"] == "7d"
    # The sign-in's reruns may drop the query string from the URL: the link the session was opened with still counts.
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    app.query_params.update(model="fraud-screening", range="90d", incident="INC-1")
    app.run()
    app.query_params.clear()
    sign_in(app, "engineer", "engineer-demo")
    assert app.sidebar.selectbox[0].value == "fraud-screening" and app.sidebar.selectbox[1].value == "90d"
    assert dict(app.query_params) == {"model": "fraud-screening", "range": "90d", "incident": "INC-1"}
    bad = open_as("engineer", model="no-such-model", range="fortnight")
    assert any("no-such-model" in w.value for w in bad.sidebar.warning)
    assert bad.sidebar.selectbox[1].value == views.DEFAULT_RANGE and not bad.exception


def test_the_sidebar_draws_the_chosen_model_and_range_even_when_its_one_shot_value_is_lost(environment):
    # A value written into session state reaches the browser once, with the run that wrote it;
    # when a rerun interrupts that run (the sign-in cookie arriving), the browser falls back to
    # the widget's default. So the default must be the choice the pages read.
    app = open_as("engineer", model="loan-approval", range="90d")
    app.run()
    model, range_ = app.sidebar.selectbox[0], app.sidebar.selectbox[1]
    assert (model.value, range_.value) == ("loan-approval", "90d")
    assert model.options[model.proto.default] == "loan-approval"
    assert range_.options[range_.proto.default] == "90 days"


def test_a_wider_read_cut_to_a_range_holds_the_runs_of_that_range_only(environment):
    # The pages cache a read from the hour before a range's start and cut the range from it.
    from monitoring_core.auth import Permission

    store = open_store(config.get_settings())
    try:
        admin, extra = actor("admin"), 0
        for label in ("24h", "7d", "30d"):
            exact = views.time_range(label)
            wide = views.history(store, admin, "loan-approval", views.TimeRange(label, exact.start - timedelta(days=2),
                                                                                  exact.end), Permission.VIEW_DRIFT)
            direct = views.history(store, admin, "loan-approval", exact, Permission.VIEW_DRIFT)
            cut = wide.within(exact)
            assert [r.record_id for r in cut.records] == [r.record_id for r in direct.records]
            assert (cut.latest_skipped, cut.range) == (direct.latest_skipped, exact)
            extra += len(wide.records) - len(cut.records)
        assert extra > 0  # the wider reads did hold runs outside the ranges
    finally:
        store.close()


def test_empty_states_are_explained(environment):
    from monitoring_core import catalog
    from monitoring_core.models.common import SYSTEM
    from monitoring_core.models.thresholds import MonitoringConfig

    app = open_as("admin", model="loan-approval", range="custom", start="2020-01-01", end="2020-01-31")
    assert "No completed analysis of **loan-approval** in the 2020-01-01 to 2020-01-31" in app.info[0].value
    catalog.register_model(store_of(app), MonitoringConfig(positive_label="yes"), model_id="new-model", actor=SYSTEM)
    fresh = open_as("admin", model="new-model")
    assert "has no active baseline" in fresh.warning[0].value
    for page in ("fairness", "health"):
        visit(fresh, page)
        assert "has no active baseline" in fresh.warning[0].value


def test_a_store_lost_mid_session_is_said_on_the_page_and_the_app_recovers_when_it_is_back(environment):
    data = environment / "data"
    app = open_as("engineer", model="loan-approval")
    assert app.title[0].value == "Drift Overview"
    data.rename(environment / "unmounted")  # the volume holding the database goes away
    try:
        app.run()
        assert not app.exception
        assert any("cannot open or write the database" in e.value for e in app.error), [e.value for e in app.error]
    finally:
        (environment / "unmounted").rename(data)
    visit(app, "fairness")
    assert app.title[0].value == "Fairness Monitor" and not app.error
