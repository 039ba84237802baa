"""Running the real app for browser tests: ``streamlit run app.py`` on 127.0.0.1 and
Debian's Chromium driven by Playwright."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from monitoring_core.users import COOKIE_NAME

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("FAIRWATCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
                 "--no-first-run", "--disable-component-update", "--disable-sync"]


def require_chromium() -> None:
    if Path(CHROMIUM).exists() or shutil.which(CHROMIUM):
        return
    message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(message)  # CI installs it: its absence there is a broken setup, not a skip
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app(env: dict[str, str], timeout: float = 90.0):
    """Start ``streamlit run app.py`` and yield its URL once it answers its health check."""
    port = free_port()
    full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    full_env.pop("MONGODB_URI", None) if "MONGODB_URI" not in env else None
    log = open(env["FAIRWATCH_DATA_DIR"] + ".streamlit.log", "w") if "FAIRWATCH_DATA_DIR" in env else subprocess.DEVNULL
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"streamlit exited with {process.returncode}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"streamlit did not answer on {url} within {timeout} s")
            time.sleep(0.25)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        if log is not subprocess.DEVNULL:
            log.close()


VIEWPORT = {"width": 1400, "height": 1000}


@contextlib.contextmanager
def browser_page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            yield page
        finally:
            browser.close()


STABLE_FOR_MS = 300
SETTLED = """() => document.querySelector("[data-testid='stApp']")?.dataset.testScriptState === 'notRunning'
                    && !document.querySelector("[data-stale='true']")"""


def settled(page, timeout_ms: int = 120_000) -> None:
    """Wait until the script run has finished, no element of an earlier run is left (Streamlit
    keeps them, faded, until the run that replaces them ends) and the page stays so for a
    moment: a component's value (the cookie written at sign-in) can start one more run just
    after the first ends."""
    for _ in range(timeout_ms // STABLE_FOR_MS):
        page.wait_for_function(SETTLED, timeout=timeout_ms)
        page.wait_for_timeout(STABLE_FOR_MS)
        if page.evaluate(SETTLED):
            return
    raise AssertionError("the page never settled")


def sign_in(page, username: str, password: str) -> None:
    page.get_by_label("Username").first.wait_for(timeout=180_000)
    settled(page)  # before it settles, the form of the previous run can still stand beside this one's
    page.get_by_label("Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def signed_in(page, heading: str = "Drift Overview") -> None:
    """Wait for the page after a sign-in: its heading, and the form gone (the rerun that
    follows the cookie being written removes it)."""
    page.get_by_role("heading", name=heading).first.wait_for(timeout=180_000)
    page.get_by_text("Sign in to Fairwatch").first.wait_for(state="detached", timeout=60_000)
    # The browser writes the cookie; a new session opened before it lands is not signed in.
    page.wait_for_function(f"document.cookie.includes('{COOKIE_NAME}=')", timeout=60_000)
    settled(page)
