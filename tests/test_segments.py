"""The embedded store's columnar prediction segments (``storage/segments.py``).

A model-based test drives the store and a pandas oracle with the same random operations
(inserts with duplicate ids, missing values and changing feature sets, ground truth,
purges, merges, reopening) and compares every read. A tiny segment layout makes the
random runs split, merge and merge merged segments. The other tests pin the lookups
that must not grow with the data, merging outside the write transaction, and damage.
"""

from __future__ import annotations

import collections
import contextlib
import shutil
import sqlite3
import tempfile
from datetime import timedelta
from pathlib import Path

import hypothesis.strategies as st
import numpy as np
import pandas as pd
import pytest
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from monitoring_core import cli
from monitoring_core.errors import StoreDamaged
from monitoring_core.models import columns as col
from monitoring_core.models.predictions import PredictionLog
from monitoring_core.storage.frames import frame_to_documents, normalise_dtypes
from monitoring_core.storage.segments import SegmentLayout, SqlitePredictions
from monitoring_core.storage.sqlite import SqliteStore

from .factories import NOW, prediction_frame

TINY = SegmentLayout(segment_rows=24, tier_limits=(4, 12, 24), fanout=3)
T0 = pd.Timestamp("2026-01-01", tz="UTC")
IDS = [f"p{i:02d}" for i in range(60)]
MODELS = ["a", "b"]
X, S, M, K = col.feature("x"), col.feature("s"), col.feature("m"), col.feature("k")
OPTIONAL = [X, S, M, col.GROUND_TRUTH]
READABLE = [col.MODEL_ID, col.MODEL_VERSION, col.PREDICTED_CLASS, col.CONFIDENCE, K, X, S, M, col.GROUND_TRUTH,
            col.GROUND_TRUTH_TIMESTAMP, col.feature("never_logged")]


def minute(n: int) -> pd.Timestamp:
    return (T0 + pd.Timedelta(minutes=n)).as_unit("ms")


def open_store(path: Path, layout: SegmentLayout = TINY) -> SqliteStore:
    store = SqliteStore(path)
    store.ensure_schema()
    store.predictions.layout = layout
    return store


FIELDS = {
    col.PREDICTION_ID: st.sampled_from(IDS),
    col.MODEL_ID: st.sampled_from(MODELS),
    col.MODEL_VERSION: st.sampled_from(["1.0", "2.0"]),
    col.TIMESTAMP: st.integers(0, 50).map(minute),
    col.PREDICTED_CLASS: st.sampled_from(["yes", "no"]),
    col.CONFIDENCE: st.floats(0.5, 1.0),
    K: st.integers(-5, 5).map(float),
    X: st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)),
    S: st.one_of(st.none(), st.sampled_from(["u", "v", "w"])),
    M: st.one_of(st.none(), st.floats(-10, 10, allow_nan=False), st.just("n/a")),
    col.GROUND_TRUTH: st.one_of(st.none(), st.sampled_from(["yes", "no"])),
}
ALWAYS = [c for c in FIELDS if c not in OPTIONAL]


