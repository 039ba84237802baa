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
    monkeypatch.chdir(ROOT)
    config.get_settings.cache_clear()
    st.cache_resource.clear()  # one store per process: each test opens its own
    st.cache_data.clear()
    yield tmp_path
    config.get_settings.cache_clear()
    st.cache_resource.clear()


def run_app() -> AppTest:
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    app.run()
    return app


def test_first_start_seeds_the_demo_and_lists_both_models(environment):
    app = run_app()
    assert not app.exception
    assert app.title[0].value == "Monitored models"
    models = app.dataframe[0].value
    assert models["model_id"].tolist() == ["fraud-screening", "loan-approval"]
    assert (models["predictions"] > 100_000).all() and models["active_baseline"].notna().all()
    assert app.selectbox[0].options == ["fraud-screening", "loan-approval"]


def test_seeding_can_be_switched_off(environment, monkeypatch):
    monkeypatch.setenv("FAIRWATCH_SEED_DEMO", "false")
    app = run_app()
    assert not app.exception
    assert "No predictions yet" in app.info[0].value


def test_a_bad_setting_is_shown_as_an_error(environment, monkeypatch):
    monkeypatch.setenv("FAIRWATCH_SDK_BATCH_SIZE", "zero")
    app = run_app()
    assert not app.exception
    assert "FAIRWATCH_SDK_BATCH_SIZE" in app.error[0].value


def test_the_app_runs_one_scheduler_for_all_sessions_with_the_policy_jobs(environment, monkeypatch):
    from monitoring_core import scheduler

    monkeypatch.setenv("FAIRWATCH_SEED_DEMO", "false")
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
