"""Models: what Fairwatch monitors, and how much it has seen."""

from __future__ import annotations

from datetime import timedelta

import plotly.express as px
import streamlit as st

import widgets
from monitoring_core import catalog, clock
from monitoring_core.errors import FairwatchError

PAGE = "models"
store = widgets.store()


@st.cache_data(ttl=60, show_spinner=False)
def overview(_store, key: str):
    return catalog.models_overview(_store)


@st.cache_data(ttl=60, show_spinner=False)
def volume(_store, key: str, model_id: str, days: int):
    return catalog.daily_volume(_store, model_id, clock.now() + timedelta(minutes=1), days)


st.title("Monitored models")
try:
    models = overview(store, store.description)
except FairwatchError as exc:
    st.error(str(exc))
    st.stop()

if models.empty:
    st.info("No predictions yet. Log them with the SDK or run "
            "`python -m monitoring_core ingest FILE --model-id ID`.")
    st.stop()

st.dataframe(models, hide_index=True, width="stretch", column_config={
    "predictions": st.column_config.NumberColumn(format="localized"),
    "labelled": st.column_config.NumberColumn(format="localized"),
    "first_prediction": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
    "last_prediction": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
})
widgets.export_button(models, PAGE, "models", "fairwatch-models.csv")

model_id = st.session_state["selection"].model_id
st.subheader(f"Daily volume of {model_id}")
days = st.segmented_control("Period", [7, 30, 60], default=60, format_func=lambda d: f"{d} days") or 60
daily = volume(store, store.description, model_id, days)
figure = px.bar(daily, x="day", y=["predictions", "labelled"], barmode="overlay",
                labels={"value": "predictions per day", "day": "", "variable": ""})
st.plotly_chart(figure, width="stretch")
widgets.export_button(daily, PAGE, "daily-volume", f"{model_id}-daily-volume.csv", label="Export daily volume (CSV)",
                      model_id=model_id)
