"""Data-quality counts and the clean arrays the other metrics use.

A window column is turned into what its metric needs (float64 values, or category codes)
while counting what does not fit (spec section 5):

* ``type_mismatches``: a value of the wrong type, e.g. a string in a numerical feature.
  A number written as a string (``"3.5"``) is counted but still used; anything that does
  not parse as a number is counted and left out.
* ``range_violations``: a numerical value outside the baseline's ``[min, max]`` widened by
  10% of the range on each side. Infinities are range violations and are left out (they
  would make Wasserstein and the mean infinite); finite out-of-range values stay in the
  drift metrics, where they are exactly the drift to detect.
* ``schema_violations``: rows missing a feature the baseline has (its column is absent)
  or carrying one it does not (a non-missing value in an unknown ``features.*`` column).

Nothing here raises on bad data.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
import pandas as pd

RANGE_MARGIN = 0.10
"""Share of the baseline's range added on each side before a value counts as out of range."""


@dataclass(frozen=True)
class NumericColumn:
    """A numerical feature's usable values and what was wrong with the rest."""

    values: np.ndarray  # finite float64 values used by the metrics (missing and invalid left out)
    rows: int
    missing: int  # NaN / None / NA
    type_mismatches: int
    non_finite: int  # ±inf, left out


@dataclass(frozen=True)
class CategoricalColumn:
    """A categorical feature as codes into ``categories`` (-1: missing or left out)."""

    codes: np.ndarray
    categories: list[str]
    rows: int
    missing: int
    type_mismatches: int

    def counts(self) -> np.ndarray:
        """Rows per category, aligned with ``categories``."""
        valid = self.codes[self.codes >= 0]
        return np.bincount(valid, minlength=len(self.categories))


@dataclass(frozen=True)
class ParsedNumbers:
    """A column read as numbers, cell by cell (the one converter for numeric columns).

    ``values`` holds the number of every cell: NaN where the cell is missing or not a
    number, ±inf kept (callers count and drop them). ``not_number`` marks present cells
    that are no number at all (unparsable text, lists, dicts, bytes, booleans);
    ``as_text`` counts numbers written as text (``"3.5"``), which are used.
    """

    values: np.ndarray
    missing: np.ndarray
    not_number: np.ndarray
    as_text: int

    @property
    def infinite(self) -> np.ndarray:
        return np.isinf(self.values)


def parse_numbers(series: pd.Series, *, blank_is_missing: bool = False) -> ParsedNumbers:
    """Read a column as float64, classifying every cell (see :class:`ParsedNumbers`).

    Parameters
    ----------
    series : Series
        Any dtype; numeric columns take a copy-free fast path.
    blank_is_missing : bool
        Whether empty or whitespace-only text is a missing value (CSV cells) rather than
        text that is not a number.
    """
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        missing = series.isna().to_numpy()
        return ParsedNumbers(np.full(len(series), np.nan), missing, ~missing, 0)
    if pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        return ParsedNumbers(values, np.isnan(values), np.zeros(len(values), dtype=bool), 0)
    kind = pd.api.types.infer_dtype(series, skipna=True)  # stops at the first cell of another type
    if kind in ("string", "empty"):
        return _parse_text(series, blank_is_missing)
    if kind in ("integer", "floating", "mixed-integer-float"):
        values = pd.to_numeric(series.astype(object)).to_numpy(dtype=np.float64, na_value=np.nan)
        return ParsedNumbers(values, np.isnan(values), np.zeros(len(values), dtype=bool), 0)
    return _parse_objects(series.astype(object), blank_is_missing)


