"""Reading CSV files: every data line is stored or rejected with its own line number.

The files are built here the way users' files break: an unbalanced quote, a byte from
another encoding, a byte-order mark.
"""

from __future__ import annotations

import pytest

from monitoring_core.errors import InvalidInput
from monitoring_core.ingest.bulk import read_csv

HEADER = "prediction_id,timestamp,prediction,confidence,features.purpose"


def row(i: int, purpose: str = "car") -> str:
    return f"p{i},2026-11-01T10:{i % 60:02d}:00Z,approve,0.9,{purpose}"


def write(tmp_path, lines: list[str], *, encoding: str = "utf-8", data: bytes | None = None):
    path = tmp_path / "predictions.csv"
    path.write_bytes(data if data is not None else ("\n".join([HEADER, *lines]) + "\n").encode(encoding))
    return path


def accounted(frame, lines, issues) -> dict[int, str]:
    """Line number -> 'stored' or the rejection reason."""
    result = {int(line): "stored" for line in lines}
    for issue in issues:
        assert issue.line not in result, f"line {issue.line} both stored and rejected"
        result[issue.line] = issue.reason
    return result


def test_an_unterminated_quote_rejects_only_its_own_line(tmp_path):
    path = write(tmp_path, [row(1), row(2, '"car'), row(3), row(4)])
    frame, lines, issues = read_csv(path)
    outcome = accounted(frame, lines, issues)
    assert outcome == {2: "stored", 3: "a quoted field opened on this line is never closed: unbalanced quote",
                       4: "stored", 5: "stored"}
    assert frame["features.purpose"].tolist() == ["car", "car", "car"]
    assert frame["prediction_id"].tolist() == ["p1", "p3", "p4"]


def test_a_stray_quote_closed_by_a_later_line_rejects_only_the_line_it_opens(tmp_path):
    # The quote opened on line 3 is "closed" by the one that opens a field on line 6:
    # the row that would result has the wrong shape, so only line 3 is rejected.
    path = write(tmp_path, [row(1), row(2, '"car'), row(3), row(4), row(5, '"home"'), row(6)])
    frame, lines, issues = read_csv(path)
    outcome = accounted(frame, lines, issues)
    assert sorted(outcome) == list(range(2, 8))
    assert [line for line, what in outcome.items() if what != "stored"] == [3]
    assert "unbalanced quote" in outcome[3] and "runs to line 6" in outcome[3]
    assert frame["features.purpose"].tolist() == ["car", "car", "car", "home", "car"]


def test_a_quoted_field_may_span_lines_when_its_row_is_well_formed(tmp_path):
    path = write(tmp_path, [row(1), 'p2,2026-11-01T10:02:00Z,approve,0.9,"two\nlines"', row(3)])
    frame, lines, issues = read_csv(path)
    assert issues == [] and lines.tolist() == [2, 3, 5]
    assert frame["features.purpose"].tolist() == ["car", "two\nlines", "car"]


def test_a_byte_invalid_in_utf8_rejects_its_line_only(tmp_path):
    lines = [row(i) for i in range(1, 5001)]
    data = ("\n".join([HEADER, *lines]) + "\n").encode()
    bad_line = 2502  # line numbers count the header as line 1
    data = data.replace(row(bad_line - 1).encode(), row(bad_line - 1, "caf\xe9").encode("latin-1"), 1)
    frame, stored, issues = read_csv(write(tmp_path, [], data=data))
    assert [(i.line, i.reason) for i in issues] == [
        (bad_line, "byte 0xE9 is not valid utf-8: pass --encoding with the file's encoding (for example cp1252)")]
    assert len(frame) == 4999 and len(set(stored.tolist())) == 4999 and bad_line not in stored
    assert frame["features.purpose"].eq("car").all()


def test_a_bad_byte_in_a_small_file_does_not_refuse_the_header(tmp_path):
    data = ("\n".join([HEADER, row(1), row(2), row(3)]) + "\n").encode() + row(4, "caf\xe9").encode("cp1252") + b"\n"
    path = write(tmp_path, [], data=data)
    frame, lines, issues = read_csv(path)
    assert lines.tolist() == [2, 3, 4] and [i.line for i in issues] == [5]
    frame, lines, issues = read_csv(path, encoding="cp1252")
    assert issues == [] and frame["features.purpose"].tolist()[-1] == "café"


def test_a_byte_order_mark_and_windows_line_ends_are_read(tmp_path):
    data = "\ufeff".encode() + "\r\n".join([HEADER, row(1), row(2, "café")]).encode() + b"\r\n"
    for encoding in (None, "utf-8", "UTF8"):
        frame, lines, issues = read_csv(write(tmp_path, [], data=data), encoding=encoding)
        assert frame.columns[0] == "prediction_id" and lines.tolist() == [2, 3] and issues == []
        assert frame["features.purpose"].tolist() == ["car", "café"]


def test_encodings_that_are_unknown_or_not_ascii_based_are_refused(tmp_path):
    path = write(tmp_path, [row(1)])
    with pytest.raises(InvalidInput, match="unknown encoding 'klingon'"):
        read_csv(path, encoding="klingon")
    with pytest.raises(InvalidInput, match="encoding 'utf-16' is not supported"):
        read_csv(path, encoding="utf-16")


def test_an_undecodable_header_is_refused_with_a_hint(tmp_path):
    path = write(tmp_path, [], data=b"prediction_id,caf\xe9\np1,x\n")
    with pytest.raises(InvalidInput, match=r"header line has a byte \(0xE9\).*--encoding"):
        read_csv(path)


def test_a_repeated_column_name_is_refused_not_merged(store, tmp_path):
    from monitoring_core.ingest import ingest_file

    path = write(tmp_path, [], data=f"{HEADER},features.purpose\n{row(1)},home\n".encode())
    with pytest.raises(InvalidInput, match=r"column\(s\) \['features.purpose'\] appear more than once"):
        ingest_file(store, path, model_id="loan", model_version="1")
