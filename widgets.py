"""What every page of the app shares: the signed-in actor, the model and time-range
controls (kept in the URL), cached reads that an analysis invalidates, audited CSV
exports and severity colours. Drawing only; the rules live in ``monitoring_core``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
import streamlit as st

from monitoring_core import auth, clock, views
from monitoring_core.auth import Permission
from monitoring_core.errors import InvalidInput
from monitoring_core.models.common import Actor

SEVERITY_COLOURS = {"INFO": "#2e7d32", "WARNING": "#ef6c00", "CRITICAL": "#c62828"}
SEVERITY_BADGES = {"INFO": ":green-badge[INFO]", "WARNING": ":orange-badge[WARNING]",
                   "CRITICAL": ":red-badge[CRITICAL]"}
RANGE_LABELS = {"24h": "24 hours", "7d": "7 days", "30d": "30 days", "90d": "90 days", views.CUSTOM: "Custom"}


def store():
    return st.session_state["store"]


def actor() -> Actor:
    return st.session_state["actor"]


def page_spec(key: str) -> views.PageSpec:
    return next(page for page in views.PAGES if page.key == key)


@dataclass(frozen=True)
class Selection:
    model_id: str | None
    range: views.TimeRange


def _minute(now: datetime) -> datetime:
    # Ranges end on the minute, so reruns within a minute hit the same cache entries.
    return now.replace(second=0, microsecond=0) + timedelta(minutes=1)


LINK, LINK_READ = "fw_link", "fw_link_read"


def remember_link() -> None:
    """Keep the query string the session was opened with (a link from an alert): the
    sign-in's reruns may drop it from the URL before the controls first read it."""
    if LINK not in st.session_state:
        st.session_state[LINK] = st.query_params.to_dict()


def controls(model_ids: list[str]) -> Selection:
    """The sidebar's model selector and time range. The first run of a session takes them
    from the link it was opened with; afterwards the URL follows the widgets."""
    params = st.session_state.get(LINK) or st.query_params.to_dict()
    if LINK_READ not in st.session_state:
        st.session_state[LINK_READ] = True
        if "incident" in params and "incident" not in st.query_params:
            st.query_params["incident"] = params["incident"]
        if (wanted := params.get("model")) and wanted not in model_ids:
            st.sidebar.warning(f"Model {wanted!r} from the link is not monitored here.")
    # Each widget's starting value is passed as its default, never written into session state
    # first: Streamlit sends a value written that way once, with the run that wrote it, and a
    # rerun that interrupts that run (the sign-in cookie arriving) would leave the browser
    # showing the first option while the pages read the other.
    model = st.session_state.get("fw_model", params.get("model"))
    label = st.session_state.get("fw_range", params.get("range"))
    label = label if label in RANGE_LABELS else views.DEFAULT_RANGE
    with st.sidebar:
        model_id = st.selectbox("Model", model_ids, index=_position(model_ids, model), key="fw_model",
                                placeholder="No model yet")
        label = st.selectbox("Time range", list(RANGE_LABELS), index=list(RANGE_LABELS).index(label),
                             key="fw_range", format_func=RANGE_LABELS.get)
        dates = st.date_input("From – to", value=_link_dates(params), key="fw_dates") if label == views.CUSTOM else None
    try:
        if label == views.CUSTOM:
            if not isinstance(dates, tuple) or len(dates) != 2:
                raise InvalidInput("choose the last day of the custom range as well")
            chosen = views.time_range(label, dates[0], dates[1])
        else:
            chosen = views.time_range(label, now=_minute(clock.now()))
    except InvalidInput as exc:
        st.sidebar.error(str(exc))
        chosen = views.time_range(views.DEFAULT_RANGE, now=_minute(clock.now()))
    _to_url(model_id, chosen)
    return Selection(model_id, chosen)


def _position(options: list[str], wanted: str | None) -> int | None:
    if not options:
        return None
    return options.index(wanted) if wanted in options else 0


def _link_dates(params: dict[str, str]) -> tuple:
    """The custom range of the link (its first and last day), else the last 30 days."""
    if "fw_dates" in st.session_state:
        return st.session_state["fw_dates"]
    try:
        start, end = views.parse_date(params.get("start"), "start"), views.parse_date(params.get("end"), "end")
    except InvalidInput as exc:
        st.sidebar.warning(str(exc))
        start = end = None
    today = clock.now().date()
    return start or today - timedelta(days=30), end or today


