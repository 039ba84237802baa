"""Group fairness: demographic parity, equal opportunity, disparate impact, with bootstrap CIs.

Everything is computed from one small table per protected attribute: for each group the
rows in six cells, (predicted positive or not) x (ground truth positive, other label, no
label). Selection rate ``SR_g = P(pred = positive | g)`` and true-positive rate
``TPR_g = P(pred = positive | truth = positive, g)`` are ratios of those counts, so a
million rows cost one ``np.bincount``.

Small groups (spec section 2): a group with fewer than ``min_group_size`` rows is left out
of the gap and listed as insufficient; for equal opportunity the rows that count are the
group's rows with positive ground truth (the rows its TPR is estimated from). With fewer
than two groups left the metric is unavailable, never a value from five rows.

Bootstrap. Resampling rows with replacement within each group (a stratified bootstrap)
changes a group's table only through how many resampled rows land in each of its six
cells, and those counts are exactly ``Multinomial(n_g, cells_g / n_g)``. Drawing that
multinomial per group and resample is therefore the same distribution as resampling the
rows, at a cost independent of the row count (tested against an explicit row resampling).
The selection-rate part alone is ``Binomial(n_g, SR_g)``. The interval is the percentile
interval of the resampled metric; groups are drawn in an order fixed by their counts, so
relabelling groups or reordering rows changes nothing.

Significance (spec section 2, revised 2026-11-23). A gap is a breach only when the data
establish it: :func:`homogeneity_test` tests the rates of an attribute's groups (Pearson
chi-square, a permutation test when an expected count is below 5), the engine
Holm-adjusts (:func:`holm`) the run's tests together, and :func:`pairwise_p_values`
tests each group against the best one to name the affected groups. Every test reads the
same count table, so it costs nothing per row either.

Intersections: :func:`protected_groups` reads each protected attribute and each
configured combination (``gender&race``, groups ``gender=female&race=Black``) as codes
per row, for the engine and the baseline builder alike.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.stats

from ..errors import InvalidInput
from ..models import columns as col
from ..models import metric_registry as registry
from ..models.record import Reason
from ..models.thresholds import intersection_name
from .labels import UNLABELLED, Outputs, as_series, public_outputs
from .quality import CategoricalColumn, categorical_column

# cell index = 2 * truth_state + (0 if predicted positive else 1)
# truth_state: 0 = positive ground truth, 1 = other label, 2 = no label
PRED_POS_TRUTH_POS, PRED_NEG_TRUTH_POS, PRED_POS_TRUTH_NEG, PRED_NEG_TRUTH_NEG, PRED_POS_UNLABELLED, \
    PRED_NEG_UNLABELLED = range(6)


@dataclass(frozen=True)
class GroupTable:
    """Per-group counts of one protected attribute (``cells`` has shape ``(groups, 6)``)."""

    groups: list[str]
    cells: np.ndarray
    missing_attribute: int = 0

    @property
    def rows(self) -> np.ndarray:
        return self.cells.sum(axis=1)

    @property
    def predicted_positive(self) -> np.ndarray:
        return self.cells[:, [PRED_POS_TRUTH_POS, PRED_POS_TRUTH_NEG, PRED_POS_UNLABELLED]].sum(axis=1)

    @property
    def actual_positive(self) -> np.ndarray:
        return self.cells[:, PRED_POS_TRUTH_POS] + self.cells[:, PRED_NEG_TRUTH_POS]

    @property
    def actual_negative(self) -> np.ndarray:
        return self.cells[:, PRED_POS_TRUTH_NEG] + self.cells[:, PRED_NEG_TRUTH_NEG]

    @property
    def labelled(self) -> np.ndarray:
        return self.actual_positive + self.actual_negative

    def selection_rates(self) -> np.ndarray:
        return _ratio(self.predicted_positive, self.rows)

    def true_positive_rates(self) -> np.ndarray:
        return _ratio(self.cells[:, PRED_POS_TRUTH_POS], self.actual_positive)

    def false_positive_rates(self) -> np.ndarray:
        return _ratio(self.cells[:, PRED_POS_TRUTH_NEG], self.actual_negative)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / np.maximum(denominator, 1), np.nan)


def group_table(predicted_positive: np.ndarray, group_codes: np.ndarray, groups: list[str],
                truth_state: np.ndarray | None = None) -> GroupTable:
    """Count rows per group and cell.

    Parameters
    ----------
    predicted_positive : bool ndarray
        Whether each row's prediction is the positive class.
    group_codes : int ndarray
        Index into ``groups`` per row; negative = attribute missing (row left out).
    truth_state : int8 ndarray, optional
        ``TRUTH_POSITIVE``, ``TRUTH_NEGATIVE`` or ``UNLABELLED`` per row; None = no labels.
    """
    codes = np.asarray(group_codes, dtype=np.int64)
    present = codes >= 0
    key = codes * 6
    key += np.where(predicted_positive, 0, 1)
    if truth_state is None:
        key += 2 * UNLABELLED
    else:
        key += 2 * np.asarray(truth_state, dtype=np.int64)
    counts = np.bincount(key[present], minlength=6 * len(groups))
    return GroupTable(list(groups), counts.reshape(len(groups), 6), int((~present).sum()))


def attribute_table(outputs: Outputs, groups: CategoricalColumn) -> GroupTable:
    """The :class:`GroupTable` of one attribute: rows with a prediction and a group."""
    codes = np.where(outputs.has_prediction, groups.codes, -1)
    return group_table(outputs.predicted_positive, codes, groups.categories, outputs.truth_state)


@dataclass(frozen=True)
class GroupGap:
    """One fairness metric of one attribute, before severity is attached.

    ``rates``/``counts`` cover every group with data (selection rate and rows, or TPR and
    labelled positives); ``eligible`` marks the groups used for the value.
    """

    metric: str
    value: float | None
    reason: Reason | None = None
    detail: str | None = None
    rates: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    eligible: tuple[str, ...] = ()
    insufficient: tuple[str, ...] = ()

    @property
    def available(self) -> bool:
        return self.value is not None

    @property
    def best_rate(self) -> float | None:
        return max((self.rates[g] for g in self.eligible), default=None)


METRICS = tuple(spec.name for spec in registry.metrics_of(registry.FAIRNESS))
_EO, _DI = registry.EQUAL_OPPORTUNITY.name, registry.DISPARATE_IMPACT.name


def _gap_inputs(table: GroupTable, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(rate, size) per group: TPR and labelled positives for EO, selection rate and rows otherwise."""
    if metric == _EO:
        return table.true_positive_rates(), table.actual_positive
    return table.selection_rates(), table.rows


