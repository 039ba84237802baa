"""Fast page tests with Streamlit's AppTest (the browser tests cover the real thing)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from monitoring_core import config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FAIRWATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FAIRWATCH_SECRETS_FILE", str(tmp_path / "none.toml"))
    monkeypatch.delenv("MONGODB_URI", raising=False)
    monkeypatch.setenv("FAIRWATCH_SCHEDULER", "off")  # Analyze Now's worker pool only; one test turns it on
    monkeypatch.chdir(ROOT)
    config.get_settings.cache_clear()
    st.cache_resource.clear()  # one store per process: each test opens its own
    st.cache_data.clear()
    yield tmp_path
    config.get_settings.cache_clear()
    st.cache_resource.clear()


COOKIE_KEY = "test-cookie-key-0123456789abcdef0123456789"


def run_app(username: str | None = "admin", password: str | None = None) -> AppTest:
    """Open the app as a new browser session; sign in through the form unless ``username``
    is None (``password`` defaults to the demo user's)."""
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    app.run()
    if username is not None and not app.error:
        sign_in(app, username, password or f"{username}-demo")
    return app


def sign_in(app: AppTest, username: str, password: str) -> None:
    app.text_input[0].input(username)
    app.text_input[1].input(password)
    app.button[0].click()
    app.run()


def production_user(tmp_path, username="ops", role="admin", password="a long passphrase"):
    """Outside demo mode: a cookie key and an account made as the README says (CLI/API)."""
    from monitoring_core import users
    from monitoring_core.models.common import SYSTEM
    from monitoring_core.storage import open_store

    store = open_store(config.load_settings())
    users.add_user(store, username=username, name="Olga Ops", role=role, password=password, actor=SYSTEM)
    store.close()
    return username, password


def test_first_start_seeds_the_demo_and_lists_both_models(environment):
    app = run_app()
    assert not app.exception
    assert app.title[0].value == "Drift Overview"  # the landing page
    app.switch_page("app_pages/models.py").run()
    assert app.title[0].value == "Monitored models"
    models = app.dataframe[0].value
    assert models["model_id"].tolist() == ["fraud-screening", "loan-approval"]
    assert (models["predictions"] > 100_000).all() and models["active_baseline"].notna().all()
    assert app.sidebar.selectbox[0].options == ["fraud-screening", "loan-approval"]


def test_seeding_can_be_switched_off(environment, monkeypatch):
    monkeypatch.setenv("FAIRWATCH_SEED_DEMO", "false")
    monkeypatch.setenv("FAIRWATCH_COOKIE_KEY", COOKIE_KEY)
    username, password = production_user(environment)
    app = run_app(username, password)
    assert not app.exception
    assert "No model is monitored yet" in app.info[0].value


def test_outside_demo_mode_the_app_refuses_to_start_without_a_cookie_key(environment, monkeypatch):
    monkeypatch.setenv("FAIRWATCH_SEED_DEMO", "false")
    app = run_app(None)
    assert not app.exception
    assert "FAIRWATCH_COOKIE_KEY" in app.error[0].value and not app.text_input


def test_the_sidebar_names_the_user_and_role_and_offers_sign_out(environment):
    # Signing out (the authenticator's cookie is a browser component) is covered in
    # test_app_browser.py, in a real browser.
    from monitoring_core.models.audit import AuditEvent

    app = run_app("compliance")
    assert "Carla Compliance" in app.sidebar.markdown[0].value and "Compliance officer" in app.sidebar.markdown[0].value
    assert [b.label for b in app.sidebar.button] == ["Sign out"]
    assert app.session_state["actor"].role == "compliance_officer"
    store = app.session_state["store"]
    assert [e.details["username"] for e in store.audit.list(event_types=[AuditEvent.USER_SIGNED_IN])] == ["compliance"]


def test_a_wrong_password_is_refused_and_five_lock_the_account(environment):
    app = run_app("engineer", "not-the-password")
    assert "Wrong username or password" in app.error[0].value or "wrong username" in app.error[0].value
    assert app.title == []
    for _ in range(4):
        sign_in(app, "engineer", "still-wrong")
    assert any("locked" in e.value for e in app.error)
    locked = run_app("engineer")  # even the right password, from a new session
    assert any("locked" in e.value for e in locked.error) and not locked.title


def test_a_bad_setting_is_shown_as_an_error(environment, monkeypatch):
    monkeypatch.setenv("FAIRWATCH_SDK_BATCH_SIZE", "zero")
    app = run_app()
    assert not app.exception
    assert "FAIRWATCH_SDK_BATCH_SIZE" in app.error[0].value


def test_the_app_runs_one_scheduler_for_all_sessions_with_the_policy_jobs(environment, monkeypatch):
    from monitoring_core import scheduler

    monkeypatch.setenv("FAIRWATCH_SEED_DEMO", "false")
    monkeypatch.setenv("FAIRWATCH_SCHEDULER", "on")
    threads_before = {t.name for t in threading.enumerate()}
    first, second = run_app(), run_app()  # two browser sessions of one server process
    assert not first.exception and not second.exception
    running = scheduler._process_scheduler
    assert running is not None and running.running
    jobs = {job.job_id for job in running.get_schedule()}
    assert {"retention-purge", "health-check", "alerts-outbox", "alerts-digest"} <= jobs
    started = {t.name for t in threading.enumerate()} - threads_before
    assert len([name for name in started if "APScheduler" in name or "scheduler" in name.lower()]) <= 1
    scheduler.stop_process_scheduler()
    assert not running.running


def test_a_disabled_account_is_signed_out_at_its_next_page_and_a_new_role_applies_at_once(environment):
    from monitoring_core import users
    from monitoring_core.models.common import SYSTEM

    app = run_app("auditor")
    store = app.session_state["store"]
    users.set_role(store, "auditor", "viewer", actor=SYSTEM)
    app.run()
    assert app.session_state["actor"].role == "viewer" and "Viewer" in app.sidebar.markdown[0].value
    users.disable(store, "auditor", actor=SYSTEM)
    app.run()
    assert not app.exception and not app.title
    assert any("has been disabled" in w.value for w in app.warning)
    assert app.text_input[0].label == "Username"  # back at the sign-in form


def test_a_sign_in_with_an_unknown_name_is_refused_like_a_wrong_password_and_audited(environment):
    from monitoring_core.models.audit import AuditEvent

    app = run_app("mallory", "guess-1234")
    assert "Wrong username or password" in app.error[0].value and not app.title
    failed = app.session_state["store"].audit.list(event_types=[AuditEvent.USER_SIGN_IN_FAILED])
    assert [e.details for e in failed] == [{"username": "mallory", "known": False}]
