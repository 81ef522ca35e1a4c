"""What a batch run does: its configuration, from flags or a TOML file.

A :class:`RunConfig` is everything that decides a run's predictions (the
manifest, split, models, conditions, seeds, label set, prompt task, norms,
quantisation and device, clip limit and shard) plus how the report is
computed (bootstrap resamples and seed). :meth:`RunConfig.identity` is the
part a resumed run or a shard merge must share; the runner compares it key by
key so a refusal can name what changed.

TOML files use the same keys as :class:`RunConfig` (paths relative to the
file's folder), plus ``corrupt_grid = [0.1, 0.3]`` as a shorthand for
``corrupt:P`` conditions::

    manifest = "../assets/demo/manifest.csv"
    split = "test"
    models = ["reference", "oracle:-"]
    conditions = ["audio-only", "correct", "shuffle", "conflict"]
    corrupt_grid = [0.1, 0.3, 0.5]
    seeds = [0, 1, 2]
    bootstrap = 1000
    out = "runs/demo"

A speech / scene / event (SSEU) run sets ``sseu_tasks`` (``asr``, ``asc``,
``at``: the independent mode) and/or ``joint`` / ``cot``, and needs no
``conditions`` (audio only)::

    manifest = "sseu_set/manifest.csv"
    models = ["oracle:-", "qwen2-audio:/models/Qwen2-Audio-7B-Instruct"]
    sseu_tasks = ["asr", "asc", "at"]
    joint = true
    matcher = "embeddings:/models/all-MiniLM-L6-v2"   # default "lexical"
    out = "runs/sseu"

Models behind OpenAI-compatible servers take ``scoring`` (``auto``,
``first-token``, ``continuation``, ``generate``), ``prompt_family`` and
``concurrency``::

    models = ["openai:http://gpu1:8000/v1,http://gpu2:8000/v1#Qwen/Qwen2-Audio-7B-Instruct"]
    scoring = "first-token"
    concurrency = 32

A run may start from a paper's preset (``preset = "sseu-bench"``, see
:mod:`cuelab.core.runs.presets`): the preset's settings apply under the file's
keys and the command line's flags, and run.json records the keys overridden.
``answers = "open"`` asks SSEU questions without listing the classes.

Answers are greedy unless ``sample = true`` (with ``temperature`` and ``top_p``,
default 0.7 and 0.9): then every seed in ``seeds`` draws its own answer, and the
std over seeds in ``summary.csv`` is the spread of those draws.
"""

from __future__ import annotations

import difflib
import hashlib
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from functools import partial
from pathlib import Path
from typing import Any

from cuelab.core.cues.interventions import parse_condition
from cuelab.core.errors import CueLabError
from cuelab.core.models.base import (
    LoadOptions,
    Sampling,
)
from cuelab.core.runs import constraints
from cuelab.core.runs.options import EmotionOptions, SseuOptions, view
from cuelab.core.safeio import read_input_text


