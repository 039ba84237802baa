"""What the pages draw, computed in ``monitoring_core.views`` without Streamlit: ranges,
link parameters, the incident table's SLA figures and the timeline's bars."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from monitoring_core import views
from monitoring_core.errors import InvalidInput
from monitoring_core.models.common import Severity
from monitoring_core.models.incidents import Incident, TriggeredMetric

T0 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)


def incident(*names: str, severity: Severity = Severity.WARNING, **fields) -> Incident:
    triggered = [TriggeredMetric(metric_name=n, value=0.3, threshold=0.2, severity=severity) for n in names]
    return Incident(model_id="loan", severity=severity, metrics_triggered=triggered, created_at=T0,
                    assigned_to="ml-lead", **fields)


def test_ranges_end_now_or_cover_whole_days_and_say_what_is_wrong():
    week = views.time_range("7d", now=T0)
    assert week.end - week.start == timedelta(days=7, seconds=1) and str(week) == "last 7d"
    custom = views.time_range(views.CUSTOM, date(2026, 11, 1), date(2026, 11, 3))
    assert (custom.start, custom.end) == (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 4, tzinfo=UTC))
    assert str(custom) == "2026-11-01 to 2026-11-03"
    with pytest.raises(InvalidInput, match="starts after it ends"):
        views.time_range(views.CUSTOM, date(2026, 11, 3), date(2026, 11, 1))
    with pytest.raises(InvalidInput, match="unknown time range 'fortnight'"):
        views.time_range("fortnight")
    with pytest.raises(InvalidInput, match=r"start='11/01/2026' is not a date \(YYYY-MM-DD\)"):
        views.parse_date("11/01/2026", "start")


def test_the_incident_table_measures_each_sla_against_policy_3():
    late = incident("psi:income")  # never acknowledged
    prompt = incident("psi:age", acknowledged_at=T0 + timedelta(minutes=9), status="investigating")
    table = views.incident_table([late, prompt], now=T0 + timedelta(hours=2))
    rows = table.set_index("incident_id")
    assert rows.loc[late.incident_id, "minutes_to_acknowledge"] == 120.0
    assert bool(rows.loc[late.incident_id, "acknowledge_breached"])
    assert rows.loc[prompt.incident_id, "minutes_to_acknowledge"] == 9.0
    assert not rows.loc[prompt.incident_id, "acknowledge_breached"]
    assert rows.loc[prompt.incident_id, "acknowledge_target_minutes"] == 15
    assert str(table["created_at"].dtype) == views.MOMENT == str(table["resolved_at"].dtype)


def test_each_incident_is_a_bar_until_it_is_resolved_with_a_short_label():
    resolved = incident("psi:income", "kl_divergence:income", "wasserstein_distance:income",
                        status="resolved", resolved_at=T0 + timedelta(days=2))
    live = incident("demographic_parity:gender", severity=Severity.CRITICAL, affected_groups=["gender=female"])
    now = T0 + timedelta(days=5)
    bars = views.timeline_frame(views.incident_table([resolved, live], now=now), now=now).set_index("incident_id")
    assert bars.loc[resolved.incident_id, "until"] == pd.Timestamp(T0 + timedelta(days=2))
    assert bars.loc[live.incident_id, "until"] == pd.Timestamp(now)
    assert bars.loc[resolved.incident_id, "label"] == "psi:income +2 · Nov 02 02:00"
    assert bars.loc[live.incident_id, "label"] == "demographic_parity:gender · Nov 02 02:00"
