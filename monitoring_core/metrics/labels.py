"""Predicted classes and ground-truth labels as arrays, and the positive class checked against them.

One encoding for the engine, the baseline builder and the public functions
(``accuracy``, ``demographic_parity_difference``...), so they cannot read labels differently.
Labels compare as text and exactly: ``"Approve"`` is not ``"approve"`` and ``"approve "``
is not ``"approve"``. A positive class absent from the data is never read as "nobody was
selected": :func:`positive_class_problem` names it (with a suggestion when only case or
spaces differ).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import InvalidInput
from ..models.thresholds import unknown_label_message

TRUTH_POSITIVE, TRUTH_NEGATIVE, UNLABELLED = 0, 1, 2


@dataclass(frozen=True)
class Outputs:
    """Predictions and labels as arrays.

    ``truth_state`` is ``TRUTH_POSITIVE``/``TRUTH_NEGATIVE``/``UNLABELLED`` per row (None
    without ground truth). Ground truths outside the known labels are counted in
    ``unknown_truths`` and treated as unlabelled; predictions outside them are counted in
    ``unknown_predictions`` and kept (a new output class is itself a shift).
    """

    rows: int
    has_prediction: np.ndarray
    classes: list[str]
    class_counts: np.ndarray
    predicted_positive: np.ndarray
    truth_state: np.ndarray | None
    correct: np.ndarray | None
    truth_classes: list[str]
    unknown_predictions: int = 0
    unknown_truths: int = 0

    @property
    def prediction_count(self) -> int:
        return int(self.class_counts.sum())

    @property
    def labelled(self) -> np.ndarray | None:
        return None if self.truth_state is None else self.truth_state != UNLABELLED

    @property
    def seen(self) -> set[str]:
        """Every class seen as a prediction or a label."""
        return set(self.classes) | set(self.truth_classes)

    def class_counts_by_name(self) -> dict[str, int]:
        return {c: int(n) for c, n in zip(self.classes, self.class_counts) if n > 0}

    def class_distribution(self) -> dict[str, float]:
        total = self.prediction_count
        return {c: n / total for c, n in self.class_counts_by_name().items()} if total else {}

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
    labels = [_label_text(u) for u in uniques]
    distinct = list(dict.fromkeys(labels))
    codes = np.asarray(codes, dtype=np.int64)
    if len(distinct) != len(labels):  # 1 and "1" are the same label
        remap = np.array([distinct.index(label) for label in labels] + [-1], dtype=np.int64)
        codes = remap[codes]
    return codes, distinct


def _label_text(value) -> str:
    """A label as text; an integral float is written as the integer (1.0 -> "1"), since a
    column of integer labels with a gap arrives as floats."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def encode_outputs(predictions: pd.Series | None, truths: pd.Series | None, positive_label: str | None,
                   known_labels: set[str] | None = None, rows: int | None = None) -> Outputs:
    """Encode predicted classes and ground truths (either may be None: not logged)."""
    rows = len(predictions) if predictions is not None else len(truths) if truths is not None else rows or 0
    if predictions is not None:
        pred_codes, classes = _text_codes(predictions)
    else:
        pred_codes, classes = np.full(rows, -1, dtype=np.int64), []
    has_prediction = pred_codes >= 0
    class_counts = np.bincount(pred_codes[has_prediction], minlength=len(classes))
    positive_code = classes.index(positive_label) if positive_label in classes else -2
    predicted_positive = pred_codes == positive_code
    unknown_predictions = 0
    if known_labels is not None and classes:
        unknown = np.array([c not in known_labels for c in classes], dtype=bool)
        unknown_predictions = int(class_counts[unknown].sum())

    truth_state = correct = None
    truth_labels: list[str] = []
    unknown_truths = 0
    if truths is not None:
        truth_codes, truth_labels = _text_codes(truths)
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
                   truth_labels, unknown_predictions, unknown_truths)


@dataclass(frozen=True)
class LabelProblem:
    """Why the positive class cannot be judged: unknown everywhere, or known only elsewhere
    (the baseline) while this data neither predicts nor labels it."""

    message: str
    known_elsewhere: bool


def positive_class_problem(positive_label: str, outputs: Outputs, elsewhere: set[str] = frozenset(),
                           where: str = "the classes seen") -> LabelProblem | None:
    """The problem with the positive class in ``outputs``, or None when it can be judged.

    The class must be a predicted class or a label of the data; ``elsewhere`` holds classes
    known from other sources (the baseline's). Data with no class at all (an empty window)
    is no label problem unless the class is unknown elsewhere too.
    """
    if positive_label in outputs.seen:
        return None
    if positive_label in elsewhere:
        if not outputs.seen:
            return None
        return LabelProblem(f"positive class {positive_label!r} is neither predicted nor a label in this window "
                            f"(seen: {sorted(outputs.seen)}); only the baseline has it", known_elsewhere=True)
    return LabelProblem(unknown_label_message(positive_label, outputs.seen | set(elsewhere), where),
                        known_elsewhere=False)


def public_outputs(y_true, y_pred, pos_label, *, needs_truth: bool = False,
                   missing_predictions: bool = False) -> Outputs:
    """The :class:`Outputs` of a public function's arrays, refusing what would read as a silent 0.

    Raises
    ------
    InvalidInput
        on arrays that are not 1-D, lengths that differ, a missing prediction (unless
        ``missing_predictions``: such rows are left out), a missing
        ``y_true`` where it is needed, or a ``pos_label`` that is neither in ``y_pred`` nor
        in ``y_true``.
    """
    pred = as_series(y_pred, "y_pred")
    truth = None if y_true is None else as_series(y_true, "y_true")
    if truth is None and needs_truth:
        raise InvalidInput("y_true is needed for this metric")
    if truth is not None and len(truth) != len(pred):
        raise InvalidInput(f"y_true has {len(truth)} rows, y_pred {len(pred)}")
    if not missing_predictions and pred.isna().any():
        raise InvalidInput(f"y_pred has {int(pred.isna().sum())} missing value(s)")
    outputs = encode_outputs(pred, truth, None if pos_label is None else str(pos_label))
    if pos_label is not None:
        problem = positive_class_problem(str(pos_label), outputs, where="the classes of y_pred and y_true")
        if problem:
            raise InvalidInput(problem.message)
    return outputs


def as_series(values, name: str) -> pd.Series:
    """A 1-D array as a Series with a fresh index (refusing anything else)."""
    if np.ndim(values) != 1:
        raise InvalidInput(f"{name} must be one-dimensional, got shape {np.shape(values)}")
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    return series.reset_index(drop=True)
