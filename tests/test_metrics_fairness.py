"""Fairness: fairlearn cross-checks, small groups, bootstrap equivalence, properties, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from fairlearn.metrics import (
    demographic_parity_difference as fl_dp_difference,
)
from fairlearn.metrics import (
    demographic_parity_ratio as fl_dp_ratio,
)
from fairlearn.metrics import (
    equal_opportunity_difference as fl_eo_difference,
)
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from monitoring_core.errors import InvalidInput
from monitoring_core.metrics import (
    demographic_parity_difference,
    disparate_impact_ratio,
    equal_opportunity_difference,
    selection_rates,
)
from monitoring_core.metrics.fairness import (
    METRICS,
    affected_groups,
    assess,
    bootstrap_intervals,
    bootstrap_statistics,
    fairness_table,
)
from monitoring_core.models.record import Reason

PROPERTY = settings(max_examples=40, deadline=None)


def synthetic(seed: int, n: int = 4000, groups=("a", "b", "c", "d")):
    rng = np.random.default_rng(seed)
    g = rng.choice(groups, n)
    base = {k: 0.3 + 0.1 * i for i, k in enumerate(groups)}
    y_true = (rng.random(n) < 0.5).astype(int)
    y_pred = (rng.random(n) < np.vectorize(base.get)(g) + 0.2 * y_true).astype(int)
    return y_true, y_pred, g


# -- cross-checks against fairlearn ----------------------------------------------------------

@pytest.mark.parametrize("seed", range(6))
def test_equal_to_fairlearn(seed):
    y_true, y_pred, groups = synthetic(seed, n=int(np.random.default_rng(seed).integers(50, 5000)))
    assert demographic_parity_difference(None, y_pred, sensitive_features=groups, pos_label=1) == pytest.approx(
        fl_dp_difference(y_true, y_pred, sensitive_features=groups), abs=1e-9)
    assert disparate_impact_ratio(None, y_pred, sensitive_features=groups, pos_label=1) == pytest.approx(
        fl_dp_ratio(y_true, y_pred, sensitive_features=groups), abs=1e-9)
    assert equal_opportunity_difference(y_true, y_pred, sensitive_features=groups, pos_label=1) == pytest.approx(
        fl_eo_difference(y_true, y_pred, sensitive_features=groups), abs=1e-9)


def test_string_labels_equal_the_binary_encoding():
    y_true, y_pred, groups = synthetic(1)
    as_text = np.where(y_pred == 1, "approve", "reject")
    truth_text = np.where(y_true == 1, "approve", "reject")
    assert demographic_parity_difference(None, as_text, sensitive_features=groups, pos_label="approve") == \
        demographic_parity_difference(None, y_pred, sensitive_features=groups, pos_label=1)
    assert equal_opportunity_difference(truth_text, as_text, sensitive_features=groups, pos_label="approve") == \
        equal_opportunity_difference(y_true, y_pred, sensitive_features=groups, pos_label=1)


def test_selection_rates_per_group():
    rates = selection_rates(None, ["y", "n", "y", "y"], sensitive_features=["a", "a", "b", "b"], pos_label="y")
    assert rates == {"a": 0.5, "b": 1.0}


# -- properties ------------------------------------------------------------------------------

group_rows = st.lists(st.tuples(st.sampled_from(["g1", "g2", "g3", "g4"]), st.booleans(), st.booleans()),
                      min_size=2, max_size=200)


@PROPERTY
@given(group_rows)
def test_disparate_impact_is_in_the_unit_interval_and_gaps_are_too(rows):
    groups = [g for g, _, _ in rows]
    y_pred = [int(p) for _, p, _ in rows]
    if len(set(groups)) < 2 or not any(y_pred):
        return
    assert 0.0 <= disparate_impact_ratio(None, y_pred, sensitive_features=groups, pos_label=1) <= 1.0
    assert 0.0 <= demographic_parity_difference(None, y_pred, sensitive_features=groups, pos_label=1) <= 1.0


@PROPERTY
@given(group_rows, st.permutations(["x", "y", "z", "w"]))
def test_relabelling_groups_changes_nothing(rows, new_names):
    groups = np.array([g for g, _, _ in rows])
    y_pred = np.array([int(p) for _, p, _ in rows])
    y_true = np.array([int(t) for _, _, t in rows])
    assume(y_pred.any() or y_true.any())  # else pos_label=1 is unknown: an error, tested below
    rename = dict(zip(["g1", "g2", "g3", "g4"], new_names))
    renamed = np.vectorize(rename.get)(groups)
    first = fairness_table(y_true, y_pred, sensitive_features=groups, pos_label=1)
    second = fairness_table(y_true, y_pred, sensitive_features=renamed, pos_label=1)
    for metric in METRICS:
        a, b = assess(first, metric, 3), assess(second, metric, 3)
        assert (a.value, a.reason) == (b.value, b.reason)
        assert sorted(rename[g] for g in a.insufficient) == sorted(b.insufficient)
        flagged_a = {rename[x.split("=")[1]] for x in affected_groups(a, "attr", 0.05)}
        assert flagged_a == {x.split("=")[1] for x in affected_groups(b, "attr", 0.05)}
    gaps_a = {m: assess(first, m, 3) for m in METRICS}
    gaps_b = {m: assess(second, m, 3) for m in METRICS}
    ci_a = bootstrap_intervals(first, gaps_a, resamples=50, seed=7, confidence_level=0.95, stream="attr")
    ci_b = bootstrap_intervals(second, gaps_b, resamples=50, seed=7, confidence_level=0.95, stream="attr")
    assert ci_a == ci_b


def test_row_order_does_not_change_the_interval():
    y_true, y_pred, groups = synthetic(4, n=1500)
    order = np.random.default_rng(0).permutation(len(groups))
    tables = [fairness_table(y_true, y_pred, sensitive_features=groups, pos_label=1),
              fairness_table(y_true[order], y_pred[order], sensitive_features=groups[order], pos_label=1)]
    intervals = [bootstrap_intervals(t, {m: assess(t, m, 30) for m in METRICS}, resamples=100, seed=1,
                                     confidence_level=0.95) for t in tables]
    assert intervals[0] == intervals[1]


# -- small groups and unavailable metrics ----------------------------------------------------

def test_small_groups_are_left_out_and_listed():
    groups = ["big"] * 100 + ["other"] * 100 + ["tiny"] * 5
    y_pred = [1] * 50 + [0] * 50 + [1] * 50 + [0] * 50 + [0] * 5  # the tiny group: 0% selected
    table = fairness_table(None, y_pred, sensitive_features=groups, pos_label=1)
    gap = assess(table, "demographic_parity", 30)
    assert gap.value == 0.0 and gap.insufficient == ("tiny",)
    assert demographic_parity_difference(None, y_pred, sensitive_features=groups) == 0.5  # without the guard


def test_fewer_than_two_sizeable_groups_is_unavailable_never_a_false_critical():
    groups = ["a"] * 5 + ["b"] * 5
    y_pred = [1] * 5 + [0] * 5
    gap = assess(fairness_table(None, y_pred, sensitive_features=groups, pos_label=1), "demographic_parity", 30)
    assert gap.value is None and gap.reason is Reason.INSUFFICIENT_DATA
    with pytest.raises(InvalidInput, match="unavailable"):
        demographic_parity_difference(None, y_pred, sensitive_features=groups, pos_label=1, min_group_size=30)


def test_one_group_only():
    gap = assess(fairness_table(None, [1, 0, 1] * 20, sensitive_features=["a"] * 60, pos_label=1),
                 "disparate_impact", 30)
    assert gap.reason is Reason.TOO_FEW_GROUPS and gap.value is None
    with pytest.raises(InvalidInput, match="1 group"):
        demographic_parity_difference(None, [1, 0, 1] * 20, sensitive_features=["a"] * 60, pos_label=1)


def test_no_positive_predictions():
    table = fairness_table([1, 1, 0, 0] * 50, [0] * 200, sensitive_features=["a", "b"] * 100, pos_label=1)
    assert assess(table, "demographic_parity", 30).value == 0.0
    assert assess(table, "equal_opportunity", 30).value == 0.0
    di = assess(table, "disparate_impact", 30)
    assert di.value is None and di.reason is Reason.NO_POSITIVE_PREDICTIONS


def test_no_ground_truth():
    table = fairness_table([None] * 100, [1, 0] * 50, sensitive_features=["a", "b"] * 50, pos_label=1)
    eo = assess(table, "equal_opportunity", 30)
    assert eo.value is None and eo.reason is Reason.NO_GROUND_TRUTH
    unlabelled = fairness_table(None, [1, 0] * 50, sensitive_features=["a", "b"] * 50, pos_label=1)
    assert assess(unlabelled, "equal_opportunity", 30).reason is Reason.NO_GROUND_TRUTH
    with pytest.raises(InvalidInput, match="needs y_true"):
        equal_opportunity_difference(None, [1, 0] * 50, sensitive_features=["a", "b"] * 50, pos_label=1)


def test_equal_opportunity_counts_labelled_positives_and_ignores_unlabelled_rows():
    groups = np.array(["a"] * 200 + ["b"] * 200)
    y_pred = np.array([1, 0] * 200)
    y_true = np.array([1, None, 1, None] * 100, dtype=object)
    y_true[200:220] = 1
    y_true[220:] = None  # group b: 20 labelled rows only
    table = fairness_table(y_true, y_pred, sensitive_features=groups, pos_label=1)
    gap = assess(table, "equal_opportunity", 30)
    assert gap.counts == {"a": 100, "b": 20}
    assert gap.reason is Reason.INSUFFICIENT_DATA and gap.insufficient == ("b",)


def test_affected_groups():
    y_pred = [1] * 60 + [0] * 40 + [1] * 52 + [0] * 48 + [1] * 40 + [0] * 60
    table = fairness_table(None, y_pred, sensitive_features=["a"] * 100 + ["b"] * 100 + ["c"] * 100, pos_label=1)
    dp = assess(table, "demographic_parity", 30)
    assert dp.value == pytest.approx(0.2)
    assert affected_groups(dp, "race", 0.05) == ["race=b", "race=c"]  # 0.08 and 0.20 below the best
    di = assess(table, "disparate_impact", 30)
    assert di.value == pytest.approx(40 / 60)
    assert affected_groups(di, "race", 0.80) == ["race=c"]  # 0.667 < 0.8; b at 0.867 is not
    assert affected_groups(di, "race", 0.90) == ["race=b", "race=c"]


# -- bootstrap -------------------------------------------------------------------------------

def row_resampling_bootstrap(y_true, y_pred, groups, resamples, rng):
    """The textbook stratified bootstrap: resample rows with replacement within each group."""
    members = {g: np.flatnonzero(groups == g) for g in np.unique(groups)}
    out = {m: [] for m in METRICS}
    for _ in range(resamples):
        sr, tpr = [], []
        for rows in members.values():
            pick = rows[rng.integers(0, rows.size, rows.size)]
            sr.append(y_pred[pick].mean())
            positive = y_true[pick] == 1
            tpr.append(y_pred[pick][positive].mean() if positive.any() else np.nan)
        out["demographic_parity"].append(max(sr) - min(sr))
        out["disparate_impact"].append(min(sr) / max(sr))
        if not np.isnan(tpr).any():
            out["equal_opportunity"].append(max(tpr) - min(tpr))
    return {m: np.array(v) for m, v in out.items()}


def test_count_bootstrap_has_the_distribution_of_row_resampling():
    rng = np.random.default_rng(5)
    groups = np.array(["a"] * 40 + ["b"] * 70 + ["c"] * 35)
    y_true = (rng.random(groups.size) < 0.6).astype(int)
    y_pred = (rng.random(groups.size) < np.where(groups == "a", 0.7, 0.45)).astype(int)
    table = fairness_table(y_true, y_pred, sensitive_features=groups, pos_label=1)
    gaps = {m: assess(table, m, 1) for m in METRICS}
    fast = bootstrap_statistics(table, gaps, resamples=4000, seed=3)
    slow = row_resampling_bootstrap(y_true, y_pred, groups, 4000, np.random.default_rng(9))
    for metric in METRICS:
        test = scipy.stats.ks_2samp(fast[metric], slow[metric])
        assert test.pvalue > 0.001, (metric, test)
        assert fast[metric].mean() == pytest.approx(slow[metric].mean(), abs=0.01)
        assert fast[metric].std() == pytest.approx(slow[metric].std(), rel=0.08)


def test_interval_is_reproducible_and_covers_the_value_on_a_clear_gap():
    y_true, y_pred, groups = synthetic(2, n=20_000)
    table = fairness_table(y_true, y_pred, sensitive_features=groups, pos_label=1)
    gaps = {m: assess(table, m, 30) for m in METRICS}
    first = bootstrap_intervals(table, gaps, resamples=200, seed=0, confidence_level=0.95, stream="race")
    assert first == bootstrap_intervals(table, gaps, resamples=200, seed=0, confidence_level=0.95, stream="race")
    for metric in METRICS:
        low, high = first[metric]
        assert low <= gaps[metric].value <= high
    assert first != bootstrap_intervals(table, gaps, resamples=200, seed=1, confidence_level=0.95, stream="race")


def test_no_resamples_means_no_interval():
    table = fairness_table(None, [1, 0] * 50, sensitive_features=["a", "b"] * 50, pos_label=1)
    gaps = {m: assess(table, m, 30) for m in METRICS}
    assert bootstrap_intervals(table, gaps, resamples=0, seed=0, confidence_level=0.95) == {m: None for m in METRICS}


# -- bad input -------------------------------------------------------------------------------

def test_mismatched_lengths():
    with pytest.raises(InvalidInput, match="sensitive_features has 2 rows, y_pred 3"):
        demographic_parity_difference(None, [1, 0, 1], sensitive_features=["a", "b"], pos_label=1)
    with pytest.raises(InvalidInput, match="y_true has 2 rows, y_pred 3"):
        equal_opportunity_difference([1, 0], [1, 0, 1], sensitive_features=["a", "b", "a"], pos_label=1)


def test_missing_predictions_or_groups():
    with pytest.raises(InvalidInput, match="y_pred has 1 missing"):
        demographic_parity_difference(None, [1, None, 1, 0], sensitive_features=["a", "b", "a", "b"], pos_label=1)
    with pytest.raises(InvalidInput, match="sensitive_features has 1 missing"):
        disparate_impact_ratio(None, [1, 0, 1, 0], sensitive_features=["a", None, "a", "b"], pos_label=1)


@pytest.mark.parametrize("function", [demographic_parity_difference, disparate_impact_ratio,
                                      equal_opportunity_difference, selection_rates])
def test_a_positive_class_absent_from_the_labels_is_a_clear_error_not_a_silent_zero(function):
    y_pred, y_true = ["approve", "reject"] * 50, ["reject", "approve"] * 50
    with pytest.raises(InvalidInput, match=r"positive class 'Approve' not among the classes of y_pred and y_true "
                                           r"\['approve', 'reject'\]; did you mean 'approve'\?"):
        function(y_true, y_pred, sensitive_features=["a", "a", "b", "b"] * 25, pos_label="Approve")
    with pytest.raises(InvalidInput, match="did you mean 'approve'"):
        function(y_true, y_pred, sensitive_features=["a", "a", "b", "b"] * 25, pos_label="approve ")
    with pytest.raises(InvalidInput, match=r"positive class '1' not among .* \['approve', 'reject'\]$"):
        function(y_true, y_pred, sensitive_features=["a", "a", "b", "b"] * 25)  # the default pos_label=1


def test_a_positive_class_only_in_y_true_is_a_real_zero_selection():
    """The model selected nobody although positives exist: DP is a true 0, not a misread label."""
    assert demographic_parity_difference([1, 0] * 50, [0] * 100, sensitive_features=["a", "b"] * 50) == 0.0


def test_integral_floats_match_an_integer_label():
    assert demographic_parity_difference(None, [1.0, 0.0, 1.0, 1.0], sensitive_features=["a", "a", "b", "b"]) == 0.5


def test_two_dimensional_input_is_refused():
    with pytest.raises(InvalidInput, match="one-dimensional"):
        demographic_parity_difference(None, np.ones((2, 2)), sensitive_features=["a", "b"], pos_label=1)
