"""Bulk ingest of predictions from CSV, Parquet or a DataFrame.

Every good row is kept; every bad row is reported with its line (CSV), row number
(Parquet/DataFrame) and reason, and nothing about it is guessed. Checks are vectorised,
so a million rows validate in a few seconds.

Columns are document paths (:mod:`monitoring_core.models.columns`), for example::

    prediction_id,timestamp,model_version,prediction.class,prediction.confidence,
    prediction.probabilities.approve,features.income,metadata.protected_attributes.gender,ground_truth

Short forms are accepted: ``prediction`` for ``prediction.class``, ``confidence`` for
``prediction.confidence``, ``label`` for ``ground_truth``. Without a ``prediction_id``
column each row gets an id derived from its content, so ingesting the same file twice
reports duplicates instead of storing every prediction twice.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import audit
from ..errors import InvalidInput
from ..metrics.quality import parse_numbers
from ..models import columns as col
from ..models.audit import AuditEvent
from ..models.common import SYSTEM, Actor
from ..storage.frames import TIME_DTYPE

ALIASES = {
    "prediction": col.PREDICTED_CLASS,
    "predicted_class": col.PREDICTED_CLASS,
    "confidence": col.CONFIDENCE,
    "label": col.GROUND_TRUTH,
    "true_label": col.GROUND_TRUTH,
}
REQUIRED = (col.TIMESTAMP, col.PREDICTED_CLASS)
NUMERIC_FIXED = (col.CONFIDENCE, col.LATENCY_MS)
TEXT_FIXED = (col.PREDICTION_ID, col.MODEL_ID, col.MODEL_VERSION, col.PREDICTED_CLASS, col.GROUND_TRUTH,
              col.USER_ID, col.SESSION_ID, col.API_VERSION)
CHUNK_ROWS = 100_000
MAX_LISTED_ISSUES = 1000


@dataclass(frozen=True)
class RowIssue:
    """One rejected row: where it was and why."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class IngestReport:
    source: str
    rows_read: int = 0
    inserted: int = 0
    rejected: list[RowIssue] = field(default_factory=list)

    @property
    def rejected_count(self) -> int:
        return len(self.rejected)

    def summary(self) -> str:
        text = f"{self.source}: {self.rows_read} rows read, {self.inserted} stored, {self.rejected_count} rejected"
        shown = self.rejected[:20]
        if shown:
            text += "\n" + "\n".join(f"  {issue}" for issue in shown)
            if self.rejected_count > len(shown):
                text += f"\n  ... and {self.rejected_count - len(shown)} more (see --errors FILE)"
        return text

    def rejected_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"line": [i.line for i in self.rejected], "reason": [i.reason for i in self.rejected]})


# ---------------------------------------------------------------------------------------
# Reading


def read_csv(path: Path | str) -> tuple[pd.DataFrame, np.ndarray, list[RowIssue]]:
    """All cells as text, with each row's first line number; rows with the wrong number
    of fields are reported, not read."""
    issues: list[RowIssue] = []
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        handle = open(path, newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise InvalidInput(f"{path} is empty (no header line)") from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InvalidInput(f"{path}: cannot read the header line: {exc}") from None
        width, previous_line = len(header), reader.line_num
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except (csv.Error, UnicodeDecodeError) as exc:
                issues.append(RowIssue(previous_line + 1, f"unreadable CSV: {exc}"))
                previous_line = reader.line_num
                continue
            start, previous_line = previous_line + 1, reader.line_num
            if not row:
                continue
            if len(row) != width:
                issues.append(RowIssue(start, f"expected {width} fields, found {len(row)}"))
                continue
            rows.append(row)
            lines.append(start)
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in header]
    frame = pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in zip(header, columns, strict=True)})
    return frame, np.asarray(lines, dtype="int64"), issues


def read_table(path: Path | str) -> tuple[pd.DataFrame, np.ndarray, list[RowIssue]]:
    """A CSV or Parquet file; Parquet rows are numbered from 1."""
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"cannot read Parquet file {path}: {exc}") from None
        return frame, np.arange(1, len(frame) + 1, dtype="int64"), []
    if path.suffix.lower() in (".csv", ".txt", ""):
        return read_csv(path)
    raise InvalidInput(f"{path}: unsupported file type {path.suffix!r}; use .csv or .parquet")