def assess(table: GroupTable, metric: str, min_group_size: int) -> GroupGap:
    """Value of ``metric`` ("demographic_parity", "equal_opportunity", "disparate_impact").

    * demographic parity: ``max_g SR_g - min_g SR_g``
    * equal opportunity: ``max_g TPR_g - min_g TPR_g``
    * disparate impact: ``min_g SR_g / max_g SR_g``

    over the groups with at least ``min_group_size`` rows (labelled positives for EO).
    """
    rates, sizes = _gap_inputs(table, metric)
    has_data = sizes > 0
    names = table.groups
    info = dict(rates={names[i]: float(rates[i]) for i in np.flatnonzero(has_data)},
                counts={names[i]: int(sizes[i]) for i in np.flatnonzero(has_data)})
    eligible = (sizes >= min_group_size) & has_data
    info["eligible"] = tuple(names[i] for i in np.flatnonzero(eligible))
    info["insufficient"] = tuple(names[i] for i in np.flatnonzero(has_data & ~eligible))
    if metric == _EO:
        if table.labelled.sum() == 0:
            return GroupGap(metric, None, Reason.NO_GROUND_TRUTH, "no row has ground truth", **info)
        if table.actual_positive.sum() == 0:
            return GroupGap(metric, None, Reason.NO_POSITIVE_LABELS, "no row has positive ground truth", **info)
    unit = "rows with positive ground truth" if metric == _EO else "rows"
    if has_data.sum() < 2:
        return GroupGap(metric, None, Reason.TOO_FEW_GROUPS,
                        f"{int(has_data.sum())} group(s) with {unit}; a gap needs two", **info)
    if eligible.sum() < 2:
        return GroupGap(metric, None, Reason.INSUFFICIENT_DATA,
                        f"fewer than two groups with at least {min_group_size} {unit}", **info)
    used = rates[eligible]
    if metric == _DI:
        if used.max() == 0:
            return GroupGap(metric, None, Reason.NO_POSITIVE_PREDICTIONS,
                            "no group has a positive prediction; the ratio is undefined", **info)
        return GroupGap(metric, float(used.min() / used.max()), **info)
    return GroupGap(metric, float(used.max() - used.min()), **info)


