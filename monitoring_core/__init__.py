"""Fairwatch's core: storage, ingestion, metrics, analysis, incidents, alerts, audit.

Nothing heavy happens at import time; open a store with
:func:`monitoring_core.storage.open_store`.
"""

__version__ = "0.1.0"
