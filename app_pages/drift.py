"""Drift Overview: is the model still seeing the data it was approved on?"""

from __future__ import annotations

from datetime import timedelta

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

import widgets
from monitoring_core import analysis, auth, scheduler, views
from monitoring_core.auth import Permission
from monitoring_core.errors import Conflict
from monitoring_core.models.schedule import ExecutionStatus

PAGE = "drift"
ANALYZE_WINDOW = timedelta(hours=24)

st.title("Drift Overview")
selection = widgets.selected()
actor = widgets.actor()


def analyze_now(model_id: str) -> None:
    """Hand the run to the scheduler's worker pool and follow it until it lands."""
    window = analysis.Window.last(ANALYZE_WINDOW)
    try:
        handle = scheduler.analyze_now(model_id, window, actor)
    except Conflict as refused:
        st.warning(f"Not started: {refused}", icon=":material/hourglass:")
        return
    with st.status(f"Analysing {model_id} over {window}…", expanded=True) as status:
        bar = st.progress(0.0, text="queued")
        while not handle.wait(timeout=0.2):
            bar.progress(min(handle.progress, 1.0), text=handle.message)
        bar.progress(1.0, text=handle.message)
        if handle.state is ExecutionStatus.COMPLETED:
            status.update(label=f"Analysis finished: {handle.message}", state="complete", expanded=False)
        else:
            status.update(label=f"Analysis {handle.state.value.lower()}: {handle.error or handle.message}",
                          state="error")
    st.session_state["fw_analysed"] = handle.record_id


if auth.can(actor, Permission.TRIGGER_ANALYSIS):
    if st.button("Analyze Now", icon=":material/play_arrow:", type="primary",
                 help=f"Analyse the last {ANALYZE_WINDOW.total_seconds() / 3600:.0f} hours now"):
        analyze_now(selection.model_id)

found = widgets.judged_runs(selection, Permission.VIEW_DRIFT)
latest, previous = found.latest, found.previous
if found.latest_skipped is not None:
    st.warning(f"The newest run judged nothing: {found.latest_skipped.reason}", icon=":material/warning:")
st.caption(f"{found.model.display_name} · latest analysis of {latest.analysis_period.start:%Y-%m-%d %H:%M} – "
           f"{latest.analysis_period.end:%Y-%m-%d %H:%M} UTC · {latest.sample_count:,} predictions · "
           f"{len(found.records)} runs in the {selection.range}")

# -- the score: gauge and trend ------------------------------------------------------------------
threshold = latest.aggregated_score_threshold
critical_line = threshold.critical if threshold else 0.30
gauge_col, trend_col = st.columns([1, 2])
with gauge_col:
    gauge = go.Figure(go.Indicator(
        mode="gauge+number+delta", value=latest.aggregated_score,
        delta={"reference": previous.aggregated_score, "increasing": {"color": widgets.SEVERITY_COLOURS["CRITICAL"]},
               "decreasing": {"color": widgets.SEVERITY_COLOURS["INFO"]}} if previous else None,
        number={"valueformat": ".2f"}, title={"text": "Aggregated drift score"},
        gauge={"axis": {"range": [0, 1]}, "bar": {"color": widgets.SEVERITY_COLOURS[str(latest.max_severity)]},
               "threshold": {"line": {"color": "#c62828", "width": 3}, "value": critical_line}}))
    gauge.update_layout(height=260, margin=dict(l=20, r=20, t=50, b=10))
    st.plotly_chart(gauge, width="stretch")
    st.markdown(f"Run severity {widgets.severity_badge(latest.max_severity)} · CRITICAL line {critical_line:.2f}")
with trend_col:
    trend = views.score_trend(found.records)
    figure = px.line(trend, x="period_end", y="aggregated_score", markers=True,
                     labels={"period_end": "", "aggregated_score": "aggregated drift score"})
    figure.add_hline(y=critical_line, line_dash="dash", line_color="#c62828", annotation_text="CRITICAL")
    figure.update_layout(height=300, margin=dict(l=10, r=10, t=30, b=10), yaxis_range=[0, 1])
    st.plotly_chart(figure, width="stretch")

# -- metric cards ----------------------------------------------------------------------------------
for column, card in zip(st.columns(len(views.CARD_METRICS)), views.metric_cards(latest, previous)):
    with column.container(border=True):
        st.metric(f"{card.title} · worst: {card.feature or '—'}", widgets.fmt(card.value),
                  delta=None if card.change is None else f"{card.change:+.3f}", delta_color="inverse")
        st.markdown(f"{widgets.severity_badge(card.severity)} · warning {widgets.fmt(card.warning, 2)} · "
                    f"critical {widgets.fmt(card.critical, 2)}")
        if card.note:
            st.caption(card.note)

# -- per feature -----------------------------------------------------------------------------------
st.subheader("Features")
features = views.feature_table(latest)
st.dataframe(features, hide_index=True, width="stretch", column_config={
    column: st.column_config.NumberColumn(format="%.4f") for column in views.FEATURE_COLUMNS.values()})
widgets.export_button(features, PAGE, "features", f"{selection.model_id}-features.csv",
                      model_id=selection.model_id, record_id=latest.record_id)

names = list(latest.distributions.features)
if names:
    feature = st.selectbox("Distribution of", names, key="fw_feature")
    shares = views.distribution_frame(latest.distributions.features[feature])
    chart = px.bar(shares, x="bin", y="share", color="source", barmode="group",
                   color_discrete_map={"baseline": "#90a4ae", "current": "#1565c0"},
                   labels={"bin": feature, "share": "share of predictions", "source": ""})
    chart.update_layout(height=320, margin=dict(l=10, r=10, t=20, b=10))
    st.plotly_chart(chart, width="stretch")
else:
    st.caption("No feature distribution in this record (it was written before records kept them).")

st.subheader("Runs in range")
st.dataframe(trend, hide_index=True, width="stretch")
widgets.export_button(trend, PAGE, "runs", f"{selection.model_id}-drift-runs.csv", model_id=selection.model_id)