def stream_rng(seed: int, stream: str) -> np.random.Generator:
    """An independent random stream of ``seed`` per name (attribute, test), reproducible."""
    return np.random.default_rng([seed, zlib.crc32(stream.encode())])


def bootstrap_statistics(table: GroupTable, gaps: dict[str, GroupGap], *, resamples: int, seed: int,
                         stream: str = "") -> dict[str, np.ndarray]:
    """The available metrics of ``gaps`` recomputed on ``resamples`` stratified resamples.

    Each resample draws every group's six cell counts from
    ``Multinomial(n_g, cells_g / n_g)`` (equivalent to resampling its rows, see the module
    docstring); the groups used are each metric's eligible groups. ``stream`` (the
    attribute name) picks an independent random stream per attribute from ``seed``.
    Resamples where a metric is undefined (a group drew no positive label, or nobody was
    selected) are dropped from its array.
    """
    wanted = {m: g for m, g in gaps.items() if g.available}
    if resamples <= 0 or not wanted:
        return {}
    cells = table.cells
    rows = cells.sum(axis=1)
    # Draw groups in an order fixed by their counts, not by their names or first appearance.
    order = np.lexsort(cells.T[::-1])
    rng = stream_rng(seed, stream)
    probabilities = cells[order] / np.maximum(rows[order], 1)[:, None]
    probabilities[rows[order] == 0] = [0, 0, 0, 0, 0, 1]
    drawn = np.empty((resamples, len(order), 6), dtype=np.int64)
    drawn[:, order] = rng.multinomial(rows[order], probabilities, size=(resamples, len(order)))
    predicted = drawn[..., [PRED_POS_TRUTH_POS, PRED_POS_TRUTH_NEG, PRED_POS_UNLABELLED]].sum(axis=-1)
    positives = drawn[..., PRED_POS_TRUTH_POS] + drawn[..., PRED_NEG_TRUTH_POS]
    with np.errstate(invalid="ignore", divide="ignore"):
        selection = predicted / rows  # a group's row count is fixed in a stratified bootstrap
        tpr = np.where(positives > 0, drawn[..., PRED_POS_TRUTH_POS] / np.maximum(positives, 1), np.nan)
    index = {g: i for i, g in enumerate(table.groups)}
    statistics = {}
    for metric, gap in wanted.items():
        rates = (tpr if metric == _EO else selection)[:, [index[g] for g in gap.eligible]]
        high, low = rates.max(axis=1), rates.min(axis=1)  # NaN propagates from undefined TPRs
        if metric == _DI:
            with np.errstate(invalid="ignore", divide="ignore"):
                values = np.where(high > 0, low / np.where(high > 0, high, 1.0), np.nan)
        else:
            values = high - low
        statistics[metric] = values[~np.isnan(values)]
    return statistics


def bootstrap_intervals(table: GroupTable, gaps: dict[str, GroupGap], *, resamples: int, seed: int,
                        confidence_level: float, stream: str = "") -> dict[str, tuple[float, float] | None]:
    """Percentile bootstrap intervals of the available metrics in ``gaps`` (None otherwise).

    ``(q_{a/2}, q_{1-a/2})`` of :func:`bootstrap_statistics` with ``a = 1 - confidence_level``.
    """
    statistics = bootstrap_statistics(table, gaps, resamples=resamples, seed=seed, stream=stream)
    tail = (1.0 - confidence_level) / 2.0
    intervals: dict[str, tuple[float, float] | None] = {m: None for m in gaps}
    for metric, values in statistics.items():
        if values.size:
            low, high = np.quantile(values, [tail, 1.0 - tail])
            intervals[metric] = (float(low), float(high))
    return intervals


# -- public functions on raw arrays (fairlearn's order and keywords) --------------------------

def fairness_table(y_true, y_pred, *, sensitive_features, pos_label=1) -> GroupTable:
    """The :class:`GroupTable` of raw arrays, built as the engine builds it.

    Labels compare as text and exactly (``pos_label=1`` matches ``1`` and ``"1"``); groups
    are the text of ``sensitive_features``. ``y_true`` may be None; a missing ``y_true``
    (None/NaN) means "no label yet".

    Raises
    ------
    InvalidInput
        on lengths that differ, a missing prediction or group, a group that is not text or a
        number, or a ``pos_label`` found neither in ``y_pred`` nor in ``y_true``.
    """
    outputs = public_outputs(y_true, y_pred, pos_label)
    features = as_series(sensitive_features, "sensitive_features")
    if len(features) != outputs.rows:
        raise InvalidInput(f"sensitive_features has {len(features)} rows, y_pred {outputs.rows}")
    groups = categorical_column(features, boolean=True)
    if groups.missing or groups.type_mismatches:
        raise InvalidInput(f"sensitive_features has {groups.missing} missing value(s) and "
                           f"{groups.type_mismatches} value(s) that are neither text nor a number")
    return attribute_table(outputs, groups)


