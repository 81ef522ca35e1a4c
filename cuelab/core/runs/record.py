"""``run.json`` (configuration and provenance) and the layout of ``predictions.csv``.

run.json holds what a reader needs to trust a result months later: the
configuration, the *identity* (hashes of the manifest, norms and prompt
templates, the feature configuration and everything else that decides the
predictions), each model's ``describe()``, package versions, host, command
line and the start and end time of every session (a resumed run has
several). A resumed run or a merge compares identities key by key.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cuelab.core.errors import CueLabError
from cuelab.core.runs.config import RunConfig, RunConfigError
from cuelab.core.runs.csvio import atomic_write_text
from cuelab.core.safeio import read_json

RUN_SCHEMA_VERSION = 1
RUN_JSON = "run.json"
PREDICTIONS_CSV = "predictions.csv"
#: Clips that could not be scored in the last session (rewritten by each session).
ERRORS_CSV = "errors.csv"
ERROR_COLUMNS = ("utt_id", "path", "model", "stage", "error")

#: Columns an edit run adds after TAIL_COLUMNS: the edit of the row's cell (``none`` for the
#: original audio), the audio the model heard (``original``, ``resynth`` or ``edited``) and
#: where its tokens came from (``original`` or ``edited`` audio).
EDIT_COLUMNS = ("edit", "audio_source", "token_source")
_AUDIO_SOURCES = ("original", "resynth", "edited")
_TOKEN_SOURCES = ("original", "edited")
#: Leading columns of predictions.csv; then ``p_<label>`` per class, then TAIL_COLUMNS,
#: then the manifest's other columns.
BASE_COLUMNS = ("utt_id", "speaker", "label", "model", "condition", "seed", "prediction")
TAIL_COLUMNS = ("scoring", "raw_output", "finish_reason", "tokens")
_NOT_CARRIED = {"path", "utt_id", "label", "speaker"}
_VERSIONED = (
    "cuelab", "numpy", "scipy", "torch", "transformers", "opensmile", "bitsandbytes", "openai",
)  # fmt: skip


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that shape results (read without importing them)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in _VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def host_info() -> dict[str, str]:
    """Host name, platform and Python version."""
    return {
        "host": platform.node(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
    }


def extra_columns(
    manifest_columns: Sequence[str], labels: Sequence[str], edits: bool = False
) -> list[tuple[str, str]]:
    """(manifest column, predictions column) for the manifest columns of an emotion run.

    Every column but ``path``, ``utt_id``, ``label`` and ``speaker`` (already
    there) is carried (see :func:`carry_columns`).
    """
    run_columns = {*BASE_COLUMNS, *TAIL_COLUMNS, *(f"p_{lab}" for lab in labels)}
    if edits:
        run_columns |= set(EDIT_COLUMNS)
    return carry_columns(manifest_columns, run_columns, _NOT_CARRIED)


def carry_columns(
    manifest_columns: Sequence[str], run_columns: set[str], skipped: set[str]
) -> list[tuple[str, str]]:
    """(manifest column, predictions column) for the manifest columns a run carries along.

    A column whose name clashes with a run column gets a ``manifest_`` prefix, or
    ``manifest2_``... when the manifest has that name too: every name is distinct.
    """
    carried = [c for c in manifest_columns if c and c not in skipped]
    taken = run_columns | set(carried)
    out = []
    for col in carried:
        name = col
        if col in run_columns:
            name, k = f"manifest_{col}", 2
            while name in taken:  # the manifest has "model" and "manifest_model" too
                name, k = f"manifest{k}_{col}", k + 1
            taken.add(name)
        out.append((col, name))
    return out


def prediction_header(
    labels: Sequence[str], extras: Sequence[tuple[str, str]], edits: bool = False
) -> list[str]:
    """The header of predictions.csv (with :data:`EDIT_COLUMNS` for an edit run)."""
    return [
        *BASE_COLUMNS,
        *(f"p_{lab}" for lab in labels),
        *TAIL_COLUMNS,
        *(EDIT_COLUMNS if edits else ()),
        *(name for _, name in extras),
    ]


def identity(
    config: RunConfig,
    *,
    manifest_sha256: str,
    norms_sha256: str,
    prompt_digest: str,
    labels: Sequence[str],
    feature_key: str,
) -> dict[str, Any]:
    """Everything that decides the predictions and the report, as a flat dict."""
    edits = (
        {"edits": list(config.edits), "edit_engine": config.edit_engine} if config.edits else {}
    )  # a run without edits keeps the identity it always had (its resume still matches)
    return {
        **edits,
        "manifest_sha256": manifest_sha256,
        "split": config.split,
        "limit": config.limit,
        "models": list(config.models),
        "conditions": list(config.conditions),
        "seeds": list(config.seeds),
        "labels": list(labels),
        "task": config.task,
        "prompt_digest": prompt_digest,
        "norms_sha256": norms_sha256,
        "feature_config": feature_key,
        "quant": config.quant,
        "device": config.device,
        "bootstrap": config.bootstrap,
        "bootstrap_seed": config.bootstrap_seed,
        "shard": str(config.shard) if config.shard else None,
    }


def compare_identity(
    old: dict[str, Any], new: dict[str, Any], what: str, ignore: Sequence[str] = ()
) -> None:
    """Raise naming the first key whose value differs between two identities.

    ``edit_engine`` is compared after ``edits``: resuming an edit run without
    ``--edits`` should name the missing edits, not their engine.
    """
    for key in sorted(set(old) | set(new), key=lambda k: (k == "edit_engine", k)):
        if key in ignore:
            continue
        if old.get(key) != new.get(key):
            raise RunConfigError(
                f"{what}: configuration differs in '{key}' "
                f"({_short(old.get(key))} there, {_short(new.get(key))} here)"
            )


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


#: The parts every run.json has, in the order they are written.
_CORE_KEYS = (
    "kind", "schema", "status", "config", "identity", "manifest", "labels", "models",
    "started", "finished", "sessions",
)  # fmt: skip
RECORD_KIND = "cuelab-run"


@dataclass
class RunRecord:
    """run.json as a typed record: the parts every run has, then its optional sections.

    The sections (``interventions``, ``notes``, ``analysis``, ``sseu``, ``replaced``,
    ``merged_from``, ``served_endpoints``, ``missing_shards`` and any key a later
    CueLab adds) keep the order they were first set in, so :meth:`to_json` writes
    the very keys, in the very order, that today's run folders hold, and a record
    read from a newer CueLab keeps what it does not know.
    """

    config: dict[str, Any]
    identity: dict[str, Any]
    labels: list[str]
    manifest: dict[str, Any] | None = None
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    status: str = "running"
    started: str | None = None
    finished: str | None = None
    sessions: list[dict[str, Any]] = field(default_factory=list)
    sections: dict[str, Any] = field(default_factory=dict)
    schema_version: int = RUN_SCHEMA_VERSION
    #: Which empty run this fresh record replaced (a note for the user; never written).
    replaced_note: str | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        """The JSON object of run.json (core keys first, then the sections in order)."""
        return {
            "kind": RECORD_KIND,
            "schema": self.schema_version,
            "status": self.status,
            "config": self.config,
            "identity": self.identity,
            "manifest": self.manifest,
            "labels": self.labels,
            "models": self.models,
            "started": self.started,
            "finished": self.finished,
            "sessions": self.sessions,
            **self.sections,
        }

    @classmethod
    def from_json(cls, data: Any, where: str | Path = RUN_JSON) -> RunRecord:
        """Read a run.json object (any run folder written so far), checking its parts.

        Raises:
            RunConfigError: not a CueLab run record, an unknown schema, or a damaged part.
        """
        if not isinstance(data, Mapping) or data.get("kind") != RECORD_KIND:
            raise RunConfigError(f"{where}: not a CueLab run record")
        if data.get("schema") != RUN_SCHEMA_VERSION:
            raise RunConfigError(f"{where}: run schema {data.get('schema')} is not supported")
        for key, kind in _RECORD_PARTS.items():
            if not isinstance(data.get(key), kind):
                what = "missing" if key not in data else f"not a {_KIND_NAMES[kind]}"
                raise RunConfigError(
                    f"{where}: the run record's '{key}' is {what}; the file is damaged"
                )
        try:
            RunConfig.from_json(data["config"])
        except (CueLabError, TypeError, KeyError, ValueError) as exc:
            raise RunConfigError(f"{where}: the run record's 'config' is damaged ({exc})") from None
        return cls(
            config=data["config"],
            identity=data["identity"],
            labels=data["labels"],
            manifest=data.get("manifest"),
            models=data["models"],
            status=data["status"],
            started=data.get("started"),
            finished=data.get("finished"),
            sessions=data["sessions"],
            sections={k: v for k, v in data.items() if k not in _CORE_KEYS},
            schema_version=data["schema"],
        )

    def run_config(self) -> RunConfig:
        """The run's configuration as a :class:`~cuelab.core.runs.config.RunConfig`."""
        return RunConfig.from_json(self.config)

    @property
    def is_sseu(self) -> bool:
        """True for a speech/scene/event run (its report and row layout differ)."""
        return self.run_config().is_sseu

    @property
    def merged(self) -> bool:
        """True for a folder that merged shards (it cannot be resumed)."""
        return bool(self.sections.get("merged_from"))

    @property
    def interventions(self) -> dict[str, Any]:
        """Per condition and seed, the effective change of the token interventions."""
        return self.sections.get("interventions") or {}

    @interventions.setter
    def interventions(self, value: dict[str, Any]) -> None:
        self.sections["interventions"] = value

    @property
    def notes(self) -> list[str]:
        """What the run's plan told the user (e.g. a condition that changed nothing)."""
        return self.sections.get("notes") or []

    @notes.setter
    def notes(self, value: list[str]) -> None:
        self.sections["notes"] = value

    @property
    def analysis(self) -> dict[str, Any] | None:
        """The analysis choices the last report used (None before the first report)."""
        return self.sections.get("analysis")

    @analysis.setter
    def analysis(self, value: dict[str, Any]) -> None:
        self.sections["analysis"] = value

    @property
    def sseu(self) -> dict[str, Any]:
        """An SSEU run's decoding, prompts and matcher provenance (created when first set)."""
        return self.sections.setdefault("sseu", {})

    @sseu.setter
    def sseu(self, value: dict[str, Any]) -> None:
        self.sections["sseu"] = value

    def section(self, name: str) -> Any:
        """An optional section by name (None when absent)."""
        return self.sections.get(name)


