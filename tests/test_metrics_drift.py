"""Data drift: PSI, KL, Wasserstein, category shift, missing rate — cross-checks, properties, edges."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from monitoring_core.errors import InvalidInput
from monitoring_core.metrics import (
    category_frequency_shift,
    kl_divergence,
    missing_value_density_change,
    psi,
    wasserstein,
    wasserstein_from_grid,
)
from monitoring_core.metrics.binning import (
    bin_counts_sorted,
    quantile_bin_edges,
    quantile_grid,
    quantile_grid_levels,
    quantiles_of_sorted,
    smooth,
)
from monitoring_core.metrics.drift import wasserstein_to_grid

PROPERTY = settings(max_examples=40, deadline=None)
finite_floats = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
samples = arrays(np.float64, st.integers(1, 60), elements=finite_floats)


# -- independent, straightforward implementations -----------------------------------------

def loop_proportions(reference: np.ndarray, current: np.ndarray, bins: int) -> tuple[list[float], list[float]]:
    """The spec's binning written the long way: decile edges, open outer bins, [lo, hi)."""
    edges = sorted(set(float(np.quantile(reference, k / bins)) for k in range(1, bins)))
    bounds = [-math.inf, *edges, math.inf]
    ref_p, cur_p = [], []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        ref_p.append(sum(1 for x in reference if lo <= x < hi) / len(reference))
        cur_p.append(sum(1 for x in current if lo <= x < hi) / len(current))
    return ref_p, cur_p


def loop_smooth(p: list[float], eps: float) -> list[float]:
    floored = [max(x, eps) for x in p]
    total = sum(floored)
    return [x / total for x in floored]


def loop_psi_kl(ref_p: list[float], cur_p: list[float], eps: float = 1e-4) -> tuple[float, float]:
    r, c = loop_smooth(ref_p, eps), loop_smooth(cur_p, eps)
    psi_value = sum((ci - ri) * math.log(ci / ri) for ri, ci in zip(r, c))
    kl_value = sum(ci * math.log(ci / ri) for ri, ci in zip(r, c))
    return psi_value, kl_value


def loop_categorical(reference: list[str], current: list[str]) -> tuple[list[float], list[float]]:
    categories = list(dict.fromkeys(reference)) + [c for c in dict.fromkeys(current) if c not in set(reference)]
    return ([reference.count(c) / len(reference) for c in categories],
            [current.count(c) / len(current) for c in categories])


# -- cross-checks ----------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("bins", [4, 10, 17])
def test_psi_and_kl_equal_a_loop_over_the_same_bins(seed, bins):
    rng = np.random.default_rng(seed)
    reference = rng.gamma(2.0, 1.0, 700).round(1)  # ties, so some edges collapse
    current = rng.gamma(2.3, 1.1, 500).round(1)
    expected_psi, expected_kl = loop_psi_kl(*loop_proportions(reference, current, bins))
    assert psi(reference, current, bins=bins) == pytest.approx(expected_psi, abs=1e-9)
    assert kl_divergence(reference, current, bins=bins) == pytest.approx(expected_kl, abs=1e-9)


