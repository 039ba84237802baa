"""Model drift: prediction distribution shift, accuracy drop, output entropy change, volatility."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..errors import InvalidInput
from .binning import align_categories
from .drift import total_variation
from .labels import Outputs, as_series, public_outputs


def distribution_shift(reference: Mapping[str, float], current_counts: Mapping[str, int]) -> float:
    """Total variation distance between a stored class distribution and current class counts."""
    _, ref_p, cur_p = align_categories(list(reference), list(reference.values()),
                                       list(current_counts), list(current_counts.values()))
    return total_variation(ref_p, cur_p)


def prediction_distribution_shift(reference_distribution: Mapping[str, float], current_predictions) -> float:
    r"""Total variation distance between the baseline's and the current class distributions.

    .. math:: \tfrac12 \sum_k |c_k - r_k|

    over the union of classes; in ``[0, 1]``. WARNING above 0.20, CRITICAL above 0.40.

    Raises
    ------
    InvalidInput
        when there is no current prediction or no reference distribution.
    """
    outputs = public_outputs(None, current_predictions, None, missing_predictions=True)
    if not outputs.prediction_count or not reference_distribution:
        raise InvalidInput("needs a reference distribution and at least one current prediction")
    return distribution_shift(reference_distribution, outputs.class_counts_by_name())


def accuracy(y_true, y_pred) -> tuple[float | None, int]:
    """Share of correct predictions over rows with ground truth, and how many rows that is.

    Labels compare as text. ``(None, 0)`` when no row has ground truth.
    """
    return public_outputs(y_true, y_pred, None, needs_truth=True, missing_predictions=True).accuracy()


def accuracy_drop(baseline_accuracy: float, y_true, y_pred) -> float:
    """``baseline_accuracy - current_accuracy`` (0.05 = five points lost).

    Raises
    ------
    InvalidInput
        when no row has ground truth (the metric is unavailable, not zero).
    """
    current, count = accuracy(y_true, y_pred)
    if current is None:
        raise InvalidInput("no row has ground truth: accuracy drop is unavailable")
    return float(baseline_accuracy) - current


def row_entropy(probabilities: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    r"""Shannon entropy (nats) of each row of class probabilities.

    .. math:: H = -\sum_k p'_k \ln p'_k, \quad p'_k = \max(p_k, \epsilon) / \sum_j \max(p_j, \epsilon)

    (the spec's eps floor for every log; it also keeps ``H > 0`` for fully confident
    outputs so a relative change stays defined). A single column is read as the
    probability of one class of a binary model, i.e. a Bernoulli.
    """
    p = np.asarray(probabilities, dtype=float)
    if p.ndim == 1 or p.shape[1] == 1:
        p = p.reshape(-1)
        p = np.column_stack((p, 1.0 - p))
    floored = np.maximum(p, eps)
    floored /= floored.sum(axis=1, keepdims=True)
    return -np.sum(floored * np.log(floored), axis=1)


def valid_probability_rows(probabilities: np.ndarray) -> np.ndarray:
    """Rows whose scores are all finite and in ``[0, 1]``."""
    p = np.asarray(probabilities, dtype=float)
    p = p[:, None] if p.ndim == 1 else p  # (not reshape(len, -1): an empty window has no "-1")
    return np.all((p >= 0.0) & (p <= 1.0), axis=1)  # NaN compares False


def mean_output_entropy(probabilities, eps: float = 1e-4) -> float:
    """Mean of :func:`row_entropy` over valid rows.

    Raises
    ------
    InvalidInput
        when no row holds valid probabilities.
    """
    p = np.asarray(probabilities, dtype=float)
    p = p[:, None] if p.ndim == 1 else p
    valid = valid_probability_rows(p)
    if not valid.any():
        raise InvalidInput("no row holds finite probabilities in [0, 1]")
    return float(row_entropy(p[valid], eps).mean())


def output_entropy_change(reference_entropy: float, current_entropy: float) -> float:
    r"""Relative change of mean output entropy, ``|H_cur - H_ref| / H_ref``.

    WARNING above 0.25, CRITICAL above 0.50.
    """
    if not reference_entropy > 0:
        raise InvalidInput("reference entropy must be positive")
    return abs(current_entropy - reference_entropy) / reference_entropy


def hour_codes(timestamps: pd.Series) -> np.ndarray:
    """Hours since the epoch per row (int64); -1 where the timestamp is missing."""
    series = timestamps if isinstance(timestamps, pd.Series) else pd.Series(timestamps)
    if not pd.api.types.is_datetime64_any_dtype(series.dtype):
        series = pd.to_datetime(series, utc=True, errors="coerce")
    if getattr(series.dtype, "tz", None) is not None:
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    values = series.to_numpy(dtype="datetime64[ms]")
    missing = np.isnat(values)
    hours = values.view(np.int64) // 3_600_000
    return np.where(missing, -1, hours)


def hourly_positive_rates(hours: np.ndarray, is_positive: np.ndarray, min_chunk: int = 30
                          ) -> tuple[np.ndarray, int]:
    """Positive rate of each hourly chunk holding at least ``min_chunk`` predictions.

    Returns the rates of the chunks kept and the number of chunks in the window.
    """
    present = hours >= 0
    codes, _ = pd.factorize(hours[present])
    if codes.size == 0:
        return np.empty(0), 0
    sizes = np.bincount(codes)
    positives = np.bincount(codes, weights=np.asarray(is_positive)[present].astype(float), minlength=sizes.size)
    kept = sizes >= min_chunk
    return positives[kept] / sizes[kept], int(sizes.size)


def prediction_volatility(timestamps, predictions, positive_label, *, min_chunk: int = 30) -> float:
    r"""Standard deviation (ddof 0) of the positive rate across hourly chunks.

    Chunks (UTC clock hours) with fewer than ``min_chunk`` predictions are left out.
    WARNING above 0.10, CRITICAL above 0.20.

    Raises
    ------
    InvalidInput
        on lengths that differ or fewer than two chunks with enough predictions.
    """
    outputs = public_outputs(None, predictions, positive_label)
    stamps = as_series(timestamps, "timestamps")
    if len(stamps) != outputs.rows:
        raise InvalidInput(f"timestamps has {len(stamps)} rows, predictions {outputs.rows}")
    rates, _ = positive_rates_by_hour(stamps, outputs, min_chunk)
    if rates.size < 2:
        raise InvalidInput(f"{rates.size} hourly chunk(s) with at least {min_chunk} predictions; need two")
    return float(rates.std())


def positive_rates_by_hour(timestamps: pd.Series, outputs: Outputs, min_chunk: int) -> tuple[np.ndarray, int]:
    """:func:`hourly_positive_rates` of the rows with a prediction and a timestamp."""
    hours = np.where(outputs.has_prediction, hour_codes(timestamps), -1)
    return hourly_positive_rates(hours, outputs.predicted_positive, min_chunk)
