"""What the monitoring pages show, read from monitoring records and incidents.

Pages never read raw predictions: a record keeps every value, count and distribution a
chart needs (:class:`~monitoring_core.models.record.Distributions`). Each function here
returns plain frames or small objects the page draws as they are, so the same tables are
what the CSV exports hold. Reading requires the page's view permission (policy 6), checked
here as well as by the navigation.

History is placed by the end of each run's analysed period (``period_end``), the instant
the figures describe, not when the run happened to execute.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import pandas as pd
import scipy.stats

from . import audit, auth, clock
from . import incidents as incident_rules
from .auth import Permission
from .errors import InvalidInput, NotFound
from .models import metric_registry as reg
from .models.audit import AuditEvent
from .models.common import Actor, Severity
from .models.incidents import Incident
from .models.record import FairnessValue, FeatureMetric, Histogram, MetricValue, MonitoringRecord, RunStatus
from .models.registry import RegisteredModel

# -- pages and the time range ----------------------------------------------------------------


@dataclass(frozen=True)
class PageSpec:
    key: str  # URL path and audit name
    title: str
    permission: Permission
    section: str


PAGES: tuple[PageSpec, ...] = (
    PageSpec("drift", "Drift Overview", Permission.VIEW_DRIFT, "Monitoring"),
    PageSpec("fairness", "Fairness Monitor", Permission.VIEW_FAIRNESS, "Monitoring"),
    PageSpec("health", "Model Health", Permission.VIEW_MODEL_HEALTH, "Monitoring"),
    PageSpec("incidents", "Incident Timeline", Permission.VIEW_INCIDENTS, "Monitoring"),
    PageSpec("models", "Models", Permission.MANAGE_MODELS, "Operations"),
)


def pages_for(actor: Actor) -> list[PageSpec]:
    """The pages the actor's role may open (policy 6), in navigation order."""
    return [page for page in PAGES if auth.can(actor, page.permission)]


RANGES: dict[str, timedelta] = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30),
                                "90d": timedelta(days=90)}
CUSTOM = "custom"
DEFAULT_RANGE = "30d"


@dataclass(frozen=True)
class TimeRange:
    """The half-open interval ``[start, end)`` the pages show, and how it was chosen."""

    label: str
    start: datetime
    end: datetime

    def __str__(self) -> str:
        if self.label != CUSTOM:
            return f"last {self.label}"
        return f"{self.start:%Y-%m-%d} to {(self.end - timedelta(days=1)):%Y-%m-%d}"


def time_range(label: str, start: date | None = None, end: date | None = None, *,
               now: datetime | None = None) -> TimeRange:
    """The range named by ``label`` (24h, 7d, 30d, 90d) ending now, or ``custom``: whole UTC
    days from ``start`` to ``end`` inclusive. ``InvalidInput`` says what is wrong."""
    now = now or clock.now()
    if label in RANGES:
        return TimeRange(label, now - RANGES[label], now + timedelta(seconds=1))
    if label != CUSTOM:
        raise InvalidInput(f"unknown time range {label!r}; use one of {', '.join([*RANGES, CUSTOM])}")
    if start is None or end is None:
        raise InvalidInput("a custom time range needs a start and an end date")
    if start > end:
        raise InvalidInput(f"the custom range starts after it ends ({start} > {end})")
    return TimeRange(CUSTOM, datetime.combine(start, time(), UTC), datetime.combine(end + timedelta(days=1), time(), UTC))


def parse_date(text: str | None, name: str) -> date | None:
    """A ``YYYY-MM-DD`` query parameter, or ``InvalidInput`` naming it."""
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{name}={text!r} is not a date (YYYY-MM-DD)") from None


# -- reading records ---------------------------------------------------------------------------


@dataclass(frozen=True)
class History:
    """A model's completed runs in a range, oldest first, and what frames them."""

    model: RegisteredModel
    range: TimeRange
    records: list[MonitoringRecord]
    latest_skipped: MonitoringRecord | None  # a skipped run newer than the latest completed one

    @property
    def latest(self) -> MonitoringRecord | None:
        return self.records[-1] if self.records else None

    @property
    def previous(self) -> MonitoringRecord | None:
        return self.records[-2] if len(self.records) > 1 else None

    def within(self, narrower: TimeRange) -> History:
        """The runs of this history whose period ends in ``narrower`` (so one wider read, cached,
        serves every range inside it)."""
        def inside(record: MonitoringRecord) -> bool:
            return narrower.start <= record.analysis_period.end < narrower.end

        skipped = self.latest_skipped if self.latest_skipped is not None and inside(self.latest_skipped) else None
        return History(self.model, narrower, [r for r in self.records if inside(r)], skipped)


