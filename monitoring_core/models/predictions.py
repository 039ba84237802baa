"""``prediction_logs``: one document per prediction a model served."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from .columns import is_valid_name
from .common import Document, UtcDatetime, new_id

FeatureValue = float | int | bool | str | None


def identifier(value: str) -> str:
    """The one rule for model ids and versions (SDK, bulk ingest, CLI): surrounding
    whitespace is dropped and something must remain."""
    text = value.strip()
    if not text:
        raise ValueError("must not be empty")
    return text


ModelId = Annotated[str, AfterValidator(identifier)]
ModelVersion = Annotated[str, AfterValidator(identifier)]


def _check_names(mapping: dict | None) -> dict | None:
    for name in mapping or {}:
        if not is_valid_name(name):
            raise ValueError(f"{name!r} is not a valid name (no '.', no leading '$', no surrounding spaces)")
    return mapping


def _finite_features(features: dict[str, FeatureValue]) -> dict[str, FeatureValue]:
    """NaN is a missing value (kept, counted by the missing-value metrics); infinity is an error."""
    cleaned = {}
    for name, value in features.items():
        if isinstance(value, float) and not isinstance(value, bool):
            if math.isinf(value):
                raise ValueError(f"feature {name!r} is infinite")
            if math.isnan(value):
                value = None
        cleaned[name] = value
    return cleaned


def _finite_scores(scores: dict[str, float] | None) -> dict[str, float] | None:
    for name, value in (scores or {}).items():
        if not math.isfinite(value):
            raise ValueError(f"{name!r} must be a finite number, got {value}")
    return scores


Names = AfterValidator(_check_names)


class Prediction(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    class_: str = Field(alias="class", min_length=1)
    confidence: float = Field(ge=0.0, le=1.0)
    probabilities: Annotated[dict[str, Annotated[float, Field(ge=0.0, le=1.0)]] | None, Names] = None


class Metadata(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str | None = None
    session_id: str | None = None
    api_version: str | None = None
    latency_ms: float | None = Field(default=None, ge=0.0, allow_inf_nan=False)
    protected_attributes: Annotated[dict[str, str | None], Names] = Field(default_factory=dict)


class PredictionLog(Document):
    """One served prediction. ``features`` is open (any names), values are numbers, strings,
    booleans or missing (None/NaN); infinities are refused."""

    prediction_id: str = Field(default_factory=lambda: new_id("PRED"), min_length=1)
    model_id: ModelId
    model_version: ModelVersion
    timestamp: UtcDatetime
    features: Annotated[dict[str, FeatureValue], Names, AfterValidator(_finite_features)]
    prediction: Prediction
    metadata: Metadata = Field(default_factory=Metadata)
    ground_truth: str | None = None
    ground_truth_timestamp: UtcDatetime | None = None
    # SHAP values per feature, when the model service computes them (explanation drift).
    explanation: Annotated[dict[str, float] | None, Names, AfterValidator(_finite_scores)] = None

    @field_validator("features")
    @classmethod
    def _not_empty(cls, features: dict) -> dict:
        if not features:
            raise ValueError("a prediction needs at least one feature")
        return features

    @model_validator(mode="after")
    def _label_time_needs_label(self) -> PredictionLog:
        if self.ground_truth_timestamp is not None and self.ground_truth is None:
            raise ValueError("ground_truth_timestamp is set but ground_truth is missing")
        return self
