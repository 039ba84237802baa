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


def numeric_column(series: pd.Series) -> NumericColumn:
    """Coerce a window column to finite float64 values, counting what does not fit."""
    rows = len(series)
    mismatches = 0
    if pd.api.types.is_bool_dtype(series.dtype):
        # a boolean where a number is expected: wrong type, nothing usable
        missing = int(series.isna().sum())
        return NumericColumn(np.empty(0), rows, missing, rows - missing, 0)
    if pd.api.types.is_numeric_dtype(series.dtype) and not isinstance(series.dtype, pd.CategoricalDtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        missing_mask = np.isnan(values)
    else:
        objects = series.astype(object)
        missing_mask = objects.isna().to_numpy()
        parsed = pd.to_numeric(objects, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        # The slow path, taken only when a numerical column did not arrive as numbers: one
        # type() per value (pandas' map), then vectorised tests on the types.
        types = objects.map(type)
        wrong_type = ~types.isin(_NUMBER_TYPES).to_numpy() & ~missing_mask
        is_bool = types.isin(_BOOL_TYPES).to_numpy()
        parsed[is_bool] = np.nan  # True is not 1.0 here: left out
        unparsed = np.isnan(parsed) & ~missing_mask
        mismatches = int((wrong_type | unparsed).sum())
        values = parsed
    missing = int(missing_mask.sum())
    infinite = np.isinf(values)
    non_finite = int(infinite.sum())
    usable = values[~(np.isnan(values) | infinite)]
    return NumericColumn(usable, rows, missing, mismatches, non_finite)


_BOOL_TYPES = [bool, np.bool_]
_NUMBER_TYPES = [int, float, np.float64, np.float32, np.float16, np.int64, np.int32, np.int16, np.int8,
                 np.uint64, np.uint32, np.uint16, np.uint8]


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
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
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