def _value_or_raise(gap: GroupGap) -> float:
    if gap.value is None:
        raise InvalidInput(f"{gap.metric} is unavailable: {gap.detail} ({gap.reason})")
    return gap.value


def selection_rates(y_true, y_pred, *, sensitive_features, pos_label=1) -> dict[str, float]:
    """``SR_g = P(y_pred = pos_label | group g)`` per group (``y_true`` may be None)."""
    table = fairness_table(y_true, y_pred, sensitive_features=sensitive_features, pos_label=pos_label)
    return dict(zip(table.groups, table.selection_rates().tolist()))


def demographic_parity_difference(y_true, y_pred, *, sensitive_features, pos_label=1,
                                  min_group_size: int = 1) -> float:
    r"""Largest gap in selection rate between groups.

    .. math:: \mathrm{DPD} = \max_g SR_g - \min_g SR_g, \quad SR_g = P(\hat y = + \mid g)

    Equals ``fairlearn.metrics.demographic_parity_difference`` (``min_group_size=1``).

    Parameters
    ----------
    y_true : array_like or None
        Not needed (fairlearn's signature); None is accepted.
    y_pred, sensitive_features : array_like, 1-D, same length
        Predicted labels and the protected attribute's group per row.
    pos_label
        The favourable class; it must occur in ``y_pred`` or ``y_true``.
    min_group_size : int
        Groups with fewer rows are left out (the analysis uses 30).

    Returns
    -------
    float in ``[0, 1]``. WARNING above 0.05, CRITICAL above 0.10.

    Raises
    ------
    InvalidInput
        on bad input (see :func:`fairness_table`), or fewer than two groups of
        ``min_group_size`` rows.
    """
    table = fairness_table(y_true, y_pred, sensitive_features=sensitive_features, pos_label=pos_label)
    return _value_or_raise(assess(table, registry.DEMOGRAPHIC_PARITY.name, min_group_size))


def disparate_impact_ratio(y_true, y_pred, *, sensitive_features, pos_label=1, min_group_size: int = 1) -> float:
    r"""Lowest selection rate over the highest (the four-fifths rule).

    .. math:: \mathrm{DI} = \min_g SR_g / \max_g SR_g

    Equals ``fairlearn.metrics.demographic_parity_ratio``. In ``[0, 1]``; WARNING below
    0.90, CRITICAL below 0.80. Arguments as :func:`demographic_parity_difference`.

    Raises
    ------
    InvalidInput
        on bad input, fewer than two groups, or no positive prediction at all (0/0).
    """
    table = fairness_table(y_true, y_pred, sensitive_features=sensitive_features, pos_label=pos_label)
    return _value_or_raise(assess(table, _DI, min_group_size))


def equal_opportunity_difference(y_true, y_pred, *, sensitive_features, pos_label=1,
                                 min_group_size: int = 1) -> float:
    r"""Largest gap in true-positive rate between groups.

    .. math:: \mathrm{EOD} = \max_g TPR_g - \min_g TPR_g, \quad TPR_g = P(\hat y = + \mid y = +, g)

    Equals ``fairlearn.metrics.equal_opportunity_difference``. Rows whose ``y_true`` is
    missing are left out; ``min_group_size`` counts a group's rows with positive truth.

    Raises
    ------
    InvalidInput
        on bad input, no ``y_true``, no ground truth, or fewer than two groups with positives.
    """
    if y_true is None:
        raise InvalidInput("equal opportunity needs y_true")
    table = fairness_table(y_true, y_pred, sensitive_features=sensitive_features, pos_label=pos_label)
    return _value_or_raise(assess(table, _EO, min_group_size))