class SegmentStoreMachine(RuleBasedStateMachine):
    """The store against a dict of rows (the oracle) under the same operations."""

    def __init__(self):
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="fw-segments-"))
        self.store = open_store(self.folder / "fw.db")
        self.rows: dict[str, dict] = {}
        self.columns: dict[str, set[str]] = collections.defaultdict(set)

    def teardown(self):
        self.store.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    @initialize()
    def start_empty(self):
        assert self.store.predictions.model_ids() == []

    # -- changes -------------------------------------------------------------------------

    @rule(batch=st.lists(st.fixed_dictionaries(FIELDS), min_size=1, max_size=14),
          present=st.sets(st.sampled_from(OPTIONAL)))
    def insert(self, batch, present):
        names = ALWAYS + [c for c in OPTIONAL if c in present]
        frame = pd.DataFrame.from_records([{c: r[c] for c in names} for r in batch], columns=names)
        report = self.store.predictions.insert_frame(frame)
        seen, duplicates, inserted = set(), [], 0
        for row in batch:
            row_id = row[col.PREDICTION_ID]
            if row_id in seen or row_id in self.rows:
                duplicates.append(row_id)
            else:
                self.rows[row_id] = {**{c: row[c] if c in names else None for c in FIELDS},
                                     col.GROUND_TRUTH_TIMESTAMP: None}
                self.columns[row[col.MODEL_ID]] |= set(names) - {col.MODEL_ID} | {col.GROUND_TRUTH,
                                                                                  col.GROUND_TRUTH_TIMESTAMP}
                inserted += 1
            seen.add(row_id)
        assert report.inserted == inserted
        assert collections.Counter(report.duplicate_ids) == collections.Counter(duplicates)

    @rule(model_id=st.sampled_from(MODELS), ids=st.lists(st.sampled_from([*IDS, "ghost"]), unique=True, max_size=8),
          label=st.sampled_from(["yes", "no"]), at=st.integers(0, 90).map(minute))
    def label(self, model_id, ids, label, at):
        report = self.store.predictions.record_ground_truth(model_id, dict.fromkeys(ids, label), at)
        known = [i for i in ids if i in self.rows and self.rows[i][col.MODEL_ID] == model_id]
        for i in known:
            self.rows[i].update({col.GROUND_TRUTH: label, col.GROUND_TRUTH_TIMESTAMP: at})
        assert report.updated == len(known)
        assert report.unknown_ids == [i for i in ids if i not in known]

    @rule(cutoff=st.integers(0, 55).map(minute))
    def purge(self, cutoff):
        expired = [i for i, r in self.rows.items() if r[col.TIMESTAMP] < cutoff]
        assert self.store.predictions.purge_before(cutoff) == len(expired)
        for i in expired:
            del self.rows[i]

    @rule()
    def merge(self):
        self.store.predictions.merge()

    @rule()
    def reopen(self):
        self.store.close()
        self.store = open_store(self.folder / "fw.db")

    # -- reads -------------------------------------------------------------------------

    def expected(self, model_id: str, start=None, end=None) -> list[dict]:
        return [r for r in self.rows.values() if r[col.MODEL_ID] == model_id
                and (start is None or r[col.TIMESTAMP] >= start) and (end is None or r[col.TIMESTAMP] < end)]

    @rule(model_id=st.sampled_from(MODELS), bounds=st.tuples(st.integers(-5, 60), st.integers(0, 30)),
          extra=st.lists(st.sampled_from(READABLE), unique=True))
    def window(self, model_id, bounds, extra):
        start, end = minute(bounds[0]), minute(bounds[0] + bounds[1])
        columns = [col.PREDICTION_ID, col.TIMESTAMP, *extra]
        got = self.store.predictions.window(model_id, start, end, columns)
        assert list(got.columns) == columns and got[col.TIMESTAMP].is_monotonic_increasing
        want = normalise_dtypes(pd.DataFrame.from_records(self.expected(model_id, start, end), columns=columns))
        if col.MODEL_ID in columns:  # the store names the model even where the oracle has no rows
            want[col.MODEL_ID] = want[col.MODEL_ID].astype("str")
        order = [col.TIMESTAMP, col.PREDICTION_ID]
        got, want = (f.sort_values(order).reset_index(drop=True) for f in (got, want))
        assert len(got) == len(want)
        for name in columns:
            if want[name].isna().all():  # all missing: the dtype may follow rows outside the window
                assert got[name].isna().all(), name
            else:
                pd.testing.assert_series_equal(got[name], want[name])

    @rule(prediction_id=st.sampled_from([*IDS, "ghost"]))
    def find(self, prediction_id):
        found = self.store.predictions.find(prediction_id)
        if prediction_id not in self.rows:
            assert found is None
            return
        row = self.rows[prediction_id]
        want = frame_to_documents(normalise_dtypes(pd.DataFrame.from_records([row])))[0]
        assert found == PredictionLog.model_validate(want)

    @rule(model_id=st.sampled_from(MODELS), start=st.none() | st.integers(0, 50).map(minute),
          end=st.none() | st.integers(0, 50).map(minute))
    def count(self, model_id, start, end):
        assert self.store.predictions.count(model_id, start, end) == len(self.expected(model_id, start, end))

    @rule(model_id=st.sampled_from(MODELS))
    def summary(self, model_id):
        rows = self.expected(model_id)
        summary = self.store.predictions.summary(model_id)
        stamps = [r[col.TIMESTAMP] for r in rows]
        assert (summary.count, summary.labelled) == (len(rows), sum(r[col.GROUND_TRUTH] is not None for r in rows))
        assert (summary.first, summary.last) == ((min(stamps), max(stamps)) if rows else (None, None))
        assert summary.model_versions == sorted({r[col.MODEL_VERSION] for r in rows})

    @invariant()
    def models_and_columns_match(self):
        assert self.store.predictions.model_ids() == sorted({r[col.MODEL_ID] for r in self.rows.values()})
        for model_id in MODELS:
            assert set(self.store.predictions.columns(model_id)) == self.columns[model_id]

    @invariant()
    def every_row_lives_in_the_segment_it_names(self):
        with self.store.db.tx(write=False) as conn:
            counts = conn.execute(
                "SELECT s.segment_id, s.n_rows, s.n_labelled, COUNT(l.pk), COUNT(l.ground_truth) "
                "FROM prediction_segments s LEFT JOIN prediction_logs l ON l.segment_id = s.segment_id "
                "GROUP BY s.segment_id").fetchall()
            orphans = conn.execute("SELECT COUNT(*) FROM prediction_logs WHERE segment_id NOT IN "
                                   "(SELECT segment_id FROM prediction_segments)").fetchone()[0]
        assert orphans == 0
        assert all(n_rows == rows and n_labelled == labelled for _, n_rows, n_labelled, rows, labelled in counts)
        assert all(self.store.predictions.check(m) == [] for m in MODELS)


