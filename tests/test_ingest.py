"""Bulk ingest: good rows kept, bad rows reported with their line and reason."""

from __future__ import annotations

import textwrap
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from monitoring_core import audit
from monitoring_core.errors import InvalidInput, StoreDamaged, StoreUnavailable
from monitoring_core.ingest import bulk, ingest_file, ingest_frame
from monitoring_core.ingest.bulk import ACCEPTED_TIMES
from monitoring_core.models import columns as col
from monitoring_core.storage.sqlite import SqliteStore

from .factories import prediction_frame

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


def test_timestamps_are_iso_8601_and_arrive_in_utc(store):
    given = ["2026-11-01 10:00", "2026-11-01T10:00:00.123+02:00", "2026-11-01", "2026-11-01T11:00:00.123456789Z",
             "2026-11-01T10:00+0100", "0001-01-01", "now", "today", "05/01/2024", "2024", "2026-02-30",
             "1714557600", "9999-12-31T00:00:00Z"]
    frame = prediction_frame(len(given)).drop(columns=[col.TIMESTAMP])
    frame[col.TIMESTAMP] = given
    report = ingest_frame(store, frame)
    assert report.inserted == 5
    not_iso = f"is not a date-time: use {ACCEPTED_TIMES}"
    epoch_hint = "; for seconds or milliseconds since 1970-01-01 UTC pass --epoch-unit s or ms"
    assert [str(issue) for issue in report.rejected] == [
        "line 6: timestamp '0001-01-01' is outside the accepted years 1678-2261",
        f"line 7: timestamp 'now' {not_iso}",
        f"line 8: timestamp 'today' {not_iso}",
        f"line 9: timestamp '05/01/2024' {not_iso}",
        f"line 10: timestamp '2024' {not_iso}{epoch_hint}",
        "line 11: timestamp '2026-02-30' is not a valid date or time of day",
        f"line 12: timestamp '1714557600' {not_iso}{epoch_hint}",
        "line 13: timestamp '9999-12-31T00:00:00Z' is outside the accepted years 1678-2261",
    ]
    window = store.predictions.window("loan", pd.Timestamp("2026-11-01", tz="UTC"),
                                      pd.Timestamp("2026-11-02", tz="UTC"), [col.TIMESTAMP])
    assert window[col.TIMESTAMP].dt.strftime("%H:%M:%S.%f").tolist() == [
        "00:00:00.000000", "08:00:00.123000", "09:00:00.000000", "10:00:00.000000", "11:00:00.123000"]


@pytest.mark.parametrize(("unit", "zone"), [("s", None), ("ms", None), ("us", None), ("ns", None),
                                           ("s", "Europe/Paris"), ("ns", "Europe/Paris")])
def test_parquet_timestamp_columns_of_any_unit_and_zone(embedded, tmp_path, unit, zone):
    store = embedded
    frame = prediction_frame(3).drop(columns=[col.MODEL_ID])
    stamps = np.array(["2026-11-01T10:00:00.5", "1200-01-01" if unit != "ns" else "NaT", "2026-11-01"],
                      dtype=f"datetime64[{unit}]")
    frame[col.TIMESTAMP] = pd.Series(stamps) if zone is None else pd.Series(stamps).dt.tz_localize(zone)
    path = tmp_path / "times.parquet"
    frame.to_parquet(path)
    report = ingest_file(store, path, model_id="loan")
    assert report.inserted == 2 and [i.line for i in report.rejected] == [2]
    reason = report.rejected[0].reason
    assert reason == "timestamp is missing" if unit == "ns" else (
        reason.startswith("timestamp 1200-01-01 00:00:00") and reason.endswith("outside the accepted years 1678-2261"))
    shift = timedelta(hours=-1) if zone else timedelta(0)
    stored = store.predictions.find(frame[col.PREDICTION_ID].iloc[0]).timestamp
    assert stored == pd.Timestamp("2026-11-01T10:00:00.5Z").floor("s" if unit == "s" else "ms") + shift


