"""The app in a real browser: first start on an empty embedded store, and a store that
cannot be reached."""

from __future__ import annotations

import pytest

from .browser import browser_page, require_chromium, running_app

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(autouse=True)
def chromium():
    require_chromium()


def test_first_start_seeds_the_demo_and_lists_the_models(tmp_path):
    data = tmp_path / "data"
    with running_app({"FAIRWATCH_DATA_DIR": str(data), "FAIRWATCH_SECRETS_FILE": str(tmp_path / "none.toml")}) as url, \
            browser_page() as page:
        page.goto(url)
        sign_in(page, "engineer", "engineer-demo")
        page.get_by_text("Monitored models").first.wait_for(timeout=180_000)
        page.locator("[data-testid='stDataFrame']").wait_for()
        page.get_by_role("button", name="Export CSV").first.wait_for()  # drawn after the table
        body = page.locator("body").inner_text()
        assert "Export CSV" in body and "Store: embedded SQLite" in body
        page.screenshot(path=str(tmp_path / "models.png"), full_page=True)
        with page.expect_download() as download:
            page.get_by_role("button", name="Export CSV").first.click()
        exported = download.value.path().read_text()
        assert exported.splitlines()[0].startswith("model_id,display_name,risk_level,predictions")
        assert "loan-approval" in exported and "fraud-screening" in exported
    assert (data / "fairwatch.db").exists()


def sign_in(page, username: str, password: str) -> None:
    page.get_by_label("Username").wait_for(timeout=180_000)
    page.get_by_label("Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_a_wrong_password_and_sign_out_in_a_real_browser(tmp_path):
    with running_app({"FAIRWATCH_DATA_DIR": str(tmp_path / "data"),
                      "FAIRWATCH_SECRETS_FILE": str(tmp_path / "none.toml")}) as url, browser_page() as page:
        page.goto(url)
        sign_in(page, "viewer", "wrong-password")
        page.get_by_text("Wrong username or password").wait_for(timeout=60_000)
        sign_in(page, "compliance", "compliance-demo")
        page.get_by_text("Monitored models").first.wait_for(timeout=60_000)
        sidebar = page.locator("[data-testid='stSidebar']")
        assert "Carla Compliance" in sidebar.inner_text() and "Compliance officer" in sidebar.inner_text()
        page.screenshot(path=str(tmp_path / "signed-in.png"), full_page=True)
        sidebar.get_by_role("button", name="Sign out").click()
        page.get_by_text("Carla Compliance").wait_for(state="detached", timeout=60_000)
        page.get_by_label("Username").wait_for(timeout=60_000)  # the lockout itself: test_app.py
    from monitoring_core.models.audit import AuditEvent
    from monitoring_core.storage.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "data" / "fairwatch.db")
    trail = [(e.event_type, e.details.get("username")) for e in reversed(store.audit.list(event_types=[
        AuditEvent.USER_SIGNED_IN, AuditEvent.USER_SIGNED_OUT, AuditEvent.USER_SIGN_IN_FAILED, AuditEvent.USER_LOCKED]))]
    store.close()
    assert trail[:3] == [(AuditEvent.USER_SIGN_IN_FAILED, "viewer"), (AuditEvent.USER_SIGNED_IN, "compliance"),
                         (AuditEvent.USER_SIGNED_OUT, "compliance")]


def test_an_unreachable_mongodb_shows_an_error_not_a_traceback(tmp_path):
    env = {"MONGODB_URI": "mongodb://fw:secret@127.0.0.1:9/?directConnection=true",
           "FAIRWATCH_MONGODB_TIMEOUT_MS": "300", "FAIRWATCH_SECRETS_FILE": str(tmp_path / "none.toml"),
           "FAIRWATCH_DATA_DIR": str(tmp_path / "data")}
    with running_app(env) as url, browser_page() as page:
        page.goto(url)
        page.get_by_text("Fairwatch cannot start").wait_for(timeout=60_000)
        body = page.locator("body").inner_text()
        assert "cannot reach MongoDB at 127.0.0.1:9" in body
        assert "Traceback" not in body and "secret" not in body