# ---------------------------------------------------------------------------------------
# Validation


def canonical_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Apply the short forms and refuse unknown columns, naming them."""
    renamed = frame.rename(columns={k: v for k, v in ALIASES.items() if k in frame.columns})
    names = [str(c).strip() for c in renamed.columns]
    renamed.columns = names
    unknown = [c for c in names if not col.is_known(c)]
    if unknown:
        raise InvalidInput(
            f"unknown column(s) {unknown}: use document paths such as 'features.<name>', "
            f"'metadata.protected_attributes.<attribute>', 'prediction.probabilities.<class>' "
            f"(see the README's ingest section)")
    repeated = sorted({c for c in names if names.count(c) > 1})
    if repeated:
        raise InvalidInput(f"column(s) {repeated} appear more than once (after applying short forms)")
    return renamed


class _Checker:
    """Collects per-row problems; a row with any problem is rejected."""

    def __init__(self, frame: pd.DataFrame, lines: np.ndarray):
        self.frame = frame
        self.lines = lines
        self.bad = np.zeros(len(frame), dtype=bool)
        self.reasons: dict[int, str] = {}

    def flag(self, mask: np.ndarray, reason: Callable[[int], str] | str) -> None:
        mask = np.asarray(mask, dtype=bool) & ~self.bad
        for position in np.flatnonzero(mask):
            self.reasons[int(position)] = reason(int(position)) if callable(reason) else reason
        self.bad |= mask

    def issues(self) -> list[RowIssue]:
        return [RowIssue(int(self.lines[p]), r) for p, r in sorted(self.reasons.items())]


def _blank(series: pd.Series) -> np.ndarray:
    if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
        return (series.isna() | (series.astype("str").str.strip() == "")).to_numpy()
    return series.isna().to_numpy()


def _numbers(series: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Parsed floats, and which non-blank cells are not numbers at all."""
    parsed = parse_numbers(series, blank_is_missing=True)
    return pd.Series(parsed.values, index=series.index), parsed.not_number


def _text(series: pd.Series) -> pd.Series:
    blank = _blank(series)
    return series.where(~blank).astype("str").str.strip().where(~blank).astype("str")


def _check_numeric(check: _Checker, name: str, low: float | None = None, high: float | None = None,
                   required: bool = False) -> pd.Series:
    values, not_number = _numbers(check.frame[name])
    check.flag(not_number, lambda p: f"{name} is not a number: {check.frame[name].iloc[p]!r}")
    array = values.to_numpy()
    check.flag(np.isinf(array), f"{name} is infinite")
    if required:
        check.flag(np.isnan(array) & ~not_number, f"{name} is missing")
    if low is not None:
        check.flag(array < low, lambda p: f"{name} = {array[p]} is below {low}")
    if high is not None:
        check.flag(array > high, lambda p: f"{name} = {array[p]} is above {high}")
    return values


def _feature(check: _Checker, name: str) -> pd.Series:
    """Numbers stay numbers; a column of text is categorical; a mostly-numeric column with
    stray text keeps the text (counted later as type mismatches, never silently lost)."""
    series = check.frame[name]
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        values = series.astype("float64")
        check.flag(np.isinf(values.to_numpy()), f"{name} is infinite")
        return values
    values, not_number = _numbers(series)
    check.flag(np.isinf(values.to_numpy()), f"{name} is infinite")
    blank = _blank(series)
    if not not_number.any():
        return values
    if not_number.sum() == (~blank).sum():
        return _text(series)
    mixed = values.astype(object)
    mixed[not_number] = _text(series)[not_number].astype(object)
    return mixed.where(~blank, None)


def _timestamps(check: _Checker, name: str, required: bool) -> pd.Series:
    series = check.frame[name]
    blank = _blank(series)
    if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(series.dtype):
        parsed = pd.to_datetime(series, utc=True)
    else:
        text = series.where(~blank)
        parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
        retry = parsed.isna().to_numpy() & ~blank
        if retry.any():  # anything ISO 8601 did not cover, parsed one by one
            parsed[retry] = pd.to_datetime(text[retry], utc=True, errors="coerce", format="mixed")
    unparsed = parsed.isna().to_numpy() & ~blank
    check.flag(unparsed, lambda p: f"{name} is not a date/time: {series.iloc[p]!r}")
    if required:
        check.flag(blank, f"{name} is missing")
    return parsed.astype(TIME_DTYPE)