def new_record(
    config: RunConfig, ident: dict[str, Any], manifest_path: str, labels: Sequence[str]
) -> RunRecord:
    """A fresh run record (status ``running``)."""
    return RunRecord(
        config=config.to_json(),
        identity=ident,
        manifest={"path": manifest_path, "sha256": ident["manifest_sha256"]},
        labels=list(labels),
        started=now(),
    )


def start_session(record: RunRecord, command: Sequence[str] | None) -> dict[str, Any]:
    """Append a session (this process's part of the run) and return it."""
    session: dict[str, Any] = {
        "started": now(),
        "finished": None,
        "status": "running",
        "command": list(command) if command is not None else None,
        **host_info(),
        "versions": package_versions(),
    }
    record.sessions.append(session)
    record.status = "running"
    record.finished = None
    return session


def read_record(folder: str | Path) -> dict[str, Any]:
    """Read a run folder's run.json as its checked JSON object (see :func:`load_record`)."""
    return load_record(folder).to_json()


def load_record(folder: str | Path) -> RunRecord:
    """Read a run folder's run.json as a :class:`RunRecord`.

    Raises:
        RunConfigError: no run.json, or one that is not a readable CueLab run record.
    """
    path = Path(folder) / RUN_JSON
    if not path.exists() and not path.is_symlink():
        raise RunConfigError(f"{folder}: not a run folder (no {RUN_JSON})")
    return RunRecord.from_json(read_json(path, "run record", RunConfigError), path)


