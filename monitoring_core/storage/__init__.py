"""Storage: one repository interface (:mod:`.base`), two backends.

:func:`open_store` picks the backend from the settings: MongoDB when ``MONGODB_URI`` is set
(or ``FAIRWATCH_BACKEND=mongodb``), otherwise the embedded SQLite file under
``FAIRWATCH_DATA_DIR``. Either way the schema and indexes are made sure of before the
store is returned.
"""

from __future__ import annotations

from ..config import Settings, get_settings
from ..errors import ConfigError
from .base import GroundTruthReport, InsertReport, PredictionSummary, PurgeReport, Store
from .retention import RetentionPolicy

__all__ = ["GroundTruthReport", "InsertReport", "PredictionSummary", "PurgeReport", "RetentionPolicy", "Store",
           "open_store"]


def open_store(settings: Settings | None = None) -> Store:
    settings = settings or get_settings()
    retention = RetentionPolicy.from_settings(settings)
    if settings.uses_mongodb:
        if settings.mongodb_uri is None:
            raise ConfigError("FAIRWATCH_BACKEND is 'mongodb' but MONGODB_URI is not set")
        from .mongo import MongoStore

        store: Store = MongoStore.connect(settings.mongodb_uri.get_secret_value(), settings.mongodb_database,
                                          settings.mongodb_timeout_ms, retention)
    else:
        from .sqlite import SqliteStore

        store = SqliteStore(settings.database_path, retention)
    store.ensure_schema()
    return store
