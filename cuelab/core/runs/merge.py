"""Merge shard run folders (``--shard I/N``) into one run folder.

Shards must share one identity except the shard itself, be complete, use
the same shard count and cover disjoint clips. The merged folder's run.json
is the shared configuration without a shard, plus each shard's sessions, so
its report equals the report of the same run done in one piece.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cuelab.core.runs import record as rec
from cuelab.core.runs.base import run_lock
from cuelab.core.runs.config import RunConfigError
from cuelab.core.runs.csvio import read_complete_rows, write_csv

#: describe() keys that say where a model lies on disk, not what it is (``env_path``: the
#: environment of an isolated family's worker; its package versions are compared).
_WHERE = ("location", "folder", "env_path")


def _check_shards(records: Sequence[dict[str, Any]], dirs: Sequence[Path]) -> None:
    first = records[0]["identity"]
    counts: set[str] = set()
    seen: dict[str, Path] = {}
    for folder, record in zip(dirs, records):
        if record.get("status") != "complete":
            raise RunConfigError(
                f"{folder}: run is {record.get('status')}, not complete; finish it with --resume"
            )
        shard = record["identity"].get("shard")
        if not shard:
            raise RunConfigError(f"{folder}: not a shard (run without --shard I/N)")
        if shard in seen:
            raise RunConfigError(f"{folder}: shard {shard} given twice (also {seen[shard]})")
        seen[shard] = folder
        counts.add(shard.split("/")[1])
        rec.compare_identity(first, record["identity"], f"{folder} vs {dirs[0]}", ["shard"])
    if len(counts) > 1:
        raise RunConfigError(f"shards split the clips differently (counts {sorted(counts)})")
    _check_models(records, dirs)


def _check_models(records: Sequence[dict[str, Any]], dirs: Sequence[Path]) -> None:
    """Every shard must have scored a model with the same weights and settings.

    The identity holds only the model specs; each model's ``describe()`` (weights
    hash, revision, quantisation, dtype) is in ``models``. Where the model lies on
    disk may differ between machines, so the location is not compared.
    """
    seen: dict[str, tuple[dict[str, Any], Path]] = {}
    for folder, record in zip(dirs, records):
        for spec, described in (record.get("models") or {}).items():
            mine = {k: v for k, v in described.items() if k not in _WHERE}
            if spec not in seen:
                seen[spec] = (mine, folder)
                continue
            first, where = seen[spec]
            changed = sorted(k for k in set(first) | set(mine) if first.get(k) != mine.get(k))
            if changed:
                raise RunConfigError(
                    f"{folder} vs {where}: model {spec} differs in '{changed[0]}' "
                    f"({first.get(changed[0])} there, {mine.get(changed[0])} here)"
                )


def merge_runs(dirs: Sequence[str | Path], out: str | Path) -> tuple[Path, list[str]]:
    """Merge shard folders into ``out``; returns the folder and the missing shards (``I/N``).

    Raises:
        RunConfigError: a folder is not a complete shard, configurations differ (the
            message names the key), two shards hold the same clip, or ``out`` holds an
            unmerged run.
    """
    folders = [Path(d) for d in dirs]
    if not folders:
        raise RunConfigError("merge: no shard folders given")
    target = Path(out)
    if (target / rec.RUN_JSON).exists() and not rec.read_record(target).get("merged_from"):
        raise RunConfigError(f"{target} holds a run that is not a merge; choose another -o")
    records = [rec.read_record(d) for d in folders]
    _check_shards(records, folders)
    header: list[str] = []
    rows: list[list[str]] = []
    owner: dict[str, Path] = {}
    for folder in folders:
        h, shard_rows, _ = read_complete_rows(folder / rec.PREDICTIONS_CSV)
        if header and h != header:
            raise RunConfigError(f"{folder}: predictions.csv columns differ from {folders[0]}'s")
        header = h
        for utt in {r[0] for r in shard_rows}:
            if utt in owner:
                raise RunConfigError(f"clip '{utt}' is in both {owner[utt]} and {folder}")
            owner[utt] = folder
        rows.extend(shard_rows)
    count = int(records[0]["identity"]["shard"].split("/")[1])
    have = {r["identity"]["shard"] for r in records}
    missing = [f"{i}/{count}" for i in range(1, count + 1) if f"{i}/{count}" not in have]
    with run_lock(target):
        _write_merged(target, header, rows, records, folders, missing)
    return target, missing


def _write_merged(
    target: Path,
    header: list[str],
    rows: list[list[str]],
    records: list[dict[str, Any]],
    folders: list[Path],
    missing: list[str],
) -> None:
    write_csv(target / rec.PREDICTIONS_CSV, header, rows)
    merged = dict(records[0])
    merged["identity"] = {**records[0]["identity"], "shard": None}
    merged["config"] = {**records[0]["config"], "shard": None, "out": str(target)}
    merged["sessions"] = [s for r in records for s in r["sessions"]]
    merged["started"] = min(r["started"] for r in records)
    merged["finished"] = max(r["finished"] or "" for r in records)
    merged["merged_from"] = [
        {"folder": str(f.resolve()), "shard": r["identity"]["shard"], "models": r["models"]}
        for f, r in zip(folders, records)
    ]
    merged["missing_shards"] = missing
    merged["status"] = "complete" if not missing else "partial"
    rec.write_record(target, merged)