def affected_groups(gap: GroupGap, bound: float | None, adjusted: dict[str, float] | None = None,
                    alpha: float = 1.0) -> list[str]:
    """Groups the metric flags (their names; :meth:`ProtectedGroups.label` qualifies them).

    DP and EO: groups whose rate is below the best group's by more than ``bound`` (the
    WARNING threshold). DI: groups with ``SR_g / max SR < bound`` (the CRITICAL threshold
    for a CRITICAL value, the WARNING one for a WARNING value). With ``adjusted`` (each
    group's Holm-adjusted p-value against the best group, :func:`pairwise_p_values`) only
    the groups whose difference is significant (``p < alpha``) are kept.
    """
    best = gap.best_rate
    if bound is None or best is None:
        return []
    if gap.metric == _DI:
        flagged = [g for g in gap.eligible if best > 0 and gap.rates[g] / best < bound]
    else:
        flagged = [g for g in gap.eligible if best - gap.rates[g] > bound]
    if adjusted is not None:
        flagged = [g for g in flagged if adjusted.get(g, 1.0) < alpha]
    return flagged


# -- statistical significance (spec section 2, revised 2026-11-23) -----------------------------
#
# Every test works on a (groups, 2) count table taken from the GroupTable, never on rows.
# scipy's chi2_contingency(method=PermutationMethod(...)) expands the table back into one
# observation per row and permutes those (0.6 s for 227 rows at 9,999 resamples, growing
# with rows x resamples). Permuting the rows' group labels keeps both margins of the table,
# and the table it produces is then exactly a draw from the multivariate hypergeometric
# distribution with those margins, which scipy.stats.random_table samples in a time
# independent of the row count; chi2_contingency(method=MonteCarloMethod(...)) draws its
# null tables from random_table. So the permutation test is that call (tested against
# PermutationMethod on small tables).

MIN_EXPECTED_COUNT = 5
RATE_OF = {spec.name: spec.group_rate for spec in registry.metrics_of(registry.FAIRNESS)}
"""The per-group rate each fairness metric compares; metrics on the same rate share one test."""


@dataclass(frozen=True)
class RateTest:
    """A homogeneity test of per-group rates: Pearson's statistic, its p-value and how."""

    statistic: float
    p_value: float
    method: str  # "chi2" (asymptotic) or "permutation"


def rate_counts(table: GroupTable, rate: str) -> np.ndarray:
    """``(groups, 2)`` counts behind a rate: selected / not selected for the selection rate,
    true positives / false negatives (rows with positive ground truth) for the TPR."""
    if rate == registry.TRUE_POSITIVE_RATE:
        return table.cells[:, [PRED_POS_TRUTH_POS, PRED_NEG_TRUTH_POS]]
    selected = table.predicted_positive
    return np.column_stack((selected, table.rows - selected))


def homogeneity_test(counts, *, resamples: int = 9999, seed: int = 0, stream: str = "") -> RateTest:
    r"""Pearson chi-square test that every row of a contingency table has the same proportions.

    .. math:: X^2 = \sum_{ij} (O_{ij} - E_{ij})^2 / E_{ij}, \quad E_{ij} = O_{i\cdot} O_{\cdot j} / N

    ``scipy.stats.chi2_contingency(counts, correction=False)``; when any expected count is
    below 5, the permutation test of the same statistic with ``resamples`` resamples from
    the random stream of ``seed``, ``stream`` and the table's counts (see the comment above:
    tables drawn with the observed margins, at a cost independent of the row count). Rows
    are put in an order fixed by their counts first, so naming or ordering the groups
    changes nothing. A table with an empty column (nobody, or everybody, selected) shows
    no difference: p = 1.

    Parameters
    ----------
    counts : array_like of int, shape (groups, categories)
        Rows with any count; a row of zeros is left out.
    """
    table = np.asarray(counts, dtype=np.int64)
    table = table[table.sum(axis=1) > 0]
    table = table[np.lexsort(table.T[::-1])]
    if table.shape[0] < 2 or (table.sum(axis=0) == 0).any():
        return RateTest(0.0, 1.0, "chi2")
    if scipy.stats.contingency.expected_freq(table).min() >= MIN_EXPECTED_COUNT:
        result = scipy.stats.chi2_contingency(table, correction=False)
        return RateTest(float(result.statistic), float(result.pvalue), "chi2")
    rng = stream_rng(seed, f"{stream}:{table.tolist()}")
    method = scipy.stats.MonteCarloMethod(n_resamples=resamples, rng=rng)
    result = scipy.stats.chi2_contingency(table, correction=False, method=method)
    return RateTest(float(result.statistic), float(result.pvalue), "permutation")


