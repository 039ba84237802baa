"""Reading a canonical frame's model outputs once: predicted class, labels, scores, SHAP.

Shared by the baseline builder and the analysis so both read the columns the same way
(column names from :mod:`monitoring_core.models.columns`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..models import columns as col
from .fairness import TRUTH_NEGATIVE, TRUTH_POSITIVE, UNLABELLED
from .model import row_entropy, valid_probability_rows


@dataclass(frozen=True)
class Outputs:
    """Predictions and labels of a frame as arrays.

    ``truth_state`` is ``TRUTH_POSITIVE``/``TRUTH_NEGATIVE``/``UNLABELLED`` per row (None
    when the frame has no ground-truth column). Ground truths outside the known labels are
    counted in ``unknown_truths`` and treated as unlabelled; predictions outside them are
    counted in ``unknown_predictions`` and kept (a new output class is itself a shift).
    """

    rows: int
    has_prediction: np.ndarray
    classes: list[str]
    class_counts: np.ndarray
    predicted_positive: np.ndarray
    truth_state: np.ndarray | None
    correct: np.ndarray | None
    unknown_predictions: int = 0
    unknown_truths: int = 0

    @property
    def prediction_count(self) -> int:
        return int(self.class_counts.sum())

    @property
    def labelled(self) -> np.ndarray | None:
        return None if self.truth_state is None else self.truth_state != UNLABELLED

    def class_distribution(self) -> dict[str, float]:
        total = self.prediction_count
        return {c: float(n) / total for c, n in zip(self.classes, self.class_counts) if n > 0} if total else {}

    def accuracy(self) -> tuple[float | None, int]:
        """Share correct over rows with (known) ground truth and a prediction, and that count."""
        if self.correct is None:
            return None, 0
        labelled = self.labelled & self.has_prediction
        count = int(labelled.sum())
        return (float(self.correct[labelled].mean()) if count else None), count


def _text_codes(series: pd.Series) -> tuple[np.ndarray, list[str]]:
    try:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
    except TypeError:  # unhashable cells (lists, dicts): compare their text
        codes, uniques = pd.factorize(series.astype("str"), use_na_sentinel=True)
    labels = [str(u) for u in uniques]
    distinct = list(dict.fromkeys(labels))
    codes = np.asarray(codes, dtype=np.int64)
    if len(distinct) != len(labels):  # 1 and "1" are the same label
        remap = np.array([distinct.index(label) for label in labels] + [-1], dtype=np.int64)
        codes = remap[codes]
    return codes, distinct


def read_outputs(frame: pd.DataFrame, positive_label: str, known_labels: set[str] | None = None) -> Outputs:
    """Encode ``prediction.class`` and ``ground_truth`` of ``frame`` (labels compare as text)."""
    rows = len(frame)
    if col.PREDICTED_CLASS in frame.columns:
        pred_codes, classes = _text_codes(frame[col.PREDICTED_CLASS])
    else:
        pred_codes, classes = np.full(rows, -1, dtype=np.int64), []
    has_prediction = pred_codes >= 0
    class_counts = np.bincount(pred_codes[has_prediction], minlength=len(classes))
    positive_code = classes.index(positive_label) if positive_label in classes else -2
    predicted_positive = pred_codes == positive_code
    unknown_predictions = 0
    if known_labels is not None:
        unknown = np.array([c not in known_labels for c in classes], dtype=bool)
        unknown_predictions = int(class_counts[unknown].sum()) if unknown.size else 0

    truth_state = correct = None
    unknown_truths = 0
    if col.GROUND_TRUTH in frame.columns:
        truth_codes, truth_labels = _text_codes(frame[col.GROUND_TRUTH])
        bad = [i for i, label in enumerate(truth_labels) if known_labels is not None and label not in known_labels]
        if bad:
            is_bad = np.isin(truth_codes, bad)
            unknown_truths = int(is_bad.sum())
            truth_codes = np.where(is_bad, -1, truth_codes)
        positive_truth = truth_labels.index(positive_label) if positive_label in truth_labels else -2
        truth_state = np.full(rows, UNLABELLED, dtype=np.int8)
        truth_state[truth_codes >= 0] = TRUTH_NEGATIVE
        truth_state[truth_codes == positive_truth] = TRUTH_POSITIVE
        # the truth's code for each predicted class, to compare labels as integers
        as_pred_code = np.array([classes.index(t) if t in classes else -3 for t in truth_labels] + [-4],
                                dtype=np.int64)
        correct = (as_pred_code[truth_codes] == pred_codes) & (truth_codes >= 0)
    return Outputs(rows, has_prediction, classes, class_counts, predicted_positive, truth_state, correct,
                   unknown_predictions, unknown_truths)


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
        scores = np.column_stack([_floats(frame[c]) for c in probability_columns(frame)])
    else:
        scores = _floats(frame[col.CONFIDENCE]).reshape(-1, 1)
    all_missing = np.isnan(scores).all(axis=1)
    valid = valid_probability_rows(scores)
    count = int(valid.sum())
    mean = float(row_entropy(scores[valid] if count < len(valid) else scores, eps).mean()) if count else None
    return EntropyReading(mean, count, int((~valid & ~all_missing).sum()))


def _floats(series: pd.Series) -> np.ndarray:
    """Numbers of a score column; anything that is not a number becomes NaN (counted invalid)."""
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        values = pd.to_numeric(series.astype(object), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    # ±inf stay: valid_probability_rows counts them as invalid
    return values


def explanation_names(frame: pd.DataFrame) -> list[str]:
    return col.names_with_prefix(frame.columns, col.EXPLANATION_PREFIX)


@dataclass(frozen=True)
class ShapReading:
    """``importance[f] = mean(|SHAP_f|)`` over finite values (NaN when a feature has none)."""

    names: list[str]
    importance: np.ndarray
    counts: np.ndarray  # finite values per feature
    rows: int  # rows with at least one finite SHAP value
    non_finite: int  # ±inf values left out


def read_shap(frame: pd.DataFrame, names: list[str]) -> ShapReading:
    """Read the ``explanation.<name>`` columns of ``frame`` for ``names``."""
    importance = np.full(len(names), np.nan)
    counts = np.zeros(len(names), dtype=np.int64)
    rows_with_values = np.zeros(len(frame), dtype=bool)
    non_finite = 0
    for i, name in enumerate(names):
        values = _floats(frame[col.explanation(name)])
        total = float(np.abs(values).sum())
        if np.isfinite(total):  # the usual case: every value present and finite, no mask needed
            rows_with_values[:] = True
            counts[i], importance[i] = values.size, total / values.size if values.size else np.nan
            continue
        finite = np.isfinite(values)
        non_finite += int(np.isinf(values).sum())
        rows_with_values |= finite
        counts[i] = int(finite.sum())
        if counts[i]:
            importance[i] = float(np.abs(values[finite]).mean())
    return ShapReading(list(names), importance, counts, int(rows_with_values.sum()), non_finite)
