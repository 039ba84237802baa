"""The app in a real browser: first start on an empty embedded store, and a store that
cannot be reached."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitoring_core.models.audit import AuditEvent

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
        page.get_by_role("heading", name="Drift Overview").wait_for(timeout=180_000)
        page.locator("[data-testid='stSidebarNavLink']", has_text="Models").click()
        page.get_by_text("Monitored models").first.wait_for(timeout=60_000)
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
        page.get_by_role("heading", name="Drift Overview").wait_for(timeout=60_000)
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


ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
ROLE_NAVIGATION = {
    "admin": ["Drift Overview", "Fairness Monitor", "Model Health", "Incident Timeline", "Models"],
    "engineer": ["Drift Overview", "Fairness Monitor", "Model Health", "Incident Timeline", "Models"],
    "compliance": ["Drift Overview", "Fairness Monitor", "Incident Timeline"],
    "auditor": ["Drift Overview", "Fairness Monitor", "Model Health", "Incident Timeline"],
    "viewer": [],  # Drift Overview only: Streamlit draws no navigation for a single page
}


def settled(page) -> None:
    """Wait until the script run has finished and the page stands still."""
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(timeout=120_000)


def open_page(page, url: str, path: str, heading: str) -> None:
    page.goto(f"{url}/{path}")
    page.get_by_role("heading", name=heading).wait_for(timeout=120_000)
    settled(page)


def navigation_links(page) -> list[str]:
    return page.locator("[data-testid='stSidebarNav'] [data-testid='stSidebarNavLink']").all_inner_texts()


def test_every_role_analyze_now_an_incident_an_export_and_screenshots_in_a_real_browser(tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    env = {"FAIRWATCH_DATA_DIR": str(tmp_path / "data"), "FAIRWATCH_SECRETS_FILE": str(tmp_path / "none.toml"),
           "FAIRWATCH_SCHEDULER": "off"}
    with running_app(env) as url:
        for username, expected in ROLE_NAVIGATION.items():
            with browser_page() as page:
                page.goto(f"{url}/?model=loan-approval&range=30d")
                sign_in(page, username, f"{username}-demo")
                page.get_by_text("runs in the last 30d").wait_for(timeout=180_000)  # drawn after the button
                settled(page)
                page.wait_for_function("n => document.querySelectorAll(\"[data-testid='stSidebarNavLink']\").length == n",
                                       arg=len(expected))  # the sidebar is redrawn as the sign-in settles
                links = [text.strip() for text in navigation_links(page)]  # icon name, then the title
                assert len(links) == len(expected) and all(map(str.endswith, links, expected)), (username, links)
                assert (page.get_by_role("button", name="Analyze Now").count() == 1) == (username in ("admin", "engineer"))
        with browser_page() as page:
            page.goto(f"{url}/?model=loan-approval&range=30d")
            sign_in(page, "engineer", "engineer-demo")
            page.get_by_text("runs in the last 30d").wait_for(timeout=180_000)
            settled(page)
            runs_before = page.get_by_text("30 runs in the last 30d").count()
            page.screenshot(path=str(ARTIFACTS / "drift-overview.png"), full_page=True)
            page.get_by_role("button", name="Analyze Now").click()
            page.get_by_text("Analysis finished").wait_for(timeout=120_000)
            page.get_by_text("31 runs in the last 30d").wait_for(timeout=60_000)
            assert runs_before == 1
            with page.expect_download() as download:
                page.get_by_role("button", name="Export CSV").first.click()
            features = download.value.path().read_text().splitlines()
            assert features[0].startswith("feature,psi,kl_divergence,wasserstein") and len(features) == 9

            open_page(page, url, "fairness?model=loan-approval&range=30d", "Fairness Monitor")
            assert "gender=female" in page.locator("body").inner_text()
            page.screenshot(path=str(ARTIFACTS / "fairness-monitor.png"), full_page=True)
            open_page(page, url, "health?model=loan-approval&range=30d", "Model Health")
            page.screenshot(path=str(ARTIFACTS / "model-health.png"), full_page=True)

            from monitoring_core.storage.sqlite import SqliteStore

            store = SqliteStore(tmp_path / "data" / "fairwatch.db")
            incident = next(i for i in store.incidents.list(model_id="loan-approval") if i.status == "open")
            store.close()
            open_page(page, url, f"incidents?model=loan-approval&range=30d&incident={incident.incident_id}",
                      "Incident Timeline")
            page.locator("h3", has_text=incident.incident_id).wait_for()  # the detail pane
            page.screenshot(path=str(ARTIFACTS / "incident-timeline.png"), full_page=True)
            page.get_by_role("button", name="Acknowledge", exact=True).click()
            page.get_by_text(f"{incident.incident_id} acknowledged").wait_for(timeout=60_000)
            settled(page)
            page.get_by_role("tab", name="Resolve").click()
            page.get_by_label("How it was resolved").fill("the upstream join was fixed; a re-run is clean")
            page.get_by_role("button", name="Resolve", exact=True).click()
            page.get_by_text(f"{incident.incident_id} resolved").wait_for(timeout=60_000)
            settled(page)
            with page.expect_download() as download:
                page.get_by_role("button", name="Export CSV").first.click()
            exported = download.value.path().read_text().splitlines()
            page.get_by_role("button", name="Export CSV").first.wait_for()
            page.wait_for_timeout(1_000)  # the click's rerun records the export
            settled(page)
            assert exported[0].startswith("incident_id,model_id,severity,status")
            assert any(row.startswith(f"{incident.incident_id},loan-approval,") and ",resolved," in row
                       for row in exported[1:])
    store = SqliteStore(tmp_path / "data" / "fairwatch.db")
    assert store.incidents.get(incident.incident_id).resolved_by == "engineer"
    exports = [(e.actor.user_id, e.details["table"]) for e in reversed(store.audit.list(
        event_types=[AuditEvent.TABLE_EXPORTED]))]
    views = {e.details["page"] for e in store.audit.list(event_types=[AuditEvent.PAGE_VIEWED])}
    store.close()
    assert exports == [("engineer", "features"), ("engineer", "incidents")]
    assert views == {"drift", "fairness", "health", "incidents"}
