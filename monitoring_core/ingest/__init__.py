"""Getting predictions in: the SDK logger (per prediction) and bulk ingest (files, frames)."""

from .bulk import IngestIncomplete, IngestReport, RowIssue, ingest_file, ingest_frame
from .sdk import LoggerStats, PredictionLogger

__all__ = ["IngestIncomplete", "IngestReport", "LoggerStats", "PredictionLogger", "RowIssue", "ingest_file",
           "ingest_frame"]