class RunConfigError(CueLabError):
    """A run configuration is invalid, or does not match the run it should continue."""


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``: the clips whose utt-id hash falls in it."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, utt_id: str) -> bool:
        """True when ``utt_id`` belongs to this shard.

        The hash of the id, not its position, decides: the split is the same
        whatever the manifest order, and adding clips never moves old ones.
        """
        digest = hashlib.sha256(utt_id.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index - 1


def parse_shard(text: str) -> Shard:
    """Parse ``I/N`` (1 ≤ I ≤ N)."""
    left, sep, right = text.strip().partition("/")
    try:
        index, count = int(left), int(right)
    except ValueError:
        raise RunConfigError(f"shard '{text}' is not I/N, e.g. 1/4") from None
    if not sep or count < 1 or not 1 <= index <= count:
        raise RunConfigError(f"shard '{text}': need 1 <= I <= N, e.g. 1/4")
    return Shard(index, count)


@dataclass(frozen=True)
class RunConfig:
    """A batch evaluation run (see the module docstring).

    Attributes:
        manifest: manifest CSV path.
        models: model specs (``family:location``), run one after the other.
        conditions: canonical condition names (``audio-only``, ``corrupt:0.3``...).
        out: run folder.
        split: manifest split to use (None: every row).
        seeds: seeds of the random conditions (shuffle, corrupt).
        labels: closed label set (None: the sorted labels found in the split).
        task: prompt task (``ser``).
        norms: norms profile JSON (None: the shipped default).
        quant: quantisation of the model weights.
        device: ``auto``, ``cuda`` or ``cpu``.
        limit: use only the first N clips of the split (quick runs).
        shard: this run's part of the clips, or None for all.
        bootstrap: bootstrap resamples for the confidence intervals.
        bootstrap_seed: seed of the bootstrap.
        workers: feature-extraction processes (None: decided from the job size and the
            cores idle now); no effect on results.
        threads: torch threads (None: ``CUELAB_THREADS``, ``OMP_NUM_THREADS``, else the
            idle cores less the feature workers; see :mod:`cuelab.core.threads`); no
            effect on results.
        sseu_tasks: SSEU independent tasks (``asr``, ``asc``, ``at``); with ``joint`` or
            ``cot`` they make this an SSEU run (see :mod:`cuelab.core.runs.sseu`).
        joint: SSEU joint mode (one prompt asks all three).
        cot: SSEU chain-of-thought mode.
        matcher: how scene/event text becomes classes: ``lexical``,
            ``embeddings:FOLDER`` (a local sentence-transformers folder) or
            ``openai-embeddings:URL[,URL...][#MODEL]`` (an OpenAI-compatible embeddings server).
        answers: SSEU prompts list the classes (``closed``) or ask in the model's own
            words (``open``, SSEU-Bench's reading; needs an embedding matcher to map).
        preset: the named preset (``assets/presets/NAME.toml``) the run started from.
        preset_overrides: the preset's settings that explicit flags or keys replaced.
        max_new_tokens: generation limit of independent and joint prompts.
        cot_max_new_tokens: generation limit of the CoT prompt.
        sample: SSEU answers are seeded draws, one per seed, instead of one greedy answer.
        temperature: sampling temperature (only with ``sample``; default 0.7).
        top_p: sampling nucleus mass (only with ``sample``; default 0.9).
        scoring: how audio LMs, served or in-process, score labels: ``auto`` (continuation),
            ``first-token``, ``continuation`` or ``generate`` (:mod:`cuelab.core.models.scoring_modes`).
        prompt_family: the system prompt remote models get (None: the server's template).
        concurrency: requests a remote model keeps in flight (None: 16); no effect on results.
        label_score: ``sum`` of a label's token log-probabilities, or ``mean`` per token.
        allow_pickle: accept pickled checkpoints (``--allow-pickle``); no effect on results.
        trust_remote_code: run a checkpoint's own code (``--trust-remote-code``).
        fail_fast: stop at the first clip whose audio or features fail, instead of
            recording it in errors.csv and going on.
        edits: audio edits crossed with the conditions (canonical texts, ``resynth``
            first, added automatically); empty for a run on the original audio only.
        edit_engine: the resynthesis engine of the edits (``world`` or ``praat``).
    """

    manifest: str
    models: tuple[str, ...]
    conditions: tuple[str, ...]
    out: str
    split: str | None = None
    seeds: tuple[int, ...] = (0,)
    labels: tuple[str, ...] | None = None
    task: str = "ser"
    norms: str | None = None
    quant: str = "auto"
    device: str = "auto"
    limit: int | None = None
    shard: Shard | None = None
    bootstrap: int = 1000
    bootstrap_seed: int = 0
    workers: int | None = field(default=None, compare=False)
    threads: int | None = field(default=None, compare=False)
    sseu_tasks: tuple[str, ...] = ()
    joint: bool = False
    cot: bool = False
    matcher: str = "lexical"
    answers: str = "closed"
    preset: str | None = field(default=None, compare=False)
    preset_overrides: tuple[str, ...] = field(default=(), compare=False)
    max_new_tokens: int = 256
    cot_max_new_tokens: int = 1024
    sample: bool = False
    temperature: float | None = None
    top_p: float | None = None
    scoring: str = "auto"
    prompt_family: str | None = None
    concurrency: int | None = field(default=None, compare=False)
    label_score: str = "sum"
    fail_fast: bool = field(default=False, compare=False)
    allow_pickle: bool = field(default=False, compare=False)
    trust_remote_code: bool = field(default=False, compare=False)
    edits: tuple[str, ...] = ()
    edit_engine: str = "world"

    def __post_init__(self) -> None:
        key = partial(getattr, self)
        constraints.check(key, constraints.PARAMETER_CONSTRAINTS, RunConfigError)
        names = [parse_condition(c).name for c in self.conditions]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise RunConfigError(f"run configuration: condition listed twice: {', '.join(dupes)}")
        object.__setattr__(self, "conditions", tuple(names))
        _check_remote_specs(self.models)
        if self.is_sseu:
            self._check_sseu()
        else:
            constraints.check(key, constraints.EMOTION_CONSTRAINTS, RunConfigError)
        self._check_sampling()
        self._check_edits()

    def _check_edits(self) -> None:
        """Canonical edit texts with the ``resynth`` control first; refuse what cannot run."""
        from cuelab.core.audio.edits import RESYNTH, EditError, check_engine, parse_edit_list

        if not self.edits:
            if self.edit_engine != "world":
                raise RunConfigError("run configuration: edit_engine needs edits")
            return
        if self.is_sseu:
            raise RunConfigError("run configuration: edits apply to emotion runs only")
        try:
            chains = [c for c in parse_edit_list(self.edits) if not c.is_none]
            for chain in chains:
                check_engine(self.edit_engine, chain)
        except EditError as exc:
            raise RunConfigError(f"run configuration: {exc}") from None
        texts = [c.text() for c in chains if c.text() != RESYNTH]
        object.__setattr__(self, "edits", (RESYNTH, *texts))

    def load_options(self) -> LoadOptions:
        """How each model of the run is loaded (quantisation, device, remote settings)."""
        options = LoadOptions(quant=self.quant, device=self.device, scoring=self.scoring,
                              prompt_family=self.prompt_family,
                              label_score=self.label_score)  # fmt: skip
        if self.concurrency is not None:
            options.concurrency = self.concurrency
        options.allow_pickle = self.allow_pickle
        options.trust_remote_code = self.trust_remote_code
        options.worker_restarts = 1  # a worker that dies mid-run is replaced once
        return options

    @property
    def is_sseu(self) -> bool:
        """True for a speech / scene / event run (free answers, WER / mACC / mAP)."""
        return bool(self.sseu_tasks or self.joint or self.cot)

    @property
    def sseu_modes(self) -> tuple[str, ...]:
        """The SSEU modes this run asks: ``independent``, ``joint``, ``cot``."""
        return self.sseu.modes

    @property
    def emotion(self) -> EmotionOptions:
        """The options only an emotion run reads (see :mod:`cuelab.core.runs.options`)."""
        return view(self, EmotionOptions)

    @property
    def sseu(self) -> SseuOptions:
        """The options only an SSEU run reads (see :mod:`cuelab.core.runs.options`)."""
        return view(self, SseuOptions)

    def _check_sseu(self) -> None:
        constraints.check(partial(getattr, self), constraints.SSEU_CONSTRAINTS, RunConfigError)
        if tuple(self.conditions) != ("audio-only",):
            raise RunConfigError(
                "run configuration: SSEU runs are audio only; drop 'conditions' "
                f"({', '.join(self.conditions)})"
            )
        if self.matcher != "lexical" and not any(
            self.matcher.startswith(p) and self.matcher[len(p) :].strip()
            for p in ("embeddings:", "openai-embeddings:")
        ):
            raise RunConfigError(
                f"run configuration: matcher '{self.matcher}' is not lexical, embeddings:FOLDER "
                "or openai-embeddings:URL[#MODEL]"
            )
        if self.matcher.startswith("openai-embeddings:"):
            location = self.matcher[len("openai-embeddings:") :]
            if not location.partition("#")[0].replace(",", "").strip():
                raise RunConfigError(
                    "run configuration: matcher openai-embeddings: has no endpoint; write "
                    "openai-embeddings:http://HOST:8000/v1[#MODEL]"
                )
            _check_remote_specs(["openai:" + location])

    def _check_sampling(self) -> None:
        """Fill the sampling defaults; refuse parameters that would be silently ignored."""
        if not self.sample:
            if self.temperature is not None or self.top_p is not None:
                raise RunConfigError("run configuration: temperature and top_p need sample = true")
            return
        if not self.is_sseu:
            raise RunConfigError(
                "run configuration: sample applies to SSEU runs only (free answers)"
            )
        default = Sampling()
        temperature = default.temperature if self.temperature is None else self.temperature
        top_p = default.top_p if self.top_p is None else self.top_p
        try:
            Sampling(float(temperature), float(top_p))
        except CueLabError as exc:
            raise RunConfigError(f"run configuration: {exc}") from None
        object.__setattr__(self, "temperature", float(temperature))
        object.__setattr__(self, "top_p", float(top_p))

    def sampling(self, seed: int) -> Sampling | None:
        """The draw of one generation (None: greedy); ``seed`` must be non-negative."""
        return self.sseu.sampling(seed)  # temperature and top_p are set in __post_init__

    def decoding(self) -> dict[str, Any]:
        """How answers are decoded, for run.json; part of an SSEU run's identity."""
        return self.sseu.decoding()

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-ready dict (the ``config`` of run.json)."""
        d = asdict(self)
        d["shard"] = str(self.shard) if self.shard else None
        for key in ("models", "conditions", "seeds", "sseu_tasks", "preset_overrides", "edits"):
            d[key] = list(d[key])
        d["labels"] = list(self.labels) if self.labels is not None else None
        return d

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunConfig:
        """Inverse of :meth:`to_json` (reads run.json)."""
        return config_from_mapping(dict(data), base_dir=None)

    def seeds_for(self, condition: str) -> tuple[int | None, ...]:
        """The seeds a condition runs with: all for random ones, ``(None,)`` otherwise."""
        return self.seeds if parse_condition(condition).is_random else (None,)


_KEYS = {f.name for f in fields(RunConfig)}
_PATH_KEYS = ("manifest", "out", "norms")


def _as_tuple(key: str, value: Any, kind: type) -> tuple[Any, ...]:
    """A list of ``kind`` from a list or a comma-separated string; nothing is coerced.

    ``seeds = [1.7]`` or ``[true]`` is refused, not turned into 1: a TOML value of
    another type is a mistake, and silently rounding it would change the run.
    """
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, Sequence):
        raise RunConfigError(f"run configuration: '{key}' must be a list")
    out = []
    for v in value:
        if isinstance(v, str):
            try:
                out.append(kind(v.strip()))
            except (TypeError, ValueError):
                out.append(None)
        elif (isinstance(v, kind) and not isinstance(v, bool)) or (
            kind is float and type(v) is int
        ):
            out.append(kind(v))
        else:
            out.append(None)
        if out[-1] is None:
            raise RunConfigError(
                f"run configuration: '{key}' must be a list of {kind.__name__} (got {v!r})"
            )
    return tuple(out)


def config_from_mapping(data: dict[str, Any], base_dir: Path | None) -> RunConfig:
    """Build a config from a TOML/JSON mapping; paths are relative to ``base_dir``."""
    data = dict(data)
    grid = data.pop("corrupt_grid", None)
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        close = difflib.get_close_matches(unknown[0], _KEYS, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise RunConfigError(f"run configuration: unknown key '{unknown[0]}'{hint}")
    _sseu_keys(data, base_dir)
    if data.get("joint") or data.get("cot") or data.get("sseu_tasks"):
        data.setdefault("conditions", ["audio-only"])
    for key in ("manifest", "models", "conditions", "out"):
        if data.get(key) in (None, "", []):
            raise RunConfigError(f"run configuration: '{key}' is required")
    for key in _PATH_KEYS:
        if isinstance(data.get(key), str) and "\0" in data[key]:
            raise RunConfigError(f"run configuration: '{key}' contains a NUL byte")
        if data.get(key) and base_dir is not None:
            data[key] = str((base_dir / str(data[key])).resolve())
    conditions = list(_as_tuple("conditions", data["conditions"], str))
    if grid is not None:
        conditions += [f"corrupt:{p:g}" for p in _as_tuple("corrupt_grid", grid, float)]
    data["conditions"] = tuple(conditions)
    data["models"] = _as_tuple("models", data["models"], str)
    if "seeds" in data:
        data["seeds"] = _as_tuple("seeds", data["seeds"], int)
    if "preset_overrides" in data:
        data["preset_overrides"] = _as_tuple("preset_overrides", data["preset_overrides"], str)
    if data.get("labels") is not None:
        from cuelab.core.tasks.emotion import parse_labels

        if not isinstance(data["labels"], (str, list, tuple)):
            raise RunConfigError(
                "run configuration: 'labels' must be a label set name or a list of labels"
            )
        data["labels"] = parse_labels(data["labels"])
    if isinstance(data.get("shard"), str):
        data["shard"] = parse_shard(data["shard"])
    _edit_keys(data)
    for key in (
        "limit", "bootstrap", "bootstrap_seed", "workers", "max_new_tokens", "cot_max_new_tokens",
        "concurrency", "threads",
    ):  # fmt: skip
        value = data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise RunConfigError(f"run configuration: '{key}' must be an integer")
    for key in ("quant", "device", "task", "split", "norms", "matcher", "scoring",
                "prompt_family", "label_score", "out", "manifest", "answers",
                "preset"):  # fmt: skip
        if data.get(key) is not None and not isinstance(data[key], str):
            raise RunConfigError(f"run configuration: '{key}' must be a string")
    if data.get("shard") is not None and not isinstance(data["shard"], Shard):
        raise RunConfigError("run configuration: 'shard' must be a string such as \"1/4\"")
    return RunConfig(**data)


def _edit_keys(data: dict[str, Any]) -> None:
    """``edits``: a TOML list of edit texts, or one string with edits separated by ``;``."""
    edits = data.get("edits")
    if edits is None:
        return
    if isinstance(edits, str):
        edits = [e for e in edits.split(";") if e.strip()]
        if not edits:  # `--edits ""` is a mistake, not a run without edits
            raise RunConfigError(
                "run configuration: 'edits' holds no edit (write e.g. 'pitch=+2st;tempo=1.2')"
            )
    if not isinstance(edits, (list, tuple)) or not all(isinstance(e, str) for e in edits):
        raise RunConfigError("run configuration: 'edits' must be a list of edit texts")
    data["edits"] = tuple(edits)
    engine = data.get("edit_engine")
    if engine is not None and not isinstance(engine, str):
        raise RunConfigError("run configuration: 'edit_engine' must be a string")


def _sseu_keys(data: dict[str, Any], base_dir: Path | None) -> None:
    """Normalise the SSEU keys in place: ``joint``/``cot`` in ``sseu_tasks`` become flags."""
    if data.get("sseu_tasks") is not None:
        tasks = [t.lower() for t in _as_tuple("sseu_tasks", data["sseu_tasks"], str)]
        for mode in ("joint", "cot"):
            if mode in tasks:
                data[mode] = True
        data["sseu_tasks"] = tuple(t for t in tasks if t not in ("joint", "cot"))
    for key in ("joint", "cot", "sample", "fail_fast", "allow_pickle", "trust_remote_code"):
        if key in data and not isinstance(data[key], bool):
            raise RunConfigError(f"run configuration: '{key}' must be true or false")
    for key in ("temperature", "top_p"):
        value = data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise RunConfigError(f"run configuration: '{key}' must be a number")
    matcher = data.get("matcher")
    if isinstance(matcher, str) and matcher.startswith("embeddings:") and base_dir is not None:
        folder = matcher[len("embeddings:") :].strip()
        if folder:
            data["matcher"] = "embeddings:" + str((base_dir / folder).resolve())


def read_run_file(path: str | Path) -> dict[str, Any]:
    """The keys of a TOML run configuration, unchecked (``--explain`` reads its preset).

    Raises:
        RunConfigError: unreadable file or not TOML.
    """
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    src = Path(path)
    text = read_input_text(src, "run configuration", RunConfigError)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RunConfigError(f"{src}: not valid TOML ({exc})") from None
    except RecursionError:
        raise RunConfigError(f"{src}: not valid TOML (nested too deeply)") from None


def load_config(path: str | Path, **overrides: Any) -> RunConfig:
    """Read a TOML run configuration; ``overrides`` (not None) replace its keys."""
    src = Path(path)
    data = read_run_file(src)
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return config_from_mapping(with_preset(data), base_dir=src.resolve().parent)
    except RunConfigError as exc:
        raise RunConfigError(f"{src}: {exc}", subject=src, remedy=exc.remedies) from None


def with_preset(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` under its ``preset``'s settings (see :mod:`cuelab.core.runs.presets`)."""
    from cuelab.core.runs.presets import PresetError, apply_preset

    try:
        return apply_preset(data, keys=_KEYS | {"corrupt_grid"})
    except PresetError as exc:
        raise RunConfigError(str(exc), subject=exc.subject, remedy=exc.remedies) from None


def with_shard(config: RunConfig, shard: Shard | None) -> RunConfig:
    """A copy of ``config`` for another shard (or for the merged run)."""
    return replace(config, shard=shard)


def _check_remote_specs(models: Sequence[str]) -> None:
    """Refuse a served model's spec that cannot work, before anything is recorded.

    A URL with ``user:password@`` in it must never reach run.json, a log line or an
    error message, so it is refused here, when the configuration is built (an
    ``openai-embeddings:`` matcher's URLs are checked the same way).
    """
    from cuelab.core.errors import ModelError
    from cuelab.core.models.remote.spec import parse_remote_location

    for spec in models:
        family, sep, location = spec.strip().partition(":")
        if sep and family.strip().lower() == "openai":
            try:
                parse_remote_location(location)
            except ModelError as exc:
                raise RunConfigError(f"run configuration: {exc}") from None
