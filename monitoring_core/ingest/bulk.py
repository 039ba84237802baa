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

CSV files are UTF-8 (with or without a byte-order mark) unless ``encoding`` names another
ASCII-based encoding. Timestamps are ISO 8601 (:data:`ACCEPTED_TIMES`; no offset means
UTC, a bare date is midnight UTC) in the years 1678-2261, datetime columns of any unit
(naive is UTC), or numbers since 1970-01-01 UTC when ``epoch_unit`` is ``"s"`` or ``"ms"``.
Rows are stored in chunks, each with its audit entry; if the store fails part-way,
:class:`IngestIncomplete` says how many rows were stored.
"""

from __future__ import annotations

import codecs
import collections
import csv
import io
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from .. import audit
from ..errors import FairwatchError, InvalidInput, StoreUnavailable
from ..metrics.quality import parse_numbers
from ..models import columns as col
from ..models.audit import AuditEvent
from ..models.common import SYSTEM, Actor
from ..models.predictions import identifier
from ..storage.base import InsertReport
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


def read_csv(path: Path | str, encoding: str | None = None) -> tuple[pd.DataFrame, np.ndarray, list[RowIssue]]:
    """All cells as text, with each row's first line number.

    Every data line is accounted for: a row with the wrong number of fields, a byte that is
    not valid in ``encoding`` (UTF-8 with or without a byte-order mark by default) or a
    quote that is not closed where its row should end is reported on its own line, and
    reading goes on from the next line, so one bad line never takes good ones with it.
    """
    text = _decode(_read_bytes(path), encoding)
    lines = io.StringIO(text, newline="").readlines()
    header, first_data_line = _header(lines, path)
    rows, starts, ends, issues = _records(lines, first_data_line, len(header))
    rows, starts, issues = _drop_undecodable(text, lines, rows, starts, ends, issues, encoding)
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in header]
    # Keyed by position: a repeated column name must reach canonical_columns, not overwrite.
    frame = pd.DataFrame({i: pd.Series(values, dtype=object) for i, values in enumerate(columns)})
    frame.columns = header
    return frame, starts + 1, issues


def _read_bytes(path: Path | str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from None


def _codec(encoding: str | None) -> str:
    """The codec to decode with; only encodings that keep ASCII as it is (so that commas,
    quotes and line ends are found in the bytes) are accepted."""
    try:
        name = codecs.lookup(encoding or "utf-8").name
    except LookupError:
        raise InvalidInput(f"unknown encoding {encoding!r} (for example utf-8, cp1252, latin-1)") from None
    if name == "utf-8":
        return "utf-8-sig"  # a byte-order mark is dropped, not read into the first column's name
    try:
        ascii_kept = _ASCII_PROBE.encode(name) == _ASCII_PROBE.encode("ascii")
    except (UnicodeError, LookupError):
        ascii_kept = False
    if not ascii_kept:
        raise InvalidInput(f"encoding {encoding!r} is not supported: use one that extends ASCII, such as utf-8, "
                           f"cp1252 or latin-1")
    return name


_ASCII_PROBE = 'ab,"\r\n'
# Bytes that are not valid in the encoding are decoded as lone surrogates U+DC80..U+DCFF
# ("surrogateescape"), which valid text never contains: the structure of the file (commas,
# quotes, line ends) stays intact and each bad byte can be traced to its line.
_UNDECODABLE = re.compile("[\udc80-\udcff]")


def _decode(data: bytes, encoding: str | None) -> str:
    return data.decode(_codec(encoding), errors="surrogateescape")


def _header(lines: list[str], path: Path | str) -> tuple[list[str], int]:
    reader = csv.reader(lines, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidInput(f"{path} is empty (no header line)") from None
    except csv.Error as exc:
        raise InvalidInput(f"{path}: cannot read the header line: {exc}") from None
    bad = _UNDECODABLE.search("".join(header))
    if bad:
        raise InvalidInput(f"{path}: the header line has a byte ({_byte(bad.group())}) that is not valid in the "
                           f"file's encoding; pass --encoding")
    return header, reader.line_num


def _records(lines: list[str], first: int, width: int) -> tuple[list[list[str]], np.ndarray, np.ndarray,
                                                                  list[RowIssue]]:
    """Rows of ``width`` fields from ``lines[first:]`` with the (0-based) index of their
    first line and of the line after them; a row that cannot be read rejects its first
    line only, and reading resumes on the next line."""
    rows: list[list[str]] = []
    starts: list[int] = []
    ends: list[int] = []
    issues: list[RowIssue] = []
    position, total = first, len(lines)
    while position < total:
        # A fresh reader per restart: the lines are read in place, not copied.
        reader = csv.reader(map(lines.__getitem__, range(position, total)), strict=True)
        begin = end = position
        try:
            for row in reader:
                begin, end = end, position + reader.line_num
                if len(row) == width:
                    rows.append(row)
                    starts.append(begin)
                    ends.append(end)
                elif not row:
                    continue  # a blank line holds no data
                elif end - begin == 1:
                    issues.append(RowIssue(begin + 1, f"expected {width} fields, found {len(row)}"))
                else:  # a quote opened on this line swallowed the lines after it
                    issues.append(RowIssue(begin + 1, f"a quoted field opened on this line runs to line {end} "
                                                      f"and leaves {len(row)} fields instead of {width}: "
                                                      f"unbalanced quote"))
                    break
            else:
                return rows, np.asarray(starts, dtype="int64"), np.asarray(ends, dtype="int64"), issues
        except csv.Error as exc:
            issues.append(RowIssue(end + 1, _csv_problem(exc, end, position + reader.line_num)))
            begin = end
        position = begin + 1
    return rows, np.asarray(starts, dtype="int64"), np.asarray(ends, dtype="int64"), issues


def _csv_problem(exc: csv.Error, begin: int, reached: int) -> str:
    if "unexpected end of data" in str(exc):
        return "a quoted field opened on this line is never closed: unbalanced quote"
    if reached - begin > 1:
        return f"a quoted field opened on this line runs to line {reached} and does not end its row there ({exc}): " \
               f"unbalanced quote"
    return f"unreadable CSV: {exc}"


def _drop_undecodable(text: str, lines: list[str], rows: list[list[str]], starts: np.ndarray, ends: np.ndarray,
                      issues: list[RowIssue], encoding: str | None
                      ) -> tuple[list[list[str]], np.ndarray, list[RowIssue]]:
    """Reject the rows that hold a byte the encoding does not allow, naming the byte."""
    positions = [m.start() for m in _UNDECODABLE.finditer(text)]
    if not positions:
        return rows, starts, issues
    line_ends = np.cumsum(np.fromiter(map(len, lines), dtype="int64", count=len(lines)))
    bad_lines = np.searchsorted(line_ends, positions, side="right")
    first_bad = dict(zip(bad_lines.tolist()[::-1], [text[p] for p in positions][::-1], strict=True))
    seen = np.zeros(len(lines) + 1, dtype="int64")
    np.add.at(seen, bad_lines + 1, 1)
    seen = np.cumsum(seen)
    bad = seen[ends] > seen[starts]
    name = encoding or "utf-8"
    for position in np.flatnonzero(bad):
        line = next(i for i in range(starts[position], ends[position]) if i in first_bad)
        issues.append(RowIssue(int(line) + 1, f"byte {_byte(first_bad[line])} is not valid {name}: pass --encoding "
                                              f"with the file's encoding (for example cp1252)"))
    keep = np.flatnonzero(~bad)
    return [rows[i] for i in keep], starts[keep], issues


def _byte(escaped: str) -> str:
    return f"0x{ord(escaped) - 0xDC00:02X}"


def read_table(path: Path | str, encoding: str | None = None) -> tuple[pd.DataFrame, np.ndarray, list[RowIssue]]:
    """A CSV or Parquet file; Parquet rows are numbered from 1."""
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise InvalidInput(f"cannot read Parquet file {path}: {exc}") from None
        return frame, np.arange(1, len(frame) + 1, dtype="int64"), []
    if path.suffix.lower() in (".csv", ".txt", ""):
        return read_csv(path, encoding)
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
    repeated = sorted(name for name, count in collections.Counter(names).items() if count > 1)
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


# Columns are checked in groups of about this many cells: one pandas call per group, not
# per column, so a file of 10,000 feature columns costs what its cells cost.
GROUP_CELLS = 100_000


def _column_groups(names: list, rows: int) -> list[list]:
    size = max(1, GROUP_CELLS // max(rows, 1))
    return [names[i:i + size] for i in range(0, len(names), size)]


def _flag_columns(check: _Checker, cells: np.ndarray, names: list[str], problem: str) -> None:
    """Flag the rows of each column (``cells`` holds one column per row) where it is True."""
    for j in np.flatnonzero(cells.any(axis=1)):
        check.flag(cells[j], f"{names[j]} {problem}")


def _features(check: _Checker, names: list[str]) -> pd.DataFrame:
    """Numbers stay numbers; a column of text is categorical; a mostly-numeric column with
    stray text keeps the text (counted later as type mismatches, never silently lost)."""
    frame, parts = check.frame, []
    dtypes = frame.dtypes
    numeric = [n for n in names if pd.api.types.is_numeric_dtype(dtypes[n]) and not pd.api.types.is_bool_dtype(dtypes[n])]
    if numeric:
        values = frame[numeric].to_numpy(dtype="float64").T
        _flag_columns(check, np.isinf(values), numeric, "is infinite")
        parts.append(pd.DataFrame(values.T, index=frame.index, columns=numeric))
    numeric_names = set(numeric)
    others = [n for n in names if n not in numeric_names]
    cells = frame[others].to_numpy(dtype=object)
    for group in _column_groups(list(range(len(others))), len(frame)):
        parts += _feature_group(check, [others[j] for j in group], cells[:, group[0]:group[-1] + 1])
    return pd.concat(parts, axis=1)[names] if parts else pd.DataFrame(index=frame.index)


def _feature_group(check: _Checker, names: list[str], cells: np.ndarray) -> list[pd.DataFrame]:
    """Parsed columns ``names`` from their ``cells`` (one column per column), as one frame
    per kind (numbers, text, mixed)."""
    index, shape = check.frame.index, (len(names), len(check.frame))
    stacked = pd.Series(cells.ravel(order="F"), dtype=object)  # one column after another
    parsed, not_number = _numbers(stacked)
    numbers, not_number = parsed.to_numpy("float64").reshape(shape), not_number.reshape(shape)
    blank = _blank(stacked).reshape(shape)
    _flag_columns(check, np.isinf(numbers), names, "is infinite")
    has_text = not_number.any(axis=1)
    all_text = has_text & (not_number.sum(axis=1) == (~blank).sum(axis=1))
    mixed = has_text & ~all_text
    columns = np.asarray(names, dtype=object)
    parts = [pd.DataFrame(numbers[~has_text].T, index=index, columns=columns[~has_text])]
    if has_text.any():
        texts = _text(stacked).to_numpy(dtype=object).reshape(shape)
        parts.append(pd.DataFrame(texts[all_text].T, index=index, columns=columns[all_text]).astype("str"))
        # Numbers as numbers, stray text as text, blanks as None.
        cells = np.where(not_number[mixed], texts[mixed], numbers[mixed].astype(object))
        cells[blank[mixed]] = None
        parts.append(pd.DataFrame(cells.T, index=index, columns=columns[mixed], dtype=object))
    return parts


ISO_8601 = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?")
ACCEPTED_TIMES = ("ISO 8601 such as 2026-11-01T10:00:00Z, 2026-11-01T12:00:00.250+02:00, "
                  "2026-11-01 10:00 (no offset: UTC) or 2026-11-01 (midnight UTC)")
# The span a nanosecond pandas timestamp covers (1677-09-21 .. 2262-04-11), in whole
# years: any time accepted here can be handled by the analysis without overflowing.
FIRST_YEAR, LAST_YEAR = 1678, 2261
EPOCH_UNITS = {"s": 1000.0, "ms": 1.0}
_EPOCH_LIKE = re.compile(r"\s*-?\d+(?:\.\d*)?\s*")
_EARLIEST_MS = (pd.Timestamp(f"{FIRST_YEAR}-01-01") - pd.Timestamp(0)) // pd.Timedelta(milliseconds=1)
_LATEST_MS = (pd.Timestamp(f"{LAST_YEAR + 1}-01-01") - pd.Timestamp(0)) // pd.Timedelta(milliseconds=1)


def _timestamps(check: _Checker, name: str, required: bool, epoch_unit: str | None) -> pd.Series:
    """UTC times in milliseconds: ISO 8601 text, datetime columns (any unit; naive is UTC),
    or numbers since 1970-01-01 UTC when ``epoch_unit`` declares their unit."""
    series = check.frame[name]
    blank = _blank(series)
    if required:
        check.flag(blank, f"{name} is missing")
    if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(series.dtype):
        millis = _datetime_ms(series)
    elif pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        if epoch_unit is None:
            raise InvalidInput(f"column {name!r} holds numbers: pass --epoch-unit s or ms to read them as "
                               f"seconds or milliseconds since 1970-01-01 UTC, or write times as {ACCEPTED_TIMES}")
        millis = _epoch_ms(series.astype("float64"), epoch_unit)
    else:
        millis = _text_ms(check, name, blank, epoch_unit)
    outside = ~np.isnan(millis) & ((millis < _EARLIEST_MS) | (millis >= _LATEST_MS))
    check.flag(outside, lambda p: f"{name} {_shown(series.iloc[p])} is outside the accepted years "
                                  f"{FIRST_YEAR}-{LAST_YEAR}")
    millis[outside] = np.nan
    return _utc_times(millis, series.index)


def _utc_times(millis: np.ndarray, index: pd.Index) -> pd.Series:
    stamps = np.full(len(millis), np.datetime64("NaT"), dtype="datetime64[ms]")
    known = ~np.isnan(millis)
    stamps[known] = millis[known].astype("int64").astype("datetime64[ms]")
    return pd.Series(stamps, index=index).dt.tz_localize("UTC").astype(TIME_DTYPE)


def _shown(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _not_a_time(name: str, value: object) -> str:
    reason = f"{name} {_shown(value)} is not a date-time: use {ACCEPTED_TIMES}"
    if _EPOCH_LIKE.fullmatch(str(value)):
        reason += "; for seconds or milliseconds since 1970-01-01 UTC pass --epoch-unit s or ms"
    return reason


def _datetime_ms(series: pd.Series) -> np.ndarray:
    """Milliseconds since 1970 (NaN where missing) of a datetime column of any unit; naive is UTC."""
    naive = series.dt.tz_convert("UTC").dt.tz_localize(None) if series.dt.tz is not None else series
    values = naive.astype("datetime64[ms]").to_numpy()
    return np.where(np.isnat(values), np.nan, values.view("int64").astype("float64"))


def _epoch_ms(numbers: pd.Series, unit: str) -> np.ndarray:
    return np.floor(numbers.to_numpy("float64", na_value=np.nan) * EPOCH_UNITS[unit])


def _text_ms(check: _Checker, name: str, blank: np.ndarray, epoch_unit: str | None) -> np.ndarray:
    series = check.frame[name]
    text = series.where(~blank).astype("str").str.strip()
    millis = np.full(len(series), np.nan)
    pending = ~blank
    if epoch_unit is not None:
        numbers, not_number = _numbers(series)
        is_number = ~blank & ~not_number
        millis[is_number] = _epoch_ms(numbers[is_number], epoch_unit)
        pending &= ~is_number
    iso = pending & text.str.fullmatch(ISO_8601).fillna(False).to_numpy(dtype=bool)
    check.flag(pending & ~iso, lambda p: _not_a_time(name, series.iloc[p]))
    years = text.str.slice(0, 4)  # four digits wherever iso holds: compared as text, which is fast
    in_range = iso & ((years >= str(FIRST_YEAR)) & (years <= str(LAST_YEAR))).fillna(False).to_numpy(dtype=bool)
    check.flag(iso & ~in_range, lambda p: f"{name} {series.iloc[p]!r} is outside the accepted years "
                                          f"{FIRST_YEAR}-{LAST_YEAR}")
    parsed = pd.to_datetime(text.where(in_range), utc=True, errors="coerce", format="ISO8601")
    parsed_ms = _datetime_ms(parsed)
    valid = in_range & ~np.isnan(parsed_ms)
    check.flag(in_range & ~valid, lambda p: f"{name} {series.iloc[p]!r} is not a valid date or time of day")
    millis[valid] = parsed_ms[valid]
    return millis


def validate_frame(frame: pd.DataFrame, lines: np.ndarray, *, model_id: str | None = None,
                   model_version: str | None = None, epoch_unit: str | None = None
                   ) -> tuple[pd.DataFrame, np.ndarray, list[RowIssue]]:
    """Canonical, typed rows that passed every check, their line numbers, and the issues
    of the rest."""
    model_id, model_version = check_options(model_id, model_version, epoch_unit)
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
    out[col.TIMESTAMP] = _timestamps(check, col.TIMESTAMP, True, epoch_unit)
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
        out[col.GROUND_TRUTH_TIMESTAMP] = _timestamps(check, col.GROUND_TRUTH_TIMESTAMP, False, epoch_unit)
        orphan = out[col.GROUND_TRUTH_TIMESTAMP].notna() & out.get(col.GROUND_TRUTH, pd.Series(dtype="str")).isna()
        check.flag(orphan.to_numpy(), "ground_truth_timestamp is set but ground_truth is missing")

    features = _features(check, [c for c in frame.columns if c.startswith(col.FEATURE_PREFIX)])
    for name in frame.columns:
        if name.startswith(col.PROTECTED_PREFIX):
            out[name] = _text(frame[name])
        elif name.startswith(col.EXPLANATION_PREFIX):
            out[name] = _check_numeric(check, name)

    result = pd.concat([pd.DataFrame(out), features], axis=1)
    if col.PREDICTION_ID not in result or result[col.PREDICTION_ID].isna().all():
        result[col.PREDICTION_ID] = _content_ids(result)
    check.flag(result[col.PREDICTION_ID].isna().to_numpy(), f"{col.PREDICTION_ID} is missing")
    _flag_repeated_ids(check, result[col.PREDICTION_ID])
    good = result.loc[~check.bad].reset_index(drop=True)
    return good, np.asarray(lines)[~check.bad], check.issues()


def check_options(model_id: str | None, model_version: str | None, epoch_unit: str | None
                  ) -> tuple[str | None, str | None]:
    """The model id and version given for every row, cleaned by the SDK's rule; raises
    ``InvalidInput`` for an empty one or an unknown epoch unit."""
    if epoch_unit is not None and epoch_unit not in EPOCH_UNITS:
        raise InvalidInput(f"--epoch-unit must be one of {sorted(EPOCH_UNITS)}, got {epoch_unit!r}")
    return _option(model_id, "--model-id"), _option(model_version, "--model-version")


def _option(value: str | None, option: str) -> str | None:
    """A model id or version given for every row, under the same rule as the SDK's."""
    if value is None:
        return None
    try:
        return identifier(value)
    except ValueError as exc:
        raise InvalidInput(f"{option} {exc}") from None


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
    if not len(frame):
        return pd.Series([], dtype="str")
    hashed = _row_hashes(frame)
    return pd.Series([f"{model}-{h:016x}" for model, h in zip(frame[col.MODEL_ID].tolist(), hashed.tolist(),
                                                               strict=True)], dtype="str")


