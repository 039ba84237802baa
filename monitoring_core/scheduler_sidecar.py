"""The scheduler as a sidecar thread of the Streamlit server (``app.py`` imports this).

``st.cache_resource`` keeps one scheduler for every browser session and rerun of the
process, and :func:`monitoring_core.scheduler.process_scheduler` makes sure of it even if
the cache is cleared (``on_release`` stops the old one first). ``FAIRWATCH_SCHEDULER=off``
leaves the scheduled jobs to ``python -m monitoring_core scheduler``; Analyze Now still
runs in the app's worker pool.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from .config import Settings
from .scheduler import DriftScheduler, process_scheduler, stop_process_scheduler


@st.cache_resource(show_spinner=False, on_release=stop_process_scheduler)
def sidecar(_store_factory: Callable[[], object], _settings: Settings) -> DriftScheduler:
    """The process's scheduler, started on first use and stopped at exit.

    Parameters
    ----------
    _store_factory : callable
        Opens the store the scheduler uses (called once). Underscored: Streamlit does not
        hash it, so every session gets the same scheduler.
    _settings : Settings
        ``scheduler`` (on/off) and ``scheduler_workers``.
    """
    return process_scheduler(_store_factory, _settings)
