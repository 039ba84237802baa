"""Reference-quantile bins, category alignment, eps smoothing and quantile grids.

Numerical features are binned on the reference's quantiles (deciles by default), duplicate
edges collapsed and the outer edges open, so every current value falls in a bin. Bin ``i``
holds ``edges[i-1] <= x < edges[i]`` (``edges`` are the interior edges; ``edges[-1]`` is
-inf and ``edges[len]`` +inf), which is what ``np.searchsorted(edges, x, side="right")``
assigns. Counting on a *sorted* sample needs one binary search per edge, not per value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

QUANTILE_GRID_SIZE = 1001
"""Points of the stored reference quantile function used for Wasserstein (min and max included)."""


def quantiles_of_sorted(sorted_values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """``np.quantile(values, levels)`` (linear method) of an already sorted sample, without re-sorting.

    ``Q(q) = x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)])`` with
    ``h = q * (n - 1)``.
    """
    n = sorted_values.size
    h = np.asarray(levels, dtype=float) * (n - 1)
    lo = np.floor(h).astype(np.int64)
    np.clip(lo, 0, n - 1, out=lo)
    hi = np.minimum(lo + 1, n - 1)
    frac = h - lo
    below, above = sorted_values[lo], sorted_values[hi]
    # where both neighbours are equal return that value exactly (no 0 * inf, no rounding)
    return np.where(below == above, below, below + frac * (above - below))


def quantile_bin_edges(sorted_reference: np.ndarray, bins: int) -> np.ndarray:
    """Interior edges of ``bins`` reference-quantile bins, duplicates collapsed.

    The edges are the reference quantiles at ``k / bins`` for ``k = 1 .. bins - 1``; a
    feature with few distinct values gets fewer bins (a constant feature: one edge, two
    bins, the lower one empty).
    """
    if sorted_reference.size == 0:
        return np.empty(0)
    levels = np.arange(1, bins) / bins
    return np.unique(quantiles_of_sorted(sorted_reference, levels))


def bin_counts_sorted(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin of a sorted sample: ``#(x < e_i) - #(x < e_{i-1})``."""
    below = np.searchsorted(sorted_values, edges, side="left")
    return np.diff(np.concatenate(([0], below, [sorted_values.size])))


def smooth(proportions: np.ndarray, eps: float) -> np.ndarray:
    """Floor every proportion at ``eps`` and renormalise to sum 1.

    ``p'_i = max(p_i, eps) / sum_j max(p_j, eps)``: an empty bin never gives an infinite
    logarithm (spec: the same floor for every metric that takes a log).
    """
    floored = np.maximum(np.asarray(proportions, dtype=float), eps)
    return floored / floored.sum()


def align_categories(reference_categories: Sequence[str], reference_proportions: Sequence[float],
                     current_categories: Sequence[str], current_counts: Sequence[int]
                     ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Reference and current proportions over one bin per category.

    One bin per reference category, then one per category seen only in the current
    window (reference proportion 0 there).

    Returns
    -------
    categories, reference_p, current_p
    """
    index = {c: i for i, c in enumerate(reference_categories)}
    unseen = [c for c in current_categories if c not in index]
    categories = list(reference_categories) + unseen
    for c in unseen:
        index[c] = len(index)
    ref = np.zeros(len(categories))
    ref[: len(reference_proportions)] = reference_proportions
    cur = np.zeros(len(categories))
    positions = np.fromiter((index[c] for c in current_categories), dtype=np.int64, count=len(current_categories))
    np.add.at(cur, positions, np.asarray(current_counts, dtype=float))
    total = cur.sum()
    return categories, ref, (cur / total if total > 0 else cur)


def quantile_grid_levels(size: int = QUANTILE_GRID_SIZE) -> np.ndarray:
    """Chebyshev-spaced levels in [0, 1]: ``u_j = (1 - cos(pi * j / (size - 1))) / 2``.

    Dense near 0 and 1 where a quantile function bends most, so a linear interpolation of
    the grid follows the tails closely (uniform levels overstate Wasserstein on skewed
    features several-fold; see docs/metrics.md).
    """
    levels = 0.5 - 0.5 * np.cos(np.pi * np.arange(size) / (size - 1))
    levels[0], levels[-1] = 0.0, 1.0
    return levels


def quantile_grid(sorted_values: np.ndarray, size: int = QUANTILE_GRID_SIZE) -> np.ndarray:
    """The sample's quantile function at :func:`quantile_grid_levels` (min first, max last)."""
    return quantiles_of_sorted(sorted_values, quantile_grid_levels(size))