# Column types whose cells can be converted to text together, one group of columns at a time.
_STACKABLE = {"float64", "object", "str"}


def _row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """``pd.util.hash_pandas_object(frame.astype("str"), index=False)``, with the cells of
    same-typed columns converted and hashed together instead of column by column."""
    rows = len(frame)
    cells = np.empty((frame.shape[1], rows), dtype=np.uint64)
    by_type: dict[str, list[int]] = collections.defaultdict(list)
    for position, dtype in enumerate(frame.dtypes):
        by_type[str(dtype) if str(dtype) in _STACKABLE else f"{position}"].append(position)
    for kind, positions in by_type.items():
        for group in _column_groups(positions, rows) if kind in _STACKABLE else [positions]:
            values = frame.iloc[:, group].to_numpy(dtype="float64" if kind == "float64" else object)
            text = pd.Series(values.ravel(order="F")).astype("str") if kind in _STACKABLE else \
                frame.iloc[:, group[0]].astype("str")
            cells[group] = pd.util.hash_pandas_object(text, index=False).to_numpy().reshape(len(group), rows)
    return _combine_hashes(cells)


def _combine_hashes(cells: np.ndarray) -> np.ndarray:
    """Row hashes from cell hashes (one column per row), as pandas combines them."""
    multiplier, combined = np.uint64(1000003), np.full(cells.shape[1], 0x345678, dtype=np.uint64)
    for i, column in enumerate(cells):
        remaining = len(cells) - i
        combined ^= column
        combined *= multiplier
        multiplier += np.uint64(82520 + remaining + remaining)
    return combined + np.uint64(97531)


