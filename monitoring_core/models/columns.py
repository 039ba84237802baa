"""Column names of a prediction window.

A window of predictions travels through Fairwatch as a pandas DataFrame whose column
names are the document paths of ``prediction_logs`` (as MongoDB spells them), so the same
name means the same thing in a CSV header, a DataFrame, a stored document and a query:

=========================================  =============================================
``prediction_id``                          unique id of the prediction (str)
``model_id``, ``model_version``            str
``timestamp``                              datetime64[ms, UTC]
``prediction.class``                       predicted class label (str)
``prediction.confidence``                  float in [0, 1]
``prediction.probabilities.<class>``       float in [0, 1], one column per class
``features.<name>``                        model input: float, or str for categoricals
``metadata.protected_attributes.<attr>``   group label (str), e.g. gender
``metadata.user_id`` / ``session_id`` /    str
``api_version``
``metadata.latency_ms``                    float
``ground_truth``                           true label (str) or missing
``ground_truth_timestamp``                 datetime64[ms, UTC] or missing
``explanation.<name>``                     SHAP value of feature <name> (float)
=========================================  =============================================
"""

from __future__ import annotations

PREDICTION_ID = "prediction_id"
MODEL_ID = "model_id"
MODEL_VERSION = "model_version"
TIMESTAMP = "timestamp"
PREDICTED_CLASS = "prediction.class"
CONFIDENCE = "prediction.confidence"
GROUND_TRUTH = "ground_truth"
GROUND_TRUTH_TIMESTAMP = "ground_truth_timestamp"
USER_ID = "metadata.user_id"
SESSION_ID = "metadata.session_id"
API_VERSION = "metadata.api_version"
LATENCY_MS = "metadata.latency_ms"

FEATURE_PREFIX = "features."
PROBABILITY_PREFIX = "prediction.probabilities."
PROTECTED_PREFIX = "metadata.protected_attributes."
EXPLANATION_PREFIX = "explanation."

# Columns with one fixed name (the prefixed families are open-ended).
FIXED_COLUMNS = (
    PREDICTION_ID,
    MODEL_ID,
    MODEL_VERSION,
    TIMESTAMP,
    PREDICTED_CLASS,
    CONFIDENCE,
    GROUND_TRUTH,
    GROUND_TRUTH_TIMESTAMP,
    USER_ID,
    SESSION_ID,
    API_VERSION,
    LATENCY_MS,
)
PREFIXES = (FEATURE_PREFIX, PROBABILITY_PREFIX, PROTECTED_PREFIX, EXPLANATION_PREFIX)


def feature(name: str) -> str:
    return FEATURE_PREFIX + name


def probability(label: str) -> str:
    return PROBABILITY_PREFIX + label


def protected(attribute: str) -> str:
    return PROTECTED_PREFIX + attribute


def explanation(name: str) -> str:
    return EXPLANATION_PREFIX + name


def names_with_prefix(columns, prefix: str) -> list[str]:
    """The bare names under ``prefix`` among ``columns``, in order: features, classes..."""
    return [c[len(prefix):] for c in columns if c.startswith(prefix)]


def is_known(column: str) -> bool:
    """Whether ``column`` is a fixed column or a well-formed member of a prefixed family."""
    if column in FIXED_COLUMNS:
        return True
    return any(column.startswith(p) and is_valid_name(column[len(p):]) for p in PREFIXES)


def is_valid_name(name: str) -> bool:
    """Feature, class and attribute names: non-empty, no '.', not starting with '$'.

    The same rule MongoDB needs for field names that are queried by path.
    """
    return bool(name) and "." not in name and not name.startswith("$") and name.strip() == name
