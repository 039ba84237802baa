"""Fairness Monitor: is the model still fair to every group, and is a gap real or noise?"""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

import widgets
from monitoring_core import views
from monitoring_core.auth import Permission
from monitoring_core.models import metric_registry as reg

PAGE = "fairness"
STATUS_BADGES = {"ok": ":green-badge[within thresholds]", "inconclusive": ":gray-badge[inconclusive]"}

st.title("Fairness Monitor")
selection = widgets.selected()
found = widgets.judged_runs(selection, Permission.VIEW_FAIRNESS)
latest = found.latest
table = views.fairness_table(latest)
if table.empty:
    st.info(f"**{selection.model_id}** has no protected attribute configured, so fairness is not measured. "
            "Register it with `--protected ATTRIBUTE`.", icon=":material/info:")
    st.stop()
st.caption(f"{found.model.display_name} · positive class `{found.model.monitoring.positive_label}` · latest analysis "
           f"ending {latest.analysis_period.end:%Y-%m-%d %H:%M} UTC · {latest.sample_count:,} predictions")
st.markdown("A gap counts as a breach only when it is both beyond its threshold and statistically established "
            "(Holm-adjusted p-value below the model's alpha); a gap the data do not yet establish is "
            "**inconclusive**, shown with its p-value, and raises no alarm.")


def badge(status: str) -> str:
    return STATUS_BADGES.get(status, widgets.severity_badge(status) if status in widgets.SEVERITY_COLOURS
                             else f":gray-badge[{status}]")


def rate_chart(rates, rate: str, title: str) -> go.Figure:
    shown = rates[rates[f"{rate}_count"] > 0]
    figure = px.bar(shown, x="group", y=rate, color="affected",
                    color_discrete_map={True: widgets.SEVERITY_COLOURS["CRITICAL"], False: "#1565c0"},
                    error_y=shown[f"{rate}_ci_high"] - shown[rate], error_y_minus=shown[rate] - shown[f"{rate}_ci_low"],
                    labels={rate: title, "group": "", "affected": "affected"}, range_y=[0, 1])
    figure.update_layout(height=300, margin=dict(l=10, r=10, t=30, b=10), title=f"{title} (95% CI)")
    return figure


for attribute in views.attributes(latest):
    rows = table[table["attribute"] == attribute]
    worst = max(rows["severity"], key=lambda s: list(widgets.SEVERITY_COLOURS).index(s))
    with st.container(border=True):
        st.subheader(f"{attribute} {widgets.severity_badge(worst)}")
        for column, (_, row) in zip(st.columns(len(rows)), rows.iterrows()):
            with column:
                st.metric(row["metric"], widgets.fmt(row["value"]),
                          help=f"warning {widgets.fmt(row['warning'], 2)}, critical {widgets.fmt(row['critical'], 2)}")
                st.markdown(badge(row["status"]))
                if pd.notna(row["p_value_adjusted"]):
                    st.caption(f"p (Holm) = {row['p_value_adjusted']:.2g} · smallest group "
                               f"{widgets.fmt(row['smallest_group_count'], 0)}")
                if pd.notna(row["affected_groups"]):
                    st.caption(f"Affected: {row['affected_groups']}")
                if pd.notna(row["detail"]) and row["status"].startswith("unavailable"):
                    st.caption(row["detail"])
        rates = views.group_rates(latest, attribute)
        left, right = st.columns(2)
        left.plotly_chart(rate_chart(rates, "selection_rate", "Selection rate"), width="stretch",
                          key=f"sr-{attribute}")
        if rates["true_positive_rate_count"].sum() > 0:
            right.plotly_chart(rate_chart(rates, "true_positive_rate", "True-positive rate"), width="stretch",
                               key=f"tpr-{attribute}")
        else:
            right.info("No labelled positives in this window: the true-positive rate is not measured.",
                       icon=":material/info:")
        thin = rates.loc[rates["too_little_data"], "group"].tolist()
        if thin:
            st.warning(f"Too little data to judge: {', '.join(thin)} (left out of the comparison).",
                       icon=":material/data_alert:")

st.subheader("Per group")
all_rates = [views.group_rates(latest, a).assign(attribute=a) for a in views.attributes(latest)]
groups = pd.concat(all_rates, ignore_index=True)
st.dataframe(groups, hide_index=True, width="stretch")
widgets.export_button(groups, PAGE, "groups", f"{selection.model_id}-fairness-groups.csv",
                      model_id=selection.model_id, record_id=latest.record_id)

st.subheader("Metrics")
st.dataframe(table, hide_index=True, width="stretch")
widgets.export_button(table, PAGE, "metrics", f"{selection.model_id}-fairness.csv", model_id=selection.model_id,
                      record_id=latest.record_id)

st.subheader(f"History over the {selection.range}")
trend = views.fairness_trend(found.records)
metric = st.segmented_control("Metric", [m.display_name for m in views.FAIRNESS_METRICS],
                              default=reg.DISPARATE_IMPACT.display_name, key="fw_fairness_metric") \
    or reg.DISPARATE_IMPACT.display_name
shown = trend[trend["metric"] == metric]
figure = px.line(shown, x="period_end", y="value", color="attribute", markers=True,
                 labels={"period_end": "", "value": metric})
if metric == reg.DISPARATE_IMPACT.display_name:
    figure.add_hline(y=0.8, line_dash="dash", line_color="#c62828", annotation_text="four-fifths rule (0.80)")
else:
    critical = table.loc[table["metric"] == metric, "critical"].dropna()
    if not critical.empty:
        figure.add_hline(y=float(critical.iloc[0]), line_dash="dash", line_color="#c62828", annotation_text="CRITICAL")
figure.update_layout(height=320, margin=dict(l=10, r=10, t=20, b=10))
st.plotly_chart(figure, width="stretch")
widgets.export_button(trend, PAGE, "history", f"{selection.model_id}-fairness-history.csv",
                      model_id=selection.model_id)
