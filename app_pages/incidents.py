"""Incident Timeline: what broke, since when, and what is being done about it."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

import widgets
from monitoring_core import auth, clock, incidents, views
from monitoring_core.auth import Permission
from monitoring_core.errors import Conflict, Forbidden, InvalidInput, NotFound
from monitoring_core.models.common import Severity
from monitoring_core.models.incidents import IncidentStatus, ResolutionCategory, RootCauseCategory

PAGE = "incidents"

st.title("Incident Timeline")
selection = st.session_state["selection"]
store, actor = widgets.store(), widgets.actor()
may_change = auth.can(actor, Permission.MANAGE_INCIDENTS)
if not may_change:
    st.caption("Read-only: your role may look at every incident and change none.")

with st.expander("Filters", expanded=True, icon=":material/filter_list:"):
    a, b, c, d = st.columns(4)
    all_models = a.toggle("All models", key="fw_inc_all")
    severities = b.multiselect("Severity", [s.value for s in Severity], default=["WARNING", "CRITICAL"],
                               key="fw_inc_sev")
    statuses = c.multiselect("Status", [s.value for s in IncidentStatus], key="fw_inc_status",
                             placeholder="any status")
    categories = d.multiselect("Category", views.INCIDENT_CATEGORIES, key="fw_inc_cat", placeholder="any category")
    assignee = st.text_input("Assigned to", key="fw_inc_assignee", placeholder="anyone")
found = views.list_incidents(store, actor, model_id=None if all_models else selection.model_id,
                             within=selection.range, severities=severities, statuses=statuses,
                             categories=categories, assignee=assignee.strip() or None)
table = views.incident_table(found)
scope = "all models" if all_models else selection.model_id
if table.empty:
    st.info(f"No incident of {scope} matches these filters in the {selection.range}.", icon=":material/task_alt:")
else:
    live = table["status"].isin([s.value for s in incidents.LIVE])
    a, b, c, d = st.columns(4)
    a.metric("Incidents", len(table))
    b.metric("Open or investigating", int(live.sum()))
    c.metric("Critical and live", int((live & (table["severity"] == "CRITICAL")).sum()))
    d.metric("SLA breached", int((table["acknowledge_breached"] | table["respond_breached"]).sum()))

    timeline = views.timeline_frame(table)
    figure = px.timeline(timeline, x_start="created_at", x_end="until", y="label", color="severity",
                         color_discrete_map=widgets.SEVERITY_COLOURS,
                         hover_data=["incident_id", "status", "model_id", "metrics"], labels={"label": ""})
    figure.update_xaxes(range=[selection.range.start, min(selection.range.end, clock.now())])
    figure.update_yaxes(autorange="reversed", showticklabels=len(timeline) <= 25)
    figure.update_layout(height=min(120 + 28 * len(timeline), 520), margin=dict(l=10, r=10, t=20, b=10))
    st.plotly_chart(figure, width="stretch")

    event = st.dataframe(table, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row",
                         key="fw_inc_table", column_config={
                             "created_at": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
                             "acknowledged_at": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
                             "resolved_at": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")})
    widgets.export_button(table, PAGE, "incidents", f"fairwatch-incidents-{scope}.csv", model_id=selection.model_id)
    rows = event.selection.rows if event else []
    if rows:
        st.query_params["incident"] = table.iloc[rows[0]]["incident_id"]

# -- the detail of one incident (selected in the table, or named in the URL) ------------------
incident_id = st.query_params.get("incident")
if not incident_id:
    st.caption("Select a row to see the incident's detail and act on it.")
    st.stop()
try:
    incident = store.incidents.get(incident_id)
except NotFound:
    st.warning(f"No incident {incident_id!r} (from the link).", icon=":material/warning:")
    st.stop()

st.divider()
st.subheader(f"{incident.incident_id} {widgets.severity_badge(incident.severity)} · {incident.status}")
figures = incidents.sla(incident)
a, b, c = st.columns(3)
a.metric("Minutes to acknowledge", f"{figures.acknowledge_elapsed_minutes:,.0f}",
         help=f"target {figures.acknowledge_target_minutes:.0f} min (policy 3.1)")
a.markdown(":red-badge[SLA breached]" if figures.acknowledge_breached else ":green-badge[within SLA]")
b.metric("Minutes to first response", f"{figures.investigate_elapsed_minutes:,.0f}",
         help=f"target {figures.investigate_target_minutes:.0f} min (policy 3.1)")
b.markdown(":red-badge[SLA breached]" if figures.investigate_breached else ":green-badge[within SLA]")
c.metric("Minutes to resolve", "—" if incident.time_to_resolve_minutes is None
         else f"{incident.time_to_resolve_minutes:,.0f}")
c.caption(f"Model {incident.model_id} · assigned to {incident.assigned_to or 'nobody'} · seen in "
          f"{incident.occurrence_count} run(s)" + (" · recovered in the latest run" if incident.recovered else ""))
st.markdown("**Metrics**")
st.dataframe([m.model_dump(mode="json") for m in incident.metrics_triggered], width="stretch")
if incident.affected_groups:
    st.markdown(f"**Affected groups:** {', '.join(incident.affected_groups)}")
st.markdown(f"**Linked records:** {', '.join(incident.record_ids) or '—'}")
if incident.root_cause_category or incident.resolution_notes:
    st.markdown(f"**Root cause:** {incident.root_cause_category} {incident.root_cause or ''}  \n"
                f"**Resolution:** {incident.resolution_category}: {incident.resolution_notes}")
st.markdown("**Response actions**")
actions = views.incident_actions(incident)
st.dataframe(actions, hide_index=True, width="stretch")
widgets.export_button(actions, PAGE, "actions", f"{incident.incident_id}-actions.csv", model_id=incident.model_id,
                      incident_id=incident.incident_id)

if not may_change:
    st.stop()


def act(step, *args, done: str, **kwargs) -> None:
    """Run a lifecycle step of the core; show its refusal as it gives it."""
    try:
        step(store, incident.incident_id, *args, actor=actor, **kwargs)
    except (Conflict, Forbidden, InvalidInput) as refused:
        st.session_state["fw_inc_message"] = ("error", str(refused))
    else:
        st.session_state["fw_inc_message"] = ("success", done)


message = st.session_state.pop("fw_inc_message", None)
if message:
    getattr(st, message[0])(message[1])

st.markdown("**Act**")
live_now = incident.status in incidents.LIVE
acknowledge_tab, assign_tab, note_tab, resolve_tab, risk_tab = st.tabs(
    ["Acknowledge", "Assign", "Add a note", "Resolve", "Accept risk"])
with acknowledge_tab:
    if incident.status == IncidentStatus.OPEN:
        with st.form("acknowledge"):
            notes = st.text_input("Notes (optional)")
            if st.form_submit_button("Acknowledge", type="primary"):
                act(incidents.acknowledge, notes=notes or None, done=f"{incident.incident_id} acknowledged")
                st.rerun()
    else:
        st.caption("Only an open incident can be acknowledged.")
with assign_tab:
    with st.form("assign"):
        who = st.text_input("Assign to (user id)", value=incident.assigned_to or "")
        if st.form_submit_button("Assign", disabled=not live_now):
            act(incidents.assign, who.strip(), done=f"{incident.incident_id} assigned to {who.strip()}")
            st.rerun()
with note_tab:
    with st.form("note"):
        action = st.text_input("Action taken", placeholder="e.g. checked the upstream feature pipeline")
        notes = st.text_area("Notes")
        if st.form_submit_button("Add", disabled=not live_now):
            act(incidents.add_action, action.strip(), notes=notes or None, done="action recorded")
            st.rerun()
with resolve_tab:
    if incident.status == IncidentStatus.INVESTIGATING:
        with st.form("resolve"):
            cause = st.selectbox("Root cause", [c.value for c in RootCauseCategory], key="fw_resolve_cause")
            cause_text = st.text_input("Root cause in a sentence")
            resolution = st.selectbox("Resolution", [r.value for r in ResolutionCategory
                                                     if r is not ResolutionCategory.ACCEPTED_RISK])
            notes = st.text_area("How it was resolved", key="fw_resolve_notes")
            if st.form_submit_button("Resolve", type="primary"):
                act(incidents.resolve, root_cause_category=cause, resolution_category=resolution, notes=notes,
                    root_cause=cause_text or None, done=f"{incident.incident_id} resolved")
                st.rerun()
    else:
        st.caption("Acknowledge the incident first: only an investigating incident can be resolved (policy 3.1).")
with risk_tab:
    pending = incident.risk_acceptance
    if pending is not None and pending.approved_by is None:
        st.markdown(f"Requested by **{pending.requested_by}**: {pending.rationale}")
        if st.button("Approve the risk acceptance", key="approve-risk"):
            act(incidents.approve_accept_risk, done="risk accepted")
            st.rerun()
    elif live_now:
        with st.form("accept-risk"):
            rationale = st.text_area("Rationale (policy 12)")
            days = st.number_input("Days (at most 30)", min_value=1, max_value=30, value=30)
            if st.form_submit_button("Request acceptance"):
                act(incidents.request_accept_risk, rationale=rationale, days=int(days),
                    done="risk acceptance requested")
                st.rerun()
    else:
        st.caption("Only a live incident's risk can be accepted.")