SegmentStoreMachine.TestCase.settings = settings(max_examples=30, stateful_step_count=25, deadline=None)
test_segment_store_against_a_pandas_oracle = SegmentStoreMachine.TestCase


# -- lookups that must not grow with the data ------------------------------------------------


@pytest.fixture
def embedded(tmp_path):
    store = open_store(tmp_path / "fw.db", SegmentLayout(segment_rows=64, tier_limits=(16, 64), fanout=4))
    yield store
    store.close()


def decoded_segments(monkeypatch) -> list[int]:
    """Record the id of every segment the store decodes (the seam: ``_read_segments``)."""
    seen: list[int] = []
    original = SqlitePredictions._read_segments

    def counting(self, conn, segments, names):
        seen.extend(s.segment_id for s in segments)
        return original(self, conn, segments, names)

    monkeypatch.setattr(SqlitePredictions, "_read_segments", counting)
    return seen


def segment_count(store) -> int:
    with store.db.tx(write=False) as conn:
        return conn.execute("SELECT COUNT(*) FROM prediction_segments").fetchone()[0]


def test_find_decodes_exactly_one_segment(embedded, monkeypatch):
    frame = prediction_frame(400)
    # Out of time order and in small batches: many segments whose time ranges overlap.
    for start in range(0, 400, 9):
        embedded.predictions.insert_frame(frame.sample(frac=1.0, random_state=1).iloc[start:start + 9])
    assert segment_count(embedded) > 5
    seen = decoded_segments(monkeypatch)
    for position in (0, 123, 399):
        prediction_id = frame[col.PREDICTION_ID].iloc[position]
        seen.clear()
        found = embedded.predictions.find(prediction_id)
        assert len(seen) == 1
        assert found.prediction_id == prediction_id
        assert found.features["purpose"] == frame[col.feature("purpose")].iloc[position]


def test_summary_reads_no_segment(embedded, monkeypatch):
    frame = prediction_frame(300)
    frame.loc[frame.index[200:], col.MODEL_VERSION] = "2.4.0"
    for start in range(0, 300, 50):
        embedded.predictions.insert_frame(frame.iloc[start:start + 50])
    embedded.predictions.record_ground_truth("loan", {frame[col.PREDICTION_ID].iloc[0]: "approve"}, NOW)
    seen = decoded_segments(monkeypatch)
    summary = embedded.predictions.summary("loan")
    assert seen == []
    assert (summary.count, summary.labelled) == (300, frame[col.GROUND_TRUTH].notna().sum()
                                                 + pd.isna(frame[col.GROUND_TRUTH].iloc[0]))
    assert summary.model_versions == ["2.3.0", "2.4.0"]
    assert (summary.first, summary.last) == (frame[col.TIMESTAMP].min(), frame[col.TIMESTAMP].max())


def test_merges_run_after_the_write_has_committed(embedded, tmp_path, monkeypatch):
    other = SqliteStore(tmp_path / "fw.db")
    committed: list[int] = []
    original = SqlitePredictions.merge

    def observing(self, model_id=None):
        assert not self.db.connection().in_transaction
        committed.append(other.predictions.count("loan"))  # what another connection sees already
        return original(self, model_id)

    monkeypatch.setattr(SqlitePredictions, "merge", observing)
    frame = prediction_frame(60)
    for start in range(0, 60, 10):
        embedded.predictions.insert_frame(frame.iloc[start:start + 10])
    assert committed == [10, 20, 30, 40, 50, 60]
    assert segment_count(embedded) < 6  # and merging did happen
    other.close()


