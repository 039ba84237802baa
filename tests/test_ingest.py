"""Bulk ingest: good rows kept, bad rows reported with their line and reason."""

from __future__ import annotations

import textwrap
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from monitoring_core import audit
from monitoring_core.errors import InvalidInput
from monitoring_core.ingest import ingest_file, ingest_frame
from monitoring_core.ingest.bulk import ACCEPTED_TIMES
from monitoring_core.models import columns as col

from .factories import NOW, prediction_frame

HEADER = ("prediction_id,timestamp,model_version,prediction,confidence,prediction.probabilities.approve,"
          "features.income,features.purpose,metadata.protected_attributes.gender,label")


def write_csv(tmp_path, body: str, header: str = HEADER):
    path = tmp_path / "predictions.csv"
    path.write_text(header + "\n" + textwrap.dedent(body).lstrip("\n"), encoding="utf-8")
    return path


def test_good_rows_are_kept_and_bad_rows_reported_by_line(store, tmp_path):
    path = write_csv(tmp_path, """\
        p1,2026-11-01T10:00:00Z,2.3,approve,0.9,0.9,52000,car,female,approve
        p2,2026-11-01T10:01:00Z,2.3,approve,1.4,0.9,52000,car,female,
        p3,not-a-date,2.3,reject,0.8,0.2,41000,home,male,
        p4,2026-11-01T10:03:00Z,2.3,reject,0.8,0.2,inf,home,male,
        p5,2026-11-01T10:04:00Z,2.3,reject,0.8,0.2,,home,male,reject
        p6,2026-11-01T10:05:00Z,2.3,approve,0.7
        p1,2026-11-01T10:06:00Z,2.3,approve,0.7,0.7,1,car,male,
        p8,2026-11-01T10:07:00Z,2.3,,0.7,0.7,1,car,male,
        "p9",2026-11-01T10:08:00+01:00,2.3,approve,0.6,0.6,"61,000",car,"fe
        male",
        """)
    report = ingest_file(store, path, model_id="loan")
    reasons = {issue.line: issue.reason for issue in report.rejected}
    assert reasons == {
        3: "prediction.confidence = 1.4 is above 1.0",
        4: f"timestamp 'not-a-date' is not a date-time: use {ACCEPTED_TIMES}",
        5: "features.income is infinite",
        7: "expected 10 fields, found 5",
        8: "duplicate prediction_id 'p1' (first on line 2)",
        9: "prediction.class is missing",
    }
    assert (report.rows_read, report.inserted, report.rejected_count) == (9, 3, 6)
    assert "9 rows read, 3 stored, 6 rejected" in report.summary()
    window = store.predictions.window("loan", pd.Timestamp("2026-11-01", tz="UTC"), pd.Timestamp("2026-11-02", tz="UTC"),
                                      [col.PREDICTION_ID, col.TIMESTAMP, col.feature("income"), col.GROUND_TRUTH,
                                       col.protected("gender")])
    assert window[col.PREDICTION_ID].tolist() == ["p9", "p1", "p5"]
    assert window[col.TIMESTAMP].iloc[0] == pd.Timestamp("2026-11-01T09:08:00Z")  # converted to UTC
    assert window[col.feature("income")].iloc[0] == "61,000"  # stray text kept for type-mismatch counting
    assert pd.isna(window[col.feature("income")].iloc[2])  # empty cell = missing value
    assert window[col.protected("gender")].iloc[0] == "fe\nmale"
    assert window[col.GROUND_TRUTH].tolist()[1:] == ["approve", "reject"]
    entry = store.audit.last()
    assert entry.event_type == "predictions_ingested" and entry.details["inserted"] == 3


def test_reingesting_a_file_stores_nothing_twice(store, tmp_path):
    path = write_csv(tmp_path, """\
        ,2026-11-01T10:00:00Z,2.3,approve,0.9,0.9,52000,car,female,
        ,2026-11-01T10:01:00Z,2.3,reject,0.8,0.2,41000,home,male,
        """)
    first = ingest_file(store, path, model_id="loan")
    second = ingest_file(store, path, model_id="loan")
    assert first.inserted == 2 and second.inserted == 0
    assert [i.reason.endswith("is already stored") for i in second.rejected] == [True, True]
    assert store.predictions.count("loan") == 2


