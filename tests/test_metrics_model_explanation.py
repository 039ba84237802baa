"""Model drift and explanation drift on raw arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from monitoring_core.errors import InvalidInput
from monitoring_core.metrics import (
    accuracy_drop,
    feature_importance,
    output_entropy_change,
    prediction_distribution_shift,
    prediction_volatility,
    rank_correlation,
    row_entropy,
    shap_kl_divergence,
    top_features_change,
)
from monitoring_core.metrics.model import accuracy, mean_output_entropy

PROPERTY = settings(max_examples=40, deadline=None)


def test_prediction_distribution_shift_is_the_total_variation_over_the_union_of_classes():
    current = ["approve"] * 30 + ["reject"] * 50 + ["review"] * 20
    expected = 0.5 * (abs(0.3 - 0.6) + abs(0.5 - 0.4) + abs(0.2 - 0.0))
    assert prediction_distribution_shift({"approve": 0.6, "reject": 0.4}, current) == pytest.approx(expected)
    assert prediction_distribution_shift({"a": 0.5, "b": 0.5}, ["a", "b"]) == 0.0
    with pytest.raises(InvalidInput):
        prediction_distribution_shift({"a": 1.0}, [None, None])


def test_accuracy_drop_uses_labelled_rows_only_and_refuses_no_ground_truth():
    y_pred = ["a", "a", "b", "b", "a"]
    y_true = ["a", "b", "b", None, None]
    assert accuracy(y_true, y_pred) == (pytest.approx(2 / 3), 3)
    assert accuracy_drop(0.9, y_true, y_pred) == pytest.approx(0.9 - 2 / 3)
    with pytest.raises(InvalidInput, match="no row has ground truth"):
        accuracy_drop(0.9, [None] * 5, y_pred)
    with pytest.raises(InvalidInput, match="rows"):
        accuracy(["a"], ["a", "b"])


def test_row_entropy_equals_scipy_after_the_eps_floor():
    rng = np.random.default_rng(0)
    p = rng.dirichlet([1, 2, 3], 50)
    floored = np.maximum(p, 1e-4)
    floored /= floored.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(row_entropy(p), scipy.stats.entropy(floored, axis=1), rtol=1e-12)


def test_single_score_column_is_a_bernoulli_and_certainty_keeps_a_positive_entropy():
    np.testing.assert_allclose(row_entropy(np.array([0.5])), [np.log(2)])
    assert row_entropy(np.array([[1.0, 0.0]]))[0] > 0  # the floor: a relative change stays defined
    assert row_entropy(np.array([1.0]))[0] == pytest.approx(row_entropy(np.array([[1.0, 0.0]]))[0])


def test_mean_output_entropy_leaves_invalid_rows_out():
    scores = np.array([[0.5, 0.5], [np.nan, 0.5], [1.5, -0.5], [np.inf, 0.0]])
    assert mean_output_entropy(scores) == pytest.approx(np.log(2))
    with pytest.raises(InvalidInput):
        mean_output_entropy(np.array([[np.nan, np.nan]]))


def test_output_entropy_change_is_relative():
    assert output_entropy_change(0.4, 0.5) == pytest.approx(0.25)
    assert output_entropy_change(0.4, 0.3) == pytest.approx(0.25)
    with pytest.raises(InvalidInput):
        output_entropy_change(0.0, 0.1)


def test_prediction_volatility_is_the_hourly_spread_of_the_positive_rate_net_of_sampling_noise():
    start = pd.Timestamp("2026-01-01", tz="UTC")
    stamps = pd.Series([start + pd.Timedelta(minutes=m) for m in range(0, 180)] +
                       [start + pd.Timedelta(hours=3, minutes=m) for m in range(10)]).astype("datetime64[ms, UTC]")
    # hour 0: 60 rows, 30% positive; hour 1: 60% ; hour 2: 50%; hour 3: 10 rows (left out)
    preds = ["y"] * 18 + ["n"] * 42 + ["y"] * 36 + ["n"] * 24 + ["y"] * 30 + ["n"] * 30 + ["y"] * 10
    p = (18 + 36 + 30) / 180
    expected = np.sqrt(np.var([0.3, 0.6, 0.5], ddof=1) - p * (1 - p) / 60)
    assert prediction_volatility(stamps, preds, "y", min_chunk=30) == pytest.approx(expected)
    with pytest.raises(InvalidInput, match="2 hourly chunk.* need 3"):
        prediction_volatility(stamps[:120], preds[:120], "y")
    with pytest.raises(InvalidInput, match="rows"):
        prediction_volatility(stamps, preds[:5], "y")


def hourly(rates_per_hour, size: int, seed: int) -> tuple[pd.Series, np.ndarray]:
    """``size`` predictions in each hour, positive with that hour's probability."""
    rng = np.random.default_rng(seed)
    hours = np.repeat(np.arange(len(rates_per_hour)), size)
    stamps = pd.Series(pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(hours * 60 + rng.integers(0, 60, hours.size),
                                                                               unit="min"))
    return stamps, np.where(rng.random(hours.size) < np.asarray(rates_per_hour)[hours], "y", "n")


