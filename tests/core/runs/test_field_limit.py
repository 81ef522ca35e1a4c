"""One cell limit for every CueLab table: the writer never writes a record its reader refuses."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from cuelab.core.runs.csvio import TableCellError, read_complete_rows, repair_table, write_csv
from cuelab.core.runs.writer import PredictionWriter
from cuelab.core.safeio import FIELD_LIMIT, CellTooLongError, format_row

HEADER = ["utt_id", "model", "condition", "seed", "raw_output"]


def test_the_limit_is_the_one_csv_readers_have() -> None:
    assert csv.field_size_limit() == FIELD_LIMIT


@pytest.mark.parametrize(
    "text", ["a" * FIELD_LIMIT, "=" + "b" * (FIELD_LIMIT - 2), '"' * FIELD_LIMIT]
)
def test_a_cell_at_the_limit_is_written_and_read_back(tmp_path: Path, text: str) -> None:
    path = tmp_path / "predictions.csv"
    writer = PredictionWriter(path, HEADER, resume=False)
    writer.append([["u1", "m", "c", "0", text]])
    writer.close()
    header, rows, _ = read_complete_rows(path)
    assert header == HEADER and rows == [["u1", "m", "c", "0", text]]


@pytest.mark.parametrize(
    "text", ["a" * (FIELD_LIMIT + 1), "=" + "b" * (FIELD_LIMIT - 1), "é" * 200_000]
)  # the second is one character too long once neutralised ('=...)
def test_a_longer_cell_is_refused_and_nothing_of_its_block_is_written(
    tmp_path: Path, text: str
) -> None:
    path = tmp_path / "predictions.csv"
    writer = PredictionWriter(path, HEADER, resume=False)
    writer.append([["u1", "m", "c", "0", "kept"]])
    with pytest.raises(
        TableCellError, match=rf"predictions.csv: cell 5 .* at most {FIELD_LIMIT:,}"
    ):
        writer.append([["u2", "m", "c", "0", "fine"], ["u3", "m", "c", "0", text]])
    writer.close()
    _, rows, _ = read_complete_rows(path)
    assert rows == [["u1", "m", "c", "0", "kept"]]  # the table stays whole and readable
    assert repair_table(path)[1] == 0


def test_the_reader_refuses_a_longer_cell_even_with_a_raised_csv_limit(tmp_path: Path) -> None:
    path = tmp_path / "predictions.csv"
    long = "a" * (FIELD_LIMIT + 1)
    path.write_text(
        format_row(HEADER) + f"u1,m,c,0,{long}\n" + format_row(["u2", "m", "c", "0", "x"])
    )
    old = csv.field_size_limit(10 * FIELD_LIMIT)  # another library raised it
    try:
        with pytest.raises(Exception, match="line 2"):
            read_complete_rows(path)
        kept, moved, _ = repair_table(path)  # only that record is moved aside
    finally:
        csv.field_size_limit(old)
    assert (kept, moved) == (1, 1)
    assert read_complete_rows(path)[1] == [["u2", "m", "c", "0", "x"]]


def test_format_row_refuses_what_the_reader_would(tmp_path: Path) -> None:
    with pytest.raises(CellTooLongError):
        format_row(["x", "y" * (FIELD_LIMIT + 1)])
    assert format_row(["x", "y" * FIELD_LIMIT]).endswith("\n")
    table = write_csv(tmp_path / "summary.csv", ["a", "b"], [["1", "2"]])
    with pytest.raises(TableCellError, match=r"summary\.csv: cell 2"):
        write_csv(table, ["a", "b"], [["1", "y" * (FIELD_LIMIT + 1)]])
    assert read_complete_rows(table)[1] == [["1", "2"]]  # the old table stays


def test_a_row_the_run_check_would_refuse_is_never_written(tmp_path: Path) -> None:
    from cuelab.core.runs.record import RunRecord, row_check

    record = RunRecord(config={"models": ["m"], "conditions": ["c"]}, identity={}, labels=[])
    path = tmp_path / "predictions.csv"
    header = [*HEADER, "p_angry"]
    writer = PredictionWriter(path, header, resume=False, check=row_check(record))
    writer.append([["u1", "m", "c", "0", "ok", 0.5]])
    for bad, why in [
        (["u1", "m", "c", "0", "again", 0.5], "repeats an earlier row"),
        (["u2", "other", "c", "0", "x", 0.5], "names a model"),
        (["u3", "m", "c", "0", "x", "high"], "not a number"),
        (["u4", "m", "c", "0", "x"], "has 5 cells for 6 columns"),
        (["u5", "m", "c", "0", "\ud800", 0.5], "would not read back"),
    ]:
        with pytest.raises(TableCellError, match=why):
            writer.append([bad])
    writer.close()
    resumed = PredictionWriter(path, header, resume=True, check=row_check(record))
    resumed.close()
    assert resumed.kept == 1 and resumed.done == {("u1", "m", "c", "0")}