def validate_frame(frame: pd.DataFrame, lines: np.ndarray, *, model_id: str | None = None,
                   model_version: str | None = None) -> tuple[pd.DataFrame, np.ndarray, list[RowIssue]]:
    """Canonical, typed rows that passed every check, their line numbers, and the issues
    of the rest."""
    frame = canonical_columns(frame.reset_index(drop=True))
    for name in REQUIRED:
        if name not in frame:
            raise InvalidInput(f"missing required column {name!r}")
    if not any(c.startswith(col.FEATURE_PREFIX) for c in frame.columns):
        raise InvalidInput("no feature columns: name them 'features.<name>'")
    check = _Checker(frame, lines)
    out: dict[str, pd.Series] = {}

    out[col.MODEL_ID] = _fixed_text(check, col.MODEL_ID, model_id, "--model-id")
    out[col.MODEL_VERSION] = _fixed_text(check, col.MODEL_VERSION, model_version, "--model-version")
    out[col.TIMESTAMP] = _timestamps(check, col.TIMESTAMP, required=True)
    for name in TEXT_FIXED:
        if name in frame and name not in out:
            out[name] = _text(frame[name])
    check.flag(out[col.PREDICTED_CLASS].isna().to_numpy(), f"{col.PREDICTED_CLASS} is missing")

    probabilities = [c for c in frame.columns if c.startswith(col.PROBABILITY_PREFIX)]
    for name in probabilities:
        out[name] = _check_numeric(check, name, 0.0, 1.0)
    if col.CONFIDENCE in frame:
        out[col.CONFIDENCE] = _check_numeric(check, col.CONFIDENCE, 0.0, 1.0, required=not probabilities)
        if probabilities:  # a missing confidence is the top class probability
            out[col.CONFIDENCE] = out[col.CONFIDENCE].fillna(pd.concat([out[p] for p in probabilities], axis=1)
                                                             .max(axis=1))
    elif probabilities:
        out[col.CONFIDENCE] = pd.concat([out[p] for p in probabilities], axis=1).max(axis=1)
    else:
        raise InvalidInput(f"missing column {col.CONFIDENCE!r} (or prediction.probabilities.<class> columns)")
    check.flag(out[col.CONFIDENCE].isna().to_numpy(), f"{col.CONFIDENCE} is missing")
    if col.LATENCY_MS in frame:
        out[col.LATENCY_MS] = _check_numeric(check, col.LATENCY_MS, 0.0)
    if col.GROUND_TRUTH_TIMESTAMP in frame:
        out[col.GROUND_TRUTH_TIMESTAMP] = _timestamps(check, col.GROUND_TRUTH_TIMESTAMP, required=False)
        orphan = out[col.GROUND_TRUTH_TIMESTAMP].notna() & out.get(col.GROUND_TRUTH, pd.Series(dtype="str")).isna()
        check.flag(orphan.to_numpy(), "ground_truth_timestamp is set but ground_truth is missing")

    for name in frame.columns:
        if name.startswith(col.FEATURE_PREFIX):
            out[name] = _feature(check, name)
        elif name.startswith(col.PROTECTED_PREFIX):
            out[name] = _text(frame[name])
        elif name.startswith(col.EXPLANATION_PREFIX):
            out[name] = _check_numeric(check, name)

    result = pd.DataFrame(out)
    if col.PREDICTION_ID not in result or result[col.PREDICTION_ID].isna().all():
        result[col.PREDICTION_ID] = _content_ids(result)
    check.flag(result[col.PREDICTION_ID].isna().to_numpy(), f"{col.PREDICTION_ID} is missing")
    _flag_repeated_ids(check, result[col.PREDICTION_ID])
    good = result.loc[~check.bad].reset_index(drop=True)
    return good, np.asarray(lines)[~check.bad], check.issues()


def _fixed_text(check: _Checker, name: str, given: str | None, option: str) -> pd.Series:
    frame = check.frame
    if name in frame:
        values = _text(frame[name])
        if given is not None:
            values = values.fillna(given)
            check.flag((values != given).to_numpy(), lambda p: f"{name} {values.iloc[p]!r} differs from {option} "
                                                               f"{given!r}")
        check.flag(values.isna().to_numpy(), f"{name} is missing")
        return values
    if given is None:
        raise InvalidInput(f"no {name!r} column: add one or pass {option}")
    return pd.Series([given] * len(frame), dtype="str")