def history(store, actor: Actor, model_id: str, within: TimeRange, permission: Permission) -> History:
    """The completed runs of ``model_id`` whose period ends in ``within``."""
    auth.require(actor, permission)
    model = store.models.find(model_id)
    if model is None:
        raise NotFound(f"no model {model_id!r}")
    records = store.records.history(model_id, within.start, within.end)
    completed = [r for r in records if r.status is RunStatus.COMPLETED]
    skipped = next((r for r in reversed(records) if r.status is RunStatus.SKIPPED
                    and (not completed or r.timestamp > completed[-1].timestamp)), None)
    return History(model, within, completed, skipped)


def period_end(record: MonitoringRecord) -> pd.Timestamp:
    return pd.Timestamp(record.analysis_period.end)


def score_trend(records: Iterable[MonitoringRecord]) -> pd.DataFrame:
    """Per run: the aggregated score, each category's score and the run's severity."""
    rows = [{"period_end": period_end(r), "aggregated_score": r.aggregated_score,
             **{f"{c.name}_score": r.category_scores.get(c.name) for c in reg.CATEGORIES},
             "max_severity": str(r.max_severity), "sample_count": r.sample_count, "record_id": r.record_id}
            for r in records]
    return pd.DataFrame(rows, columns=["period_end", "aggregated_score", *[f"{c.name}_score" for c in reg.CATEGORIES],
                                       "max_severity", "sample_count", "record_id"])


# -- drift -------------------------------------------------------------------------------------

CARD_METRICS = (reg.PSI, reg.KL_DIVERGENCE, reg.WASSERSTEIN_DISTANCE)


@dataclass(frozen=True)
class MetricCard:
    """A drift family's worst feature in the latest run, with its change since the previous."""

    metric: str
    title: str
    feature: str | None
    value: float | None
    warning: float | None
    critical: float | None
    change: float | None
    severity: Severity
    note: str | None  # why there is no value


def _worst(record: MonitoringRecord, spec: reg.MetricSpec) -> MetricValue:
    value = getattr(record.metrics.data_drift, spec.name)
    if spec.scope is reg.Scope.FEATURE:  # psi: a map per feature; the card shows the worst
        available = [m for m in value.values() if m.available]
        return max(available, key=lambda m: m.value) if available else next(iter(value.values()), None)
    return value


def metric_cards(latest: MonitoringRecord, previous: MonitoringRecord | None) -> list[MetricCard]:
    cards = []
    for spec in CARD_METRICS:
        worst = _worst(latest, spec)
        before = _worst(previous, spec) if previous else None
        if worst is None:
            cards.append(MetricCard(spec.name, spec.display_name, None, None, None, None, None, Severity.INFO,
                                    "no feature of this kind"))
            continue
        change = worst.value - before.value if worst.available and before is not None and before.available else None
        cards.append(MetricCard(
            spec.name, spec.display_name, getattr(worst, "feature", None), worst.value,
            worst.threshold.warning if worst.threshold else None, worst.threshold.critical if worst.threshold else None,
            change, worst.severity, None if worst.available else f"{worst.reason}: {worst.detail}"))
    return cards


FEATURE_COLUMNS = {reg.PSI.name: "psi", reg.KL_DIVERGENCE.name: "kl_divergence",
                   reg.WASSERSTEIN_DISTANCE.name: "wasserstein", reg.CATEGORY_FREQUENCY_SHIFT.name: "category_shift",
                   reg.MISSING_VALUE_DENSITY_CHANGE.name: "missing_rate_change"}


def _feature_items(record: MonitoringRecord, metric: str) -> dict[str, FeatureMetric]:
    value = getattr(record.metrics.data_drift, metric)
    return value if isinstance(value, dict) else value.by_feature


def feature_table(record: MonitoringRecord) -> pd.DataFrame:
    """One row per feature: every drift value, the data-quality counts, the worst severity
    and, for each metric without a value, its reason."""
    quality = record.metrics.data_quality.by_feature
    features = list(dict.fromkeys([*quality, *record.distributions.features]))
    rows = []
    for feature in features:
        row: dict = {"feature": feature}
        severities, unavailable = [Severity.INFO], []
        for metric, column in FEATURE_COLUMNS.items():
            item = _feature_items(record, metric).get(feature)
            row[column] = item.value if item is not None else None
            if item is not None:
                severities.append(item.severity)
                if not item.available:
                    unavailable.append(f"{column}: {item.reason} ({item.detail})")
        counts = quality.get(feature)
        row.update(missing=counts.missing if counts else 0, type_mismatches=counts.type_mismatches if counts else 0,
                   range_violations=counts.range_violations if counts else 0,
                   severity=str(Severity.worst(severities)), unavailable="; ".join(unavailable) or None)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=["feature", *FEATURE_COLUMNS.values(), "missing", "type_mismatches",
                                        "range_violations", "severity", "unavailable"])
    order = frame["severity"].map(lambda s: -Severity(s).rank)
    return frame.assign(_order=order).sort_values(["_order", "psi"], ascending=[True, False],
                                                   na_position="last").drop(columns="_order").reset_index(drop=True)


