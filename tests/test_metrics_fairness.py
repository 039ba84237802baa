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
    holm,
    homogeneity_test,
    pairwise_p_values,
    rate_counts,
)
from monitoring_core.models.metric_registry import SELECTION_RATE, TRUE_POSITIVE_RATE
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
        assert {rename[g] for g in affected_groups(a, 0.05)} == set(affected_groups(b, 0.05))
        if a.available:
            pairwise_a = pairwise_p_values(first, a, resamples=99, seed=7, stream="attr")
            pairwise_b = pairwise_p_values(second, b, resamples=99, seed=7, stream="attr")
            # (two groups with equal counts may swap as "the best": compare the p-values)
            assert sorted(pairwise_a.values()) == sorted(pairwise_b.values())
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
    assert affected_groups(dp, 0.05) == ["b", "c"]  # 0.08 and 0.20 below the best
    di = assess(table, "disparate_impact", 30)
    assert di.value == pytest.approx(40 / 60)
    assert affected_groups(di, 0.80) == ["c"]  # 0.667 < 0.8; b at 0.867 is not
    assert affected_groups(di, 0.90) == ["b", "c"]
    # only the groups whose difference from the best group is significant
    assert affected_groups(dp, 0.05, {"b": 0.2, "c": 0.004}, alpha=0.01) == ["c"]
    assert affected_groups(di, 0.90, {"b": 0.009, "c": 0.01}, alpha=0.01) == ["b"]


# -- statistical significance ----------------------------------------------------------------

def test_holm_against_a_hand_computation():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> max(0.06, 0.04)
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.5, 0.6]), [1.0, 1.0])  # capped at 1, then monotone
    np.testing.assert_allclose(holm([0.02]), [0.02])
    assert holm([]).size == 0


@pytest.mark.parametrize("seed", range(5))
def test_chi_square_p_values_equal_scipy_on_the_same_table(seed):
    rng = np.random.default_rng(seed)
    groups = int(rng.integers(2, 6))
    rows = rng.integers(40, 3000, groups)
    counts = np.column_stack((selected := rng.binomial(rows, rng.uniform(0.3, 0.6, groups)), rows - selected))
    expected = scipy.stats.chi2_contingency(counts, correction=False)
    test = homogeneity_test(counts)
    assert test.method == "chi2"
    assert test.p_value == pytest.approx(expected.pvalue, rel=1e-12, abs=1e-300)
    assert test.statistic == pytest.approx(expected.statistic, rel=1e-12)


def test_the_permutation_test_is_used_when_an_expected_count_is_below_five():
    counts = np.array([[1, 29], [6, 24]])  # 7 selected of 60: expected 3.5 per group
    assert scipy.stats.contingency.expected_freq(counts).min() < 5
    test = homogeneity_test(counts, resamples=9999, seed=3, stream="gender/selection_rate")
    assert test.method == "permutation"
    assert test == homogeneity_test(counts, resamples=9999, seed=3, stream="gender/selection_rate")  # seeded
    # the exact permutation p-value: tables with these margins are hypergeometric
    first_row_selected = np.arange(0, 8)
    pmf = scipy.stats.hypergeom(60, 7, 30).pmf(first_row_selected)
    statistics = [scipy.stats.chi2_contingency([[k, 30 - k], [7 - k, 23 + k]], correction=False).statistic
                  for k in first_row_selected]
    exact = pmf[np.array(statistics) >= test.statistic - 1e-9].sum()
    error = np.sqrt(exact * (1 - exact) / 9999)
    assert test.p_value == pytest.approx(exact, abs=4 * error)
    # and scipy's own PermutationMethod (which permutes the 60 rows) agrees
    scipy_p = scipy.stats.chi2_contingency(counts, correction=False, method=scipy.stats.PermutationMethod(
        n_resamples=9999, rng=np.random.default_rng(0))).pvalue
    assert test.p_value == pytest.approx(scipy_p, abs=6 * error)
    assert scipy.stats.chi2_contingency(counts, correction=False).pvalue != pytest.approx(test.p_value, abs=0.01)


def test_the_permutation_cost_does_not_grow_with_the_rows():
    """A million rows with one small group: the test still works on the 2 x 2 count table."""
    counts = np.array([[8, 22], [50_000, 950_000]])  # expected 1.5 selected in the small group
    test = homogeneity_test(counts, resamples=999, seed=0)
    assert test.method == "permutation" and test.p_value == pytest.approx(1 / 1000)  # none as extreme


def test_a_table_without_variation_shows_no_difference():
    assert homogeneity_test([[0, 50], [0, 70]]).p_value == 1.0  # nobody selected
    assert homogeneity_test([[50, 0], [70, 0]]).p_value == 1.0


def test_rate_counts_are_selected_or_true_positives():
    table = fairness_table([1, 1, 0, 1, None, 1], [1, 0, 1, 1, 1, 0], sensitive_features=["a", "a", "a", "b", "b", "b"],
                           pos_label=1)
    np.testing.assert_array_equal(rate_counts(table, SELECTION_RATE), [[2, 1], [2, 1]])
    np.testing.assert_array_equal(rate_counts(table, TRUE_POSITIVE_RATE), [[1, 1], [1, 1]])


def test_pairwise_p_values_test_each_group_against_the_best_and_are_holm_adjusted():
    y_pred = [1] * 1800 + [0] * 1200 + [1] * 1440 + [0] * 1560 + [1] * 13 + [0] * 17
    groups = ["a"] * 3000 + ["b"] * 3000 + ["c"] * 30
    table = fairness_table(None, y_pred, sensitive_features=groups, pos_label=1)
    dp = assess(table, "demographic_parity", 30)
    pairwise = pairwise_p_values(table, dp, resamples=999, seed=0)
    raw = [scipy.stats.chi2_contingency(t, correction=False).pvalue
           for t in ([[1440, 1560], [1800, 1200]], [[13, 17], [1800, 1200]])]
    np.testing.assert_allclose([pairwise["b"], pairwise["c"]], holm(raw), rtol=1e-9)
    assert pairwise["b"] < 1e-10 and 0.01 < pairwise["c"] < 0.5  # c: 0.17 below the best, from 30 rows
    assert affected_groups(dp, 0.05, pairwise, alpha=0.01) == ["b"]


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