_RECORD_PARTS: dict[str, type] = {
    "status": str,
    "config": dict,
    "identity": dict,
    "labels": list,
    "models": dict,
    "sessions": list,
}
_KIND_NAMES: dict[type, str] = {str: "string", dict: "JSON object", list: "list"}


def write_record(folder: str | Path, record: RunRecord) -> Path:
    """Write run.json atomically."""
    text = json.dumps(record.to_json(), indent=2, ensure_ascii=False, allow_nan=False)
    return atomic_write_text(Path(folder) / RUN_JSON, text + "\n")


def row_check(record: RunRecord) -> Callable[[list[str], list[str]], str | None]:
    """A check for :func:`~cuelab.core.runs.csvio.read_complete_rows` of this run's table.

    A record that parses with the right number of cells may still not be one
    the run wrote: two damaged lines can merge into one of the right width, and
    a copied line doubles a row. Refused: a key (clip, model, condition or
    mode, seed) seen before, a model or condition the run does not have, a seed
    that is not an integer, a probability cell that is not a number.
    """
    config = record.config
    models = {str(m) for m in config.get("models") or ()}
    conditions = {str(c) for c in config.get("conditions") or ()}
    edits = {"none", *(str(e) for e in config.get("edits") or ())}
    seen: set[tuple[str, ...]] = set()
    layout: dict[str, Any] = {}

    def check(header: list[str], cells: list[str]) -> str | None:
        if not layout:
            kind = "condition" if "condition" in header else "mode"
            edit_keys = [c for c in EDIT_COLUMNS if c in header]
            layout["keys"] = [header.index(c) for c in ("utt_id", "model", kind, "seed")]
            layout["edit"] = [header.index(c) for c in edit_keys]
            layout["kind"] = kind
            layout["probs"] = [i for i, c in enumerate(header) if c.startswith("p_")]
        u, m, c, s = (cells[i] for i in layout["keys"])
        cell = tuple(cells[i] for i in layout["edit"])  # an edit run's (edit, audio, tokens)
        key = (u, m, c, s, *cell)
        if key in seen:
            where = f", {'/'.join(cell)}" if cell else ""
            return f"repeats an earlier row ({u}, {m}, {c}, seed {s or '-'}{where})"
        if models and m not in models:
            return f"names a model this run does not have ({m!r})"
        if layout["kind"] == "condition" and conditions and c not in conditions:
            return f"names a condition this run does not have ({c!r})"
        if cell and cell[0] not in edits:
            return f"names an edit this run does not have ({cell[0]!r})"
        if cell[1:] and (cell[1] not in _AUDIO_SOURCES or cell[2] not in _TOKEN_SOURCES):
            return f"has an unknown audio or token source ({cell[1]!r}, {cell[2]!r})"
        if s and not s.lstrip("-").isdigit():
            return f"has a seed that is not an integer ({s!r})"
        for i in layout["probs"]:
            if cells[i]:
                try:
                    float(cells[i])
                except ValueError:
                    return f"has a {header[i]} that is not a number ({cells[i][:20]!r})"
        seen.add(key)
        return None

    return check