def distribution_frame(histogram: Histogram | None) -> pd.DataFrame:
    """A histogram in long form (``bin``, ``source`` baseline/current, ``share``) for a bar chart."""
    columns = ["bin", "source", "share"]
    if histogram is None:
        return pd.DataFrame(columns=columns)
    sides = {"current": histogram.current, **({"baseline": histogram.baseline} if histogram.baseline else {})}
    frames = [pd.DataFrame({"bin": histogram.bins, "source": source, "share": shares})
              for source, shares in sides.items()]
    return pd.concat(frames[::-1], ignore_index=True)[columns]


# -- fairness ----------------------------------------------------------------------------------

FAIRNESS_METRICS = (reg.DEMOGRAPHIC_PARITY, reg.EQUAL_OPPORTUNITY, reg.DISPARATE_IMPACT)


def _attributes(record: MonitoringRecord) -> dict[str, dict[str, FairnessValue]]:
    """``{attribute: {metric: value}}`` over every attribute and intersection of the run."""
    out: dict[str, dict[str, FairnessValue]] = {}
    for spec in FAIRNESS_METRICS:
        for attribute, value in getattr(record.metrics.fairness_drift, spec.name).by_attribute.items():
            out.setdefault(attribute, {})[spec.name] = value
    return out


def attributes(record: MonitoringRecord) -> list[str]:
    return list(_attributes(record))


def status_of(value: FairnessValue) -> str:
    """What a reader must take from the value: a breach, a gap not yet established, too
    little data, or fine."""
    if not value.available:
        return f"unavailable: {value.reason}"
    if value.inconclusive:
        return "inconclusive"
    if value.severity is not Severity.INFO:
        return str(value.severity)
    return "ok"


def fairness_table(record: MonitoringRecord) -> pd.DataFrame:
    """One row per attribute and metric: value and thresholds, severity, significance, the
    affected groups and the groups with too little data."""
    rows = []
    for attribute, metrics in _attributes(record).items():
        for name, value in metrics.items():
            spec = reg.spec_of(name)
            rows.append({
                "attribute": attribute, "metric": spec.display_name, "value": value.value,
                "baseline_value": value.baseline_value, "ci_low": value.ci_low, "ci_high": value.ci_high,
                "warning": value.threshold.warning if value.threshold else None,
                "critical": value.threshold.critical if value.threshold else None,
                "severity": str(value.severity), "status": status_of(value),
                "p_value": value.p_value, "p_value_adjusted": value.p_value_adjusted,
                "affected_groups": ", ".join(value.affected_groups) or None,
                "smallest_group_count": value.smallest_group_count,
                "insufficient_groups": ", ".join(value.insufficient_groups) or None,
                "detail": value.detail,
            })
    return pd.DataFrame(rows, columns=["attribute", "metric", "value", "baseline_value", "ci_low", "ci_high",
                                       "warning", "critical", "severity", "status", "p_value", "p_value_adjusted",
                                       "affected_groups", "smallest_group_count", "insufficient_groups", "detail"])


