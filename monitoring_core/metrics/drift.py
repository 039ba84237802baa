"""Data drift per feature: PSI, KL divergence, Wasserstein, category frequency shift, missing rate.

Each metric exists at two levels:

* on raw arrays (``psi(reference, current)``...), what a user or a test calls;
* on a stored reference (proportions, a quantile grid), what the engine calls with a
  :class:`~monitoring_core.models.baseline.DriftSnapshot` instead of the reference rows.

Missing values (NaN, None) are left out of the distributions (they are the subject of
:func:`missing_value_density_change`). Infinities are refused with
:class:`~monitoring_core.errors.InvalidInput` here; the engine counts them as data-quality
violations before it gets this far.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import scipy.stats

from ..errors import InvalidInput
from .binning import align_categories, bin_counts_sorted, quantile_bin_edges, quantile_grid_levels, smooth
from .quality import CategoricalColumn, categorical_column, parse_numbers

Kind = Literal["auto", "numerical", "categorical"]


# -- input checks -------------------------------------------------------------------------

def _is_categorical(values: pd.Series) -> bool:
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dtype):
        return True
    if pd.api.types.is_numeric_dtype(dtype):
        return False
    return pd.api.types.infer_dtype(values, skipna=True) not in ("integer", "floating", "mixed-integer-float",
                                                                 "decimal", "empty")


def numeric_sample(values, name: str) -> np.ndarray:
    """Finite float64 values of a 1-D array, missing values dropped (read by the engine's converter).

    Raises
    ------
    InvalidInput
        if a value is not a number (text, even of a number, lists, booleans...) or is
        infinite, or the array is not 1-D.
    """
    parsed = parse_numbers(_series(values, name))
    wrong = int(parsed.not_number.sum()) + parsed.as_text
    if wrong:
        raise InvalidInput(f"{name} holds {wrong} value(s) that are not numbers")
    infinite = int(parsed.infinite.sum())
    if infinite:
        raise InvalidInput(f"{name} holds {infinite} infinite value(s)")
    return parsed.values[~parsed.missing]


def categorical_sample(values, name: str) -> CategoricalColumn:
    """Categories of a 1-D array as the engine reads them (booleans become "True"/"False").

    Raises
    ------
    InvalidInput
        if a value is neither text, a boolean, nor part of an all-numeric array.
    """
    column = categorical_column(_series(values, name), boolean=True)
    if column.type_mismatches:
        raise InvalidInput(f"{name} holds {column.type_mismatches} value(s) that are not categories (text)")
    return column


def _non_empty(size: int, name: str) -> None:
    if size == 0:
        raise InvalidInput(f"{name} has no non-missing values; the metric is undefined")


def _series(values, name: str) -> pd.Series:
    if np.ndim(values) != 1:
        raise InvalidInput(f"{name} must be one-dimensional, got shape {np.shape(values)}")
    return values if isinstance(values, pd.Series) else pd.Series(values)


def _kind_of(reference, current, kind: Kind) -> Literal["numerical", "categorical"]:
    ref, cur = _series(reference, "reference"), _series(current, "current")
    if kind != "auto":
        return kind
    return "categorical" if _is_categorical(ref) or _is_categorical(cur) else "numerical"


# -- proportions: the intermediate the engine and the public functions share -----------------

def numeric_proportions(edges: np.ndarray, sorted_values: np.ndarray) -> np.ndarray:
    """Share of a sorted sample in each bin of ``edges`` (see :mod:`.binning`)."""
    return bin_counts_sorted(sorted_values, edges) / sorted_values.size


def category_frequencies(column: CategoricalColumn) -> dict[str, float]:
    """Share of each category present (what a baseline stores)."""
    counts = column.counts()
    total = int(counts.sum())
    return {c: float(n) / total for c, n in zip(column.categories, counts) if n > 0} if total else {}


def category_proportions(reference_frequencies: dict[str, float], current: CategoricalColumn
                         ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The reference's categories plus the new ones, and the reference and current proportions over them."""
    return align_categories(list(reference_frequencies), list(reference_frequencies.values()),
                            current.categories, current.counts())


def numeric_bin_labels(edges: Sequence[float]) -> list[str]:
    """A label per bin of interior ``edges`` (outer bins open): ``< e0``, ``[e0, e1)``, …, ``≥ en``."""
    shown = [f"{e:.4g}" for e in edges]
    if not shown:
        return ["all values"]
    return [f"< {shown[0]}"] + [f"[{a}, {b})" for a, b in zip(shown, shown[1:])] + [f"≥ {shown[-1]}"]


def binned_proportions(reference, current, *, bins: int = 10, kind: Kind = "auto"
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Reference and current proportions over the spec's bins (unsmoothed).

    Numerical: ``bins`` reference-quantile bins, duplicates collapsed, outer edges open.
    Categorical: one bin per reference category plus one per category seen only in
    ``current``. Missing values are left out. Built exactly as a baseline and the engine
    build them.
    """
    if _kind_of(reference, current, kind) == "numerical":
        ref, cur = np.sort(numeric_sample(reference, "reference")), np.sort(numeric_sample(current, "current"))
        _non_empty(ref.size, "reference")
        _non_empty(cur.size, "current")
        edges = quantile_bin_edges(ref, bins)
        return numeric_proportions(edges, ref), numeric_proportions(edges, cur)
    ref_c, cur_c = categorical_sample(reference, "reference"), categorical_sample(current, "current")
    _non_empty(int(ref_c.counts().sum()), "reference")
    _non_empty(int(cur_c.counts().sum()), "current")
    _, ref_p, cur_p = category_proportions(category_frequencies(ref_c), cur_c)
    return ref_p, cur_p


def psi_from_proportions(reference_p: np.ndarray, current_p: np.ndarray, eps: float = 1e-4) -> float:
    """PSI of two proportion vectors over the same bins, after :func:`~.binning.smooth`."""
    r, c = smooth(reference_p, eps), smooth(current_p, eps)
    return float(np.sum((c - r) * np.log(c / r)))


def kl_from_proportions(reference_p: np.ndarray, current_p: np.ndarray, eps: float = 1e-4) -> float:
    """``KL(cur || ref)`` of two proportion vectors over the same bins, after smoothing."""
    r, c = smooth(reference_p, eps), smooth(current_p, eps)
    return float(np.sum(c * np.log(c / r)))


def total_variation(reference_p: np.ndarray, current_p: np.ndarray) -> float:
    """``0.5 * sum(|c_i - r_i|)`` (no smoothing: there is no logarithm)."""
    return float(0.5 * np.abs(np.asarray(current_p) - np.asarray(reference_p)).sum())


# -- public metrics on raw arrays -----------------------------------------------------------

def psi(reference, current, *, bins: int = 10, eps: float = 1e-4, kind: Kind = "auto") -> float:
    r"""Population stability index of ``current`` against ``reference``.

    .. math:: \mathrm{PSI} = \sum_i (c_i - r_i)\,\ln(c_i / r_i)

    over the reference-quantile bins of a numerical feature, or one bin per category of a
    categorical one (categories seen only in ``current`` get a bin with ``r_i = 0``).
    Proportions are floored at ``eps`` and renormalised before the logarithm.

    Parameters
    ----------
    reference, current : array_like, 1-D
        Samples; NaN/None are missing and left out.
    bins : int
        Number of reference-quantile bins for numerical data (duplicate edges collapse).
    eps : float
        Floor of every proportion.
    kind : {"auto", "numerical", "categorical"}
        ``auto``: numbers are numerical; strings, booleans and categoricals are categorical.

    Returns
    -------
    float
        ``>= 0``; 0 for identical samples. WARNING from 0.10, CRITICAL from 0.25.

    Raises
    ------
    InvalidInput
        on infinities, non-numbers in numerical data, or an empty sample.
    """
    return psi_from_proportions(*binned_proportions(reference, current, bins=bins, kind=kind), eps)


def kl_divergence(reference, current, *, bins: int = 10, eps: float = 1e-4, kind: Kind = "auto") -> float:
    r"""Kullback-Leibler divergence ``KL(current || reference)`` over the PSI bins.

    .. math:: \mathrm{KL} = \sum_i c_i \ln(c_i / r_i)

    Same bins, smoothing and inputs as :func:`psi`. Returns a value ``>= 0``.
    """
    return kl_from_proportions(*binned_proportions(reference, current, bins=bins, kind=kind), eps)


def category_frequency_shift(reference, current) -> float:
    r"""Total variation distance between the category frequencies.

    .. math:: \mathrm{TVD} = \tfrac12 \sum_k |c_k - r_k|

    over the union of categories; in ``[0, 1]``. Missing values are left out.
    """
    return total_variation(*binned_proportions(reference, current, kind="categorical"))


def missing_rate(values) -> float:
    """Share of missing (NaN/None/NA) values; 0 for an empty array."""
    series = _series(values, "values")
    return float(series.isna().mean()) if len(series) else 0.0


def missing_value_density_change(reference, current) -> float:
    """``missing_rate(current) - missing_rate(reference)``, signed (a rise is worse).

    Raises
    ------
    InvalidInput
        if either array is empty.
    """
    for name, values in (("reference", reference), ("current", current)):
        if len(values) == 0:
            raise InvalidInput(f"{name} is empty; its missing rate is undefined")
    return missing_rate(current) - missing_rate(reference)


def wasserstein(reference, current) -> float:
    r"""Scale-free Wasserstein distance: W1 between the samples over the reference std.

    .. math:: W = \frac{1}{\sigma_{ref}} \int_{-\infty}^{\infty} |F_{cur}(x) - F_{ref}(x)|\,dx

    ``sigma_ref`` is ``reference.std()`` (ddof 0): this is
    ``scipy.stats.wasserstein_distance(reference, current) / reference.std()``.

    Returns
    -------
    float
        ``>= 0``; 0 for identical samples. WARNING from 0.15, CRITICAL above 0.30.

    Raises
    ------
    InvalidInput
        on non-numbers, infinities, an empty sample, or a constant reference when the
        samples differ (the scale is undefined).
    """
    ref, cur = numeric_sample(reference, "reference"), numeric_sample(current, "current")
    _non_empty(ref.size, "reference")
    _non_empty(cur.size, "current")
    return _scaled(float(scipy.stats.wasserstein_distance(ref, cur)), float(ref.std()))


def _scaled(distance: float, reference_std: float) -> float:
    if distance == 0.0:
        return 0.0
    if not reference_std > 0:
        raise InvalidInput("the reference is constant: a Wasserstein distance relative to its standard "
                           "deviation is undefined")
    return distance / reference_std


# -- Wasserstein against a stored quantile grid ----------------------------------------------

def wasserstein_to_grid(grid: Sequence[float], sorted_current: np.ndarray,
                        levels: np.ndarray | None = None) -> float:
    r"""Exact W1 between a sample and a distribution given by its quantile grid.

    The reference quantile function ``Q_r`` is the linear interpolation of ``grid`` at
    ``levels`` (default :func:`~.binning.quantile_grid_levels`); the current one is the
    sample's step function ``Q_c(u) = s_k`` on ``[k/n, (k+1)/n)``.

    .. math:: W_1 = \int_0^1 |Q_c(u) - Q_r(u)|\,du

    computed exactly: on each step ``Q_r`` is linear (``A`` to ``B``) except where a grid
    level falls inside, and ``\int |s_k - L|`` has a closed form (``|d_0 + d_1| / 2`` per unit
    width without a sign change, ``(d_0^2 + d_1^2) / (2|d_1 - d_0|)`` with one). Steps that
    contain grid levels are split at them. Cost: a few vector operations over the sample.

    Parameters
    ----------
    grid : array_like
        Reference quantiles, ascending, first the minimum and last the maximum.
    sorted_current : ndarray
        Finite current values, sorted ascending, at least one.
    """
    q = np.asarray(grid, dtype=float)
    u_knots = quantile_grid_levels(q.size) if levels is None else np.asarray(levels, dtype=float)
    s = np.asarray(sorted_current, dtype=float)
    n = s.size
    if n == 0:
        raise InvalidInput("current has no values")
    breaks = np.arange(n + 1, dtype=float)
    breaks /= n
    q_at_breaks = np.interp(breaks, u_knots, q)
    total = _sum_abs_linear_minus_sorted_step(q_at_breaks, s) / n

    # Steps with a grid level strictly inside: Q_r bends there, so replace their straight-line
    # value by the exact one over the sub-pieces between the step's ends and its levels.
    inner = u_knots[1:-1]
    step_of_knot = np.minimum((inner * n).astype(np.int64), n - 1)
    strictly_inside = inner > step_of_knot / n
    kinked = np.unique(step_of_knot[strictly_inside])
    if kinked.size:
        straight = _integral_abs_linear_minus_step(q_at_breaks[kinked] - s[kinked],
                                                   q_at_breaks[kinked + 1] - s[kinked], 1.0 / n)
        points = np.unique(np.concatenate((kinked / n, (kinked + 1) / n, inner[strictly_inside])))
        mids = 0.5 * (points[:-1] + points[1:])
        step = np.minimum((mids * n).astype(np.int64), n - 1)
        keep = np.isin(step, kinked)
        left, right, step = points[:-1][keep], points[1:][keep], step[keep]
        exact = _integral_abs_linear_minus_step(np.interp(left, u_knots, q) - s[step],
                                                np.interp(right, u_knots, q) - s[step], right - left)
        total += exact - straight
    return float(max(total, 0.0))


def _sum_abs_linear_minus_sorted_step(q_at_breaks: np.ndarray, s: np.ndarray) -> float:
    """``sum_k mean_t |L_k(t) - s_k|`` for every step, ``L_k`` linear from ``q[k]`` to ``q[k+1]``.

    The same closed form as :func:`_integral_abs_linear_minus_step`, written for the hot
    path: ``q`` is non-decreasing, so a sign change means ``q[k] < s_k <= q[k+1]``.
    """
    lower, upper = q_at_breaks[:-1], q_at_breaks[1:]
    mean_gap = lower + upper
    mean_gap -= s
    mean_gap -= s
    np.abs(mean_gap, out=mean_gap)
    total = 0.5 * float(mean_gap.sum())
    crossing = np.flatnonzero((lower < s) & (upper >= s))
    if crossing.size:
        a, b, c = lower[crossing], upper[crossing], s[crossing]
        d0, d1 = a - c, b - c
        total += float(np.sum((d0 * d0 + d1 * d1) / (2.0 * (d1 - d0)) - 0.5 * np.abs(d0 + d1)))
    return total


def _integral_abs_linear_minus_step(d0: np.ndarray, d1: np.ndarray, width) -> float:
    """``sum_i width_i * mean_{t in [0,1]} |d0_i + t (d1_i - d0_i)|`` in closed form."""
    values = np.abs(d0 + d1)
    values *= 0.5
    crossing = (d0 < 0) != (d1 < 0)
    if crossing.any():
        a, b = d0[crossing], d1[crossing]
        values[crossing] = (a * a + b * b) / (2.0 * np.abs(b - a))
    if np.ndim(width):
        return float(np.dot(values, width))
    return float(values.sum() * width)


def wasserstein_from_grid(grid: Sequence[float], reference_std: float, current) -> float:
    """Scale-free Wasserstein of a raw ``current`` sample against a stored reference grid.

    ``W1(Q_r, current) / reference_std``; see :func:`wasserstein_to_grid`. Differs from
    :func:`wasserstein` on the raw reference by at most the grid's own error
    ``W1(reference rows, grid) / std`` (stored in the baseline as ``wasserstein_grid_error``).
    """
    cur = numeric_sample(current, "current")
    _non_empty(cur.size, "current")
    return _scaled(wasserstein_to_grid(grid, np.sort(cur)), reference_std)