def test_epoch_numbers_need_their_unit(store, tmp_path):
    frame = prediction_frame(2).drop(columns=[col.MODEL_ID, col.TIMESTAMP])
    frame[col.TIMESTAMP] = np.array([1_793_527_200_123, 1_793_527_260_000], dtype="int64")
    path = tmp_path / "epoch.parquet"
    frame.to_parquet(path)
    with pytest.raises(InvalidInput, match="column 'timestamp' holds numbers: pass --epoch-unit s or ms"):
        ingest_file(store, path, model_id="loan")
    assert ingest_file(store, path, model_id="loan", epoch_unit="ms").inserted == 2
    assert store.predictions.find(frame[col.PREDICTION_ID].iloc[0]).timestamp == pd.Timestamp(
        "2026-11-01T10:00:00.123Z")
    seconds = write_csv(tmp_path, """\
        e1,1793527200.5,2.3,approve,0.9,0.9,52000,car,female,
        e2,2026-11-01T10:05:00Z,2.3,approve,0.9,0.9,52000,car,female,
        e3,soon,2.3,approve,0.9,0.9,52000,car,female,
        """)
    report = ingest_file(store, seconds, model_id="loan", epoch_unit="s")
    assert report.inserted == 2 and [i.line for i in report.rejected] == [4]
    assert store.predictions.find("e1").timestamp == pd.Timestamp("2026-11-01T10:00:00.5Z")
    with pytest.raises(InvalidInput, match="--epoch-unit must be one of"):
        ingest_file(store, seconds, model_id="loan", epoch_unit="minutes")


def test_empty_model_ids_and_versions_are_refused_by_the_one_rule(store):
    for options, message in (({"model_id": ""}, "--model-id must not be empty"),
                             ({"model_id": "  "}, "--model-id must not be empty"),
                             ({"model_version": ""}, "--model-version must not be empty")):
        with pytest.raises(InvalidInput, match=message):
            ingest_frame(store, prediction_frame(2).drop(columns=[col.MODEL_ID, col.MODEL_VERSION]),
                         **{"model_id": "loan", "model_version": "1", **options})
    frame = prediction_frame(3)
    frame.loc[1, col.MODEL_ID] = "  "
    frame.loc[2, col.MODEL_VERSION] = ""
    report = ingest_frame(store, frame)
    assert [str(i) for i in report.rejected] == ["line 2: model_id is missing", "line 3: model_version is missing"]
    assert store.predictions.model_ids() == ["loan"]


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


def test_a_store_lost_after_the_first_chunk_says_and_audits_what_was_stored(tmp_path, monkeypatch):
    monkeypatch.setattr(bulk, "CHUNK_ROWS", 4)
    store = SqliteStore(tmp_path / "fw.db", busy_timeout_ms=50)
    store.ensure_schema()
    other = SqliteStore(tmp_path / "fw.db")  # another process's connection

    def lock_after_first_chunk(rows):
        other.db.connection().execute("BEGIN IMMEDIATE")

    frame = prediction_frame(10)
    with pytest.raises(bulk.IngestIncomplete, match=(
            r"locked by another process .*; 4 of 10 valid rows stored before the store became unavailable; "
            r"re-run the same command to store the rest: stored rows are recognised")) as caught:
        ingest_frame(store, frame, progress=lock_after_first_chunk)
    assert caught.value.report.inserted == 4 and store.predictions.count("loan") == 4
    entries = store.audit.list()
    assert [(e.details["chunk"], e.details["lines"], e.details["inserted"]) for e in entries] == [("1 of 3", "1-4", 4)]
    other.db.connection().execute("ROLLBACK")
    again = ingest_frame(store, frame)
    assert again.inserted == 6 and [i.line for i in again.rejected] == [1, 2, 3, 4]
    assert store.predictions.count("loan") == 10 and audit.verify(store).valid
    other.close()
    store.close()


