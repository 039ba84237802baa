"""Demo data: two deployed models with a validation set and 60 days of predictions.

``loan-approval`` (high risk) is the model in trouble: its inputs drift from 14 days
before ``end`` and, in the last 7 days, it starts approving women less often. The second
model, ``fraud-screening`` (medium risk), stays healthy so the dashboard shows contrast.

Everything here is pure, vectorised data generation: no storage, no I/O. The same
``seed`` and ``end`` always give identical DataFrames.

How a row is made
-----------------
Each model is a logistic scoring model over its features. A numerical feature enters the
log-odds as ``weight * (g(x) - mean) / sd`` where ``g`` is the identity or a log and
``mean``/``sd`` are its statistics on a fixed *training* sample, so the exact SHAP value
(log-odds space, independent features) is the contribution itself; a categorical feature
contributes a per-category effect minus its training mean. Missing numerical values are
imputed with the training mean (SHAP 0). Ground truth comes from a *true* outcome model:
the same log-odds plus noise the model cannot see, which puts accuracy at 0.8-0.9.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

import numpy as np
import pandas as pd
import pyarrow as pa

from . import clock
from .errors import InvalidInput, NotFound
from .models import columns as col
from .models.common import epoch_ms, to_utc_ms

# --------------------------------------------------------------------------- constants

DEFAULT_SEED = 20_251_118
DAYS = 60
PER_DAY = 3_000
REFERENCE_ROWS = 20_000
REFERENCE_DAYS = 14  # the validation set covers the two weeks before the window

_DAY_MS = 86_400_000
_HOUR_MS = 3_600_000

# Fixed seed of the training sample that defines the models' centring (SHAP base values):
# a model is trained once, whatever seed the demo is generated with.
_TRAINING_SEED = 7
_TRAINING_ROWS = 100_000

# Traffic shape.
_HOURLY_WEIGHTS = np.array(  # relative traffic per UTC hour; business hours peak, night ~1/3
    [0.35, 0.3, 0.3, 0.3, 0.35, 0.45, 0.65, 0.9, 1.2, 1.45, 1.6, 1.6,
     1.55, 1.6, 1.6, 1.5, 1.4, 1.25, 1.1, 0.95, 0.8, 0.65, 0.5, 0.4]
)
_WEEKEND_FACTOR = 0.8  # fewer applications on Saturdays and Sundays
_DAY_NOISE_SD = 0.08  # day-to-day volume noise (log scale)

# Labels: about half the predictions ever get an outcome, after a delay of days.
_LABEL_RATE = 0.5
_LABEL_DELAY_MIN_DAYS = 2.0
_LABEL_DELAY_SHAPE = 2.0  # gamma delay on top of the minimum: mean 2 + 2 * 1.5 = 5 days
_LABEL_DELAY_SCALE_DAYS = 1.5
_TRUTH_NOISE_SD = 0.6  # log-odds noise the scoring model cannot see (accuracy 0.8-0.9)

# Request metadata.
_USER_POOL_DAYS = 20  # users = 20 days of volume: ~3 requests each over 60 days
_API_VERSIONS = ("v2", "v1")
_API_VERSION_P = (0.9, 0.1)  # a tail of legacy clients
_LATENCY_MEDIAN_MS = 42.0
_LATENCY_LOG_SD = 0.35

# loan-approval incidents.
_DATA_DRIFT_START_DAYS = 14  # before `end`
_DATA_DRIFT_RAMP_DAYS = 3  # shifts ramp in over three days, then hold
_FAIRNESS_START_DAYS = 7  # before `end`
_FAIRNESS_RAMP_DAYS = 1  # a retrain rolled out over a day
_FAIRNESS_GROUP = ("gender", "female")
_FAIRNESS_PENALTY = 1.3  # log-odds removed for the group: DP ~0.15, DI ~0.6 in the last week

_AGE_GROUP_EDGES = (29.5, 44.5, 59.5)  # ages are whole numbers
_AGE_GROUPS = ("18-29", "30-44", "45-59", "60+")


# --------------------------------------------------------------------------- descriptions


@dataclass(frozen=True)
class DemoModel:
    """A demo model: what the registry and the dashboard need to know about it.

    Attributes
    ----------
    model_id, model_version : str
    classes : tuple of str
        Class labels, the positive (favourable) one first.
    positive_label : str
        The class fairness selection rates are computed on.
    protected_attributes : tuple of str
        Names under ``metadata.protected_attributes.``.
    numerical_features, categorical_features : tuple of str
        Names under ``features.``.
    risk_level : str
        ``"high"``, ``"medium"`` or ``"low"`` (monitoring cadence, thresholds).
    description : str
        One line for the model list.
    daily_volume : int
        Predictions a day when :func:`generate_predictions` is given no ``per_day``.
    display_name, owner : str
        For the model registry.
    """

    model_id: str
    model_version: str
    classes: tuple[str, str]
    positive_label: str
    protected_attributes: tuple[str, ...]
    numerical_features: tuple[str, ...]
    categorical_features: tuple[str, ...]
    risk_level: str
    description: str
    daily_volume: int = PER_DAY
    display_name: str = ""
    owner: str = ""

    @property
    def features(self) -> tuple[str, ...]:
        return self.numerical_features + self.categorical_features

    @property
    def negative_label(self) -> str:
        return self.classes[1]


@dataclass(frozen=True)
class _Numerical:
    """How a numerical feature is drawn and how the scoring model uses it.

    ``a``/``b`` parametrise the distribution: normal (mean, sd), lognormal (log-mean,
    log-sd), beta (alpha, beta; scaled to [low, high]), gamma (shape, scale). Values are
    clipped to [low, high] and rounded to ``decimals``. ``drift`` is added to ``a`` at full
    drift; ``trend`` drifts linearly over the whole drift period instead of ramping in.
    """

    name: str
    distribution: str
    a: float
    b: float
    low: float
    high: float
    decimals: int
    weight: float  # log-odds per training sd of the model input
    log_input: bool = False  # the model sees log1p(x)
    missing_rate: float = 0.0
    drift: float = 0.0
    trend: bool = False


@dataclass(frozen=True)
class _Categorical:
    """A categorical feature: reference mix, scoring effects, and the mix at full drift.

    A category with reference probability 0 is unseen in the reference and training data;
    its effect is 0 (the model falls back to its baseline log-odds).
    """

    name: str
    categories: tuple[str, ...]
    p: tuple[float, ...]
    effects: tuple[float, ...]  # log-odds per category
    drifted_p: tuple[float, ...] | None = None


@dataclass(frozen=True)
class _Protected:
    name: str
    groups: tuple[str, ...]
    p: tuple[float, ...] | None  # None: derived from the `age` feature


@dataclass(frozen=True)
class _Spec:
    model: DemoModel
    intercept: float
    numerical: tuple[_Numerical, ...]
    categorical: tuple[_Categorical, ...]
    protected: tuple[_Protected, ...]
    drifts: bool = False
    fairness_regression: bool = False


LOAN_APPROVAL = DemoModel(
    model_id="loan-approval",
    model_version="2.3.0",
    classes=("approve", "reject"),
    positive_label="approve",
    protected_attributes=("gender", "age_group", "race"),
    numerical_features=(
        "credit_score", "income", "age", "loan_amount", "debt_to_income", "employment_years",
    ),
    categorical_features=("purpose", "region"),
    risk_level="high",
    description="Consumer credit: approves or rejects personal loan applications.",
    daily_volume=PER_DAY,
    display_name="Loan approval",
    owner="credit-risk-ml",
)

FRAUD_SCREENING = DemoModel(
    model_id="fraud-screening",
    model_version="1.4.0",
    classes=("legit", "fraud"),
    positive_label="legit",
    protected_attributes=("gender", "age_group"),
    numerical_features=(
        "transaction_amount", "account_age_days", "transactions_24h",
        "distance_from_home_km", "merchant_risk",
    ),
    categorical_features=("channel", "merchant_category"),
    risk_level="medium",
    description="Card payments: flags transactions for fraud review before settlement.",
    daily_volume=2_400,  # a bit lower than loan-approval
    display_name="Fraud screening",
    owner="payments-risk-ml",
)

DEMO_MODELS: tuple[DemoModel, ...] = (LOAN_APPROVAL, FRAUD_SCREENING)

_SPECS: dict[str, _Spec] = {
    "loan-approval": _Spec(
        model=LOAN_APPROVAL,
        intercept=0.45,  # ~55% approvals on the reference
        numerical=(
            # Drift: a new broker channel brings applicants with thinner credit files and
            # higher incomes (ramped in), asking for ever larger loans (a trend); the
            # effects on approvals partly cancel, so the approval rate dips, not collapses.
            # Bounds are policy limits the reference reaches, so drift never produces
            # out-of-range values: scores below 480 are declined before scoring, incomes
            # are declared up to 250k, loans run from 2,500 to 100,000.
            _Numerical("credit_score", "normal", 690, 65, 480, 850, 0, 1.9, drift=-45),
            _Numerical("income", "lognormal", np.log(58_000), 0.45, 15_000, 250_000, -2,
                       1.2, log_input=True, drift=0.38),
            # almost no weight, so age groups stay at parity before the regression
            _Numerical("age", "beta", 2.0, 2.8, 18, 85, 0, 0.02),
            _Numerical("loan_amount", "lognormal", np.log(15_000), 0.6, 2_500, 100_000, -2,
                       -0.7, log_input=True, drift=0.80, trend=True),
            _Numerical("debt_to_income", "gamma", 3.5, 0.085, 0, 0.8, 3, -1.3,
                       missing_rate=0.008),
            _Numerical("employment_years", "gamma", 2.0, 3.5, 0, 30, 1, 0.4,
                       missing_rate=0.012),
        ),
        categorical=(
            _Categorical(
                "purpose",
                ("debt_consolidation", "home_improvement", "car", "education", "medical",
                 "business", "green_energy"),
                (0.38, 0.18, 0.16, 0.10, 0.08, 0.10, 0.0),
                (0.0, 0.25, 0.15, -0.1, -0.2, -0.45, 0.0),
                # a new green-energy loan product and a home-improvement campaign
                drifted_p=(0.22, 0.30, 0.10, 0.06, 0.05, 0.12, 0.15),
            ),
            _Categorical("region", ("north", "south", "east", "west", "central"),
                         (0.22, 0.24, 0.18, 0.20, 0.16), (0.05, -0.05, 0.0, 0.08, -0.08)),
        ),
        protected=(
            _Protected("gender", ("female", "male"), (0.48, 0.52)),
            _Protected("age_group", _AGE_GROUPS, None),
            _Protected("race", ("white", "black", "hispanic", "asian"),
                       (0.50, 0.18, 0.18, 0.14)),
        ),
        drifts=True,
        fairness_regression=True,
    ),
    "fraud-screening": _Spec(
        model=FRAUD_SCREENING,
        intercept=3.3,  # ~93% legit
        numerical=(
            # Upper bounds sit near the 99.9th percentile, so the reference reaches them.
            _Numerical("transaction_amount", "lognormal", np.log(60), 1.0, 1, 1_500, 2,
                       -0.8, log_input=True),  # larger payments go to manual review
            _Numerical("account_age_days", "gamma", 1.5, 400, 0, 3_650, 0, 1.0,
                       log_input=True),
            _Numerical("transactions_24h", "gamma", 2.0, 1.5, 0, 15, 0, -0.8),
            _Numerical("distance_from_home_km", "lognormal", np.log(8), 1.2, 0, 300, 1,
                       -0.9, log_input=True, missing_rate=0.005),  # location not shared
            _Numerical("merchant_risk", "gamma", 2.0, 0.08, 0, 0.7, 3, -1.0),
        ),
        categorical=(
            _Categorical("channel", ("web", "mobile", "in_store"), (0.35, 0.45, 0.20),
                         (-0.2, 0.0, 0.4)),
            _Categorical(
                "merchant_category",
                ("grocery", "electronics", "travel", "fuel", "restaurants", "digital_goods"),
                (0.28, 0.12, 0.08, 0.17, 0.22, 0.13),
                (0.3, -0.3, -0.2, 0.2, 0.2, -0.4),
            ),
        ),
        protected=(
            _Protected("gender", ("female", "male"), (0.5, 0.5)),
            _Protected("age_group", _AGE_GROUPS, (0.25, 0.27, 0.26, 0.22)),
        ),
    ),
}


# --------------------------------------------------------------------------- public API


def get_demo_model(model_id: str) -> DemoModel:
    """The demo model called ``model_id``; :class:`NotFound` for any other id."""
    return _spec(model_id).model


def generate_reference(
    model: DemoModel,
    *,
    rows: int = REFERENCE_ROWS,
    seed: int = DEFAULT_SEED,
    end: datetime | None = None,
    days: int = DAYS,
) -> pd.DataFrame:
    """The validation set a baseline is built from: every row has ground truth.

    Parameters
    ----------
    model : DemoModel
    rows : int
        Number of rows.
    seed : int
        Same seed (and ``end``), same frame.
    end, days : datetime, int
        The prediction window ``[end - days, end)`` this reference precedes: timestamps
        fall in the :data:`REFERENCE_DAYS` before it. ``end`` defaults to ``clock.now()``.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`generate_predictions` without the request metadata
        (``metadata.user_id``, ``session_id``, ``api_version``, ``latency_ms``), sorted by
        ``timestamp``; ids are ``"<model_id>-ref-<8 digits>"``.
    """
    spec = _spec(model.model_id)
    _require(rows >= 1 and days >= 1, f"rows and days must be positive, got {rows}, {days}")
    rng = np.random.default_rng(_seed_sequence(seed, model.model_id, "reference"))
    start_ms = epoch_ms(demo_end(end)) - (days + REFERENCE_DAYS) * _DAY_MS
    ts_ms = np.sort(start_ms + rng.integers(0, REFERENCE_DAYS * _DAY_MS, size=rows))
    no_drift = np.zeros(rows)
    return _score(spec, rng, ts_ms, no_drift, no_drift, no_drift, label_rate=1.0,
                  end_ms=None, id_prefix=f"{model.model_id}-ref-")


def generate_predictions(
    model: DemoModel,
    *,
    end: datetime | None = None,
    days: int = DAYS,
    per_day: int | None = None,
    seed: int = DEFAULT_SEED,
) -> pd.DataFrame:
    """One row per prediction over ``[end - days, end)``, as the model's API logs them.

    Parameters
    ----------
    model : DemoModel
    end : datetime, optional
        End of the window (exclusive), and "now" for the labels: a label whose
        ``ground_truth_timestamp`` would be after ``end`` has not arrived and is missing.
        Defaults to ``clock.now()``; pass it for reproducible frames.
    days : int
        Length of the window in days.
    per_day : int, optional
        Mean predictions a day (``model.daily_volume`` by default).
    seed : int
        Same seed and ``end``, same frame.

    Returns
    -------
    pandas.DataFrame
        Sorted by ``timestamp``; ``prediction_id`` is ``"<model_id>-<8 digits>"`` in that
        order.
    """
    spec = _spec(model.model_id)
    per_day = model.daily_volume if per_day is None else per_day
    _require(days >= 1 and per_day >= 0,
             f"days must be positive and per_day not negative, got {days}, {per_day}")
    rng = np.random.default_rng(_seed_sequence(seed, model.model_id, "predictions"))
    end_ms = epoch_ms(demo_end(end))
    ts_ms = _arrival_times(rng, end_ms, days, per_day)
    off = np.zeros(len(ts_ms))
    drift_ramp = drift_trend = bias = off
    if spec.drifts:
        drift_ramp = _onset(ts_ms, end_ms, _DATA_DRIFT_START_DAYS, _DATA_DRIFT_RAMP_DAYS)
        drift_trend = _onset(ts_ms, end_ms, _DATA_DRIFT_START_DAYS, _DATA_DRIFT_START_DAYS)
    if spec.fairness_regression:
        bias = _onset(ts_ms, end_ms, _FAIRNESS_START_DAYS, _FAIRNESS_RAMP_DAYS)
    frame = _score(spec, rng, ts_ms, drift_ramp, drift_trend, bias, label_rate=_LABEL_RATE,
                   end_ms=end_ms, id_prefix=f"{model.model_id}-")
    return pd.concat([frame, _request_metadata(rng, ts_ms, per_day)], axis=1)


# --------------------------------------------------------------------------- scoring


def _score(
    spec: _Spec,
    rng: np.random.Generator,
    ts_ms: np.ndarray,
    drift_ramp: np.ndarray,
    drift_trend: np.ndarray,
    bias: np.ndarray,
    *,
    label_rate: float,
    end_ms: int | None,
    id_prefix: str,
) -> pd.DataFrame:
    """Draw inputs at the given times, score them, and attach labels and SHAP values.

    ``drift_ramp``/``drift_trend``/``bias`` are per-row progress in [0, 1] of the data
    drift (ramped and trending features) and of the fairness regression.
    """
    model = spec.model
    n = len(ts_ms)
    numerical = _draw_numerical(spec, rng, n, drift_ramp, drift_trend)
    categorical = _draw_categorical(spec, rng, n, drift_ramp)
    protected = _draw_protected(spec, rng, n, numerical)
    shap = _shap_values(spec, numerical, categorical)
    fair_logit = spec.intercept + sum(shap.values())
    logit = fair_logit
    if spec.fairness_regression:
        attribute, group = _FAIRNESS_GROUP
        in_group = protected[attribute] == _protected_spec(spec, attribute).groups.index(group)
        # A proxy the model does not log: invisible in the SHAP values, as in real life.
        logit = fair_logit - _FAIRNESS_PENALTY * bias * in_group
    p_positive = _sigmoid(logit)
    predicted = (p_positive < 0.5).astype(np.int64)  # class codes: 0 positive, 1 negative
    truth, truth_ms = _ground_truth(rng, fair_logit, ts_ms, label_rate, end_ms)

    positive, negative = model.classes
    data: dict[str, object] = {
        col.PREDICTION_ID: _sequential_ids(id_prefix, n),
        col.MODEL_ID: _labels((model.model_id,), np.zeros(n, dtype=np.int64)),
        col.MODEL_VERSION: _labels((model.model_version,), np.zeros(n, dtype=np.int64)),
        col.TIMESTAMP: _timestamps(ts_ms),
    }
    for name, values in numerical.items():
        data[col.feature(name)] = values
    for c in spec.categorical:
        data[col.feature(c.name)] = _labels(c.categories, categorical[c.name])
    for attr in spec.protected:
        data[col.protected(attr.name)] = _labels(attr.groups, protected[attr.name])
    data[col.PREDICTED_CLASS] = _labels(model.classes, predicted)
    data[col.CONFIDENCE] = np.maximum(p_positive, 1.0 - p_positive)
    data[col.probability(positive)] = p_positive
    data[col.probability(negative)] = 1.0 - p_positive
    data[col.GROUND_TRUTH] = _labels(model.classes, truth)
    data[col.GROUND_TRUTH_TIMESTAMP] = _timestamps(truth_ms)
    for name, values in shap.items():
        data[col.explanation(name)] = values
    return pd.DataFrame(data)


def _draw_numerical(
    spec: _Spec,
    rng: np.random.Generator,
    n: int,
    drift_ramp: np.ndarray,
    drift_trend: np.ndarray,
) -> dict[str, np.ndarray]:
    """Numerical inputs, drifted, clipped, rounded, with their missing values as NaN."""
    out = {}
    for f in spec.numerical:
        a = f.a + f.drift * (drift_trend if f.trend else drift_ramp)
        if f.distribution == "normal":
            x = rng.normal(a, f.b, size=n)
        elif f.distribution == "lognormal":
            x = rng.lognormal(a, f.b, size=n)
        elif f.distribution == "beta":
            x = f.low + (f.high - f.low) * rng.beta(a, f.b, size=n)
        elif f.distribution == "gamma":
            x = rng.gamma(a, f.b, size=n)
        else:  # pragma: no cover - the specs are constants
            raise ValueError(f"unknown distribution {f.distribution!r}")
        x = np.round(np.clip(x, f.low, f.high), f.decimals)
        if f.missing_rate:
            x[rng.random(n) < f.missing_rate] = np.nan
        out[f.name] = x
    return out


def _draw_categorical(
    spec: _Spec, rng: np.random.Generator, n: int, drift_ramp: np.ndarray
) -> dict[str, np.ndarray]:
    """Category codes: each row draws from the drifted mix with probability ``drift_ramp``."""
    out = {}
    for c in spec.categorical:
        codes = rng.choice(len(c.categories), size=n, p=_normalised(c.p))
        if c.drifted_p is not None:
            drifted = rng.choice(len(c.categories), size=n, p=_normalised(c.drifted_p))
            codes = np.where(rng.random(n) < drift_ramp, drifted, codes)
        out[c.name] = codes
    return out


def _draw_protected(
    spec: _Spec, rng: np.random.Generator, n: int, numerical: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Group codes, independent of the inputs (``age_group`` follows ``age`` if drawn)."""
    out = {}
    for attr in spec.protected:
        if attr.p is None:
            out[attr.name] = np.searchsorted(_AGE_GROUP_EDGES, numerical["age"])
        else:
            out[attr.name] = rng.choice(len(attr.groups), size=n, p=_normalised(attr.p))
    return out


