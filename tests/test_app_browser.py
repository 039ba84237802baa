"""The app in a real browser: first start on an empty embedded store, and a store that
cannot be reached."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitoring_core.models.audit import AuditEvent
from monitoring_core.users import COOKIE_NAME

from .browser import browser_page, require_chromium, running_app, settled, sign_in, signed_in

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
        signed_in(page)  # a click while the page still reruns can be lost
        page.locator("[data-testid='stSidebarNavLink']", has_text="Models").click()
        page.get_by_text("Monitored models").first.wait_for(timeout=60_000)
        page.locator("[data-testid='stDataFrame']").wait_for()
        page.get_by_role("button", name="Export CSV").first.wait_for()  # drawn after the table
        body = page.locator("body").inner_text()
        assert "Export CSV" in body and "Store: embedded SQLite" in body
        screenshot(page, "models")
        with page.expect_download() as download:
            page.get_by_role("button", name="Export CSV").first.click()
        exported = download.value.path().read_text()
        assert exported.splitlines()[0].startswith("model_id,display_name,risk_level,predictions")
        assert "loan-approval" in exported and "fraud-screening" in exported
    assert (data / "fairwatch.db").exists()


def session_cookie(username: str, expires: float, key: str) -> dict:
    import jwt

    token = jwt.encode({"username": username, "exp_date": expires}, key, algorithm="HS256")
    return {"name": COOKIE_NAME, "value": token, "domain": "127.0.0.1", "path": "/"}


def test_sign_in_lockout_sign_out_and_cookies_in_a_real_browser(tmp_path):
    from monitoring_core.users import DEMO_COOKIE_KEY

    with running_app({"FAIRWATCH_DATA_DIR": str(tmp_path / "data"),
                      "FAIRWATCH_SECRETS_FILE": str(tmp_path / "none.toml")}) as url, browser_page() as page:
        page.goto(url)
        sign_in(page, "viewer", "wrong-password")
        page.get_by_text("Wrong username or password").first.wait_for(timeout=60_000)
        for _ in range(4):
            sign_in(page, "viewer", "wrong-password")
            settled(page)
        page.get_by_text("viewer is now locked for 15 minutes").first.wait_for(timeout=60_000)
        sign_in(page, "viewer", "viewer-demo")  # the right password, but locked
        page.get_by_text("viewer is locked after 5 failed sign-ins").first.wait_for(timeout=60_000)
        assert page.get_by_role("heading", name="Drift Overview").count() == 0

        # A link from an alert survives the sign-in; the form is gone once signed in.
        page.goto(f"{url}/fairness?model=loan-approval&range=7d")
        sign_in(page, "compliance", "compliance-demo")
        signed_in(page, "Fairness Monitor")
        sidebar = page.locator("[data-testid='stSidebar']")
        assert "Carla Compliance" in sidebar.inner_text() and "Compliance officer" in sidebar.inner_text()
        assert "model=loan-approval" in page.url and "range=7d" in page.url, page.url
        page.reload()  # a new session, resumed from the cookie
        page.get_by_role("heading", name="Fairness Monitor").first.wait_for(timeout=60_000)
        settled(page)
        assert page.get_by_label("Username").count() == 0
        page.locator("[data-testid='stSidebar']").get_by_role("button", name="Sign out").click()
        page.get_by_text("Carla Compliance").first.wait_for(state="detached", timeout=60_000)
        page.get_by_label("Username").first.wait_for(timeout=60_000)
        page.reload()  # the browser may still hold the cookie: signing out ended its session anyway
        page.get_by_label("Username").first.wait_for(timeout=60_000)
        settled(page)
        assert page.get_by_role("heading", name="Fairness Monitor").count() == 0

        # An expired cookie and a forged one sign nobody in; a valid one does.
        import time as clock

        for cookie in (session_cookie("admin", clock.time() - 60, DEMO_COOKIE_KEY),
                       session_cookie("admin", clock.time() + 3600, "not-the-key-" * 4)):
            page.context.clear_cookies()
            page.context.add_cookies([cookie])
            page.goto(f"{url}/?model=loan-approval")
            page.get_by_label("Username").first.wait_for(timeout=60_000)
            settled(page)
            assert page.get_by_text("Ada Admin").count() == 0
        page.context.clear_cookies()
        page.context.add_cookies([session_cookie("admin", clock.time() + 3600, DEMO_COOKIE_KEY)])
        page.goto(f"{url}/?model=loan-approval")
        page.get_by_text("Ada Admin").first.wait_for(timeout=60_000)
    from monitoring_core.storage.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "data" / "fairwatch.db")
    trail = [(e.event_type, e.details.get("username"), e.details.get("via")) for e in reversed(store.audit.list(
        event_types=[AuditEvent.USER_SIGNED_IN, AuditEvent.USER_SIGNED_OUT, AuditEvent.USER_SIGN_IN_FAILED,
                     AuditEvent.USER_LOCKED]))]
    store.close()
    failed, locked = (AuditEvent.USER_SIGN_IN_FAILED, "viewer", None), (AuditEvent.USER_LOCKED, "viewer", None)
    assert trail == [failed] * 5 + [locked, failed] + [
        (AuditEvent.USER_SIGNED_IN, "compliance", None), (AuditEvent.USER_SIGNED_IN, "compliance", "cookie"),
        (AuditEvent.USER_SIGNED_OUT, "compliance", None), (AuditEvent.USER_SIGNED_IN, "admin", "cookie")]


def test_an_unreachable_mongodb_shows_an_error_not_a_traceback(tmp_path):
    env = {"MONGODB_URI": "mongodb://fw:secret@127.0.0.1:9/?directConnection=true",
           "FAIRWATCH_MONGODB_TIMEOUT_MS": "300", "FAIRWATCH_SECRETS_FILE": str(tmp_path / "none.toml"),
           "FAIRWATCH_DATA_DIR": str(tmp_path / "data")}
    with running_app(env) as url, browser_page() as page:
        page.goto(url)
        page.get_by_text("Fairwatch cannot start").first.wait_for(timeout=60_000)
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


def screenshot(page, name: str) -> None:
    """A full-page screenshot into test-artifacts/ once every chart has been drawn (plotly
    draws after the script run ends)."""
    page.wait_for_function("""() => [...document.querySelectorAll("[data-testid='stPlotlyChart']")]
                              .every(chart => chart.querySelector('svg.main-svg'))""", timeout=60_000)
    page.wait_for_timeout(500)  # plotly's entry transition
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def open_page(page, url: str, path: str, heading: str) -> None:
    page.goto(f"{url}/{path}")
    page.get_by_role("heading", name=heading).first.wait_for(timeout=120_000)
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
                signed_in(page)
                page.get_by_text("runs in the last 30d").first.wait_for(timeout=60_000)  # drawn after the button
                page.wait_for_function("n => document.querySelectorAll(\"[data-testid='stSidebarNavLink']\").length == n",
                                       arg=len(expected))  # the sidebar is redrawn as the sign-in settles
                links = [text.strip() for text in navigation_links(page)]  # icon name, then the title
                assert len(links) == len(expected) and all(map(str.endswith, links, expected)), (username, links)
                assert (page.get_by_role("button", name="Analyze Now").count() == 1) == (username in ("admin", "engineer"))
        with browser_page() as page:
            page.goto(f"{url}/?model=loan-approval&range=30d")
            sign_in(page, "engineer", "engineer-demo")
            signed_in(page)
            page.get_by_text("runs in the last 30d").first.wait_for(timeout=60_000)
            runs_before = page.get_by_text("30 runs in the last 30d").count()
            screenshot(page, "drift-overview")
            page.get_by_role("button", name="Analyze Now").click()
            page.get_by_text("Analysis finished").first.wait_for(timeout=120_000)
            page.get_by_text("31 runs in the last 30d").first.wait_for(timeout=60_000)
            assert runs_before == 1
            with page.expect_download() as download:
                page.get_by_role("button", name="Export CSV").first.click()
            features = download.value.path().read_text().splitlines()
            assert features[0].startswith("feature,psi,kl_divergence,wasserstein") and len(features) == 9

            open_page(page, url, "fairness?model=loan-approval&range=30d", "Fairness Monitor")
            assert "gender=female" in page.locator("body").inner_text()
            screenshot(page, "fairness-monitor")
            open_page(page, url, "health?model=loan-approval&range=30d", "Model Health")
            screenshot(page, "model-health")

            from monitoring_core.storage.sqlite import SqliteStore

            store = SqliteStore(tmp_path / "data" / "fairwatch.db")
            incident = next(i for i in store.incidents.list(model_id="loan-approval") if i.status == "open")
            store.close()
            open_page(page, url, f"incidents?model=loan-approval&range=30d&incident={incident.incident_id}",
                      "Incident Timeline")
            page.locator("h3", has_text=incident.incident_id).wait_for()  # the detail pane
            screenshot(page, "incident-timeline")
            page.get_by_role("button", name="Acknowledge", exact=True).click()
            page.get_by_text(f"{incident.incident_id} acknowledged").first.wait_for(timeout=60_000)
            settled(page)
            page.get_by_role("tab", name="Resolve").click()
            page.get_by_label("How it was resolved").fill("the upstream join was fixed; a re-run is clean")
            page.get_by_role("button", name="Resolve", exact=True).click()
            page.get_by_text(f"{incident.incident_id} resolved").first.wait_for(timeout=60_000)
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