def _flag_repeated_ids(check: _Checker, ids: pd.Series) -> None:
    repeated = ids.duplicated(keep="first").to_numpy() & ~check.bad
    if not repeated.any():
        return
    first_line = dict(zip(ids[~ids.duplicated()].tolist(), check.lines[~ids.duplicated().to_numpy()].tolist(),
                          strict=True))
    check.flag(repeated, lambda p: f"duplicate prediction_id {ids.iat[p]!r} (first on line {first_line[ids.iat[p]]})")


# ---------------------------------------------------------------------------------------
# Writing


class IngestIncomplete(FairwatchError):
    """The store failed part-way through a bulk ingest.

    ``report`` says what was stored before the failure (each stored chunk has its own
    audit entry) and lists every row rejected so far; ingesting the same rows again stores
    the rest, because stored rows are recognised by their ``prediction_id``.
    """

    def __init__(self, report: IngestReport, valid_rows: int, cause: FairwatchError):
        self.report, self.cause = report, cause
        before = "before the store became unavailable" if isinstance(cause, StoreUnavailable) else "before this error"
        super().__init__(f"{cause}; {report.inserted:,} of {valid_rows:,} valid rows stored {before}; re-run the "
                         f"same command to store the rest: stored rows are recognised")


def store_chunks(store, frame: pd.DataFrame, lines: np.ndarray,
                 audit_chunk: Callable[[str, str, InsertReport], None] | None = None
                 ) -> Iterator[tuple[int, int, list[RowIssue]]]:
    """Insert validated rows chunk by chunk, yielding after each commit the chunk's row
    count, how many were inserted and the rows already stored (reported, not rewritten).

    ``audit_chunk(chunk, lines, result)`` runs inside each chunk's transaction, so a chunk
    and its audit entry are stored together or not at all (on the embedded store).
    """
    chunks = max(1, -(-len(frame) // CHUNK_ROWS))
    for number, start in enumerate(range(0, len(frame), CHUNK_ROWS), start=1):
        chunk, chunk_lines = frame.iloc[start:start + CHUNK_ROWS], lines[start:start + CHUNK_ROWS]
        with store.transaction():
            result = store.predictions.insert_frame(chunk)
            if audit_chunk:
                audit_chunk(f"{number} of {chunks}", f"{chunk_lines[0]}-{chunk_lines[-1]}", result)
        where = dict(zip(chunk[col.PREDICTION_ID].tolist(), chunk_lines.tolist(), strict=True)) \
            if result.duplicate_ids else {}
        yield len(chunk), result.inserted, [RowIssue(where[i], f"prediction_id {i!r} is already stored")
                                            for i in result.duplicate_ids]


def store_rows(store, frame: pd.DataFrame, lines: np.ndarray,
               progress: Callable[[int], None] | None = None) -> tuple[int, list[RowIssue]]:
    """Insert validated rows in chunks without auditing them (the caller records its own
    entry); returns how many were inserted and the rows already stored."""
    inserted, issues = 0, []
    for rows, stored, already in store_chunks(store, frame, np.asarray(lines)):
        inserted += stored
        issues += already
        if progress:
            progress(rows)
    return inserted, issues


def ingest_frame(store, frame: pd.DataFrame, *, model_id: str | None = None, model_version: str | None = None,
                 epoch_unit: str | None = None, actor: Actor = SYSTEM, source: str = "DataFrame",
                 lines: np.ndarray | None = None, read_issues: list[RowIssue] | None = None,
                 progress: Callable[[int], None] | None = None) -> IngestReport:
    """Validate and store a DataFrame of predictions (rows numbered from 1).

    Raises
    ------
    IngestIncomplete
        The store failed after the first rows were validated; its ``report`` says how many
        were stored (and audited) before.
    """
    lines = np.arange(1, len(frame) + 1, dtype="int64") if lines is None else np.asarray(lines)
    report = IngestReport(source, rows_read=len(frame) + len(read_issues or []))
    good, good_lines, issues = validate_frame(frame, lines, model_id=model_id, model_version=model_version,
                                              epoch_unit=epoch_unit)
    report.rejected = [*(read_issues or []), *issues]
    target = {"model_id": model_id or _only_model(good)}
    rejected = report.rejected_count

    def audit_chunk(chunk: str, chunk_lines: str, result: InsertReport) -> None:
        audit.record(store, AuditEvent.PREDICTIONS_INGESTED, actor, target=target, details={
            "source": source, "rows_read": report.rows_read, "rejected": rejected, "chunk": chunk,
            "lines": chunk_lines, "inserted": result.inserted, "already_stored": len(result.duplicate_ids)})

    try:
        if len(good):
            for rows, inserted, already in store_chunks(store, good, good_lines, audit_chunk):
                report.inserted += inserted
                report.rejected += already
                if progress:
                    progress(rows)
        elif report.rejected:
            audit.record(store, AuditEvent.PREDICTIONS_INGESTED, actor, target=target, details={
                "source": source, "rows_read": report.rows_read, "rejected": report.rejected_count, "inserted": 0})
    except FairwatchError as exc:
        raise IngestIncomplete(report, len(good), exc) from exc
    finally:
        report.rejected.sort(key=lambda issue: issue.line)
    return report


def _only_model(frame: pd.DataFrame) -> str | None:
    models = frame[col.MODEL_ID].dropna().unique() if col.MODEL_ID in frame else []
    return str(models[0]) if len(models) == 1 else None


def ingest_file(store, path: Path | str, *, model_id: str | None = None, model_version: str | None = None,
                encoding: str | None = None, epoch_unit: str | None = None, actor: Actor = SYSTEM,
                progress: Callable[[int], None] | None = None) -> IngestReport:
    """Read, validate and store a CSV or Parquet file of predictions (see :func:`ingest_frame`)."""
    frame, lines, read_issues = read_table(path, encoding)
    return ingest_frame(store, frame, model_id=model_id, model_version=model_version, epoch_unit=epoch_unit,
                        actor=actor, source=str(path), lines=lines, read_issues=read_issues, progress=progress)


def check_writable(path: Path | str) -> Path:
    """Refuse a report file that could not be written, before anything is stored."""
    path = Path(path)
    folder = path.parent
    if path.is_dir():
        raise InvalidInput(f"{path} is a folder, not a file")
    if not folder.is_dir():
        raise InvalidInput(f"cannot write {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InvalidInput(f"cannot write {path}: permission denied")
    return path


def write_rejected(report: IngestReport, path: Path | str) -> None:
    """The rejected rows' line numbers and reasons as CSV."""
    buffer = io.StringIO()
    report.rejected_frame().to_csv(buffer, index=False)
    try:
        Path(path).write_text(buffer.getvalue(), encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror or exc}") from None