def holm(p_values) -> np.ndarray:
    r"""Holm's step-down adjustment of p-values (family-wise error rate).

    With the ``m`` p-values sorted ascending, :math:`\tilde p_{(i)} = \max_{j \le i}
    \min(1, (m - j + 1)\, p_{(j)})`; a hypothesis is rejected at family-wise level
    ``alpha`` when its adjusted p-value is below ``alpha``. Returned in the input's order.
    """
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    steps = p.size - np.arange(p.size)
    adjusted = np.empty_like(p)
    adjusted[order] = np.maximum.accumulate(np.minimum(1.0, steps * p[order]))
    return adjusted


def best_group(gap: GroupGap) -> str | None:
    """The eligible group with the highest rate (ties: the larger group, then the name)."""
    return max(gap.eligible, key=lambda g: (gap.rates[g], gap.counts[g], g), default=None)


def pairwise_p_values(table: GroupTable, gap: GroupGap, *, resamples: int = 9999, seed: int = 0,
                      stream: str = "") -> dict[str, float]:
    """Each eligible group's difference in rate from the best group: the 2x2
    :func:`homogeneity_test`, Holm-adjusted over the attribute's groups."""
    best = best_group(gap)
    others = [g for g in gap.eligible if g != best]
    if not others:
        return {}
    counts = rate_counts(table, RATE_OF[gap.metric])
    row = {g: i for i, g in enumerate(table.groups)}
    p = [homogeneity_test(counts[[row[g], row[best]]], resamples=resamples, seed=seed, stream=stream).p_value
         for g in others]
    return dict(zip(others, holm(p).tolist()))


def smallest_group(gap: GroupGap) -> int | None:
    """Rows (labelled positives for EO) of the smallest group the value rests on."""
    return min((gap.counts[g] for g in gap.eligible), default=None)


# -- protected attributes and their intersections ----------------------------------------------

@dataclass(frozen=True)
class ProtectedGroups:
    """The groups of one protected attribute or intersection, as codes per row.

    ``column`` is None when a column is missing (``missing_column`` names it). The groups of
    an intersection are already qualified (``gender=female&race=Black``).
    """

    name: str
    column: CategoricalColumn | None
    missing_column: str | None = None
    qualified: bool = False

    def label(self, group: str) -> str:
        """How the record names a group: ``gender=female``, ``gender=female&race=Black``."""
        return group if self.qualified else f"{self.name}={group}"


def protected_groups(frame: pd.DataFrame, attributes: Sequence[str],
                     intersections: Sequence[Sequence[str]] = ()) -> dict[str, ProtectedGroups]:
    """Every attribute fairness is judged on, by name: each of ``attributes``, then each
    intersection (``gender&race``), whose groups are the combinations present in the data.

    A row belongs to an intersection's group when it has a group in every component (a
    missing or mistyped component leaves it out, as for a single attribute).
    """
    single = {}
    for attribute in attributes:
        column = col.protected(attribute)
        single[attribute] = ProtectedGroups(attribute, categorical_column(frame[column]), None) \
            if column in frame.columns else ProtectedGroups(attribute, None, column)
    result = dict(single)
    for components in intersections:
        name = intersection_name(list(components))
        parts = [single[a] if a in single else protected_groups(frame, [a])[a] for a in components]
        lacking = next((p.missing_column for p in parts if p.column is None), None)
        result[name] = ProtectedGroups(name, None if lacking else _crossed(parts), lacking, qualified=True)
    return result


def _crossed(parts: Sequence[ProtectedGroups]) -> CategoricalColumn:
    """The intersection of categorical columns: one code per combination present."""
    sizes = [len(p.column.categories) for p in parts]
    present = np.ones(parts[0].column.rows, dtype=bool)
    combined = np.zeros(parts[0].column.rows, dtype=np.int64)
    for part, size in zip(parts, sizes):
        present &= part.column.codes >= 0
        combined = combined * size + np.maximum(part.column.codes, 0)
    codes = np.full(combined.size, -1, dtype=np.int64)
    codes[present], seen = pd.factorize(combined[present], sort=True)
    digits = np.unravel_index(np.asarray(seen, dtype=np.int64), sizes)
    names = ["&".join(f"{p.name}={p.column.categories[d[k]]}" for p, d in zip(parts, digits))
             for k in range(len(seen))]
    return CategoricalColumn(codes, names, parts[0].column.rows, int((~present).sum()), 0)