def test_categorical_psi_kl_tvd_equal_a_loop_with_unseen_categories():
    rng = np.random.default_rng(3)
    reference = list(rng.choice(["car", "home", "education", "other"], 400, p=[0.4, 0.3, 0.2, 0.1]))
    current = list(rng.choice(["car", "home", "solar", "boat"], 300, p=[0.3, 0.3, 0.3, 0.1]))
    ref_p, cur_p = loop_categorical(reference, current)
    expected_psi, expected_kl = loop_psi_kl(ref_p, cur_p)
    assert psi(reference, current) == pytest.approx(expected_psi, abs=1e-9)
    assert kl_divergence(reference, current) == pytest.approx(expected_kl, abs=1e-9)
    expected_tvd = 0.5 * sum(abs(c - r) for r, c in zip(ref_p, cur_p))
    assert category_frequency_shift(reference, current) == pytest.approx(expected_tvd, abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_wasserstein_equals_scipy_over_reference_std(seed):
    rng = np.random.default_rng(seed)
    reference = rng.lognormal(0, 1, rng.integers(1, 3000))
    reference = np.append(reference, 0.5)  # never constant
    current = rng.normal(1, 2, rng.integers(1, 3000))
    expected = scipy.stats.wasserstein_distance(reference, current) / reference.std()
    assert wasserstein(reference, current) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_quantiles_of_sorted_equal_numpy():
    rng = np.random.default_rng(0)
    values = np.sort(rng.standard_t(2, 1001).round(2))
    levels = quantile_grid_levels(1001)
    np.testing.assert_allclose(quantiles_of_sorted(values, levels), np.quantile(values, levels), rtol=0, atol=1e-12)
    edges = quantile_bin_edges(values, 10)
    assert np.array_equal(edges, np.unique(np.quantile(values, np.arange(1, 10) / 10)))


def test_bin_counts_use_half_open_bins():
    edges = np.array([1.0, 2.0, 3.0])
    values = np.array([-5, 0.999, 1.0, 1.5, 2.0, 2.999, 3.0, 99, np.finfo(float).max])
    assert bin_counts_sorted(values, edges).tolist() == [2, 2, 2, 3]


def test_smoothing_floors_and_renormalises():
    p = smooth(np.array([0.0, 0.5, 0.5]), 1e-4)
    assert p.sum() == pytest.approx(1.0)
    assert p[0] == pytest.approx(1e-4 / 1.0001)


def brute_force_w1(grid: np.ndarray, sorted_current: np.ndarray, points: int = 2_000_000) -> float:
    """Midpoint rule on a very fine level grid: an independent estimate of the exact integral."""
    u = (np.arange(points) + 0.5) / points
    q_ref = np.interp(u, quantile_grid_levels(grid.size), grid)
    q_cur = sorted_current[np.minimum((u * sorted_current.size).astype(np.int64), sorted_current.size - 1)]
    return float(np.abs(q_ref - q_cur).mean())


@pytest.mark.parametrize("n", [1, 2, 7, 150, 999, 1001, 20_000])
def test_wasserstein_to_grid_is_the_exact_integral(n):
    rng = np.random.default_rng(n)
    grid = quantile_grid(np.sort(rng.lognormal(0, 1, 5000)))
    current = np.sort(rng.lognormal(0.2, 1.1, n))
    # the brute force is itself accurate to about range / points
    assert wasserstein_to_grid(grid, current) == pytest.approx(brute_force_w1(grid, current), abs=2e-5)


@pytest.mark.parametrize("maker", [
    lambda rng, n: rng.normal(0, 1, n),
    lambda rng, n: rng.lognormal(0, 1, n),
    lambda rng, n: rng.exponential(1, n),
    lambda rng, n: rng.integers(0, 5, n).astype(float),
    lambda rng, n: np.where(rng.random(n) < 0.9, 0.0, rng.pareto(2, n)),
])
def test_stored_grid_wasserstein_is_within_the_documented_tolerance_of_the_raw_one(maker):
    rng = np.random.default_rng(11)
    reference, current = maker(rng, 100_000), maker(rng, 50_000) * 1.1 + 0.05
    s_ref = np.sort(reference)
    grid, std = quantile_grid(s_ref), reference.std()
    tolerance = wasserstein_to_grid(grid, s_ref) / std  # what the baseline stores as wasserstein_grid_error
    raw = wasserstein(reference, current)
    stored = wasserstein_from_grid(grid, std, current)
    assert abs(stored - raw) <= tolerance + 1e-9
    assert tolerance < 2e-3  # the documented order of magnitude for 100k-row references


# -- properties ------------------------------------------------------------------------------

@PROPERTY
@given(samples)
def test_identical_samples_give_zero_drift(x):
    assert psi(x, x) == 0.0
    assert kl_divergence(x, x) == 0.0
    assert wasserstein(x, x) == 0.0


@PROPERTY
@given(samples, samples, st.integers(2, 20))
def test_psi_and_kl_are_non_negative(reference, current, bins):
    assert psi(reference, current, bins=bins) >= -1e-12
    assert kl_divergence(reference, current, bins=bins) >= -1e-12


@PROPERTY
@given(st.lists(st.sampled_from("abcde"), min_size=1, max_size=50),
       st.lists(st.sampled_from("abcdefg"), min_size=1, max_size=50))
def test_categorical_drift_is_non_negative_and_tvd_is_at_most_one(reference, current):
    assert psi(reference, current) >= -1e-12
    assert kl_divergence(reference, current) >= -1e-12
    assert 0.0 <= category_frequency_shift(reference, current) <= 1.0 + 1e-12


@PROPERTY
@given(arrays(np.float64, st.integers(2, 80), elements=st.floats(-1e3, 1e3)), st.floats(-100, 100))
def test_a_shift_of_known_size_gives_the_expected_wasserstein(x, delta):
    if x.std() < 1e-3:
        return  # a near-constant reference: the scale is undefined (tested below)
    expected = abs((x + delta).mean() - x.mean()) / x.std()  # W1 of a pure shift is the shift
    assert wasserstein(x, x + delta) == pytest.approx(expected, rel=1e-6, abs=1e-9)


# -- edge cases and bad input ----------------------------------------------------------------

def test_single_value_samples():
    assert psi([1.0], [1.0]) == 0.0
    assert psi([1.0], [2.0]) == 0.0  # one edge at 1.0: both values fall in the bin [1, inf)
    assert psi([1.0], [0.0]) > 0.25  # below the edge: the reference's empty bin
    assert wasserstein([1.0, 3.0], [2.0]) == pytest.approx(1.0)  # W1 = 1, std = 1


def test_constant_feature():
    ref = np.full(100, 5.0)
    assert psi(ref, np.full(50, 5.0)) == 0.0
    assert psi(ref, np.full(50, 4.0)) > 0.25  # below the only edge: the empty lower bin fills
    assert wasserstein(ref, np.full(50, 5.0)) == 0.0
    with pytest.raises(InvalidInput, match="constant"):
        wasserstein(ref, np.full(50, 6.0))


def test_missing_values_are_left_out_and_measured_separately():
    ref = np.array([1.0, 2.0, 3.0, np.nan] * 25)
    cur = np.array([1.0, 2.0, 3.0, np.nan, np.nan] * 20)
    assert psi(ref, cur) == pytest.approx(0.0, abs=1e-12)
    assert missing_value_density_change(ref, cur) == pytest.approx(0.4 - 0.25)
    assert missing_value_density_change(pd.Series(["a", None]), pd.Series(["a", "b"])) == pytest.approx(-0.5)


@pytest.mark.parametrize("call", [psi, kl_divergence, wasserstein])
def test_empty_or_all_missing_samples_are_refused(call):
    with pytest.raises(InvalidInput, match="no non-missing"):
        call([1.0, 2.0], [])
    with pytest.raises(InvalidInput, match="no non-missing"):
        call([np.nan, np.nan], [1.0])


@pytest.mark.parametrize("call", [psi, kl_divergence, wasserstein])
def test_infinities_and_non_numbers_are_refused(call):
    with pytest.raises(InvalidInput, match="infinite"):
        call([1.0, 2.0, np.inf], [1.0, 2.0])
    with pytest.raises(InvalidInput, match="numbers"):
        call(np.array([1.0, "x", 2.0], dtype=object), [1.0, 2.0], **({} if call is wasserstein else
                                                                     {"kind": "numerical"}))


def test_two_dimensional_input_is_refused():
    with pytest.raises(InvalidInput, match="one-dimensional"):
        psi(np.ones((3, 3)), np.ones(3))


def test_missing_density_of_an_empty_array_is_refused():
    with pytest.raises(InvalidInput, match="empty"):
        missing_value_density_change([], [1.0])


def test_public_functions_refuse_what_the_engine_counts_as_type_mismatches():
    with pytest.raises(InvalidInput, match="current holds 4 value"):
        psi([1.0, 2.0, 3.0], pd.Series([1.0, [2], {"a": 1}, b"3", True], dtype=object), kind="numerical")
    with pytest.raises(InvalidInput, match="current holds 1 value.* not categories"):
        category_frequency_shift(["a", "b"], pd.Series(["a", [1]], dtype=object))
    with pytest.raises(InvalidInput, match="reference holds 1 value"):
        wasserstein(pd.Series([1.0, "2.5", 3.0], dtype=object), [1.0, 2.0])  # a number written as text