def _parse_text(series: pd.Series, blank_is_missing: bool) -> ParsedNumbers:
    """Every present cell is a string. Text that repeats a handful of values (categories) is
    parsed once per distinct value: failing to parse is what makes ``to_numeric`` slow."""
    if _few_distinct(series):
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        text = pd.Series(uniques, dtype=object)
        parsed = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        blank = _blank_text(text, np.isnan(parsed)) if blank_is_missing else np.zeros(len(text), dtype=bool)
        return _gather(codes, parsed, blank, np.isnan(parsed) & ~blank, ~np.isnan(parsed))
    values = pd.to_numeric(series.astype(object), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    unparsed = np.isnan(values)
    missing = series.isna().to_numpy()
    if blank_is_missing:
        missing = missing | _blank_text(series, unparsed & ~missing)
    return ParsedNumbers(values, missing, unparsed & ~missing, int((~unparsed).sum()))


def _few_distinct(series: pd.Series, sample: int = 10_000) -> bool:
    head = series.iloc[:sample]
    return len(series) > sample and head.nunique() < sample // 10


def _blank_text(text: pd.Series, candidates: np.ndarray) -> np.ndarray:
    """Which of the ``candidates`` cells hold only whitespace (an empty CSV cell)."""
    blank = np.zeros(len(text), dtype=bool)
    if candidates.any():
        blank[candidates] = (text[candidates].astype(str).str.strip() == "").to_numpy(dtype=bool)
    return blank


def _parse_objects(objects: pd.Series, blank_is_missing: bool) -> ParsedNumbers:
    """Mixed cells, classified one by one by their type (the slow path, taken only when a
    numeric column did not arrive as numbers; not deduplicated, as True and 1 hash alike)."""
    codes, uniques = np.arange(len(objects)), objects.reset_index(drop=True)
    types = uniques.map(type)
    is_na = uniques.isna().to_numpy()
    is_number = types.isin(_NUMBER_TYPES).to_numpy()
    is_text = types.isin(_TEXT_TYPES).to_numpy()
    parsed = np.full(len(uniques), np.nan)
    usable = is_number | is_text
    if usable.any():
        parsed[usable] = pd.to_numeric(uniques[usable], errors="coerce").to_numpy(dtype=np.float64,
                                                                                   na_value=np.nan)
    blank = np.zeros(len(uniques), dtype=bool)
    if blank_is_missing and is_text.any():
        blank[is_text] = (uniques[is_text].astype(str).str.strip() == "").to_numpy(dtype=bool)
    unique_missing = is_na | blank
    return _gather(codes, parsed, unique_missing, ~unique_missing & np.isnan(parsed), is_text & ~np.isnan(parsed))


def _gather(codes, parsed, unique_missing, unique_not_number, unique_as_text) -> ParsedNumbers:
    """Per-cell arrays from per-distinct-value ones (code -1: missing)."""
    codes = np.asarray(codes, dtype=np.int64)
    last = len(parsed)
    codes = np.where(codes < 0, last, codes)
    values = np.append(parsed, np.nan)[codes]
    values[np.append(unique_missing | unique_not_number, True)[codes]] = np.nan
    missing = np.append(unique_missing, True)[codes]
    not_number = np.append(unique_not_number, False)[codes]
    as_text = int(np.append(unique_as_text & ~unique_missing, False)[codes].sum())
    return ParsedNumbers(values, missing, not_number, as_text)


def numeric_column(series: pd.Series) -> NumericColumn:
    """Coerce a window column to finite float64 values, counting what does not fit.

    Type mismatches: cells that are not numbers (left out) and numbers written as text
    (used). Infinities are counted in ``non_finite`` and left out.
    """
    parsed = parse_numbers(series)
    values = parsed.values
    infinite = parsed.infinite
    non_finite = int(infinite.sum())
    usable = values[~(np.isnan(values) | infinite)] if non_finite or parsed.missing.any() or \
        parsed.not_number.any() else values
    return NumericColumn(usable, len(series), int(parsed.missing.sum()),
                         int(parsed.not_number.sum()) + parsed.as_text, non_finite)


_NUMBER_TYPES = [int, float, np.float64, np.float32, np.float16, np.int64, np.int32, np.int16, np.int8,
                 np.uint64, np.uint32, np.uint16, np.uint8]
_TEXT_TYPES = [str, np.str_]


def categorical_column(series: pd.Series, *, boolean: bool = False) -> CategoricalColumn:
    """Codes of a categorical column.

    In a text or mixed column, values that are not strings count as type mismatches and are
    left out (booleans are expected, as "True"/"False", when ``boolean``). A column that is
    entirely numeric is read as text ("5", "2.5").
    """
    rows = len(series)
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype) \
            and not isinstance(series.dtype, pd.CategoricalDtype):
        # a whole column of numbers is a coded categorical (zip codes, ratings): its text is the category
        series = series.astype("str")
    try:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
    except TypeError:  # unhashable cells (lists, dicts): no category, counted below
        series = series.astype(object)
        unhashable = series.map(_unhashable).to_numpy(dtype=bool)
        codes, uniques = pd.factorize(series.mask(unhashable, _UNHASHABLE), use_na_sentinel=True)
    codes = np.asarray(codes, dtype=np.int64)
    missing = int((codes < 0).sum())
    uniques = list(uniques)
    fits = [_fits_category(u, boolean) for u in uniques]
    # Labels as strings; two uniques with the same text (True and "True") share one category.
    distinct = list(dict.fromkeys(str(u) for u, ok in zip(uniques, fits) if ok))
    mismatches = 0
    if not all(fits) or len(distinct) != len(uniques):
        position = {label: i for i, label in enumerate(distinct)}
        remap = np.array([position[str(u)] if ok else -1 for u, ok in zip(uniques, fits)] + [-1], dtype=np.int64)
        mismatches = int(np.isin(codes, [i for i, ok in enumerate(fits) if not ok]).sum())
        codes = remap[codes]  # code -1 (missing) picks the trailing -1
    return CategoricalColumn(codes, distinct, rows, missing, mismatches)


class _Unhashable:
    """Stands for every unhashable cell: one category that never fits."""


_UNHASHABLE = _Unhashable()


def _unhashable(value) -> bool:
    return not isinstance(value, Hashable)


def _fits_category(value, boolean: bool) -> bool:
    if isinstance(value, str):
        return True
    return boolean and isinstance(value, (bool, np.bool_))


def range_violations(sorted_values: np.ndarray, minimum: float, maximum: float) -> int:
    """Finite values outside ``[min - 10% range, max + 10% range]`` of a sorted sample."""
    margin = RANGE_MARGIN * (maximum - minimum)
    low, high = minimum - margin, maximum + margin
    below = np.searchsorted(sorted_values, low, side="left")
    above = sorted_values.size - np.searchsorted(sorted_values, high, side="right")
    return int(below + above)


def schema_violations(window: pd.DataFrame, expected: list[str], present: list[str]) -> int:
    """Rows missing an expected feature column or holding a value in an unexpected one.

    ``expected``/``present`` are full column names (``features.x``). A missing column makes
    every row a violation.
    """
    rows = len(window)
    if set(expected) - set(present):
        return rows
    unexpected = [c for c in present if c not in set(expected)]
    if not unexpected:
        return 0
    return int(window[unexpected].notna().any(axis=1).sum())
