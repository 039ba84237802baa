"""Model drift: prediction distribution shift, accuracy drop, output entropy change, volatility."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

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


@dataclass(frozen=True)
class HourlyChunks:
    """Predictions and positives of each hourly chunk kept (at least ``min_chunk``
    predictions), and how many chunks the window has in all."""

    sizes: np.ndarray
    positives: np.ndarray
    chunk_count: int

    @property
    def rates(self) -> np.ndarray:
        return self.positives / self.sizes


MIN_CHUNKS = 3
"""Chunks a volatility needs (a variance net of noise from two chunks is mostly noise)."""


def hourly_chunks(hours: np.ndarray, is_positive: np.ndarray, min_chunk: int = 30) -> HourlyChunks:
    """Positives and sizes of each hourly chunk holding at least ``min_chunk`` predictions
    (``hours`` as from :func:`hour_codes`, -1 where missing)."""
    present = hours >= 0
    codes, _ = pd.factorize(hours[present])
    sizes = np.bincount(codes)
    positives = np.bincount(codes, weights=np.asarray(is_positive)[present].astype(float), minlength=sizes.size)
    kept = sizes >= min_chunk
    return HourlyChunks(sizes[kept], positives[kept], int(sizes.size))


def net_volatility(chunks: HourlyChunks) -> float:
    r"""Between-chunk standard deviation of the positive rate beyond sampling noise.

    .. math:: \sqrt{\max\left(0,\; s^2 - \operatorname{mean}_k \frac{p(1-p)}{n_k}\right)}

    ``s^2`` the sample variance (ddof 1) of the chunks' positive rates, ``p`` the positive
    rate over those chunks, ``n_k`` each chunk's size. For rates that differ only by
    binomial noise ``E[s^2]`` equals the subtracted term, so a steady model scores about 0.
    """
    if chunks.sizes.size < 2:
        raise InvalidInput(f"{chunks.sizes.size} chunk(s); a variance needs two")
    p = chunks.positives.sum() / chunks.sizes.sum()
    noise = np.mean(p * (1.0 - p) / chunks.sizes)
    return float(np.sqrt(max(0.0, chunks.rates.var(ddof=1) - noise)))


def prediction_volatility(timestamps, predictions, positive_label, *, min_chunk: int = 30) -> float:
    r"""Prediction volatility: :func:`net_volatility` over UTC clock-hour chunks.

    Chunks with fewer than ``min_chunk`` predictions are left out. WARNING above 0.10,
    CRITICAL above 0.20.

    Raises
    ------
    InvalidInput
        on lengths that differ or fewer than three chunks with enough predictions.
    """
    outputs = public_outputs(None, predictions, positive_label)
    stamps = as_series(timestamps, "timestamps")
    if len(stamps) != outputs.rows:
        raise InvalidInput(f"timestamps has {len(stamps)} rows, predictions {outputs.rows}")
    chunks = chunks_by_hour(stamps, outputs, min_chunk)
    if chunks.sizes.size < MIN_CHUNKS:
        raise InvalidInput(f"{chunks.sizes.size} hourly chunk(s) with at least {min_chunk} predictions; "
                           f"need {MIN_CHUNKS}")
    return net_volatility(chunks)


def chunks_by_hour(timestamps: pd.Series, outputs: Outputs, min_chunk: int) -> HourlyChunks:
    """:func:`hourly_chunks` of the rows with a prediction and a timestamp."""
    hours = np.where(outputs.has_prediction, hour_codes(timestamps), -1)
    return hourly_chunks(hours, outputs.predicted_positive, min_chunk)
