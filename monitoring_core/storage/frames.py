"""Conversions between prediction documents and DataFrames of document paths.

The DataFrame form (columns named as in :mod:`monitoring_core.models.columns`) is what the
analysis reads and what bulk ingest writes; the document form is what the SDK logs and
what MongoDB stores. Both backends share these helpers so a prediction reads back the
same whichever way it was written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InvalidInput
from ..models import columns as col
from ..models.predictions import PredictionLog

TIME_COLUMNS = (col.TIMESTAMP, col.GROUND_TRUTH_TIMESTAMP)
FLOAT_COLUMNS = (col.CONFIDENCE, col.LATENCY_MS)
TIME_DTYPE = "datetime64[ms, UTC]"


def flatten(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"features": {"age": 3}}`` -> ``{"features.age": 3}``; None-valued leaves are kept."""
    flat: dict[str, Any] = {}
    for key, value in doc.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


def logs_to_frame(logs: Sequence[PredictionLog]) -> pd.DataFrame:
    """Prediction documents as one DataFrame of document paths (missing leaves are NA)."""
    rows = [flatten(log.model_dump(by_alias=True, exclude_none=True)) for log in logs]
    return normalise_dtypes(pd.DataFrame.from_records(rows))


def frame_to_documents(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as nested documents, leaving out missing values (NaN/NA/None)."""
    paths = [c.split(".") for c in frame.columns]
    values = [_python_values(frame[c]) for c in frame.columns]
    documents = []
    for row in zip(*values, strict=True):
        doc: dict[str, Any] = {}
        for parts, value in zip(paths, row, strict=True):
            if value is None:
                continue
            target = doc
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            target[parts[-1]] = value
        documents.append(doc)
    return documents


def _python_values(series: pd.Series) -> list[Any]:
    """Plain Python values with None for missing (datetimes as aware ``datetime``)."""
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return [None if pd.isna(v) else v.to_pydatetime() for v in series]
    values = series.astype(object).where(series.notna(), None).tolist()
    return [v.item() if isinstance(v, np.generic) else v for v in values]


def documents_to_frame(documents: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    """Nested documents as a DataFrame holding exactly ``columns`` (absent paths are NA)."""
    paths = [(c, c.split(".")) for c in columns]
    data: dict[str, list[Any]] = {c: [] for c in columns}
    for doc in documents:
        for name, parts in paths:
            value: Any = doc
            for part in parts:
                value = value.get(part) if isinstance(value, Mapping) else None
                if value is None:
                    break
            data[name].append(value)
    return normalise_dtypes(pd.DataFrame(data, columns=list(columns)))


def normalise_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """The canonical dtypes: UTC millisecond datetimes, float64 numbers, pandas strings.

    A feature column that mixes numbers and strings stays ``object`` on purpose: the
    data-quality metrics count the strings as type mismatches instead of losing them.
    """
    converted = {}
    for name in frame.columns:
        series = frame[name]
        if name in TIME_COLUMNS:
            converted[name] = _utc_milliseconds(series)
        elif name in FLOAT_COLUMNS or name.startswith((col.PROBABILITY_PREFIX, col.EXPLANATION_PREFIX)):
            converted[name] = pd.to_numeric(series, errors="coerce").astype("float64")
        else:
            converted[name] = _infer(series)
    return pd.DataFrame(converted, index=frame.index, columns=frame.columns)


def _utc_milliseconds(series: pd.Series) -> pd.Series:
    """A time column as UTC milliseconds, the precision both backends store."""
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return series.dt.tz_convert("UTC").astype(TIME_DTYPE)
    parsed = pd.to_datetime(series, utc=True, errors="coerce", format="mixed")
    return parsed.astype(TIME_DTYPE)


def _infer(series: pd.Series) -> pd.Series:
    """float64 for all-numeric, str for all-text, object when mixed; missing stays missing."""
    if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
        return series.astype("float64") if not pd.api.types.is_bool_dtype(series.dtype) else series
    if pd.api.types.is_string_dtype(series.dtype) and series.dtype != object:
        return series
    present = series.dropna()
    if present.empty:
        return series.astype("float64")
    kinds = {type(v) for v in present}
    if kinds <= {int, float, np.float64, np.int64}:
        return pd.to_numeric(series).astype("float64")
    if kinds <= {str}:
        return series.astype("str")
    if kinds <= {bool, np.bool_}:
        return series.astype("boolean")
    return series.astype(object)


def storable_predictions(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` as every backend stores it: canonical dtypes on a fresh index. A prediction
    without its id, model, version or time is refused (``InvalidInput``)."""
    frame = normalise_dtypes(frame.reset_index(drop=True))
    for required in (col.PREDICTION_ID, col.MODEL_ID, col.MODEL_VERSION, col.TIMESTAMP):
        if required not in frame or frame[required].isna().any():
            raise InvalidInput(f"every prediction needs {required!r}")
    return frame
