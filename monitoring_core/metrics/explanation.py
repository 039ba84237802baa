"""Explanation drift from SHAP values: importance KL, top-features change, rank correlation.

Importance of feature ``f`` is ``mean(|SHAP_f|)`` over the rows; the importance vector is
normalised to sum to 1 before it is compared.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from ..errors import InvalidInput
from .binning import smooth

TOP_K = 5


def mean_abs(values: np.ndarray) -> float:
    """A feature's importance, ``mean(|SHAP|)`` of its finite values (NaN when it has none)."""
    return float(np.abs(values).mean()) if values.size else float("nan")


def feature_importance(shap_values: np.ndarray) -> np.ndarray:
    """:func:`mean_abs` per column of an ``(rows, features)`` array, NaN left out."""
    values = np.asarray(shap_values, dtype=float)
    if values.ndim != 2:
        raise InvalidInput(f"SHAP values must be a 2-D (rows, features) array, got shape {values.shape}")
    if np.isinf(values).any():
        raise InvalidInput("SHAP values hold infinities")
    return np.array([mean_abs(column[~np.isnan(column)]) for column in values.T])


def normalised(importance: np.ndarray) -> np.ndarray:
    """Importances scaled to sum to 1."""
    imp = np.asarray(importance, dtype=float)
    total = imp.sum()
    if not np.isfinite(total) or total <= 0 or (imp < 0).any():
        raise InvalidInput("importances must be non-negative with a positive sum")
    return imp / total


def shap_kl_divergence(reference_importance, current_importance, eps: float = 1e-4) -> float:
    r"""``KL(cur || ref)`` of the normalised importance vectors, after the eps floor.

    .. math:: \sum_f c_f \ln(c_f / r_f)

    WARNING from 0.10, CRITICAL from 0.30.
    """
    ref, cur = _pair(reference_importance, current_importance)
    r, c = smooth(normalised(ref), eps), smooth(normalised(cur), eps)
    return float(np.sum(c * np.log(c / r)))


def top_features(importance, names: list[str], k: int = TOP_K) -> list[str]:
    """The ``k`` most important feature names, most important first (ties by name)."""
    imp = np.asarray(importance, dtype=float)
    order = np.lexsort((np.asarray(names, dtype=object), -imp))
    return [names[i] for i in order[:k]]


def top_features_change(reference_importance, current_importance, names: list[str], k: int = TOP_K
                        ) -> tuple[int, list[str], list[str]]:
    """How many of the reference's top-``k`` features left the top ``k``.

    Returns ``(count, old_top, new_top)``. WARNING from 2, CRITICAL from 3.
    """
    ref, cur = _pair(reference_importance, current_importance)
    old, new = top_features(ref, names, k), top_features(cur, names, k)
    return len(set(old) - set(new)), old, new


def rank_correlation(reference_importance, current_importance) -> float:
    """Spearman correlation of the importance ranks (ties share their average rank).

    In ``[-1, 1]``; lower is worse: WARNING below 0.80, CRITICAL below 0.60.

    Raises
    ------
    InvalidInput
        with fewer than two features, or when either vector is constant (undefined).
    """
    ref, cur = _pair(reference_importance, current_importance)
    if ref.size < 2:
        raise InvalidInput("rank correlation needs at least two features")
    a, b = rankdata(ref), rankdata(cur)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        raise InvalidInput("rank correlation is undefined when every feature is equally important")
    return float(np.corrcoef(a, b)[0, 1])


def _pair(reference, current) -> tuple[np.ndarray, np.ndarray]:
    ref, cur = np.asarray(reference, dtype=float), np.asarray(current, dtype=float)
    if ref.shape != cur.shape or ref.ndim != 1:
        raise InvalidInput(f"importance vectors must be 1-D of the same length, got {ref.shape} and {cur.shape}")
    if not (np.isfinite(ref).all() and np.isfinite(cur).all()):
        raise InvalidInput("importances must be finite")
    return ref, cur
