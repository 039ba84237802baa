"""Model Health: what the model outputs, how sure it is, and whether it is still right."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

import widgets
from monitoring_core import views
from monitoring_core.auth import Permission

PAGE = "health"
SIDES = {"baseline": "#90a4ae", "current": "#1565c0"}

st.title("Model Health")
selection = widgets.selected()
found = widgets.judged_runs(selection, Permission.VIEW_MODEL_HEALTH)
latest = found.latest
drift = latest.metrics.model_drift
trend = views.health_trend(found.records)
st.caption(f"{found.model.display_name} · latest analysis ending {latest.analysis_period.end:%Y-%m-%d %H:%M} UTC · "
           f"{latest.sample_count:,} predictions")


def bars(histogram, label: str):
    figure = px.bar(views.distribution_frame(histogram), x="bin", y="share", color="source", barmode="group",
                    color_discrete_map=SIDES, labels={"bin": label, "share": "share of predictions", "source": ""})
    figure.update_layout(height=300, margin=dict(l=10, r=10, t=20, b=10))
    return figure


left, right = st.columns(2)
with left:
    st.subheader("Predicted classes")
    if latest.distributions.predicted_classes:
        st.plotly_chart(bars(latest.distributions.predicted_classes, "predicted class"), width="stretch")
    shift = drift.prediction_distribution_shift
    st.markdown(f"Distribution shift {widgets.fmt(shift.value)} {widgets.severity_badge(shift.severity)}"
                + (f" · {shift.detail}" if not shift.available else ""))
with right:
    st.subheader("Confidence")
    if latest.distributions.confidence:
        st.plotly_chart(bars(latest.distributions.confidence, "confidence"), width="stretch")
    else:
        st.info("The model logs no confidence scores.", icon=":material/info:")

st.subheader("Accuracy")
accuracy = drift.accuracy_drop
labelled_share = accuracy.labelled_count / latest.sample_count if latest.sample_count else 0.0
if accuracy.current_accuracy is None:
    st.info(f"No ground truth has arrived for this window yet ({accuracy.labelled_count:,} of "
            f"{latest.sample_count:,} predictions labelled): accuracy cannot be measured. Record labels with "
            "a `ground_truth` column in the ingested file (or `store.predictions.record_ground_truth`).", icon=":material/info:")
else:
    a, b, c = st.columns(3)
    a.metric("Current accuracy", widgets.fmt(accuracy.current_accuracy),
             delta=None if accuracy.baseline_accuracy is None
             else f"{accuracy.current_accuracy - accuracy.baseline_accuracy:+.3f} vs baseline")
    b.metric("Accuracy drop", widgets.fmt(accuracy.value))
    b.markdown(widgets.severity_badge(accuracy.severity) + (f" · {accuracy.detail}" if not accuracy.available else ""))
    c.metric("Labelled", f"{labelled_share:.0%}", help=f"{accuracy.labelled_count:,} labelled predictions")
labelled = trend.dropna(subset=["current_accuracy"])
if not labelled.empty:
    figure = px.line(labelled, x="period_end", y=["current_accuracy", "baseline_accuracy"], markers=True,
                     labels={"period_end": "", "value": "accuracy", "variable": ""})
    figure.update_layout(height=280, margin=dict(l=10, r=10, t=20, b=10))
    st.plotly_chart(figure, width="stretch")

left, right = st.columns(2)
with left:
    st.subheader("Output entropy")
    entropy = drift.output_entropy_change
    st.markdown(f"Change {widgets.fmt(entropy.value)} {widgets.severity_badge(entropy.severity)}"
                + (f" · {entropy.detail}" if not entropy.available else ""))
    figure = px.line(trend, x="period_end", y=["current_entropy", "baseline_entropy"], markers=True,
                     labels={"period_end": "", "value": "mean entropy", "variable": ""})
    figure.update_layout(height=280, margin=dict(l=10, r=10, t=20, b=10))
    st.plotly_chart(figure, width="stretch")
with right:
    st.subheader("Prediction volatility")
    volatility = drift.prediction_volatility
    st.markdown(f"Net of sampling noise {widgets.fmt(volatility.value)} {widgets.severity_badge(volatility.severity)}"
                + (f" · {volatility.detail}" if not volatility.available else ""))
    figure = px.line(trend, x="period_end", y="prediction_volatility", markers=True,
                     labels={"period_end": "", "prediction_volatility": "volatility"})
    figure.update_layout(height=280, margin=dict(l=10, r=10, t=20, b=10))
    st.plotly_chart(figure, width="stretch")

st.subheader("Runs in range")
st.dataframe(trend, hide_index=True, width="stretch")
widgets.export_button(trend, PAGE, "runs", f"{selection.model_id}-health.csv", model_id=selection.model_id)
