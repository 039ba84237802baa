"""Fairwatch: the Streamlit app. Run with ``streamlit run app.py``.

This file opens the store once per process, seeds the demo on a first start, and builds
the navigation; each page in ``pages/`` is a short script that calls ``monitoring_core``
and draws.
"""

from __future__ import annotations

import streamlit as st

from monitoring_core.config import get_settings
from monitoring_core.errors import FairwatchError
from monitoring_core.scheduler_sidecar import sidecar
from monitoring_core.seeding import needs_demo, seed_demo_once
from monitoring_core.storage import open_store

st.set_page_config(page_title="Fairwatch", page_icon=":material/monitoring:", layout="wide")


@st.cache_resource(show_spinner="Opening the store…")
def get_store():
    return open_store(get_settings())


def main() -> None:
    try:
        settings = get_settings()
        store = get_store()
    except FairwatchError as exc:
        st.error(f"**Fairwatch cannot start.** {exc}", icon=":material/error:")
        st.stop()
    if needs_demo(store, settings):
        with st.status("First start: creating the demo models…", expanded=True) as status:
            bar = st.progress(0.0)
            seed_demo_once(store, settings, progress=lambda fraction, message: bar.progress(fraction, text=message))
            status.update(label="Demo models ready", state="complete", expanded=False)
    st.session_state["store"] = store
    # The scheduler runs in this process once, whatever the number of sessions and reruns.
    sidecar(lambda: open_store(settings), settings)
    navigation = st.navigation([
        st.Page("pages/models.py", title="Models", icon=":material/inventory_2:", default=True),
    ])
    st.sidebar.caption(f"Store: {store.description}")
    navigation.run()


main()
