"""Page load times in a real browser, on a store with a year of daily records.

    python benchmarks/bench_pages.py                # 5 models x 365 daily records, 3 loads per page
    python benchmarks/bench_pages.py --repeat 5

Builds an embedded store: the demo (two models, 30 days of real analyses) plus three more
models registered with the demo's configurations, and every model's records cloned back
over 365 days (new ids, shifted periods, the scores varied) and its incidents repeated every
month (the older ones resolved), then starts ``streamlit run app.py`` on 127.0.0.1 and, in
Debian's Chromium:

1. the reference, the anonymous sign-in page (the cheapest page the app serves);
2. each page as a first visit: a new browser profile (nothing cached, no cookie) opens a
   link to it, the sign-in page is timed, then the page from the click on Sign in;
3. for each role's demo user, every page the role may see with the default range (30 days)
   and the longest preset (90 days), each load a new browser session resumed from the
   sign-in cookie (as a link from an alert opens), reported as a ratio to the reference.

A load is timed until the page's heading is drawn ("drawn") and until no script run is in
progress and nothing stale is left ("settled"). Target (policy 8): under 2 s. Nothing here
is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser import STABLE_FOR_MS, VIEWPORT, browser_page, running_app, settled, sign_in, signed_in  # noqa: E402

PAGES = {"drift": "Drift Overview", "fairness": "Fairness Monitor", "health": "Model Health",
         "incidents": "Incident Timeline"}
ROLE_PAGES = {"admin": list(PAGES), "engineer": list(PAGES), "compliance": ["drift", "fairness", "incidents"],
              "auditor": list(PAGES), "viewer": ["drift"]}
# The three models added to the demo's two, each with the configuration and runs of a demo model.
CLONED_FROM = {"loan-approval-eu": "loan-approval", "loan-approval-us": "loan-approval",
               "fraud-screening-eu": "fraud-screening"}


def build_store(folder: Path, days: int) -> dict[str, int]:
    import os

    os.environ.setdefault("FAIRWATCH_AUDIT_KEY", "bench-audit-key-0123456789abcdef")
    from monitoring_core.config import load_settings
    from monitoring_core.models.common import new_id
    from monitoring_core.seeding import seed_demo
    from monitoring_core.storage import open_store
    from monitoring_core.users import ensure_demo_users

    store = open_store(load_settings(data_dir=folder))
    seed_demo(store)
    ensure_demo_users(store)
    for extra, source in CLONED_FROM.items():
        model = store.models.get(source)
        store.models.upsert(model.model_copy(update={"model_id": extra, "display_name": extra}))
    counts = {}
    for model_id in [m.model_id for m in store.models.list()]:
        real = store.records.history(CLONED_FROM.get(model_id, model_id))
        newest = real[-1].analysis_period.end
        have = {r.analysis_period.end for r in store.records.history(model_id)}
        with store.transaction():
            for back in range(days):
                end = newest - timedelta(days=back)
                if end in have:
                    continue
                template = real[back % len(real)]
                shift = end - template.analysis_period.end
                store.records.insert(template.model_copy(update={
                    "record_id": new_id("REC"), "model_id": model_id, "timestamp": template.timestamp + shift,
                    "analysis_period": template.analysis_period.model_copy(update={
                        "start": template.analysis_period.start + shift, "end": end}),
                    "aggregated_score": min(1.0, template.aggregated_score * (0.8 + 0.4 * ((back * 7) % 10) / 10)),
                }))
        counts[model_id] = len(store.records.history(model_id))
        clone_incidents(store, model_id, CLONED_FROM.get(model_id, model_id), days)
    store.close()
    return counts


def clone_incidents(store, model_id: str, source: str, days: int) -> None:
    """The source model's incidents of the demo month, repeated every month back over ``days``,
    the older ones acknowledged and resolved (the table and timeline read all of them)."""
    from monitoring_core.models.common import new_id
    from monitoring_core.models.incidents import IncidentStatus, ResolutionCategory, RootCauseCategory

    month = timedelta(days=30)
    real = [i for i in store.incidents.list(model_id=source) if i.status != IncidentStatus.RESOLVED]  # the demo's
    with store.transaction():
        for months in range(0 if model_id != source else 1, days // 30):
            for incident in real:
                created = incident.created_at - months * month
                store.incidents.insert(incident.model_copy(update={
                    "incident_id": new_id("INC"), "model_id": model_id, "created_at": created,
                    "first_seen_at": created, "last_seen_at": created + timedelta(days=2),
                    **({} if months == 0 else {
                        "status": IncidentStatus.RESOLVED, "acknowledged_at": created + timedelta(minutes=12),
                        "acknowledged_by": "engineer", "resolved_at": created + timedelta(days=2),
                        "resolved_by": "engineer", "root_cause_category": RootCauseCategory.DATA_QUALITY,
                        "resolution_category": ResolutionCategory.DATA_FIXED,
                        "resolution_notes": "upstream feed corrected", "time_to_acknowledge_minutes": 12.0,
                        "time_to_resolve_minutes": 2880.0})}))


def open_store_at(folder: Path):
    from monitoring_core.config import load_settings
    from monitoring_core.storage import open_store

    return open_store(load_settings(data_dir=folder))


def page_link(url: str, key: str, range_: str) -> str:
    """A page's link as the app writes it: Drift Overview, the default page, is the root URL."""
    return f"{url}/{'' if key == 'drift' else key}?model=loan-approval&range={range_}"