def _write_small_batches(path: str, start_id: int) -> int:
    store = open_store(Path(path), TINY)
    written = sum(store.predictions.insert_frame(prediction_frame(7, start_id=start_id + i)).inserted
                  for i in range(0, 350, 7))
    store.close()
    return written


def test_two_writer_processes_merging_lose_and_duplicate_nothing(tmp_path):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    path = tmp_path / "fw.db"
    open_store(path).close()
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        written = list(pool.map(_write_small_batches, [str(path)] * 2, [0, 10_000]))
    assert written == [350, 350]
    store = open_store(path)
    window = store.predictions.window("loan", NOW - timedelta(days=30), NOW + timedelta(days=30), [col.PREDICTION_ID])
    want = sorted(f"loan-{s + i:06d}" for s in (0, 10_000) for i in range(350))
    assert sorted(window[col.PREDICTION_ID]) == want
    with store.db.tx(write=False) as conn:
        assert conn.execute("SELECT SUM(n_rows) FROM prediction_segments").fetchone()[0] == 700
        assert conn.execute("SELECT MAX(tier) FROM prediction_segments").fetchone()[0] >= 2  # merges of merges
    store.close()


# -- damage ----------------------------------------------------------------------------------


def segments_of(path: Path, model_id: str) -> list[tuple[int, int, int, int]]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT segment_id, ts_min, ts_max, n_rows FROM prediction_segments "
                            "WHERE model_id = ? ORDER BY ts_min", (model_id,)).fetchall()


def overwrite_blob_in_file(path: Path, segment_id: int, column: str) -> None:
    """Overwrite bytes of one stored blob in the database file itself, as a disk fault would."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        blob = conn.execute("SELECT data FROM prediction_segment_columns WHERE segment_id = ? AND column_name = ?",
                            (segment_id, column)).fetchone()[0]
    content = bytearray(path.read_bytes())
    values = blob[-64:-32]  # compressed random floats: found once in the file
    where = content.find(values)
    assert where > 0 and content.find(values, where + 1) == -1
    content[where:where + 16] = np.random.default_rng(0).integers(0, 256, 16, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(content))


@pytest.fixture
def damaged(tmp_path):
    """Two models; one of loan's two segments has a garbled ``features.income`` blob."""
    path = tmp_path / "fw.db"
    store = open_store(path, SegmentLayout())
    store.predictions.insert_frame(prediction_frame(100))
    store.predictions.insert_frame(prediction_frame(50, start_id=500).assign(
        **{col.TIMESTAMP: lambda f: f[col.TIMESTAMP] + pd.Timedelta(days=3)}))
    store.predictions.insert_frame(prediction_frame(40, model_id="fraud", start_id=1000))
    store.close()
    bad = segments_of(path, "loan")[1]
    overwrite_blob_in_file(path, bad[0], col.feature("income"))
    store = open_store(path, SegmentLayout())
    yield store, bad
    store.close()


def test_a_window_over_a_damaged_segment_names_it(damaged):
    store, (segment_id, ts_min, ts_max, rows) = damaged
    span = (NOW - timedelta(days=1), NOW + timedelta(days=5))
    with pytest.raises(StoreDamaged) as caught:
        store.predictions.window("loan", *span, [col.TIMESTAMP, col.feature("income")])
    message = str(caught.value)
    start, end = (pd.Timestamp(ms, unit="ms", tz="UTC") for ms in (ts_min, ts_max))
    for part in ("'loan'", f"segment {segment_id} ", f"{start:%Y-%m-%d %H:%M:%S}", f"{end:%Y-%m-%d %H:%M:%S}",
                 f"{rows} rows", "features.income"):
        assert part in message
    # What does not need the damaged bytes reads as before.
    assert len(store.predictions.window("loan", *span, [col.TIMESTAMP, col.feature("purpose")])) == 150
    assert len(store.predictions.window("loan", NOW - timedelta(days=1), NOW + timedelta(days=1),
                                        [col.feature("income")])) == 100
    assert len(store.predictions.window("fraud", *span, [col.feature("income")])) == 40
    with pytest.raises(StoreDamaged, match=f"segment {segment_id} "):
        store.predictions.find("loan-000510")
    assert store.predictions.find("loan-000010").prediction_id == "loan-000010"


