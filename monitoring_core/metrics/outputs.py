"""Reading a canonical frame's model outputs once: predicted class, labels, scores, SHAP.

Shared by the baseline builder and the analysis so both read the columns the same way
(column names from :mod:`monitoring_core.models.columns`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..models import columns as col
from .explanation import mean_abs
from .labels import Outputs, encode_outputs
from .model import row_entropy, valid_probability_rows
from .quality import parse_numbers


def read_outputs(frame: pd.DataFrame, positive_label: str, known_labels: set[str] | None = None) -> Outputs:
    """Encode ``prediction.class`` and ``ground_truth`` of ``frame`` (see :func:`~.labels.encode_outputs`)."""
    return encode_outputs(frame.get(col.PREDICTED_CLASS), frame.get(col.GROUND_TRUTH), positive_label, known_labels,
                          rows=len(frame))


def probability_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith(col.PROBABILITY_PREFIX)]


@dataclass(frozen=True)
class EntropyReading:
    mean: float | None
    valid_rows: int
    invalid_rows: int  # scores present but non-finite or outside [0, 1]


def entropy_sources(frame: pd.DataFrame) -> list[str]:
    """Output-score sources the frame has, best first: "probabilities", "confidence"."""
    sources = ["probabilities"] if probability_columns(frame) else []
    return sources + (["confidence"] if col.CONFIDENCE in frame.columns else [])


def output_entropy(frame: pd.DataFrame, source: str, eps: float) -> EntropyReading:
    """Mean output entropy of ``frame`` from ``source`` ("probabilities" or "confidence").

    Rows whose scores are all missing are skipped; rows with a non-finite or out-of-range
    score are counted as invalid and left out.
    """
    if source == "probabilities":
        columns = [parse_numbers(frame[c]) for c in probability_columns(frame)]
    else:
        columns = [parse_numbers(frame[col.CONFIDENCE])]
    scores = np.column_stack([c.values for c in columns])
    all_missing = np.logical_and.reduce([c.missing for c in columns])
    valid = valid_probability_rows(scores)  # NaN from a cell that is no number makes its row invalid
    count = int(valid.sum())
    mean = float(row_entropy(scores[valid] if count < len(valid) else scores, eps).mean()) if count else None
    return EntropyReading(mean, count, int((~valid & ~all_missing).sum()))


CONFIDENCE_BINS = 10


def confidence_bin_labels() -> list[str]:
    return [f"{i / CONFIDENCE_BINS:.1f}–{(i + 1) / CONFIDENCE_BINS:.1f}" for i in range(CONFIDENCE_BINS)]


def confidence_histogram(frame: pd.DataFrame) -> np.ndarray | None:
    """Share of the valid confidences (finite, in [0, 1]) in ten equal bins over [0, 1]
    (1.0 in the last); None when the frame has none."""
    if col.CONFIDENCE not in frame.columns:
        return None
    values = parse_numbers(frame[col.CONFIDENCE]).values
    valid = values[(values >= 0) & (values <= 1)]  # NaN fails both comparisons
    if not valid.size:
        return None
    bins = np.minimum((valid * CONFIDENCE_BINS).astype(np.int64), CONFIDENCE_BINS - 1)
    return np.bincount(bins, minlength=CONFIDENCE_BINS) / valid.size


def explanation_names(frame: pd.DataFrame) -> list[str]:
    return col.names_with_prefix(frame.columns, col.EXPLANATION_PREFIX)


@dataclass(frozen=True)
class ShapReading:
    """``importance[f] = mean(|SHAP_f|)`` over finite values (NaN when a feature has none)."""

    names: list[str]
    importance: np.ndarray
    counts: np.ndarray  # finite values per feature
    rows: int  # rows with at least one finite SHAP value
    non_finite: int  # ±inf values and cells that are no number, left out


def read_shap(frame: pd.DataFrame, names: list[str]) -> ShapReading:
    """Read the ``explanation.<name>`` columns of ``frame`` for ``names``."""
    importance = np.full(len(names), np.nan)
    counts = np.zeros(len(names), dtype=np.int64)
    rows_with_values = np.zeros(len(frame), dtype=bool)
    non_finite = 0
    for i, name in enumerate(names):
        parsed = parse_numbers(frame[col.explanation(name)])
        values = parsed.values
        finite = np.isfinite(values)
        non_finite += int(parsed.infinite.sum() + parsed.not_number.sum())
        rows_with_values |= finite
        counts[i] = int(finite.sum())
        importance[i] = mean_abs(values[finite] if counts[i] < values.size else values)
    return ShapReading(list(names), importance, counts, int(rows_with_values.sum()), non_finite)