def heading_drawn(page, heading: str, started: float) -> float:
    """Seconds since ``started`` once the page's heading is drawn."""
    page.get_by_role("heading", name=heading).first.wait_for(timeout=120_000)
    return time.perf_counter() - started


def timed_load(page, url: str, heading: str) -> tuple[float, float]:
    """Seconds from ``goto`` until the heading is drawn, and until the page has settled (no
    script run in progress: a new session runs twice, once more when the authenticator's
    cookie component reports)."""
    started = time.perf_counter()
    page.goto(url)
    drawn = heading_drawn(page, heading, started)
    settled(page)
    return drawn, time.perf_counter() - started - STABLE_FOR_MS / 1000  # less the stillness settled() waits for


def first_visit(browser, url: str, heading: str) -> tuple[float, float, float]:
    """A browser that has never opened Fairwatch follows a link (a new profile: nothing cached,
    no cookie): seconds until the sign-in page has settled, then, from the click on Sign in,
    until the linked page's heading is drawn and until it has settled (the password check and
    the front end's chart code fetched and compiled for the first time included)."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        _, form = timed_load(page, url, "Sign in to Fairwatch")
        sign_in(page, "admin", "admin-demo")
        clicked = time.perf_counter()
        drawn = heading_drawn(page, heading, clicked)
        signed_in(page, heading)
        return form, drawn, time.perf_counter() - clicked - STABLE_FOR_MS / 1000
    finally:
        context.close()


def summary(loads: list[tuple[float, float]]) -> tuple[float, float, float]:
    """Median heading drawn, median settled and worst settled."""
    return (statistics.median(d for d, _ in loads), statistics.median(s for _, s in loads), max(s for _, s in loads))


def visits(url: str, repeat: int) -> tuple[list[tuple], list[tuple]]:
    """Every page as a first visit, then every page each role may open in a browser that has
    opened Fairwatch before (first visits go first: the server keeps each closed session for
    two minutes, so the hundred-odd sessions of the second part make it slower)."""
    with browser_page() as page:
        firsts = []
        for key, heading in PAGES.items():
            loads = [first_visit(page.context.browser, page_link(url, key, "30d"), heading)
                     for _ in range(repeat)]
            firsts.append((key, statistics.median(f for f, _, _ in loads), *summary([(d, s) for _, d, s in loads])))
    rows = []
    for username, pages in ROLE_PAGES.items():
        with browser_page() as page:
            page.goto(url)
            sign_in(page, username, f"{username}-demo")
            signed_in(page)  # each load below is a new session resumed from the cookie
            for key in pages:
                for range_ in ("30d", "90d"):
                    link = page_link(url, key, range_)
                    rows.append((username, key, range_, *summary([timed_load(page, link, PAGES[key])
                                                                  for _ in range(repeat)])))
    return rows, firsts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "data"
        started = time.perf_counter()
        counts = build_store(folder, args.days)
        print(f"store: {counts} records per model, built in {time.perf_counter() - started:.0f} s")
        check = open_store_at(folder)
        print(f"incidents: {len(check.incidents.list())}")
        check.close()
        env = {"FAIRWATCH_DATA_DIR": str(folder), "FAIRWATCH_SECRETS_FILE": str(Path(tmp) / "none.toml"),
               "FAIRWATCH_SCHEDULER": "off"}
        with running_app(env) as url:
            with browser_page() as page:
                ref = statistics.median(timed_load(page, url, "Sign in to Fairwatch")[1] for _ in range(args.repeat))
            rows, firsts = visits(url, args.repeat)
    print(f"reference (anonymous sign-in page): median {ref:.2f} s")
    print(f"\n{'role':<11} {'page':<10} {'range':<6} {'drawn s':>8} {'settled s':>10} {'worst s':>8} {'x ref':>6}")
    for username, key, range_, drawn, median, worst in rows:
        print(f"{username:<11} {key:<10} {range_:<6} {drawn:>8.2f} {median:>10.2f} {worst:>8.2f} {median / ref:>6.1f}")
    print(f"\nall pages: heading drawn in {statistics.median(r[3] for r in rows):.2f} s (median); settled in "
          f"{statistics.median(r[4] for r in rows):.2f} s (median), worst {max(r[5] for r in rows):.2f} s "
          f"(reference {ref:.2f} s)")
    print(f"\nfirst visits (a new browser profile follows a link to the page, as admin, 30d; after sign-in: "
          f"from the click):\n{'page':<10} {'sign-in settled s':>18} {'drawn s':>8} {'settled s':>10} {'worst s':>8}")
    for key, form, drawn, median, worst in firsts:
        print(f"{key:<10} {form:>18.2f} {drawn:>8.2f} {median:>10.2f} {worst:>8.2f}")
    print(f"first visits: sign-in page settled in {statistics.median(r[1] for r in firsts):.2f} s (median); the page "
          f"after sign-in settled in {statistics.median(r[3] for r in firsts):.2f} s (median), worst "
          f"{max(r[4] for r in firsts):.2f} s")

if __name__ == "__main__":
    main()