def test_unknown_and_missing_columns_are_refused_before_anything_is_written(store, tmp_path):
    with pytest.raises(InvalidInput, match=r"unknown column\(s\) \['income'\].*features.<name>"):
        ingest_file(store, write_csv(tmp_path, "p1,2026-11-01,1,a,0.5,0.5,1\n",
                                     header="prediction_id,timestamp,model_version,prediction,confidence,"
                                            "prediction.probabilities.approve,income"), model_id="loan")
    with pytest.raises(InvalidInput, match="no 'model_id' column: add one or pass --model-id"):
        ingest_file(store, write_csv(tmp_path, "p1,2026-11-01,1,a,0.5,0.5,1,car,f,\n"))
    with pytest.raises(InvalidInput, match="empty"):
        (tmp_path / "empty.csv").write_text("")
        ingest_file(store, tmp_path / "empty.csv", model_id="loan")
    with pytest.raises(InvalidInput, match="unsupported file type"):
        ingest_file(store, tmp_path / "x.xlsx", model_id="loan")
    assert store.predictions.model_ids() == []


def test_parquet_and_dataframes_share_the_rules(store, tmp_path):
    frame = prediction_frame(40).drop(columns=[col.MODEL_ID])
    frame.loc[5, col.CONFIDENCE] = np.nan
    frame.loc[7, col.probability("approve")] = 2.0
    path = tmp_path / "batch.parquet"
    frame.to_parquet(path)
    report = ingest_file(store, path, model_id="loan")
    # Row 6 lacks a confidence but has class probabilities: the top one is used.
    assert report.inserted == 39 and [str(i) for i in report.rejected] == [
        "line 8: prediction.probabilities.approve = 2.0 is above 1.0"]
    from_frame = ingest_frame(store, prediction_frame(5, model_id="fraud", start_id=900))
    assert from_frame.inserted == 5 and store.predictions.model_ids() == ["fraud", "loan"]
    assert audit.verify(store).valid


def test_model_id_option_and_column_must_agree(store):
    frame = prediction_frame(3)
    frame.loc[1, col.MODEL_ID] = "other"
    report = ingest_frame(store, frame, model_id="loan")
    assert report.inserted == 2 and report.rejected[0].reason == "model_id 'other' differs from --model-id 'loan'"


def test_timestamps_of_any_iso_form_and_dates_arrive_in_utc(store):
    frame = prediction_frame(3).drop(columns=[col.TIMESTAMP])
    frame[col.TIMESTAMP] = ["2026-11-01 10:00", "2026-11-01T10:00:00.123+02:00", "1 Nov 2026 11:00"]
    report = ingest_frame(store, frame)
    assert report.inserted == 3
    window = store.predictions.window("loan", pd.Timestamp("2026-11-01", tz="UTC"),
                                      pd.Timestamp("2026-11-02", tz="UTC"), [col.TIMESTAMP])
    assert window[col.TIMESTAMP].dt.strftime("%H:%M:%S.%f").tolist() == [
        "08:00:00.123000", "10:00:00.000000", "11:00:00.000000"]


def test_the_cli_ingests_a_file_and_writes_the_rejected_rows(tmp_path, monkeypatch, capsys):
    from monitoring_core import config
    from monitoring_core.cli import main

    monkeypatch.setenv("FAIRWATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MONGODB_URI", raising=False)
    config.get_settings.cache_clear()
    path = write_csv(tmp_path, """\
        p1,2026-11-01T10:00:00Z,2.3,approve,0.9,0.9,52000,car,female,approve
        p2,2026-11-01T10:01:00Z,2.3,approve,-0.1,0.9,52000,car,female,
        """)
    errors = tmp_path / "rejected.csv"
    assert main(["--quiet", "ingest", str(path), "--model-id", "loan", "--errors", str(errors)]) == 0
    out = capsys.readouterr().out
    assert "2 rows read, 1 stored, 1 rejected" in out and "line 3: prediction.confidence = -0.1 is below 0.0" in out
    assert pd.read_csv(errors).to_dict("records") == [{"line": 3, "reason": "prediction.confidence = -0.1 is below 0.0"}]
    assert main(["ingest", str(tmp_path / "missing.csv"), "--model-id", "loan"]) == 2
    assert "cannot read" in capsys.readouterr().err
    config.get_settings.cache_clear()
