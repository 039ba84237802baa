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
        page.get_by_text("Monitored models").wait_for(timeout=180_000)
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
