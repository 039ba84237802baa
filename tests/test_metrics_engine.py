"""compute_metrics and build_baseline end to end: agreement with the low-level functions,
stored-baseline tolerance, edge cases, and bad data that is counted instead of raised."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitoring_core.errors import InvalidInput
from monitoring_core.metrics import (
    baseline_from_window,
    build_baseline,
    category_frequency_shift,
    compute_metrics,
    demographic_parity_difference,
    disparate_impact_ratio,
    equal_opportunity_difference,
    holm,
    kl_divergence,
    psi,
    required_columns,
    wasserstein,
)
from monitoring_core.models import columns as col
from monitoring_core.models.baseline import DriftSnapshot
from monitoring_core.models.common import Severity
from monitoring_core.models.record import MonitoringRecord, Reason
from monitoring_core.models.thresholds import MonitoringConfig

START = pd.Timestamp("2026-03-01", tz="UTC")
CONFIG = MonitoringConfig(positive_label="approve", protected_attributes=["gender", "age_group"],
                          bootstrap_resamples=100)


def make_frame(n: int, seed: int, *, income_shift: float = 0.0, female_penalty: float = 0.0,
               labelled: float = 0.5, new_purpose: bool = False) -> pd.DataFrame:
    """A canonical window: 2 numerical, 1 categorical and 1 boolean feature, 2 protected
    attributes, probabilities, confidence, labels for a share of rows, SHAP values."""
    rng = np.random.default_rng(seed)
    income = rng.normal(50_000 + income_shift, 9_000, n)
    income[rng.random(n) < 0.03] = np.nan
    age = rng.integers(18, 80, n).astype(float)
    purposes = ["car", "home", "education"] + (["solar"] if new_purpose else [])
    purpose = rng.choice(purposes, n)
    gender = rng.choice(["female", "male"], n)
    age_group = np.where(age < 30, "18-29", np.where(age < 50, "30-49", "50+"))
    logit = (income - 50_000) / 9_000 + 0.3 - np.where(gender == "female", female_penalty, 0.0)
    approve = 1 / (1 + np.exp(-logit))
    predicted = np.where(rng.random(n) < approve, "approve", "reject")
    truth = np.where(rng.random(n) < approve, "approve", "reject")
    return pd.DataFrame({
        col.TIMESTAMP: pd.Series(START + pd.to_timedelta(np.sort(rng.integers(0, 86_400_000, n)), unit="ms"))
        .astype("datetime64[ms, UTC]"),
        col.feature("income"): income,
        col.feature("age"): age,
        col.feature("purpose"): pd.Series(purpose, dtype="str"),
        col.feature("has_car"): rng.random(n) < 0.4,
        col.protected("gender"): pd.Series(gender, dtype="str"),
        col.protected("age_group"): pd.Series(age_group, dtype="str"),
        col.PREDICTED_CLASS: pd.Series(predicted, dtype="str"),
        col.CONFIDENCE: np.maximum(approve, 1 - approve),
        col.probability("approve"): approve,
        col.probability("reject"): 1 - approve,
        col.GROUND_TRUTH: pd.Series(np.where(rng.random(n) < labelled, truth, None), dtype="str"),
        col.explanation("income"): rng.normal(0, 0.4, n),
        col.explanation("age"): rng.normal(0, 0.2, n),
        col.explanation("purpose"): rng.normal(0, 0.1, n),
        col.explanation("has_car"): rng.normal(0, 0.05, n),
    })


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return make_frame(20_000, seed=1)


@pytest.fixture(scope="module")
def baseline(reference) -> DriftSnapshot:
    return build_baseline(reference, CONFIG, model_id="loan", model_version="2.3.0")


@pytest.fixture(scope="module")
def stable_window() -> pd.DataFrame:
    return make_frame(10_000, seed=2)


@pytest.fixture(scope="module")
def stable_record(stable_window, baseline) -> MonitoringRecord:
    return compute_metrics(stable_window, baseline, CONFIG)


def raw(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[col.feature(name)]


# -- agreement with the low-level functions and the stored-baseline tolerance ---------------

def test_drift_from_the_stored_baseline_matches_the_raw_reference(reference, stable_window, stable_record):
    drift = stable_record.metrics.data_drift
    for name in ("income", "age", "purpose"):
        assert drift.psi[name].value == pytest.approx(psi(raw(reference, name), raw(stable_window, name)), abs=1e-12)
        assert drift.kl_divergence.by_feature[name].value == pytest.approx(
            kl_divergence(raw(reference, name), raw(stable_window, name)), abs=1e-12)
    assert drift.category_frequency_shift["purpose"].value == pytest.approx(
        category_frequency_shift(raw(reference, "purpose"), raw(stable_window, "purpose")), abs=1e-12)
    has_car = drift.psi["has_car"].value
    assert has_car == pytest.approx(psi(raw(reference, "has_car").astype(str), raw(stable_window, "has_car")
                                        .astype(str)), abs=1e-12)
    missing = drift.missing_value_density_change["income"].value
    assert missing == pytest.approx(raw(stable_window, "income").isna().mean() - raw(reference, "income").isna().mean(),
                                    abs=1e-12)


def test_stored_wasserstein_is_within_the_baselines_own_error_bound(reference, stable_window, baseline,
                                                                    stable_record):
    for name in ("income", "age"):
        stored = stable_record.metrics.data_drift.wasserstein_distance.by_feature[name].value
        exact = wasserstein(raw(reference, name), raw(stable_window, name))
        bound = baseline.feature_distributions[name].wasserstein_grid_error
        assert abs(stored - exact) <= bound + 1e-9
        assert bound < 5e-3


def test_fairness_values_match_the_low_level_functions(stable_window, stable_record):
    y_pred, y_true = stable_window[col.PREDICTED_CLASS], stable_window[col.GROUND_TRUTH]
    for attribute in ("gender", "age_group"):
        groups = stable_window[col.protected(attribute)]
        fairness = stable_record.metrics.fairness_drift
        assert fairness.demographic_parity.by_attribute[attribute].value == pytest.approx(
            demographic_parity_difference(None, y_pred, sensitive_features=groups, pos_label="approve",
                                          min_group_size=30), abs=1e-12)
        assert fairness.disparate_impact.by_attribute[attribute].value == pytest.approx(
            disparate_impact_ratio(None, y_pred, sensitive_features=groups, pos_label="approve", min_group_size=30),
            abs=1e-12)
        labelled = y_true.notna()
        assert fairness.equal_opportunity.by_attribute[attribute].value == pytest.approx(
            equal_opportunity_difference(y_true[labelled], y_pred[labelled], sensitive_features=groups[labelled],
                                         pos_label="approve", min_group_size=30), abs=1e-12)


def test_a_stable_window_raises_no_drift_alarm(stable_record):
    names = {b.metric_name.split(":")[0] for b in stable_record.breaches()}
    assert not names & {"psi", "kl_divergence", "wasserstein_distance", "category_frequency_shift",
                        "missing_value_density_change", "prediction_distribution_shift", "accuracy_drop",
                        "output_entropy_change", "shap_kl_divergence", "top_features_change", "rank_correlation",
                        "disparate_impact", "demographic_parity"}
    quality = stable_record.metrics.data_quality
    assert (quality.schema_violations, quality.type_mismatches, quality.range_violations,
            quality.unknown_labels, quality.invalid_outputs) == (0, 0, 0, 0, 0)


def test_the_record_round_trips_through_json_and_maps_onto_the_schema(stable_record):
    again = MonitoringRecord.model_validate_json(stable_record.model_dump_json())
    assert again == stable_record
    doc = stable_record.to_doc()
    assert set(doc["metrics"]) == {"data_drift", "fairness_drift", "model_drift", "explanation_drift",
                                   "data_quality"}
    assert set(doc["metrics"]["data_drift"]) == {"psi", "kl_divergence", "wasserstein_distance",
                                                 "category_frequency_shift", "missing_value_density_change"}
    assert set(doc["metrics"]["data_drift"]["psi"]["income"]) >= {"value", "severity", "available", "reason",
                                                                  "threshold", "sample_count"}
    assert doc["record_id"].startswith("REC-") and doc["baseline_snapshot_id"].startswith("SNAP-")
    assert doc["analysis_period"]["start"] <= doc["analysis_period"]["end"]
    assert 0 <= doc["aggregated_score"] <= 1 and doc["analyzer_version"]
    assert doc["metrics"]["explanation_drift"]["top_features_change"]["old"]


# -- drift that must be caught ---------------------------------------------------------------

@pytest.fixture(scope="module")
def drifted_record(baseline) -> MonitoringRecord:
    window = make_frame(10_000, seed=3, income_shift=9_000, female_penalty=1.2, new_purpose=True)
    return compute_metrics(window, baseline, CONFIG)


def test_injected_drift_is_critical_and_named(drifted_record):
    breaches = {b.metric_name: b for b in drifted_record.breaches()}
    assert breaches["psi:income"].severity is Severity.CRITICAL and breaches["psi:income"].threshold == 0.25
    assert breaches["wasserstein_distance:income"].severity is Severity.CRITICAL
    assert drifted_record.metrics.data_drift.wasserstein_distance.feature == "income"
    assert "category_frequency_shift:purpose" in breaches
    parity = breaches["demographic_parity:gender"]
    assert parity.severity is Severity.CRITICAL and parity.affected_groups == ["gender=female"]
    assert parity.ci_low is not None and parity.ci_low <= parity.value <= parity.ci_high
    assert breaches["disparate_impact:gender"].affected_groups == ["gender=female"]
    assert drifted_record.max_severity is Severity.CRITICAL
    assert "aggregated_score" in breaches


def test_fairness_summary_names_the_worst_attribute_and_keeps_the_baseline(drifted_record, baseline):
    dp = drifted_record.metrics.fairness_drift.demographic_parity
    assert dp.attribute == "gender" and set(dp.by_attribute) == {"gender", "age_group"}
    assert dp.baseline_value == pytest.approx(baseline.fairness_metrics["gender"].demographic_parity)
    assert dp.change == pytest.approx(dp.value - dp.baseline_value)
    assert set(dp.group_rates) == {"female", "male"} and sum(dp.group_counts.values()) == 10_000


def test_unseen_category_is_a_bin_of_its_own(drifted_record, baseline):
    assert "solar" not in baseline.feature_distributions["purpose"].frequencies
    assert drifted_record.metrics.data_drift.psi["purpose"].value > 0.25


def test_the_record_keeps_the_distributions_the_pages_draw(reference, drifted_record):
    charts = drifted_record.distributions
    income = charts.features["income"]
    assert len(income.bins) == 10 and income.bins[0].startswith("< ") and income.bins[-1].startswith("≥ ")
    assert income.baseline == pytest.approx([0.1] * 10, abs=0.01)  # decile bins of the reference
    assert sum(income.current) == pytest.approx(1.0) and income.current[-1] > 0.3  # income shifted upwards
    purpose = charts.features["purpose"]
    assert purpose.bins[-1] == "solar" and purpose.baseline[-1] == 0.0 and purpose.current[-1] > 0.15
    classes = charts.predicted_classes
    assert set(classes.bins) == {"approve", "reject"}
    assert classes.current == [drifted_record.metrics.model_drift.prediction_distribution_shift
                               .current_distribution[c] for c in classes.bins]
    confidence = charts.confidence
    scores = reference[col.CONFIDENCE].dropna()  # a missing income leaves no score
    expected = np.histogram(scores, bins=10, range=(0, 1))[0] / len(scores)
    assert confidence.baseline == pytest.approx(expected.tolist())
    assert confidence.bins[0] == "0.0–0.1" and confidence.current[:5] == [0.0] * 5  # max(p, 1 - p) >= 0.5
    assert MonitoringRecord.model_validate_json(drifted_record.model_dump_json()).distributions == charts


# -- edge cases ------------------------------------------------------------------------------

def test_empty_window(baseline, stable_window):
    record = compute_metrics(stable_window.iloc[:0], baseline, CONFIG)
    assert record.sample_count == 0 and record.max_severity is Severity.INFO and record.aggregated_score == 0.0
    assert record.metrics.data_drift.psi["income"].reason is Reason.INSUFFICIENT_DATA
    assert record.metrics.fairness_drift.demographic_parity.available is False
    assert record.metrics.model_drift.accuracy_drop.reason is Reason.NO_GROUND_TRUTH
    assert record.breaches() == []


@pytest.mark.parametrize("rows", [1, 5, 59])  # under 60 rows no two groups can reach min_group_size=30
def test_tiny_windows_never_raise_an_alarm(baseline, rows):
    window = make_frame(rows, seed=4, income_shift=40_000, female_penalty=5.0, new_purpose=True)
    record = compute_metrics(window, baseline, CONFIG)
    assert record.max_severity is Severity.INFO and record.breaches() == []
    assert record.metrics.data_drift.psi["income"].reason is Reason.INSUFFICIENT_DATA
    assert record.metrics.data_drift.psi["income"].sample_count <= rows


def test_fairness_has_its_own_guard_below_the_window_minimum(baseline):
    """99 rows: no drift value (< min_window_size), but two groups of 30+ rows are judged."""
    record = compute_metrics(make_frame(99, seed=4, income_shift=40_000, female_penalty=5.0), baseline, CONFIG)
    assert record.metrics.data_drift.psi["income"].reason is Reason.INSUFFICIENT_DATA
    gender = record.metrics.fairness_drift.demographic_parity.by_attribute["gender"]
    assert gender.severity is Severity.CRITICAL and gender.ci_low > 0.1


def test_all_missing_feature(baseline, stable_window):
    window = stable_window.assign(**{col.feature("income"): np.nan})
    record = compute_metrics(window, baseline, CONFIG)
    psi_income = record.metrics.data_drift.psi["income"]
    assert psi_income.available is False and psi_income.reason is Reason.INSUFFICIENT_DATA
    assert psi_income.sample_count == 0 and psi_income.value is None
    missing = record.metrics.data_drift.missing_value_density_change["income"]
    assert missing.severity is Severity.CRITICAL and missing.value == pytest.approx(
        1 - baseline.feature_distributions["income"].missing_rate)


def test_constant_feature(stable_window):
    reference = make_frame(2_000, seed=5).assign(**{col.feature("age"): 42.0})
    snapshot = build_baseline(reference, CONFIG, model_id="m", model_version="1")
    same = compute_metrics(stable_window.assign(**{col.feature("age"): 42.0}), snapshot, CONFIG)
    assert same.metrics.data_drift.wasserstein_distance.by_feature["age"].value == 0.0
    assert same.metrics.data_drift.psi["age"].value == 0.0
    moved = compute_metrics(stable_window.assign(**{col.feature("age"): 43.0}), snapshot, CONFIG)
    w = moved.metrics.data_drift.wasserstein_distance.by_feature["age"]
    assert w.available is False and w.reason is Reason.CONSTANT_REFERENCE
    assert moved.metrics.data_quality.by_feature["age"].range_violations == len(stable_window)


def test_one_group_only(baseline, stable_window):
    window = stable_window.assign(**{col.protected("gender"): "female"})
    value = compute_metrics(window, baseline, CONFIG).metrics.fairness_drift.demographic_parity.by_attribute["gender"]
    assert value.available is False and value.reason is Reason.TOO_FEW_GROUPS


def test_small_group_left_out(baseline, stable_window):
    genders = stable_window[col.protected("gender")].copy()
    genders.iloc[:12] = "nonbinary"
    record = compute_metrics(stable_window.assign(**{col.protected("gender"): genders}), baseline, CONFIG)
    value = record.metrics.fairness_drift.demographic_parity.by_attribute["gender"]
    assert value.available and value.insufficient_groups == ["gender=nonbinary"]
    assert value.group_counts["nonbinary"] == 12


def test_no_positive_predictions(baseline, stable_window):
    window = stable_window.assign(**{col.PREDICTED_CLASS: pd.Series(["reject"] * len(stable_window), dtype="str")})
    fairness = compute_metrics(window, baseline, CONFIG).metrics.fairness_drift
    assert fairness.disparate_impact.by_attribute["gender"].reason is Reason.NO_POSITIVE_PREDICTIONS
    assert fairness.demographic_parity.by_attribute["gender"].value == 0.0


def test_no_ground_truth(baseline, stable_window):
    window = stable_window.assign(**{col.GROUND_TRUTH: pd.Series([None] * len(stable_window), dtype="str")})
    record = compute_metrics(window, baseline, CONFIG)
    assert record.metrics.model_drift.accuracy_drop.reason is Reason.NO_GROUND_TRUTH
    assert record.metrics.model_drift.accuracy_drop.value is None
    assert record.metrics.fairness_drift.equal_opportunity.reason is Reason.NO_GROUND_TRUTH
    no_column = compute_metrics(stable_window.drop(columns=[col.GROUND_TRUTH]), baseline, CONFIG)
    assert no_column.metrics.model_drift.accuracy_drop.reason is Reason.NO_GROUND_TRUTH


def test_baseline_without_labels(reference, stable_window):
    snapshot = build_baseline(reference.drop(columns=[col.GROUND_TRUTH]), CONFIG, model_id="m", model_version="1")
    assert snapshot.baseline_accuracy is None
    drop = compute_metrics(stable_window, snapshot, CONFIG).metrics.model_drift.accuracy_drop
    assert drop.reason is Reason.NO_BASELINE_LABELS


def test_no_explanations_and_no_scores(baseline, stable_window):
    bare = stable_window[[c for c in stable_window.columns
                          if not c.startswith((col.EXPLANATION_PREFIX, col.PROBABILITY_PREFIX))
                          and c != col.CONFIDENCE]]
    record = compute_metrics(bare, baseline, CONFIG)
    assert record.metrics.explanation_drift.shap_kl_divergence.reason is Reason.NO_EXPLANATIONS
    assert record.metrics.model_drift.output_entropy_change.reason is Reason.NO_OUTPUT_SCORES
    assert "explanation" not in record.category_scores


# -- bad data: counted, never raised ---------------------------------------------------------

def test_strings_and_infinities_in_a_numerical_feature_are_counted(baseline, stable_window):
    income = stable_window[col.feature("income")].astype(object)
    income.iloc[:10] = "n/a"
    income.iloc[10:15] = "51000"  # a number written as text: counted, still used
    income.iloc[15:18] = np.inf
    income.iloc[18:20] = -np.inf
    income.iloc[20:22] = 1e12
    record = compute_metrics(stable_window.assign(**{col.feature("income"): income}), baseline, CONFIG)
    quality = record.metrics.data_quality.by_feature["income"]
    assert quality.type_mismatches == 15 and quality.non_finite == 5 and quality.range_violations == 7
    assert record.metrics.data_quality.type_mismatches == 15
    assert record.metrics.data_drift.psi["income"].available
    assert np.isfinite(record.metrics.data_drift.wasserstein_distance.by_feature["income"].value)


def test_mixed_types_in_a_categorical_feature_are_counted(baseline, stable_window):
    purpose = stable_window[col.feature("purpose")].astype(object)
    purpose.iloc[:7] = 3.5
    record = compute_metrics(stable_window.assign(**{col.feature("purpose"): purpose}), baseline, CONFIG)
    assert record.metrics.data_quality.by_feature["purpose"].type_mismatches == 7
    assert record.metrics.data_drift.category_frequency_shift["purpose"].sample_count == len(stable_window) - 7


def test_schema_violations(baseline, stable_window):
    missing = compute_metrics(stable_window.drop(columns=[col.feature("age")]), baseline, CONFIG)
    assert missing.metrics.data_quality.schema_violations == len(stable_window)
    assert missing.metrics.data_quality.missing_features == ["age"]
    assert missing.metrics.data_drift.psi["age"].reason is Reason.MISSING_COLUMN
    extra = pd.Series([None] * len(stable_window), dtype=object)
    extra.iloc[:9] = "x"
    record = compute_metrics(stable_window.assign(**{col.feature("surprise"): extra}), baseline, CONFIG)
    assert record.metrics.data_quality.schema_violations == 9
    assert record.metrics.data_quality.unexpected_features == ["surprise"]


def test_unknown_labels_and_invalid_scores_are_counted(baseline, stable_window):
    window = stable_window.copy()
    window[col.GROUND_TRUTH] = window[col.GROUND_TRUTH].astype(object)
    window.loc[window.index[:4], col.GROUND_TRUTH] = "aprove"  # a typo: not a known label
    window.loc[window.index[4:6], col.PREDICTED_CLASS] = "maybe"
    window.loc[window.index[:3], col.probability("approve")] = 1.7
    record = compute_metrics(window, baseline, CONFIG)
    assert record.metrics.data_quality.unknown_labels == 6
    assert record.metrics.data_quality.invalid_outputs == 3
    assert record.metrics.model_drift.accuracy_drop.labelled_count == \
        int(stable_window[col.GROUND_TRUTH].iloc[4:].notna().sum())


def test_missing_prediction_column(baseline, stable_window):
    record = compute_metrics(stable_window.drop(columns=[col.PREDICTED_CLASS]), baseline, CONFIG)
    assert record.metrics.fairness_drift.demographic_parity.reason is Reason.MISSING_COLUMN
    assert record.metrics.model_drift.prediction_distribution_shift.reason is Reason.MISSING_COLUMN


def test_a_window_that_is_not_a_dataframe_is_a_clear_error(baseline):
    with pytest.raises(InvalidInput, match="DataFrame"):
        compute_metrics([{"a": 1}], baseline, CONFIG)


# -- labels and attributes the data does not have --------------------------------------------

def test_a_missing_protected_attribute_column_is_named(baseline, stable_window):
    record = compute_metrics(stable_window.drop(columns=[col.protected("gender")]), baseline, CONFIG)
    for name in ("demographic_parity", "equal_opportunity", "disparate_impact"):
        gender = getattr(record.metrics.fairness_drift, name).by_attribute["gender"]
        assert gender.reason is Reason.MISSING_COLUMN
        assert gender.detail == "the window has no column 'metadata.protected_attributes.gender'"
        assert getattr(record.metrics.fairness_drift, name).by_attribute["age_group"].available


def test_a_positive_class_only_the_baseline_has_is_named(baseline, stable_window):
    """The window neither predicts nor labels "approve" (a model that rejects everyone, no
    labels yet): fairness is unavailable and says so; accuracy is not about that class."""
    window = stable_window.assign(**{col.PREDICTED_CLASS: "reject", col.GROUND_TRUTH: None})
    record = compute_metrics(window, baseline, CONFIG)
    dp = record.metrics.fairness_drift.demographic_parity.by_attribute["gender"]
    assert dp.reason is Reason.NO_POSITIVE_PREDICTIONS
    assert dp.detail == ("positive class 'approve' is neither predicted nor a label in this window "
                         "(seen: ['reject']); only the baseline has it")
    assert record.metrics.model_drift.accuracy_drop.reason is Reason.NO_GROUND_TRUTH
    assert record.metrics.model_drift.prediction_distribution_shift.severity is Severity.CRITICAL


def test_labels_with_trailing_spaces_are_unknown_labels_counted_and_named(baseline, stable_window):
    window = stable_window.copy()
    window[col.PREDICTED_CLASS] = window[col.PREDICTED_CLASS] + " "
    window[col.GROUND_TRUTH] = window[col.GROUND_TRUTH] + " "
    record = compute_metrics(window, baseline, CONFIG)
    assert record.metrics.data_quality.unknown_labels == \
        len(window) + int(stable_window[col.GROUND_TRUTH].notna().sum())
    dp = record.metrics.fairness_drift.demographic_parity
    assert dp.reason is Reason.NO_POSITIVE_PREDICTIONS and "seen: ['approve ', 'reject ']" in dp.detail


def test_a_baseline_needs_the_positive_class_in_its_data(reference):
    with pytest.raises(InvalidInput, match="cannot build a baseline: positive class 'Approve' not among the frame's "
                                           r"predictions and labels \['approve', 'reject'\]; did you mean 'approve'"):
        build_baseline(reference, CONFIG.model_copy(update={"positive_label": "Approve"}), model_id="m",
                       model_version="1")


# -- corrupted cells: counted, each in its place --------------------------------------------

EVERY_JUNK = ["junk", "", None, np.nan, np.inf, -np.inf, True, 7, -1e300, "approve", "3.5", [1, 2], {"a": 1}, b"3",
              ("t",), np.float32(0.5)]
JUNK = st.sampled_from(EVERY_JUNK)
NUMERICAL, CATEGORICAL = ("income", "age"), {"purpose": False, "has_car": True}


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def _number(v) -> float | None:
    """What a numeric cell holds: a float, or None when it is no number (an oracle for the converter)."""
    if isinstance(v, (bool, np.bool_)):
        return None
    if isinstance(v, (int, float, np.integer, np.floating)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None


def _text_number(v) -> bool:
    return isinstance(v, str) and _number(v) is not None


def _fits_category(v, boolean: bool) -> bool:
    return isinstance(v, str) or (boolean and isinstance(v, (bool, np.bool_)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 399), st.integers(0, 15), JUNK), min_size=1, max_size=80))
def test_corrupted_cells_are_counted_where_they_are(baseline, corruptions):
    """Lists, dicts, bytes, tuples, booleans, text, infinities in every column: each bad cell
    is counted once in its place, and no metric is lost to an exception."""
    window = make_frame(400, seed=6).astype(object)
    every_kind_everywhere = [(17 * column + i, column, junk) for column in range(16)
                             for i, junk in enumerate(EVERY_JUNK)]
    for row, column, junk in every_kind_everywhere + corruptions:
        window.iat[row, column] = junk
    record = compute_metrics(window, baseline, CONFIG)
    quality = record.metrics.data_quality
    cells = {name: window[name].tolist() for name in window.columns}

    for name in NUMERICAL:
        values = cells[col.feature(name)]
        present = [v for v in values if not _missing(v)]
        numbers = [_number(v) for v in present]
        assert quality.by_feature[name].missing == len(values) - len(present)
        assert quality.by_feature[name].type_mismatches == sum(
            x is None or _text_number(v) for v, x in zip(present, numbers))
        assert quality.by_feature[name].non_finite == sum(x is not None and np.isinf(x) for x in numbers)
    for name, boolean in CATEGORICAL.items():
        present = [v for v in cells[col.feature(name)] if not _missing(v)]
        assert quality.by_feature[name].type_mismatches == sum(not _fits_category(v, boolean) for v in present)
    attribute_mismatches = sum(not _fits_category(v, False) for a in ("gender", "age_group")
                               for v in cells[col.protected(a)] if not _missing(v))
    assert quality.type_mismatches == attribute_mismatches + sum(f.type_mismatches for f in quality.by_feature.values())
    assert quality.unknown_labels == sum(not _missing(v) and str(v) not in ("approve", "reject")
                                         for c in (col.PREDICTED_CLASS, col.GROUND_TRUTH) for v in cells[c])
    scores = list(zip(cells[col.probability("approve")], cells[col.probability("reject")]))
    invalid_rows = sum(not all(_number(v) is not None and 0 <= _number(v) <= 1 for v in row)
                       and not all(_missing(v) for v in row) for row in scores)
    bad_shap = sum(not _missing(v) and (_number(v) is None or np.isinf(_number(v)))
                   for c in window.columns if c.startswith(col.EXPLANATION_PREFIX) for v in cells[c])
    assert quality.invalid_outputs == invalid_rows + bad_shap
    reasons = {m.reason for m in record.metrics.data_drift.psi.values()}
    assert Reason.INVALID_INPUT not in reasons  # bad cells are counted, never a lost metric
    MonitoringRecord.model_validate_json(record.model_dump_json())


# -- aggregation -----------------------------------------------------------------------------

def test_a_single_warning_cannot_make_a_run_critical(baseline, stable_window):
    """Spec 6 (revised 2026-11-23): a single WARNING-level data metric, the only category
    available, used to normalise to 0.4 > 0.30 and make the run CRITICAL. Now it scores
    0.5 x its position in the band, times the data weight 0.30, and the run is a WARNING."""
    only_features = stable_window[[c for c in stable_window.columns if c.startswith(col.FEATURE_PREFIX)]].copy()
    only_features[col.feature("age")] = only_features[col.feature("age")] + 4.5
    record = compute_metrics(only_features, baseline, CONFIG.model_copy(update={"protected_attributes": []}))
    assert set(record.category_scores) == {"data"}
    assert record.unavailable_categories == ["fairness", "model", "explanation"]
    psi_age = record.metrics.data_drift.psi["age"]
    assert psi_age.severity is Severity.WARNING
    expected = 0.5 * (psi_age.value - 0.10) / (0.25 - 0.10)
    assert record.metric_scores["psi:age"] == pytest.approx(expected)
    assert record.category_scores["data"] == max(v for k, v in record.metric_scores.items())
    assert record.aggregated_score == pytest.approx(0.30 * record.category_scores["data"])
    assert record.aggregated_score <= 0.15
    assert record.max_severity is Severity.WARNING
    assert "aggregated_score" not in {b.metric_name for b in record.breaches()}


def test_the_record_keeps_each_metrics_score(drifted_record):
    scores = drifted_record.metric_scores
    assert scores["psi:income"] == 1.0 and scores["demographic_parity:gender"] == 1.0
    assert scores["accuracy_drop"] >= 0 and "shap_kl_divergence" in scores
    assert drifted_record.category_scores["fairness"] == 1.0
    assert drifted_record.aggregated_score == pytest.approx(sum(
        w * drifted_record.category_scores.get(c, 0.0) for c, w in
        {"fairness": 0.4, "data": 0.3, "model": 0.2, "explanation": 0.1}.items()))


# -- statistical significance of fairness breaches -------------------------------------------

def two_groups(per_group: int, female_rate: float, male_rate: float, *, extra: dict | None = None) -> pd.DataFrame:
    """A window of predictions for women and men with exact selection rates (no features)."""
    groups = {"female": (per_group, female_rate), "male": (per_group, male_rate), **(extra or {})}
    gender, predicted = [], []
    for name, (n, rate) in groups.items():
        selected = round(n * rate)
        gender += [name] * n
        predicted += ["approve"] * selected + ["reject"] * (n - selected)
    n = len(gender)
    return pd.DataFrame({
        col.TIMESTAMP: pd.Series(START + pd.to_timedelta(np.arange(n), unit="s")).astype("datetime64[ms, UTC]"),
        col.protected("gender"): pd.Series(gender, dtype="str"),
        col.PREDICTED_CLASS: pd.Series(predicted, dtype="str"),
    })


GENDER_ONLY = CONFIG.model_copy(update={"protected_attributes": ["gender"]})


def test_a_gap_from_thirty_rows_per_group_is_inconclusive(baseline):
    """Spec 2: 14/30 vs 18/30 (a gap of 0.13, beyond CRITICAL's 0.10) is not established by
    the data: INFO, inconclusive, with the p-value and the smallest group's size."""
    record = compute_metrics(two_groups(30, 14 / 30, 18 / 30), baseline, GENDER_ONLY)
    dp = record.metrics.fairness_drift.demographic_parity.by_attribute["gender"]
    assert dp.value == pytest.approx(4 / 30)
    assert dp.point_severity is Severity.CRITICAL and dp.severity is Severity.INFO and dp.inconclusive
    p = scipy.stats.chi2_contingency([[14, 16], [18, 12]], correction=False).pvalue
    assert dp.p_value == pytest.approx(p) and dp.test_method == "chi2"
    assert dp.p_value_adjusted == pytest.approx(p)  # the run's only fairness test (no labels: no EO test)
    assert dp.smallest_group_count == 30 and dp.affected_groups == []
    assert record.metrics.fairness_drift.disparate_impact.by_attribute["gender"].inconclusive
    assert not [b for b in record.breaches() if b.metric_name.startswith(("demographic_parity", "disparate_impact"))]
    assert record.metric_scores["demographic_parity:gender"] == 0.0


def test_the_same_gap_from_three_thousand_rows_per_group_is_critical(baseline):
    record = compute_metrics(two_groups(3000, 0.48, 0.60), baseline, GENDER_ONLY)
    dp = record.metrics.fairness_drift.demographic_parity.by_attribute["gender"]
    assert dp.value == pytest.approx(0.12)
    assert dp.severity is Severity.CRITICAL and not dp.inconclusive and dp.p_value_adjusted < 1e-15
    assert dp.affected_groups == ["gender=female"]
    breaches = {b.metric_name: b for b in record.breaches()}
    assert breaches["demographic_parity:gender"].severity is Severity.CRITICAL
    assert record.max_severity is Severity.CRITICAL


def test_affected_groups_are_only_those_significantly_below_the_best(baseline):
    """Nonbinary applicants, 30 rows at 0.433, are 0.17 below the best group, but that
    difference is not significant; women, 3,000 rows at 0.48, are."""
    window = two_groups(3000, 0.48, 0.60, extra={"nonbinary": (30, 13 / 30)})
    dp = compute_metrics(window, baseline, GENDER_ONLY).metrics.fairness_drift.demographic_parity
    assert dp.severity is Severity.CRITICAL
    assert dp.group_rates["nonbinary"] < dp.group_rates["female"] < dp.group_rates["male"]
    assert dp.affected_groups == ["gender=female"]


def test_the_runs_fairness_tests_are_holm_adjusted_together(baseline, stable_window):
    config = CONFIG.model_copy(update={"fairness_alpha": 0.05})
    fairness = compute_metrics(stable_window, baseline, config).metrics.fairness_drift
    values = [getattr(fairness, m).by_attribute[a] for m in ("demographic_parity", "equal_opportunity")
              for a in ("gender", "age_group")]  # DI shares DP's test
    np.testing.assert_allclose([v.p_value_adjusted for v in values], holm([v.p_value for v in values]))
    gender = stable_window[col.protected("gender")]
    table = pd.crosstab(gender, stable_window[col.PREDICTED_CLASS])
    assert values[0].p_value == pytest.approx(scipy.stats.chi2_contingency(table, correction=False).pvalue)
    di = fairness.disparate_impact.by_attribute["gender"]
    assert (di.p_value, di.p_value_adjusted) == (values[0].p_value, values[0].p_value_adjusted)


def test_a_small_expected_count_uses_the_seeded_permutation_test(baseline):
    window = two_groups(100, 0.0, 0.06)  # 6 selected in all: 3 expected per group
    first = compute_metrics(window, baseline, GENDER_ONLY).metrics.fairness_drift.demographic_parity
    again = compute_metrics(window, baseline, GENDER_ONLY).metrics.fairness_drift.demographic_parity
    assert first.test_method == "permutation" and first.p_value == again.p_value
    assert first.p_value != pytest.approx(scipy.stats.chi2_contingency([[0, 100], [6, 94]], correction=False).pvalue,
                                          abs=1e-3)


# -- intersections -----------------------------------------------------------------------------

def test_intersectional_groups_are_value_pairs_with_the_same_guard_and_tests(baseline):
    rng = np.random.default_rng(8)
    n = 12_000
    gender = rng.choice(["female", "male"], n)
    race = rng.choice(["Black", "white", "Asian"], n, p=[0.3, 0.6, 0.1])
    rate = np.where((gender == "female") & (race == "Black"), 0.40, 0.55)
    frame = pd.DataFrame({
        col.TIMESTAMP: pd.Series(START + pd.to_timedelta(np.arange(n), unit="s")).astype("datetime64[ms, UTC]"),
        col.protected("gender"): pd.Series(gender, dtype="str"),
        col.protected("race"): pd.Series(race, dtype="str"),
        col.PREDICTED_CLASS: pd.Series(np.where(rng.random(n) < rate, "approve", "reject"), dtype="str"),
    })
    frame.loc[:9, col.protected("race")] = None
    frame.loc[10:34, [col.protected("gender"), col.protected("race")]] = ["nonbinary", "Asian"]
    config = CONFIG.model_copy(update={"protected_attributes": ["gender", "race"], "intersections": [["gender", "race"]]})
    assert col.protected("race") in required_columns(baseline, config)
    dp = compute_metrics(frame, baseline, config).metrics.fairness_drift.demographic_parity
    crossed = dp.by_attribute["gender&race"]
    expected = frame.dropna().groupby([col.protected("gender"), col.protected("race")]).size()
    assert crossed.group_counts == {f"gender={g}&race={r}": int(c) for (g, r), c in expected.items()}
    assert crossed.insufficient_groups == ["gender=nonbinary&race=Asian"]  # 25 rows < 30
    assert crossed.missing_attribute_count == 10
    assert crossed.severity is Severity.CRITICAL and crossed.affected_groups == ["gender=female&race=Black"]
    assert dp.by_attribute["gender"].severity is not Severity.CRITICAL  # diluted in the single attributes


# -- baselines -------------------------------------------------------------------------------

def test_baseline_contents(baseline, reference):
    income = baseline.feature_distributions["income"]
    assert income.dtype == "numerical" and len(income.quantiles) == 5 and len(income.quantile_grid) == 1001
    assert income.quantile_grid[0] == income.min and income.quantile_grid[-1] == income.max
    assert sum(income.bin_proportions) == pytest.approx(1.0) and len(income.bin_edges) == 9
    assert income.missing_rate == pytest.approx(raw(reference, "income").isna().mean())
    assert baseline.feature_distributions["has_car"].dtype == "boolean"
    assert set(baseline.feature_distributions["has_car"].frequencies) == {"True", "False"}
    assert baseline.feature_distributions["purpose"].dtype == "categorical"
    gender = baseline.fairness_metrics["gender"]
    female = reference[col.protected("gender")] == "female"
    expected_sr = (reference.loc[female, col.PREDICTED_CLASS] == "approve").mean()
    assert gender.group_metrics["female"].selection_rate == pytest.approx(expected_sr)
    assert gender.group_metrics["female"].true_positive_rate is not None
    assert gender.group_metrics["female"].sample_count == int(female.sum())
    labelled = reference[col.GROUND_TRUTH].notna()
    assert baseline.baseline_accuracy == pytest.approx(
        (reference.loc[labelled, col.GROUND_TRUTH] == reference.loc[labelled, col.PREDICTED_CLASS]).mean())
    assert baseline.shap_distributions["income"].mean_abs == pytest.approx(
        reference[col.explanation("income")].abs().mean())
    assert baseline.output_entropy.probabilities > 0 and baseline.output_entropy.confidence > 0
    assert DriftSnapshot.model_validate_json(baseline.model_dump_json()) == baseline


def test_feature_kinds_can_be_overridden(reference):
    snapshot = build_baseline(reference, CONFIG, model_id="m", model_version="1", feature_kinds={"age": "categorical"})
    assert snapshot.feature_distributions["age"].dtype == "categorical"
    assert "42.0" in snapshot.feature_distributions["age"].frequencies
    with pytest.raises(InvalidInput, match="does not have"):
        build_baseline(reference, CONFIG, model_id="m", model_version="1", feature_kinds={"nope": "numerical"})


def test_baseline_from_a_window_records_its_period(stable_window):
    snapshot = baseline_from_window(stable_window, CONFIG, model_id="m", model_version="1")
    assert snapshot.source == "window"
    assert snapshot.period_start == stable_window[col.TIMESTAMP].min()
    assert snapshot.period_end == stable_window[col.TIMESTAMP].max()


def test_a_baseline_needs_features():
    with pytest.raises(InvalidInput, match="features"):
        build_baseline(pd.DataFrame({col.PREDICTED_CLASS: ["a"]}), CONFIG, model_id="m", model_version="1")


def test_required_columns(baseline):
    names = required_columns(baseline, CONFIG)
    assert col.feature("income") in names and col.protected("gender") in names
    assert col.explanation("age") in names and col.probability("approve") in names and col.TIMESTAMP in names


@pytest.mark.parametrize("repeat", [1, 3000])  # 3000: text repeating few values takes the per-distinct-value path
@pytest.mark.parametrize("blank_is_missing", [False, True])
def test_the_numeric_converter_classifies_every_cell(repeat, blank_is_missing):
    from monitoring_core.metrics.quality import parse_numbers

    text = pd.Series(["1.5", " ", "x", None, "-inf", ""] * repeat, dtype=object)
    parsed = parse_numbers(text, blank_is_missing=blank_is_missing)
    np.testing.assert_array_equal(parsed.values[:6], [1.5, np.nan, np.nan, np.nan, -np.inf, np.nan])
    assert parsed.missing[:6].tolist() == [False, blank_is_missing, False, True, False, blank_is_missing]
    assert parsed.not_number[:6].tolist() == [False, not blank_is_missing, True, False, False, not blank_is_missing]
    assert parsed.as_text == 2 * repeat
    mixed = parse_numbers(pd.Series([2, "2", True, b"2", [2], {"v": 2}, ("2",), np.float32(2), None], dtype=object))
    assert mixed.not_number.tolist() == [False, False, True, True, True, True, True, False, False]
    assert (mixed.as_text, int(mixed.missing.sum())) == (1, 1)


def test_a_baseline_keeps_the_intersections_reference_fairness(reference, stable_window):
    config = CONFIG.model_copy(update={"intersections": [["gender", "age_group"]]})
    snapshot = build_baseline(reference, config, model_id="m", model_version="1")
    crossed = snapshot.fairness_metrics["gender&age_group"]
    assert len(crossed.group_metrics) == 6 and "gender=female&age_group=18-29" in crossed.group_metrics
    female_young = (reference[col.protected("gender")] == "female") & (reference[col.protected("age_group")] == "18-29")
    assert crossed.group_metrics["gender=female&age_group=18-29"].sample_count == int(female_young.sum())
    value = compute_metrics(stable_window, snapshot, config).metrics.fairness_drift.demographic_parity
    assert value.by_attribute["gender&age_group"].baseline_value == crossed.demographic_parity