def test_the_volatility_of_pure_binomial_noise_is_about_zero():
    """A steady 30% model in chunks of 40: the plain std of hourly rates is about 0.07 from
    noise alone; net of the noise it is about 0."""
    net, plain = [], []
    for seed in range(20):
        stamps, preds = hourly([0.3] * 48, 40, seed)
        net.append(prediction_volatility(stamps, preds, "y"))
        plain.append(pd.Series(preds == "y").groupby(stamps.dt.floor("h").to_numpy()).mean().std())
    assert np.mean(plain) > 0.06
    assert np.mean(net) < 0.02 and max(net) < 0.05


def test_a_real_hourly_swing_is_measured():
    stamps, preds = hourly([0.2, 0.5] * 24, 200, seed=1)  # the rate itself has std 0.15
    assert prediction_volatility(stamps, preds, "y") == pytest.approx(0.15, abs=0.02)


# -- explanation drift -----------------------------------------------------------------------

def test_feature_importance_is_mean_absolute_shap():
    shap = np.array([[1.0, -2.0], [-3.0, np.nan]])
    np.testing.assert_allclose(feature_importance(shap), [2.0, 2.0])
    with pytest.raises(InvalidInput, match="infinities"):
        feature_importance(np.array([[np.inf, 1.0]]))


def test_shap_kl_divergence_equals_a_loop():
    ref, cur = np.array([0.5, 0.3, 0.2, 0.0]), np.array([0.1, 0.3, 0.4, 0.2])
    eps = 1e-4
    r = [max(x / ref.sum(), eps) for x in ref]
    c = [max(x / cur.sum(), eps) for x in cur]
    r, c = [x / sum(r) for x in r], [x / sum(c) for x in c]
    expected = sum(ci * np.log(ci / ri) for ri, ci in zip(r, c))
    assert shap_kl_divergence(ref * 7, cur * 3) == pytest.approx(expected, abs=1e-12)  # scale-free


def test_top_features_change_counts_features_that_left_the_top_five():
    names = list("abcdefg")
    ref = np.array([7, 6, 5, 4, 3, 2, 1], dtype=float)
    cur = np.array([7, 6, 5, 1, 2, 4, 3], dtype=float)  # d and e leave, f and g enter
    count, old, new = top_features_change(ref, cur, names)
    assert count == 2 and old == list("abcde") and new == list("abcfg")


@PROPERTY
@given(arrays(np.float64, st.integers(2, 30), elements=st.floats(0, 100)),
       arrays(np.float64, st.integers(2, 30), elements=st.floats(0, 100)))
def test_rank_correlation_equals_scipy_spearman(a, b):
    n = min(a.size, b.size)
    a, b = a[:n], b[:n]
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        with pytest.raises(InvalidInput):
            rank_correlation(a, b)
        return
    assert rank_correlation(a, b) == pytest.approx(scipy.stats.spearmanr(a, b).statistic, abs=1e-9)


@PROPERTY
@given(arrays(np.float64, st.integers(2, 30), elements=st.floats(0.001, 100)))
def test_identical_importances_give_no_explanation_drift(a):
    assert shap_kl_divergence(a, a) == pytest.approx(0.0, abs=1e-12)
    assert top_features_change(a, a, [f"f{i}" for i in range(a.size)])[0] == 0
    if np.ptp(a) > 0:
        assert rank_correlation(a, a) == pytest.approx(1.0)


def test_explanation_inputs_must_match():
    with pytest.raises(InvalidInput, match="same length"):
        shap_kl_divergence([1.0, 2.0], [1.0])
    with pytest.raises(InvalidInput, match="positive sum"):
        shap_kl_divergence([0.0, 0.0], [1.0, 2.0])