def _to_url(model_id: str | None, chosen: views.TimeRange) -> None:
    wanted = {"model": model_id, "range": chosen.label}
    if chosen.label == views.CUSTOM:
        wanted |= {"start": f"{chosen.start:%Y-%m-%d}", "end": f"{chosen.end - timedelta(days=1):%Y-%m-%d}"}
    wanted = {k: v for k, v in wanted.items() if v}
    for stale in set(st.query_params) - set(wanted) - {"incident"}:
        del st.query_params[stale]
    for key, value in wanted.items():
        if st.query_params.get(key) != value:
            st.query_params[key] = value


def latest_record_id(model_id: str) -> str | None:
    """The model's newest record: part of every cache key, so a new analysis invalidates them."""
    latest = store().records.latest(model_id)
    return latest.record_id if latest else None


@st.cache_resource(ttl=3600, max_entries=32, show_spinner=False)
def _history(_store, _actor, store_key: str, model_id: str, start: datetime, end: datetime | None, _until: datetime,
             label: str, latest: str | None, _permission: Permission) -> views.History:
    # cache_resource: records are never changed after they are written, so sessions may share them
    # without a copy. An entry holds about 0.2 MB a run, so it is keyed by what its records depend
    # on only: not the role (the permission is checked at every read, below) and, for a range that
    # ends now, not its end (a run that lands changes ``latest``).
    return views.history(_store, _actor, model_id, views.TimeRange(label, start, _until), _permission)


def history(selection: Selection, permission: Permission) -> views.History:
    the_actor, chosen = actor(), selection.range
    auth.require(the_actor, permission)
    ends_now = chosen.label != views.CUSTOM
    # A range that ends now starts a minute later each minute: read from the hour before, so one
    # entry serves the hour, and cut the exact range from it.
    start = chosen.start.replace(minute=0, second=0, microsecond=0) if ends_now else chosen.start
    found = _history(store(), the_actor, store().description, selection.model_id, start,
                     None if ends_now else chosen.end, chosen.end, chosen.label,
                     latest_record_id(selection.model_id), permission)
    return found.within(chosen)


def export_button(frame: pd.DataFrame, page: str, table: str, file_name: str, *, label: str = "Export CSV",
                  **shown: str | None) -> None:
    """A CSV download of ``frame``; each download is audited (who exported which table)."""
    st.download_button(label, frame.to_csv(index=False), file_name=file_name, mime="text/csv",
                       icon=":material/download:", key=f"export-{page}-{table}",
                       on_click=_record_export, args=(page, table, len(frame)), kwargs=shown)


def _record_export(page: str, table: str, rows: int, **shown: str | None) -> None:
    views.record_export(store(), actor(), page_spec(page), table, rows, **shown)


def selected() -> Selection:
    """The sidebar's selection; the page stops with a hint when no model is monitored yet."""
    selection = st.session_state["selection"]
    if selection.model_id is None:
        _no_model_yet()
    return selection


def judged_runs(selection: Selection, permission: Permission) -> views.History:
    """The completed runs of the selection; the page stops, saying why, when there are none."""
    found = history(selection, permission)
    if found.latest is None:
        _no_records(selection, found)
        st.stop()
    return found


def _no_model_yet() -> None:
    st.info("No model is monitored yet. Register one with `python -m monitoring_core model register` "
            "and log predictions with the SDK or `python -m monitoring_core ingest`.", icon=":material/info:")
    st.stop()


def _no_records(selection: Selection, found: views.History) -> None:
    """Explain an empty history: no baseline, no run yet, or none in this range."""
    model_id = selection.model_id
    if store().baselines.active(model_id) is None:
        st.warning(f"**{model_id}** has no active baseline, so there is nothing to compare against yet. Create one "
                   f"with `python -m monitoring_core baseline create --model-id {model_id} --last 7d`.", icon=":material/warning:")
    elif found.latest_skipped is not None:
        st.warning(f"The latest run of **{model_id}** judged nothing: {found.latest_skipped.reason}",
                   icon=":material/warning:")
    elif store().records.latest(model_id, status="completed") is None:
        st.info(f"**{model_id}** has not been analysed yet.", icon=":material/info:")
    else:
        st.info(f"No completed analysis of **{model_id}** in the {selection.range}. Choose a longer time range.",
                icon=":material/info:")


def severity_badge(severity: str) -> str:
    return SEVERITY_BADGES.get(str(severity), str(severity))


def fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None or pd.isna(value) else f"{value:.{digits}f}"
