"""Two baselines side by side: how far a candidate baseline is from the current one.

Used before activating a new baseline (``baseline compare A B``): it answers "what would
change if B became the reference?" from what the baselines store, without raw rows.

- Categorical features and the class distribution: PSI and total variation from the
  stored frequencies (exact).
- Numerical features: PSI of B on A's bins, with B's share of each bin read off B's stored
  quantile function (within a few percent of PSI on the raw rows: a thin tail bin's share
  is interpolated), and the Wasserstein distance between the two stored quantile
  functions scaled by A's standard deviation (exact up to the grids' own error, the
  ``wasserstein_grid_error`` each baseline records).
- Fairness: each attribute's parity gap, equal-opportunity gap and disparate impact in A
  and in B.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..models.baseline import DriftSnapshot, FeatureDistribution
from .binning import align_categories, quantile_grid_levels
from .drift import psi_from_proportions, total_variation

COLUMNS = ["section", "name", "measure", "reference", "candidate", "change"]


def grid_proportions(edges: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Share of a distribution, given by its quantile function on the standard grid, in each
    bin of ``edges`` (interior edges; outer bins open)."""
    below = np.interp(edges, grid, quantile_grid_levels(len(grid)), left=0.0, right=1.0)
    return np.diff(np.concatenate(([0.0], below, [1.0])))


def grid_wasserstein(reference_grid: np.ndarray, candidate_grid: np.ndarray) -> float:
    """``W1`` between two distributions given by their quantile functions on the same grid
    (the integral of ``|Q_a(u) - Q_b(u)|`` over ``u``, trapezoidal)."""
    gap = np.abs(np.asarray(reference_grid) - np.asarray(candidate_grid))
    levels = quantile_grid_levels(len(gap))
    return float(np.sum((gap[1:] + gap[:-1]) * np.diff(levels)) / 2)


def _numerical_rows(name: str, a: FeatureDistribution, b: FeatureDistribution) -> list[dict]:
    rows = [_row("feature", name, "mean", a.mean, b.mean), _row("feature", name, "std", a.std, b.std),
            _row("feature", name, "missing rate", a.missing_rate, b.missing_rate)]
    if a.bin_edges is not None and a.bin_proportions is not None and b.quantile_grid:
        candidate_p = grid_proportions(np.asarray(a.bin_edges), np.asarray(b.quantile_grid))
        rows.append(_row("feature", name, "PSI", 0.0, psi_from_proportions(np.asarray(a.bin_proportions), candidate_p)))
    if a.quantile_grid and b.quantile_grid and a.std:
        rows.append(_row("feature", name, "Wasserstein / std", 0.0,
                         grid_wasserstein(np.asarray(a.quantile_grid), np.asarray(b.quantile_grid)) / a.std))
    return rows


def _frequency_rows(section: str, name: str, a: dict[str, float], b: dict[str, float]) -> list[dict]:
    _, ref_p, cand_p = align_categories(list(a), list(a.values()), list(b), list(b.values()))
    return [_row(section, name, "PSI", 0.0, psi_from_proportions(ref_p, cand_p)),
            _row(section, name, "total variation", 0.0, total_variation(ref_p, cand_p))]


def _row(section: str, name: str, measure: str, reference: float | None, candidate: float | None) -> dict:
    change = None if reference is None or candidate is None else candidate - reference
    return {"section": section, "name": name, "measure": measure, "reference": reference,
            "candidate": candidate, "change": change}


def compare_baselines(reference: DriftSnapshot, candidate: DriftSnapshot) -> pd.DataFrame:
    """One row per (feature or attribute, measure): the reference's value, the candidate's,
    and the change. Features only one of them has are listed with the other side empty.

    Parameters
    ----------
    reference : DriftSnapshot
        The baseline in use (A).
    candidate : DriftSnapshot
        The baseline that would replace it (B), of the same model.
    """
    rows = [_row("baseline", "predictions", "sample count", reference.sample_count, candidate.sample_count)]
    for name in sorted(set(reference.feature_distributions) | set(candidate.feature_distributions)):
        a, b = reference.feature_distributions.get(name), candidate.feature_distributions.get(name)
        if a is None or b is None or a.dtype != b.dtype:
            rows.append(_row("feature", name, "present", a is not None, b is not None))
        elif a.frequencies is not None and b.frequencies is not None:
            rows += _frequency_rows("feature", name, a.frequencies, b.frequencies)
            rows.append(_row("feature", name, "missing rate", a.missing_rate, b.missing_rate))
        else:
            rows += _numerical_rows(name, a, b)
    if reference.prediction_distribution and candidate.prediction_distribution:
        rows += _frequency_rows("predictions", "class distribution", reference.prediction_distribution,
                                candidate.prediction_distribution)
    for attribute in sorted(set(reference.fairness_metrics) | set(candidate.fairness_metrics)):
        a, b = reference.fairness_metrics.get(attribute), candidate.fairness_metrics.get(attribute)
        for measure in ("demographic_parity", "equal_opportunity", "disparate_impact"):
            rows.append(_row("fairness", attribute, measure, getattr(a, measure, None), getattr(b, measure, None)))
    return pd.DataFrame(rows, columns=COLUMNS)
