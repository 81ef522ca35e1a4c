"""Seeded mutation fuzzing of the files users hand to CueLab and of the files it keeps.

Valid manifests, run configurations, run records and prediction tables are
damaged at random (bytes replaced by quotes, CRs, NULs, invalid UTF-8,
deletions, duplications, truncations) and handed to the real commands. Each
outcome must be a success or exactly one ``cuelab: error:`` line (never a
traceback, never an internal error), and a success on a damaged table must
not have lost rows silently: only a record cut short at the very end may be
dropped. The seeds are fixed, so a failure reproduces.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from cuelab.cli import main
from cuelab.core.runs.csvio import CorruptTableError, read_complete_rows
from tests.cli.conftest import eval_args

INTERESTING = [b'"', b"\r", b"\0", b",", b"\n", b"\xff", b"\xc3", b"=", b"[", b"{", b" ", b"\t"]


def mutate(data: bytes, rng: random.Random, log: list[str] | None = None) -> bytes:
    """One to three random edits of ``data`` (their names appended to ``log``)."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        if not out:
            break
        i = rng.randrange(len(out))
        op = rng.choice(["replace", "insert", "delete", "duplicate", "truncate"])
        if log is not None:
            log.append(op)
        if op == "replace":
            out[i : i + 1] = rng.choice(INTERESTING)
        elif op == "insert":
            out[i:i] = rng.choice(INTERESTING) * rng.randint(1, 4)
        elif op == "delete":
            del out[i : i + rng.randint(1, 40)]
        elif op == "duplicate":
            j = out.find(b"\n", i)
            start = out.rfind(b"\n", 0, i) + 1
            if j > 0:
                out[j + 1 : j + 1] = out[start : j + 1]
        else:
            del out[i:]
    return bytes(out)


def outcome(capsys: pytest.CaptureFixture[str], argv: list[str]) -> int:
    """Run the command; a failure must be one typed line."""
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err, err
    if code != 0:
        errors = [x for x in err.splitlines() if x.strip()]
        assert code in (1, 2, 3) and errors, err
        assert errors[-1].startswith("cuelab: error: ") and len(errors) == 1, err
    return code


@pytest.mark.parametrize("seed", range(40))
def test_mutated_manifests(seed: int, manifest: Path, tmp_path: Path, capsys) -> None:
    rng = random.Random(seed)
    data = tmp_path / "data"
    shutil.copytree(manifest.parent, data, symlinks=True)
    path = data / "manifest.csv"
    path.write_bytes(mutate(path.read_bytes(), rng))
    outcome(capsys, ["norms", str(path), "-o", str(tmp_path / "norms.json")])
    outcome(capsys, eval_args(path, tmp_path / "run", "--limit", "3"))


@pytest.mark.parametrize("seed", range(100))
def test_mutated_prediction_tables(seed: int, finished: Path, tmp_path: Path, capsys) -> None:
    rng = random.Random(1000 + seed)
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    table = run / "predictions.csv"
    original = read_complete_rows(table)[1]
    ops: list[str] = []
    table.write_bytes(mutate(table.read_bytes(), rng, ops))
    if outcome(capsys, ["report", str(run), "--no-plots"]) != 0:
        return
    try:
        _, rows, _ = read_complete_rows(table)
    except CorruptTableError:
        pytest.fail("report succeeded on a table the reader refuses")
    # Nothing lost or doubled silently. A file cut short (as by a crash) may lose
    # its tail; otherwise only the record cut short at the very end is dropped.
    # At most one record (the damaged one) may differ from what was written.
    changed = sum(a != b for a, b in zip(rows, original, strict=False))
    assert len(rows) <= len(original) and changed <= 1
    if "truncate" not in ops:
        assert len(rows) >= len(original) - 1 and changed + len(original) - len(rows) <= 1


@pytest.mark.parametrize("seed", range(40))
def test_mutated_run_records(seed: int, finished: Path, tmp_path: Path, capsys) -> None:
    rng = random.Random(2000 + seed)
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    record = run / "run.json"
    record.write_bytes(mutate(record.read_bytes(), rng))
    outcome(capsys, ["report", str(run), "--no-plots"])


@pytest.mark.parametrize("seed", range(40))
def test_mutated_run_configs(seed: int, manifest: Path, tmp_path: Path, capsys) -> None:
    rng = random.Random(3000 + seed)
    toml = tmp_path / "run.toml"
    text = (
        f'manifest = "{manifest}"\nmodels = ["reference"]\nconditions = ["audio-only"]\n'
        f'seeds = [0, 1]\nbootstrap = 20\nworkers = 1\nlimit = 2\nout = "{tmp_path / "out"}"\n'
    )
    toml.write_bytes(mutate(text.encode(), rng))
    outcome(capsys, ["eval", str(toml), "--no-plots"])


@pytest.mark.parametrize("seed", range(40))
def test_resume_on_mutated_prediction_tables(
    seed: int, manifest: Path, finished: Path, tmp_path: Path, capsys
) -> None:
    """A resume either refuses the damage in one line or ends with every row once."""
    rng = random.Random(4000 + seed)
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    table = run / "predictions.csv"
    original = read_complete_rows(table)[1]
    table.write_bytes(mutate(table.read_bytes(), rng))
    if outcome(capsys, eval_args(manifest, run, "--resume")) != 0:
        return
    _, rows, _ = read_complete_rows(table)
    keys = [tuple(r[:6]) for r in rows]
    assert len(keys) == len(set(keys)) == len(original)  # none lost, none doubled
    assert sum(r not in original for r in rows) <= 1  # at most the damaged record differs