def test_an_interrupted_ingest_keeps_the_audit_of_each_stored_chunk(embedded, monkeypatch):
    monkeypatch.setattr(bulk, "CHUNK_ROWS", 3)

    def interrupt(rows):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ingest_frame(embedded, prediction_frame(7), progress=interrupt)
    assert embedded.predictions.count("loan") == 3
    assert [e.details["inserted"] for e in embedded.audit.list()] == [3]


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """Runs the command line on a data folder of its own; returns (exit status, stdout, stderr)."""
    from monitoring_core import config
    from monitoring_core.cli import main

    monkeypatch.setenv("FAIRWATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MONGODB_URI", raising=False)
    config.get_settings.cache_clear()

    def run(*argv):
        status = main(["--quiet", *argv])
        out, err = capsys.readouterr()
        return status, out, err

    yield run
    config.get_settings.cache_clear()


def test_the_cli_checks_the_errors_file_and_options_before_storing(cli, tmp_path):
    path = write_csv(tmp_path, "p1,2026-11-01T10:00:00Z,2.3,approve,0.9,0.9,52000,car,female,approve\n")
    status, out, err = cli("ingest", str(path), "--model-id", "loan", "--errors", str(tmp_path / "no" / "r.csv"))
    assert status == 2 and out == ""
    assert err == f"error: cannot write {tmp_path / 'no' / 'r.csv'}: the folder {tmp_path / 'no'} does not exist; " \
                  f"no rows stored\n"
    assert cli("ingest", str(path), "--model-id", "loan", "--errors", str(tmp_path))[2].startswith(
        f"error: {tmp_path} is a folder")
    status, _, err = cli("ingest", str(path), "--model-id", " ")
    assert status == 2 and err == "error: --model-id must not be empty; no rows stored\n"
    status, _, err = cli("ingest", str(path), "--model-id", "loan", "--encoding", "nope")
    assert status == 2 and "unknown encoding 'nope'" in err
    assert not (tmp_path / "data").exists()  # nothing was opened, let alone written


@pytest.mark.parametrize(("error", "before"), [
    (StoreUnavailable("the database is locked by another process"), "before the store became unavailable"),
    (StoreDamaged("segment 3 of model 'loan' is corrupt"), "before this error")])
def test_the_cli_reports_a_failure_part_way_in_one_line_with_what_was_stored(cli, tmp_path, monkeypatch, error,
                                                                              before):
    from monitoring_core import cli as cli_module

    monkeypatch.setattr(bulk, "CHUNK_ROWS", 1)
    store = SqliteStore(tmp_path / "fw.db")
    store.ensure_schema()
    real_insert, calls = store.predictions.insert_frame, []

    def fail_on_second_chunk(frame):
        calls.append(len(frame))
        if len(calls) == 2:
            raise error
        return real_insert(frame)

    monkeypatch.setattr(store.predictions, "insert_frame", fail_on_second_chunk)
    monkeypatch.setattr(cli_module.common, "store", lambda: store)
    path = write_csv(tmp_path, """\
        p1,2026-11-01T10:00:00Z,2.3,approve,0.9,0.9,52000,car,female,approve
        p2,2026-11-01T10:01:00Z,2.3,approve,0.9,0.9,52000,car,female,
        p3,2026-11-01T10:02:00Z,2.3,approve,1.9,0.9,52000,car,female,
        """)
    errors = tmp_path / "rejected.csv"
    status, out, err = cli("ingest", str(path), "--model-id", "loan", "--errors", str(errors))
    assert status == 2 and "3 rows read, 1 stored, 1 rejected" in out
    assert err == f"error: {error}; 1 of 2 valid rows stored {before}; re-run the same command to store the rest: " \
                  f"stored rows are recognised\n"
    assert pd.read_csv(errors)["line"].tolist() == [4]
    assert store.predictions.count("loan") == 1 and store.audit.last().details["inserted"] == 1


def test_content_ids_stay_those_of_earlier_versions():
    """Rows stored by an earlier version are recognised: the ids derived from content
    still hash each row's text as ``pd.util.hash_pandas_object`` does."""
    frame = prediction_frame(30)
    frame["mixed"] = pd.Series([1.5, "x", None] * 10, dtype=object)
    frame["count"] = np.arange(30)
    expected = pd.util.hash_pandas_object(frame.astype("str"), index=False).to_numpy()
    ids = bulk._content_ids(frame)
    assert ids.tolist() == [f"loan-{h:016x}" for h in expected]