def _content_ids(frame: pd.DataFrame) -> pd.Series:
    # Same row, same id: re-ingesting a file is reported as duplicates, not stored twice.
    hashed = pd.util.hash_pandas_object(frame.astype("str"), index=False).to_numpy()
    return pd.Series([f"{frame[col.MODEL_ID].iat[i]}-{h:016x}" for i, h in enumerate(hashed)], dtype="str") \
        if len(frame) else pd.Series([], dtype="str")


def _flag_repeated_ids(check: _Checker, ids: pd.Series) -> None:
    repeated = ids.duplicated(keep="first").to_numpy() & ~check.bad
    if not repeated.any():
        return
    first_line = dict(zip(ids[~ids.duplicated()].tolist(), check.lines[~ids.duplicated().to_numpy()].tolist(),
                          strict=True))
    check.flag(repeated, lambda p: f"duplicate prediction_id {ids.iat[p]!r} (first on line {first_line[ids.iat[p]]})")


# ---------------------------------------------------------------------------------------
# Writing


def store_rows(store, frame: pd.DataFrame, lines: Iterable[int] | np.ndarray,
               progress: Callable[[int], None] | None = None) -> tuple[int, list[RowIssue]]:
    """Insert validated rows in chunks; rows already stored are reported, not rewritten."""
    lines = np.asarray(lines)
    inserted, issues = 0, []
    for start in range(0, len(frame), CHUNK_ROWS):
        chunk = frame.iloc[start:start + CHUNK_ROWS]
        report = store.predictions.insert_frame(chunk)
        inserted += report.inserted
        if report.duplicate_ids:
            where = dict(zip(chunk[col.PREDICTION_ID].tolist(), lines[start:start + len(chunk)].tolist(),
                             strict=True))
            issues += [RowIssue(where[i], f"prediction_id {i!r} is already stored") for i in report.duplicate_ids]
        if progress:
            progress(len(chunk))
    return inserted, issues


def ingest_frame(store, frame: pd.DataFrame, *, model_id: str | None = None, model_version: str | None = None,
                 actor: Actor = SYSTEM, source: str = "DataFrame",
                 lines: np.ndarray | None = None, read_issues: list[RowIssue] | None = None,
                 progress: Callable[[int], None] | None = None) -> IngestReport:
    """Validate and store a DataFrame of predictions (rows numbered from 1)."""
    lines = np.arange(1, len(frame) + 1, dtype="int64") if lines is None else lines
    report = IngestReport(source, rows_read=len(frame) + len(read_issues or []))
    good, good_lines, issues = validate_frame(frame, lines, model_id=model_id, model_version=model_version)
    inserted, duplicates = store_rows(store, good, good_lines, progress)
    report.inserted = inserted
    report.rejected = sorted([*(read_issues or []), *issues, *duplicates], key=lambda i: i.line)
    if inserted or report.rejected:
        audit.record(store, AuditEvent.PREDICTIONS_INGESTED, actor,
                     target={"model_id": model_id or _only_model(good)},
                     details={"source": source, "rows_read": report.rows_read, "inserted": inserted,
                              "rejected": report.rejected_count})
    return report


def _only_model(frame: pd.DataFrame) -> str | None:
    models = frame[col.MODEL_ID].dropna().unique() if col.MODEL_ID in frame else []
    return str(models[0]) if len(models) == 1 else None


def ingest_file(store, path: Path | str, *, model_id: str | None = None, model_version: str | None = None,
                actor: Actor = SYSTEM, progress: Callable[[int], None] | None = None) -> IngestReport:
    """Read, validate and store a CSV or Parquet file of predictions."""
    frame, lines, read_issues = read_table(path)
    return ingest_frame(store, frame, model_id=model_id, model_version=model_version, actor=actor,
                        source=str(path), lines=lines, read_issues=read_issues, progress=progress)


def write_rejected(report: IngestReport, path: Path | str) -> None:
    buffer = io.StringIO()
    report.rejected_frame().to_csv(buffer, index=False)
    Path(path).write_text(buffer.getvalue(), encoding="utf-8")