def _shap_values(
    spec: _Spec, numerical: dict[str, np.ndarray], categorical: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Exact SHAP values (log-odds) of the additive scoring model, one array per feature.

    The model is ``intercept + sum(contribution_f)`` with every contribution centred on the
    training sample, so each contribution is its feature's SHAP value.
    """
    centring = _training_centring(spec.model.model_id)
    out = {}
    for f in spec.numerical:
        mean, sd = centring[f.name]
        z = (_model_input(f, numerical[f.name]) - mean) / sd
        out[f.name] = np.nan_to_num(f.weight * z, nan=0.0)  # missing: imputed with the mean
    for c in spec.categorical:
        out[c.name] = np.asarray(c.effects)[categorical[c.name]] - centring[c.name][0]
    return out


def _model_input(f: _Numerical, x: np.ndarray) -> np.ndarray:
    return np.log1p(x) if f.log_input else x


@cache
def _training_centring(model_id: str) -> dict[str, tuple[float, float]]:
    """Mean and sd of each model input on the fixed training sample.

    For a categorical feature: the mean effect (and 1.0, unused).
    """
    spec = _spec(model_id)
    rng = np.random.default_rng(_seed_sequence(_TRAINING_SEED, model_id, "training"))
    no_drift = np.zeros(_TRAINING_ROWS)
    numerical = _draw_numerical(spec, rng, _TRAINING_ROWS, no_drift, no_drift)
    categorical = _draw_categorical(spec, rng, _TRAINING_ROWS, no_drift)
    out = {}
    for f in spec.numerical:
        x = _model_input(f, numerical[f.name])
        out[f.name] = (float(np.nanmean(x)), float(np.nanstd(x)))
    for c in spec.categorical:
        out[c.name] = (float(np.asarray(c.effects)[categorical[c.name]].mean()), 1.0)
    return out


def _ground_truth(
    rng: np.random.Generator,
    fair_logit: np.ndarray,
    ts_ms: np.ndarray,
    label_rate: float,
    end_ms: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """True class codes (-1: no label) and label arrival times in epoch ms (NaT: none).

    The outcome follows the model's log-odds *without* any fairness penalty plus noise
    the model cannot see: the group the model starts penalising is not riskier. A label
    arrives for ``label_rate`` of the rows, some days later; not at all if after ``end``.
    """
    n = len(ts_ms)
    true_logit = fair_logit + rng.normal(0.0, _TRUTH_NOISE_SD, size=n)
    truth = (rng.random(n) >= _sigmoid(true_logit)).astype(np.int64)  # 0 positive
    delay_days = _LABEL_DELAY_MIN_DAYS + rng.gamma(
        _LABEL_DELAY_SHAPE, _LABEL_DELAY_SCALE_DAYS, size=n
    )
    truth_ms = ts_ms + np.round(delay_days * _DAY_MS).astype(np.int64)
    labelled = rng.random(n) < label_rate
    if end_ms is not None:
        labelled &= truth_ms <= end_ms
    truth[~labelled] = -1
    arrival = truth_ms.astype("datetime64[ms]")
    arrival[~labelled] = np.datetime64("NaT")
    return truth, arrival


def _protected_spec(spec: _Spec, attribute: str) -> _Protected:
    return next(p for p in spec.protected if p.name == attribute)


# --------------------------------------------------------------------------- traffic


def _arrival_times(rng: np.random.Generator, end_ms: int, days: int, per_day: int) -> np.ndarray:
    """Sorted epoch-ms timestamps over ``[end - days, end)``.

    Poisson counts per hour follow the daily cycle, weekend dips and day-to-day noise;
    arrivals are uniform within each hour.
    """
    start_ms = end_ms - days * _DAY_MS
    hour_starts = start_ms + _HOUR_MS * np.arange(days * 24, dtype=np.int64)
    hour_of_day = (hour_starts // _HOUR_MS) % 24
    day_number = hour_starts // _DAY_MS  # calendar day (UTC) since the epoch
    weekend = (day_number + 3) % 7 >= 5  # 1970-01-01 was a Thursday (3); 5, 6 = Sat, Sun
    week_mean = (5 + 2 * _WEEKEND_FACTOR) / 7
    weekday_factor = np.where(weekend, _WEEKEND_FACTOR, 1.0) / week_mean
    day_noise = np.exp(rng.normal(0.0, _DAY_NOISE_SD, size=days + 2))
    hourly = _HOURLY_WEIGHTS / _HOURLY_WEIGHTS.mean()
    rate = (per_day / 24) * hourly[hour_of_day] * weekday_factor
    rate = rate * day_noise[day_number - day_number[0]]
    counts = rng.poisson(rate)
    offsets = rng.integers(0, _HOUR_MS, size=int(counts.sum()))
    return np.sort(np.repeat(hour_starts, counts) + offsets)


def _onset(ts_ms: np.ndarray, end_ms: int, days_before_end: float, ramp_days: float) -> np.ndarray:
    """0 before ``end - days_before_end``, then rising linearly to 1 over ``ramp_days``."""
    onset_ms = end_ms - days_before_end * _DAY_MS
    return np.clip((ts_ms - onset_ms) / (ramp_days * _DAY_MS), 0.0, 1.0)


def _request_metadata(rng: np.random.Generator, ts_ms: np.ndarray, per_day: int) -> pd.DataFrame:
    """User, session, API version and latency of each request."""
    n = len(ts_ms)
    user = rng.integers(0, max(1, _USER_POOL_DAYS * per_day), size=n)
    salt = np.uint64(rng.integers(1, 2**62))
    user_key = _mix64(user.astype(np.uint64) + salt)
    day = (ts_ms // _DAY_MS).astype(np.uint64)
    session_key = _mix64(user_key ^ _mix64(day + salt))  # one session per user and day
    load = (_HOURLY_WEIGHTS / _HOURLY_WEIGHTS.max())[(ts_ms // _HOUR_MS) % 24]
    latency = _LATENCY_MEDIAN_MS * (0.8 + 0.4 * load) * rng.lognormal(0.0, _LATENCY_LOG_SD, n)
    api = rng.choice(len(_API_VERSIONS), size=n, p=_API_VERSION_P)
    return pd.DataFrame({
        col.USER_ID: _hex_ids("u_", user_key),
        col.SESSION_ID: _hex_ids("s_", session_key),
        col.API_VERSION: _labels(_API_VERSIONS, api),
        col.LATENCY_MS: np.round(latency, 1),
    })


# --------------------------------------------------------------------------- helpers


def _spec(model_id: str) -> _Spec:
    try:
        return _SPECS[model_id]
    except KeyError:
        raise NotFound(f"no demo model {model_id!r}; the demo has {', '.join(_SPECS)}") from None


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidInput(message)


def _seed_sequence(seed: int, model_id: str, stream: str) -> np.random.SeedSequence:
    """A seed per (seed, model, purpose), stable across processes (crc32, not hash())."""
    return np.random.SeedSequence(
        seed, spawn_key=(zlib.crc32(model_id.encode()), zlib.crc32(stream.encode()))
    )


def demo_end(end: datetime | None) -> datetime:
    """The demo's last moment: ``end`` (naive means UTC), or now."""
    return to_utc_ms(clock.now() if end is None else end)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _normalised(p: tuple[float, ...]) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    return p / p.sum()


def _timestamps(values: np.ndarray) -> pd.Series:
    return pd.Series(np.asarray(values).astype("datetime64[ms]")).dt.tz_localize(UTC)


def _labels(labels: tuple[str, ...], codes: np.ndarray) -> pd.Series:
    """String column from codes into ``labels``; code -1 is missing."""
    return pd.Series(pd.array(list(labels), dtype="str").take(codes, allow_fill=True))


def _ascii_column(prefix: str, chars: np.ndarray) -> pd.Series:
    """String column ``prefix + row`` from an (n, width) array of ASCII codes, vectorised."""
    head = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    rows = np.empty((len(chars), len(head) + chars.shape[1]), dtype=np.uint8)
    rows[:, : len(head)] = head
    rows[:, len(head):] = chars
    width = rows.shape[1]
    binary = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), len(rows), [None, pa.py_buffer(rows)]
    )
    return pd.Series(pd.array(binary.cast(pa.string()), dtype="str"))


def _sequential_ids(prefix: str, n: int) -> pd.Series:
    """``prefix`` + 8 zero-padded digits: 0, 1, 2, ..."""
    digits = np.empty((n, 8), dtype=np.uint8)
    rest = np.arange(n, dtype=np.int64)
    for position in range(7, -1, -1):  # eight digit columns, not rows
        rest, digit = np.divmod(rest, 10)
        digits[:, position] = digit + ord("0")
    return _ascii_column(prefix, digits)


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _hex_ids(prefix: str, keys: np.ndarray) -> pd.Series:
    """``prefix`` + the 16 hex digits of each uint64 key."""
    shifts = np.arange(60, -4, -4, dtype=np.uint64)
    nibbles = (keys.astype(np.uint64)[:, None] >> shifts) & np.uint64(15)
    return _ascii_column(prefix, _HEX_DIGITS[nibbles.astype(np.intp)])


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads integer keys into hashed-looking 64-bit values."""
    x = x.astype(np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))