def rate_intervals(successes: np.ndarray, totals: np.ndarray, confidence: float = 0.95
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score intervals of the rates ``successes / totals`` (vectorised; NaN where a total is 0)."""
    successes, totals = np.asarray(successes, dtype=float), np.asarray(totals, dtype=float)
    z = scipy.stats.norm.ppf(0.5 + confidence / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = successes / totals
        centre = (p + z * z / (2 * totals)) / (1 + z * z / totals)
        half = z * np.sqrt(p * (1 - p) / totals + z * z / (4 * totals * totals)) / (1 + z * z / totals)
    return centre - half, centre + half


def group_rates(record: MonitoringRecord, attribute: str, confidence: float = 0.95) -> pd.DataFrame:
    """Per group of ``attribute``: selection rate and true-positive rate with their Wilson
    intervals and the counts they rest on; groups left out for too little data are kept and
    marked."""
    metrics = _attributes(record).get(attribute, {})
    dp, eo = metrics.get(reg.DEMOGRAPHIC_PARITY.name), metrics.get(reg.EQUAL_OPPORTUNITY.name)
    groups = list(dict.fromkeys([*(dp.group_counts if dp else {}), *(eo.group_counts if eo else {}),
                                 *(dp.insufficient_groups if dp else [])]))
    frame = pd.DataFrame({"group": groups})
    for prefix, value in (("selection_rate", dp), ("true_positive_rate", eo)):
        rates = np.array([value.group_rates.get(g, np.nan) if value else np.nan for g in groups], dtype=float)
        counts = np.array([value.group_counts.get(g, 0) if value else 0 for g in groups], dtype=float)
        low, high = rate_intervals(np.round(rates * counts), counts, confidence)
        frame[prefix], frame[f"{prefix}_ci_low"], frame[f"{prefix}_ci_high"] = rates, low, high
        frame[f"{prefix}_count"] = counts.astype(int)
    left_out = set(dp.insufficient_groups if dp else []) | set(eo.insufficient_groups if eo else [])
    frame["too_little_data"] = frame["group"].isin(left_out)
    # affected groups are named qualified ("gender=female"), groups by their value
    affected = set(dp.affected_groups if dp else []) | set(eo.affected_groups if eo else [])
    frame["affected"] = frame["group"].isin(affected) | (attribute + "=" + frame["group"]).isin(affected)
    return frame


def fairness_trend(records: Iterable[MonitoringRecord]) -> pd.DataFrame:
    """Per run, attribute and metric: the value, its severity and status."""
    rows = [{"period_end": period_end(r), "attribute": attribute, "metric": reg.spec_of(name).display_name,
             "value": value.value, "severity": str(value.severity), "status": status_of(value)}
            for r in records for attribute, metrics in _attributes(r).items() for name, value in metrics.items()]
    return pd.DataFrame(rows, columns=["period_end", "attribute", "metric", "value", "severity", "status"])


# -- model health ------------------------------------------------------------------------------


def health_trend(records: Iterable[MonitoringRecord]) -> pd.DataFrame:
    """Per run: accuracy (baseline, current, drop, labelled share), output entropy, volatility."""
    rows = []
    for r in records:
        drift = r.metrics.model_drift
        accuracy, entropy, volatility = drift.accuracy_drop, drift.output_entropy_change, drift.prediction_volatility
        rows.append({
            "period_end": period_end(r), "sample_count": r.sample_count,
            "labelled_count": accuracy.labelled_count,
            "labelled_share": accuracy.labelled_count / r.sample_count if r.sample_count else None,
            "baseline_accuracy": accuracy.baseline_accuracy, "current_accuracy": accuracy.current_accuracy,
            "accuracy_drop": accuracy.value, "accuracy_severity": str(accuracy.severity),
            "baseline_entropy": entropy.baseline_entropy, "current_entropy": entropy.current_entropy,
            "entropy_change": entropy.value, "prediction_volatility": volatility.value,
            "volatility_severity": str(volatility.severity),
            "class_distribution_shift": drift.prediction_distribution_shift.value,
        })
    return pd.DataFrame(rows, columns=["period_end", "sample_count", "labelled_count", "labelled_share",
                                       "baseline_accuracy", "current_accuracy", "accuracy_drop", "accuracy_severity",
                                       "baseline_entropy", "current_entropy", "entropy_change",
                                       "prediction_volatility", "volatility_severity", "class_distribution_shift"])


# -- incidents ---------------------------------------------------------------------------------

INCIDENT_CATEGORIES = [c.name for c in reg.CATEGORIES] + ["meta"]


def incident_category(incident: Incident) -> str:
    """The metric category of an incident's first metric (``meta`` for the aggregated score)."""
    spec = reg.spec_of(incident.metrics_triggered[0].metric_name) if incident.metrics_triggered else None
    return spec.category.name if spec is not None and spec.category is not None else "meta"


def list_incidents(store, actor: Actor, *, model_id: str | None = None, within: TimeRange | None = None,
                   severities: Iterable[str] = (), statuses: Iterable[str] = (), categories: Iterable[str] = (),
                   assignee: str | None = None) -> list[Incident]:
    """Incidents created in ``within`` matching every filter given, newest first."""
    auth.require(actor, Permission.VIEW_INCIDENTS)
    found = store.incidents.list(model_id=model_id, statuses=list(statuses) or None,
                                 severities=list(severities) or None, since=within.start if within else None)
    wanted = set(categories)
    return [i for i in found if (within is None or i.created_at < within.end)
            and (not wanted or incident_category(i) in wanted) and (not assignee or i.assigned_to == assignee)]


def incident_table(incidents: Iterable[Incident], now: datetime | None = None) -> pd.DataFrame:
    """One row per incident with its SLA figures against policy 3's targets."""
    now = now or clock.now()
    rows = []
    for i in incidents:
        figures = incident_rules.sla(i, now)
        rows.append({
            "incident_id": i.incident_id, "model_id": i.model_id, "severity": str(i.severity),
            "status": str(i.status), "category": incident_category(i),
            "metrics": ", ".join(i.metric_names), "affected_groups": ", ".join(i.affected_groups) or None,
            "assigned_to": i.assigned_to, "created_at": pd.Timestamp(i.created_at),
            "acknowledged_at": pd.Timestamp(i.acknowledged_at) if i.acknowledged_at else pd.NaT,
            "resolved_at": pd.Timestamp(i.resolved_at) if i.resolved_at else pd.NaT,
            "occurrences": i.occurrence_count, "recovered": i.recovered,
            "minutes_to_acknowledge": round(figures.acknowledge_elapsed_minutes, 1),
            "acknowledge_target_minutes": figures.acknowledge_target_minutes,
            "acknowledge_breached": figures.acknowledge_breached,
            "minutes_to_respond": round(figures.investigate_elapsed_minutes, 1),
            "respond_target_minutes": figures.investigate_target_minutes,
            "respond_breached": figures.investigate_breached,
            "minutes_to_resolve": i.time_to_resolve_minutes,
        })
    columns = ["incident_id", "model_id", "severity", "status", "category", "metrics", "affected_groups",
               "assigned_to", "created_at", "acknowledged_at", "resolved_at", "occurrences", "recovered",
               "minutes_to_acknowledge", "acknowledge_target_minutes", "acknowledge_breached", "minutes_to_respond",
               "respond_target_minutes", "respond_breached", "minutes_to_resolve"]
    frame = pd.DataFrame(rows, columns=columns)
    for moment in ("created_at", "acknowledged_at", "resolved_at"):  # one dtype, whatever is missing
        frame[moment] = pd.to_datetime(frame[moment], utc=True).astype(MOMENT)
    return frame


MOMENT = "datetime64[ms, UTC]"


def timeline_frame(table: pd.DataFrame, now: datetime | None = None) -> pd.DataFrame:
    """Each incident as a bar from creation to resolution (or now, while live)."""
    now = pd.Timestamp(now or clock.now()).as_unit("ms")
    frame = table[["incident_id", "model_id", "severity", "status", "metrics", "created_at", "resolved_at"]].copy()
    frame["until"] = frame["resolved_at"].fillna(now)
    frame["label"] = [_short_label(metrics, created) for metrics, created in zip(frame["metrics"], frame["created_at"])]
    return frame


def _short_label(metrics: str, created: pd.Timestamp) -> str:
    # An axis label, not the list: the first metric, how many more, and the day it opened.
    names = metrics.split(", ")
    more = f" +{len(names) - 1}" if len(names) > 1 else ""
    return f"{names[0]}{more} · {created:%b %d %H:%M}"


def incident_actions(incident: Incident) -> pd.DataFrame:
    rows = [{"at": pd.Timestamp(a.taken_at), "by": a.taken_by, "action": a.action, "notes": a.notes}
            for a in incident.response_actions]
    return pd.DataFrame(rows, columns=["at", "by", "action", "notes"])


# -- who viewed and exported what (policy 6) ----------------------------------------------------


def record_page_view(store, actor: Actor, page: PageSpec, **shown: str | None) -> None:
    """Audit that ``actor`` opened ``page`` showing ``shown`` (model, range, incident)."""
    auth.require(actor, page.permission)
    audit.record(store, AuditEvent.PAGE_VIEWED, actor, target={"model_id": shown.get("model_id"),
                                                               "incident_id": shown.get("incident_id")},
                 details={"page": page.key, **_given(shown)})


def record_export(store, actor: Actor, page: PageSpec, table: str, rows: int, **shown: str | None) -> None:
    """Audit a CSV download: which table of which page, how many rows."""
    auth.require(actor, page.permission)
    audit.record(store, AuditEvent.TABLE_EXPORTED, actor, target={"model_id": shown.get("model_id")},
                 details={"page": page.key, "table": table, "rows": rows, **_given(shown)})


def _given(shown: dict[str, str | None]) -> dict[str, str]:
    return {k: v for k, v in shown.items() if v is not None}