def test_summary_and_check_name_the_damaged_segment(damaged):
    store, (segment_id, *_) = damaged
    assert store.predictions.summary("loan").count == 150
    assert store.predictions.check("fraud") == []
    problems = store.predictions.check("loan")
    assert len(problems) == 1 and f"segment {segment_id} " in problems[0]


def test_status_reports_damage_without_a_traceback(damaged, monkeypatch, capsys):
    store, (segment_id, *_) = damaged
    monkeypatch.setattr(cli.common, "store", lambda: store)
    assert cli.main(["status"]) == 1
    out = capsys.readouterr().out
    assert "- fraud: 40 predictions" in out and "- loan: 150 predictions" in out
    assert out.count("DAMAGED") == 1 and f"segment {segment_id} " in out


def test_merges_and_retention_keep_a_damaged_segment_and_its_rows(tmp_path):
    path = tmp_path / "fw.db"
    store = open_store(path)
    store.predictions.insert_frame(prediction_frame(3))
    store.close()
    bad = segments_of(path, "loan")[0]
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:  # same length, other bytes
        conn.execute("UPDATE prediction_segment_columns SET data = zeroblob(length(data)) WHERE segment_id = ? "
                     "AND column_name = ?", (bad[0], col.PREDICTION_ID))
    store = open_store(path)
    for i in range(1, 8):  # enough small batches to merge tier 0 more than once
        store.predictions.insert_frame(prediction_frame(3, start_id=100 * i))
    assert [s[0] for s in segments_of(path, "loan")].count(bad[0]) == 1
    assert store.predictions.count("loan") == 24
    # One row of each batch is older than the cutoff; the damaged segment keeps its row.
    assert store.predictions.purge_before(NOW - timedelta(minutes=1)) == 7
    assert store.predictions.summary("loan").count == store.predictions.count("loan") == 24 - 7
    assert len(store.predictions.check("loan")) == 1
    store.close()


# -- upgrade from the first release's layout -------------------------------------------------


def downgrade_to_first_layout(path: Path) -> None:
    """Rewrite the prediction tables as the first release left them: no segment per row,
    no label counts, versions, damage marks or checksums."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.executescript("""
            DROP TRIGGER prediction_labelled;
            DROP INDEX ix_pred_segment;
            ALTER TABLE prediction_logs DROP COLUMN segment_id;
            CREATE TABLE old_segments (segment_id INTEGER PRIMARY KEY, model_id TEXT NOT NULL,
                ts_min INTEGER NOT NULL, ts_max INTEGER NOT NULL, n_rows INTEGER NOT NULL, tier INTEGER NOT NULL);
            INSERT INTO old_segments SELECT segment_id, model_id, ts_min, ts_max, n_rows, tier FROM prediction_segments;
            DROP TABLE prediction_segments;
            ALTER TABLE old_segments RENAME TO prediction_segments;
            CREATE INDEX ix_seg_model ON prediction_segments(model_id, tier, ts_min);
            ALTER TABLE prediction_segment_columns DROP COLUMN crc32;
        """)


def test_a_store_of_the_first_layout_is_upgraded_and_reads_back_the_same(tmp_path):
    path = tmp_path / "fw.db"
    store = open_store(path, SegmentLayout())
    frame = pd.concat([prediction_frame(300, model_id="loan"), prediction_frame(120, model_id="fraud")])
    store.predictions.insert_frame(frame)
    window = (NOW - timedelta(days=1), NOW + timedelta(days=1))
    before = {m: store.predictions.window(m, *window, READABLE) for m in ("loan", "fraud")}
    summary_before = store.predictions.summary("loan")
    store.close()

    downgrade_to_first_layout(path)
    store = open_store(path, SegmentLayout())
    for model_id, expected in before.items():
        pd.testing.assert_frame_equal(store.predictions.window(model_id, *window, READABLE), expected)
    assert store.predictions.summary("loan") == summary_before
    assert store.predictions.find("loan-000007").prediction_id == "loan-000007"
    assert store.predictions.check("loan") == []
    store.predictions.insert_frame(prediction_frame(5, model_id="loan", start_id=1000))  # and it takes new rows
    assert store.predictions.count("loan") == 305
    store.close()
