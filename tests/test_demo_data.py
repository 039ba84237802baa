"""The demo data generator: shape, determinism, and the incidents it must make visible."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from monitoring_core import demo
from monitoring_core.errors import InvalidInput, NotFound
from monitoring_core.models import columns as col
from monitoring_core.models.predictions import PredictionLog

END = datetime(2025, 11, 18, 9, 30, tzinfo=UTC)
SEED = 424_242
LOAN = demo.LOAN_APPROVAL
HEALTHY = demo.FRAUD_SCREENING
DRIFTED_FEATURES = ("credit_score", "income", "loan_amount")


@pytest.fixture(scope="module")
def frames() -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """(reference, predictions) per model id."""
    return {
        m.model_id: (
            demo.generate_reference(m, seed=SEED, end=END),
            demo.generate_predictions(m, end=END, seed=SEED),
        )
        for m in demo.DEMO_MODELS
    }


# --------------------------------------------------------------------------- helpers


def decile_psi(reference: pd.Series, current: pd.Series, eps: float = 1e-4) -> float:
    """PSI over the reference deciles (outer edges open), missing values left out."""
    ref = reference.dropna().to_numpy()
    cur = current.dropna().to_numpy()
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, 11)[1:-1]))
    r = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1)
    c = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1)
    r = np.maximum(r / r.sum(), eps)
    c = np.maximum(c / c.sum(), eps)
    r, c = r / r.sum(), c / c.sum()
    return float(np.sum((c - r) * np.log(c / r)))


def selection_rates(frame: pd.DataFrame, model: demo.DemoModel, attribute: str) -> pd.Series:
    selected = frame[col.PREDICTED_CLASS] == model.positive_label
    return selected.groupby(frame[col.protected(attribute)]).mean()


def parity(frame: pd.DataFrame, model: demo.DemoModel, attribute: str) -> tuple[float, float]:
    """(demographic parity difference, disparate impact ratio)."""
    rates = selection_rates(frame, model, attribute)
    return float(rates.max() - rates.min()), float(rates.min() / rates.max())


def as_documents(frame: pd.DataFrame) -> list[dict]:
    """Rows as nested prediction documents, missing values left out."""
    documents = []
    for record in frame.astype(object).to_dict("records"):
        document: dict = {}
        for path, value in record.items():
            if pd.isna(value):
                continue
            *parents, leaf = path.split(".")
            target = document
            for part in parents:
                target = target.setdefault(part, {})
            target[leaf] = value.to_pydatetime() if isinstance(value, pd.Timestamp) else value
        documents.append(document)
    return documents


def between(frame: pd.DataFrame, start_days_before_end: float, stop_days_before_end: float):
    ts = frame[col.TIMESTAMP]
    return frame[
        (ts >= END - timedelta(days=start_days_before_end))
        & (ts < END - timedelta(days=stop_days_before_end))
    ]


# --------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("model", demo.DEMO_MODELS, ids=lambda m: m.model_id)
def test_same_seed_gives_identical_frames(model, frames):
    reference, predictions = frames[model.model_id]
    pd.testing.assert_frame_equal(demo.generate_reference(model, seed=SEED, end=END), reference)
    pd.testing.assert_frame_equal(demo.generate_predictions(model, end=END, seed=SEED), predictions)


@pytest.mark.parametrize("model", demo.DEMO_MODELS, ids=lambda m: m.model_id)
def test_another_seed_gives_other_frames(model, frames):
    reference, predictions = frames[model.model_id]
    other_ref = demo.generate_reference(model, seed=SEED + 1, end=END)
    other = demo.generate_predictions(model, end=END, seed=SEED + 1)
    feature = col.feature(model.numerical_features[0])
    assert not other_ref[feature].equals(reference[feature])
    assert not other[col.TIMESTAMP].head(1000).equals(predictions[col.TIMESTAMP].head(1000))


def test_models_get_independent_streams():
    """Derived seeds differ per model: the two models do not share random draws."""
    loan = demo.generate_predictions(LOAN, end=END, seed=SEED, days=2)
    healthy = demo.generate_predictions(HEALTHY, end=END, seed=SEED, days=2, per_day=LOAN.daily_volume)
    assert not np.array_equal(loan[col.TIMESTAMP].to_numpy()[:50], healthy[col.TIMESTAMP].to_numpy()[:50])


# --------------------------------------------------------------------------- shape


@pytest.mark.parametrize("model", demo.DEMO_MODELS, ids=lambda m: m.model_id)
def test_volume_span_and_ids(model, frames):
    _, predictions = frames[model.model_id]
    ts = predictions[col.TIMESTAMP]
    assert ts.min() >= END - timedelta(days=demo.DAYS) and ts.max() < END
    assert ts.is_monotonic_increasing
    days_before_end = (END - ts) // pd.Timedelta(days=1)
    per_day = days_before_end.value_counts()
    assert sorted(per_day.index) == list(range(demo.DAYS))
    assert per_day.min() >= 0.5 * model.daily_volume and per_day.max() <= 1.6 * model.daily_volume
    assert per_day.mean() == pytest.approx(model.daily_volume, rel=0.1)
    assert per_day.std() > 0.03 * model.daily_volume  # day-to-day variation
    ids = predictions[col.PREDICTION_ID]
    assert ids.is_unique
    assert ids.iloc[0] == f"{model.model_id}-00000000"
    assert ids.str.fullmatch(re.escape(model.model_id) + r"-\d{8}").all()
    assert (predictions[col.MODEL_ID] == model.model_id).all()
    assert (predictions[col.MODEL_VERSION] == model.model_version).all()


def test_traffic_has_a_daily_cycle(frames):
    _, predictions = frames[LOAN.model_id]
    hours = predictions[col.TIMESTAMP].dt.hour.value_counts()
    business = hours.loc[list(range(9, 17))].mean()
    night = hours.loc[list(range(5))].mean()
    assert business > 3 * night


def test_per_day_overrides_the_volume():
    predictions = demo.generate_predictions(LOAN, end=END, days=5, per_day=500, seed=SEED)
    assert 2_000 < len(predictions) < 3_000


@pytest.mark.parametrize("model", demo.DEMO_MODELS, ids=lambda m: m.model_id)
def test_columns_are_known_and_complete(model, frames):
    reference, predictions = frames[model.model_id]
    for frame in (reference, predictions):
        assert all(col.is_known(c) for c in frame.columns), [c for c in frame if not col.is_known(c)]
        assert col.names_with_prefix(frame.columns, col.FEATURE_PREFIX) == list(model.features)
        assert col.names_with_prefix(frame.columns, col.PROTECTED_PREFIX) == list(model.protected_attributes)
        assert col.names_with_prefix(frame.columns, col.PROBABILITY_PREFIX) == list(model.classes)
        assert col.names_with_prefix(frame.columns, col.EXPLANATION_PREFIX) == list(model.features)
    for name in (col.USER_ID, col.SESSION_ID, col.API_VERSION, col.LATENCY_MS):
        assert name in predictions.columns
    assert set(reference.columns) < set(predictions.columns)


@pytest.mark.parametrize("model", demo.DEMO_MODELS, ids=lambda m: m.model_id)
def test_dtypes(model, frames):
    reference, predictions = frames[model.model_id]
    for frame in (reference, predictions):
        for name in model.numerical_features:
            assert frame[col.feature(name)].dtype == "float64"
        for name in model.categorical_features:
            assert frame[col.feature(name)].dtype == "str"
        for name in model.protected_attributes:
            assert frame[col.protected(name)].dtype == "str"
        strings = (col.PREDICTION_ID, col.MODEL_ID, col.MODEL_VERSION, col.PREDICTED_CLASS,
                   col.GROUND_TRUTH)
        for name in strings:
            assert frame[name].dtype == "str", name
        for name in (col.TIMESTAMP, col.GROUND_TRUTH_TIMESTAMP):
            assert frame[name].dtype == "datetime64[ms, UTC]", name
        assert frame[col.CONFIDENCE].dtype == "float64"
    for name in (col.USER_ID, col.SESSION_ID, col.API_VERSION):
        assert predictions[name].dtype == "str"
    assert predictions[col.LATENCY_MS].dtype == "float64"


@pytest.mark.parametrize("model", demo.DEMO_MODELS, ids=lambda m: m.model_id)
def test_scores_are_consistent(model, frames):
    _, predictions = frames[model.model_id]
    positive, negative = model.classes
    p = predictions[col.probability(positive)]
    q = predictions[col.probability(negative)]
    assert np.allclose(p + q, 1.0)
    assert ((p >= 0) & (p <= 1)).all()
    assert np.allclose(predictions[col.CONFIDENCE], np.maximum(p, q))
    expected = np.where(p >= 0.5, positive, negative)
    assert (predictions[col.PREDICTED_CLASS].to_numpy() == expected).all()


def test_shap_values_add_up_to_the_log_odds(frames):
    """Exact SHAP for a logistic model: log-odds - sum(SHAP) is the same for every row
    (the base value), outside the fairness regression, whose proxy is not logged."""
    for model in demo.DEMO_MODELS:
        reference, predictions = frames[model.model_id]
        for frame in (reference, between(predictions, 60, 8)):
            p = frame[col.probability(model.positive_label)].to_numpy()
            shap = frame[[col.explanation(f) for f in model.features]].to_numpy().sum(axis=1)
            base = np.log(p / (1 - p)) - shap
            assert np.ptp(base) < 1e-6
        shap_means = reference[[col.explanation(f) for f in model.features]].mean()
        assert shap_means.abs().max() < 0.05  # centred on the training data


def test_rows_validate_as_prediction_documents(frames):
    for model in demo.DEMO_MODELS:
        _, predictions = frames[model.model_id]
        sample = predictions.sample(300, random_state=1)
        for document in as_documents(sample):
            PredictionLog.model_validate(document)


def test_request_metadata_looks_real(frames):
    _, predictions = frames[LOAN.model_id]
    assert predictions[col.USER_ID].str.fullmatch(r"u_[0-9a-f]{16}").all()
    assert predictions[col.SESSION_ID].str.fullmatch(r"s_[0-9a-f]{16}").all()
    users = predictions[col.USER_ID].value_counts()
    assert users.iloc[0] > 1 and users.iloc[0] < 20  # users come back, nobody dominates
    assert len(users) > len(predictions) / 5
    assert predictions[col.SESSION_ID].nunique() < len(predictions)
    assert set(predictions[col.API_VERSION].unique()) == {"v1", "v2"}
    assert (predictions[col.LATENCY_MS] > 0).all()


# --------------------------------------------------------------------------- labels


@pytest.mark.parametrize("model", demo.DEMO_MODELS, ids=lambda m: m.model_id)
def test_ground_truth_arrives_later_for_about_half(model, frames):
    _, predictions = frames[model.model_id]
    truth = predictions[col.GROUND_TRUTH]
    arrived = predictions[col.GROUND_TRUTH_TIMESTAMP]
    assert 0.40 <= truth.notna().mean() <= 0.55
    assert (truth.notna() == arrived.notna()).all()
    assert set(truth.dropna().unique()) == set(model.classes)
    assert (arrived.dropna() <= END).all()
    labelled = predictions[truth.notna()]
    delay = labelled[col.GROUND_TRUTH_TIMESTAMP] - labelled[col.TIMESTAMP]
    assert delay.min() >= pd.Timedelta(days=2)
    last_two_days = between(predictions, 2, 0)
    assert last_two_days[col.GROUND_TRUTH].notna().mean() < 0.02
    assert between(predictions, 60, 20)[col.GROUND_TRUTH].notna().mean() == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize("model", demo.DEMO_MODELS, ids=lambda m: m.model_id)
def test_reference_is_a_labelled_validation_set(model, frames):
    reference, _ = frames[model.model_id]
    assert len(reference) == demo.REFERENCE_ROWS
    assert reference[col.GROUND_TRUTH].notna().all()
    assert reference[col.TIMESTAMP].max() < END - timedelta(days=demo.DAYS)
    assert reference[col.PREDICTION_ID].is_unique
    accuracy = (reference[col.PREDICTED_CLASS] == reference[col.GROUND_TRUTH]).mean()
    assert 0.75 <= accuracy <= 0.95


# --------------------------------------------------------------------------- data quality


def test_a_little_missing_data_and_nothing_else_invalid(frames):
    for model in demo.DEMO_MODELS:
        reference, predictions = frames[model.model_id]
        for name in model.numerical_features:
            values = predictions[col.feature(name)]
            ref = reference[col.feature(name)]
            assert values.isna().mean() < 0.02
            assert abs(values.isna().mean() - ref.isna().mean()) < 0.005
            assert np.isfinite(values.dropna()).all()
            # the data-quality range check: reference [min, max] widened by 10% each side
            margin = 0.1 * (ref.max() - ref.min())
            assert values.between(ref.min() - margin, ref.max() + margin).sum() == values.notna().sum()
        for name in model.categorical_features + tuple(
            col.protected(a) for a in model.protected_attributes
        ):
            column = name if name.startswith(col.PROTECTED_PREFIX) else col.feature(name)
            assert predictions[column].notna().all()
    _, loan = frames[LOAN.model_id]
    missing = {f: loan[col.feature(f)].isna().mean() for f in LOAN.numerical_features}
    assert 0.005 < missing["debt_to_income"] < 0.02
    assert 0.005 < missing["employment_years"] < 0.02
    assert sum(rate > 0 for rate in missing.values()) == 2


# --------------------------------------------------------------------------- incidents


def test_loan_features_drift_in_the_last_two_weeks(frames):
    reference, predictions = frames[LOAN.model_id]
    last_14 = between(predictions, 14, 0)
    first_30 = between(predictions, 60, 30)
    for name in DRIFTED_FEATURES:
        assert decile_psi(reference[col.feature(name)], last_14[col.feature(name)]) >= 0.25, name
    for name in LOAN.numerical_features:
        assert decile_psi(reference[col.feature(name)], first_30[col.feature(name)]) < 0.10, name
    for name in set(LOAN.numerical_features) - set(DRIFTED_FEATURES):
        assert decile_psi(reference[col.feature(name)], last_14[col.feature(name)]) < 0.10, name


def test_loan_purpose_mix_shifts_with_an_unseen_category(frames):
    reference, predictions = frames[LOAN.model_id]
    purpose = col.feature("purpose")
    ref_mix = reference[purpose].value_counts(normalize=True)
    recent_mix = between(predictions, 10, 0)[purpose].value_counts(normalize=True)
    early_mix = between(predictions, 60, 30)[purpose].value_counts(normalize=True)
    assert "green_energy" not in ref_mix.index and "green_energy" not in early_mix.index
    assert recent_mix.get("green_energy", 0.0) > 0.10
    total_variation = 0.5 * ref_mix.sub(recent_mix, fill_value=0).abs().sum()
    assert total_variation >= 0.20
    assert 0.5 * ref_mix.sub(early_mix, fill_value=0).abs().sum() < 0.05


def test_drift_starts_fourteen_days_before_end(frames):
    reference, predictions = frames[LOAN.model_id]
    before = between(predictions, 17, 14)
    after = between(predictions, 11, 8)
    income = col.feature("income")
    assert decile_psi(reference[income], before[income]) < 0.05
    assert decile_psi(reference[income], after[income]) >= 0.25


def test_healthy_model_does_not_drift(frames):
    reference, predictions = frames[HEALTHY.model_id]
    for days in ((60, 30), (14, 0), (7, 0)):
        window = between(predictions, *days)
        for name in HEALTHY.numerical_features:
            assert decile_psi(reference[col.feature(name)], window[col.feature(name)]) < 0.10
        for name in HEALTHY.categorical_features:
            ref_mix = reference[col.feature(name)].value_counts(normalize=True)
            mix = window[col.feature(name)].value_counts(normalize=True)
            assert 0.5 * ref_mix.sub(mix, fill_value=0).abs().sum() < 0.05


def test_loan_fairness_regresses_against_women_in_the_last_week(frames):
    reference, predictions = frames[LOAN.model_id]
    dp, di = parity(between(predictions, 7, 0), LOAN, "gender")
    assert dp > 0.10 and di < 0.80
    rates = selection_rates(between(predictions, 7, 0), LOAN, "gender")
    assert rates.idxmin() == "female"
    for attribute in LOAN.protected_attributes:
        dp, _ = parity(between(predictions, 60, 20), LOAN, attribute)  # days 1-40
        assert dp < 0.05, attribute
        dp, _ = parity(reference, LOAN, attribute)
        assert dp < 0.05, attribute
    # only gender regresses; the drift alone leaves the other attributes at parity
    for attribute in ("age_group", "race"):
        dp, _ = parity(between(predictions, 7, 0), LOAN, attribute)
        assert dp < 0.05, attribute
    dp, _ = parity(between(predictions, 14, 8), LOAN, "gender")
    assert dp < 0.05


def test_loan_regression_is_not_in_the_labels(frames):
    """Women are not truly riskier: their true approval rate stays at parity."""
    _, predictions = frames[LOAN.model_id]
    labelled = between(predictions, 12, 0).dropna(subset=[col.GROUND_TRUTH])
    truly_positive = labelled[col.GROUND_TRUTH] == LOAN.positive_label
    rates = truly_positive.groupby(labelled[col.protected("gender")]).mean()
    assert rates.max() - rates.min() < 0.05


def test_healthy_model_stays_fair(frames):
    reference, predictions = frames[HEALTHY.model_id]
    for attribute in HEALTHY.protected_attributes:
        for window in (reference, predictions, between(predictions, 7, 0), between(predictions, 60, 20)):
            dp, di = parity(window, HEALTHY, attribute)
            assert dp < 0.05 and di > 0.90, attribute


# --------------------------------------------------------------------------- speed


def test_known_model_lookup():
    assert demo.get_demo_model("loan-approval") is LOAN
    assert LOAN.risk_level == "high" and HEALTHY.risk_level in {"medium", "low"}
    assert LOAN.positive_label == LOAN.classes[0] == "approve"
    assert set(LOAN.protected_attributes) == {"gender", "age_group", "race"}
    with pytest.raises(NotFound):
        demo.get_demo_model("nope")


def test_bad_arguments_are_refused():
    with pytest.raises(InvalidInput):
        demo.generate_predictions(LOAN, end=END, days=0)
    with pytest.raises(InvalidInput):
        demo.generate_reference(LOAN, end=END, rows=0)


def test_empty_volume_gives_an_empty_frame_with_all_columns():
    empty = demo.generate_predictions(HEALTHY, end=END, days=1, per_day=0)
    full = demo.generate_predictions(HEALTHY, end=END, days=1)
    assert empty.empty and list(empty.columns) == list(full.columns)
