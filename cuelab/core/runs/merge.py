"""Merge shard run folders (``--shard I/N``) into one run folder.

Shards must share one identity except the shard itself, be complete, use
the same shard count and cover disjoint clips. A model served behind
``openai:`` endpoints is identified by its served model id and server
version, not by its URL list: shards run against different servers of the
same model merge, their rows carry the first shard's spec, and every URL is
kept in ``served_endpoints`` (and each shard's ``merged_from`` entry). The merged folder's run.json
is the shared configuration without a shard, plus each shard's sessions, so
its report equals the report of the same run done in one piece.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from cuelab.core import errors
from cuelab.core.runs import record as rec
from cuelab.core.runs.config import RunConfigError
from cuelab.core.runs.csvio import read_complete_rows, write_csv
from cuelab.core.runs.folder import RunFolder
from cuelab.core.runs.record import RunRecord

#: describe() keys that say where a model lies on disk, not what it is (``env_path``: the
#: environment of an isolated family's worker; its package versions are compared), or where
#: and how fast it was served (a served model's endpoints and requests in flight).
_WHERE = ("location", "folder", "env_path", "endpoints", "concurrency")
REMOTE_PREFIX = "openai:"


def _served(spec: str, record: RunRecord) -> tuple[str | None, str | None]:
    """A served model's identity: (served model id, server version).

    From the shard's run.json when the model was loaded there, else the spec's ``#MODEL``.
    """
    described = record.models.get(spec) or {}
    model = described.get("model") or (spec.partition("#")[2].strip() or None)
    return model, described.get("server_version")


def model_aliases(records: Sequence[RunRecord], dirs: Sequence[Path]) -> list[dict[str, str]]:
    """Per shard, its ``openai:`` specs that name the first shard's served models differently.

    One vLLM server per node gives every shard its own endpoint list, so the spec
    (``openai:URL,...#MODEL``) differs while the model does not. For served models the
    identity is the served model id and the server version; the URLs are provenance.
    Models pair up by position in the run's model list.

    Raises:
        RunConfigError: a served model or server version differs (named), or is unknown.
    """
    first = list(records[0].identity.get("models") or [])
    out: list[dict[str, str]] = []
    for folder, record in zip(dirs, records):
        mine = list(record.identity.get("models") or [])
        alias: dict[str, str] = {}
        if len(mine) == len(first):
            for a, b in zip(first, mine):
                if a == b or not (a.startswith(REMOTE_PREFIX) and b.startswith(REMOTE_PREFIX)):
                    continue
                there, here = _served(a, records[0]), _served(b, record)
                if there[0] is None or here[0] is None:
                    raise RunConfigError(
                        f"{folder} vs {dirs[0]}: the served model of {b} is not recorded; "
                        "name it in the spec (openai:URL#MODEL) to merge across endpoints"
                    )
                versions = there[1] is not None and here[1] is not None
                if there[0] != here[0] or (versions and there[1] != here[1]):
                    raise RunConfigError(
                        f"{folder} vs {dirs[0]}: served model differs ({there[0]} server "
                        f"{there[1]} there, {here[0]} server {here[1]} here)"
                    )
                alias[b] = a
        out.append(alias)
    return out


def _check_shards(
    records: Sequence[RunRecord], dirs: Sequence[Path], aliases: Sequence[dict[str, str]]
) -> None:
    first = records[0].identity
    counts: set[str] = set()
    seen: dict[str, Path] = {}
    for folder, record, alias in zip(dirs, records, aliases):
        if record.status != "complete":
            raise RunConfigError(
                f"{folder}: run is {record.status}, not complete",
                subject=folder,
                remedy=errors.RESUME,
            )
        shard = record.identity.get("shard")
        if not shard:
            raise RunConfigError(f"{folder}: not a shard (run without --shard I/N)")
        if shard in seen:
            raise RunConfigError(f"{folder}: shard {shard} given twice (also {seen[shard]})")
        seen[shard] = folder
        counts.add(shard.split("/")[1])
        ident = dict(record.identity)
        ident["models"] = [alias.get(m, m) for m in ident.get("models") or []]
        rec.compare_identity(first, ident, f"{folder} vs {dirs[0]}", ["shard"])
    if len(counts) > 1:
        raise RunConfigError(f"shards split the clips differently (counts {sorted(counts)})")
    _check_models(records, dirs, aliases)


def _check_models(
    records: Sequence[RunRecord], dirs: Sequence[Path], aliases: Sequence[dict[str, str]]
) -> None:
    """Every shard must have scored a model with the same weights and settings.

    The identity holds only the model specs; each model's ``describe()`` (weights
    hash, revision, quantisation, dtype) is in ``models``. Where the model lies on
    disk may differ between machines, so the location is not compared.
    """
    seen: dict[str, tuple[dict[str, Any], Path]] = {}
    for folder, record, alias in zip(dirs, records, aliases):
        for own_spec, described in record.models.items():
            spec = alias.get(own_spec, own_spec)
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
    target = RunFolder(out)
    if target.has_record() and not target.read_record().merged:
        raise RunConfigError(f"{target} holds a run that is not a merge; choose another -o")
    records = [RunFolder(d).read_record() for d in folders]
    aliases = model_aliases(records, folders)
    _check_shards(records, folders, aliases)
    header: list[str] = []
    rows: list[list[str]] = []
    owner: dict[str, Path] = {}
    for folder, alias in zip(folders, aliases):
        h, shard_rows, _ = read_complete_rows(RunFolder(folder).predictions)
        if header and h != header:
            raise RunConfigError(f"{folder}: predictions.csv columns differ from {folders[0]}'s")
        header = h
        if alias and "model" in header:  # the first shard's spec names the served model
            col = header.index("model")
            for r in shard_rows:
                r[col] = alias.get(r[col], r[col])
        for utt in {r[0] for r in shard_rows}:
            if utt in owner:
                raise RunConfigError(f"clip '{utt}' is in both {owner[utt]} and {folder}")
            owner[utt] = folder
        rows.extend(shard_rows)
    count = int(records[0].identity["shard"].split("/")[1])
    have = {r.identity["shard"] for r in records}
    missing = [f"{i}/{count}" for i in range(1, count + 1) if f"{i}/{count}" not in have]
    with target.lock():
        _write_merged(target, header, rows, records, folders, missing)
    return target.path, missing


def _write_merged(
    target: RunFolder,
    header: list[str],
    rows: list[list[str]],
    records: list[RunRecord],
    folders: list[Path],
    missing: list[str],
) -> None:
    write_csv(target.predictions, header, rows)
    first = records[0]
    merged = replace(
        first,
        identity={**first.identity, "shard": None},
        config={**first.config, "shard": None, "out": str(target.path)},
        sessions=[s for r in records for s in r.sessions],
        started=min(r.started or "" for r in records),
        finished=max(r.finished or "" for r in records),
        sections=dict(first.sections),
    )
    merged.sections["merged_from"] = [
        {"folder": str(f.resolve()), "shard": r.identity["shard"], "models": r.models}
        for f, r in zip(folders, records)
    ]
    served: dict[str, list[str]] = {}
    for r in records:  # every endpoint that served a model, as provenance
        for spec, described in r.models.items():
            if spec.startswith(REMOTE_PREFIX):
                name = str(described.get("model") or spec)
                have = served.setdefault(name, [])
                have += [e for e in described.get("endpoints") or [] if e not in have]
    if served:
        merged.sections["served_endpoints"] = served
    merged.sections["missing_shards"] = missing
    merged.status = "complete" if not missing else "partial"
    target.write_record(merged)
