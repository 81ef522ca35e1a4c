"""Named run presets: each paper's reading of a run, shipped as ``assets/presets/NAME.toml``.

A preset sets every choice a paper makes (tasks, answer style, decoding,
seeds, conditions...) so that ``cuelab eval --preset sseu-bench`` runs the
SSEU paper's method without the user rebuilding it flag by flag. Precedence is
preset < keys of a TOML run file < command-line flags: an explicit value
always wins, and the run records both the preset's name and the keys that
were overridden (``preset`` and ``preset_overrides`` in run.json's config), so
nobody mistakes an overridden run for the paper's.

A preset file holds ``[settings]`` (RunConfig keys, plus ``corrupt_grid``),
``[sources]`` (for every setting, where it comes from in the paper, printed by
``--explain``), ``needs`` (requirements a user must supply, such as an
embedding matcher whose URL only the user knows) with ``[needs_sources]``,
and optionally ``[build]`` / ``[build_sources]`` (how ``cuelab sseu build``
makes the paper's set; shown, not applied to an eval) and ``[report]`` /
``[report_sources]`` (the analysis choices, such as ``holm``: the paper's test
families; ``cuelab eval --preset`` reports with them unless a flag says otherwise).
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cuelab.core import errors
from cuelab.core.errors import CueLabError
from cuelab.core.paths import assets_dir

PRESETS_DIR = assets_dir() / "presets"
#: Requirements a preset may name in ``needs``.
NEEDS = ("embedding-matcher",)
#: Keys no preset may set: they say where a run came from, not how it runs.
_NOT_SETTINGS = ("preset", "preset_overrides")
EMBEDDING_MATCHERS = ("embeddings:", "openai-embeddings:")
#: Keys that make a speech / scene / event run, and keys only an emotion run takes
#: (with the flag that sets each), so a flag of the other kind names the preset.
_SSEU_KEYS = {"sseu_tasks": "--tasks", "joint": "--joint", "cot": "--cot",
              "answers": "--answers", "matcher": "--matcher"}  # fmt: skip
_EMOTION_KEYS = {"conditions": "--conditions", "corrupt_grid": "--corrupt-grid",
                 "labels": "--labels", "task": "--task"}  # fmt: skip
_DEFAULTS = {("matcher", "lexical"), ("answers", "closed")}  # what every run has


class PresetError(CueLabError):
    """A preset is unknown or broken, or a run does not meet what the preset needs.

    (Not a ``PresetError``: this module sits beside :mod:`.config`, which calls it.)
    """


@dataclass(frozen=True)
class Preset:
    """One preset file, checked."""

    name: str
    title: str
    settings: dict[str, Any]
    sources: dict[str, str]
    needs: tuple[str, ...] = ()
    needs_sources: dict[str, str] = field(default_factory=dict)
    build: dict[str, Any] = field(default_factory=dict)
    build_sources: dict[str, str] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    report_sources: dict[str, str] = field(default_factory=dict)


def preset_names(folder: Path | None = None) -> list[str]:
    """The shipped presets' names."""
    return sorted(p.stem for p in (folder or PRESETS_DIR).glob("*.toml"))


def _table(data: Mapping[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise PresetError(f"preset {path}: [{key}] must be a table")
    return dict(value)


def load_preset(
    name: str, folder: Path | None = None, keys: Collection[str] | None = None
) -> Preset:
    """Read and check ``NAME.toml``; ``keys`` are the run settings a preset may set.

    Raises:
        PresetError: unknown name (the message lists the known ones), unreadable
            file, an unknown setting, or a setting without a source.
    """
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    where = folder or PRESETS_DIR
    known = preset_names(where)
    if name not in known:
        raise PresetError(f"unknown preset '{name}' (known: {', '.join(known) or 'none'})")
    path = where / f"{name}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PresetError(f"preset {path}: cannot be read ({exc})") from None
    settings = _table(data, "settings", path)
    sources = {k: str(v) for k, v in _table(data, "sources", path).items()}
    allowed = set(keys) if keys is not None else set(settings)
    unknown = sorted(set(settings) - (allowed - set(_NOT_SETTINGS)))
    if unknown:
        raise PresetError(f"preset {path}: unknown setting '{unknown[0]}'")
    missing = sorted(set(settings) - set(sources))
    if missing:
        raise PresetError(f"preset {path}: setting '{missing[0]}' has no [sources] entry")
    needs = tuple(str(n) for n in data.get("needs", []))
    bad = [n for n in needs if n not in NEEDS]
    if bad:
        raise PresetError(f"preset {path}: unknown need '{bad[0]}' (known: {', '.join(NEEDS)})")
    return Preset(
        name=str(data.get("name", name)),
        title=str(data.get("title", "")),
        settings=settings,
        sources=sources,
        needs=needs,
        needs_sources={k: str(v) for k, v in _table(data, "needs_sources", path).items()},
        build=_table(data, "build", path),
        build_sources={k: str(v) for k, v in _table(data, "build_sources", path).items()},
        report=_report_table(data, path),
        report_sources={k: str(v) for k, v in _table(data, "report_sources", path).items()},
    )


#: The analysis choices a preset's ``[report]`` may make, with their values.
REPORT_CHOICES = {"holm": ("family", "all")}


def _report_table(data: Mapping[str, Any], path: Path) -> dict[str, Any]:
    report = _table(data, "report", path)
    for key, value in report.items():
        if key not in REPORT_CHOICES or value not in REPORT_CHOICES[key]:
            known = ", ".join(f"{k} ({'|'.join(v)})" for k, v in REPORT_CHOICES.items())
            raise PresetError(f"preset {path}: [report] {key} = {value!r} is not one of {known}")
    return report


def report_setting(name: str | None, key: str) -> Any:
    """The analysis choice ``key`` of preset ``name``'s ``[report]`` (None without one)."""
    return load_preset(name).report.get(key) if name else None


def apply_preset(
    data: Mapping[str, Any], folder: Path | None = None, keys: Collection[str] | None = None
) -> dict[str, Any]:
    """The run mapping with its ``preset``'s settings under the explicit keys of ``data``.

    ``data`` holds the explicit keys (from a TOML run file and/or flags) and
    may name a ``preset``. A mapping read back from run.json already carries
    ``preset_overrides`` and every setting, so it is returned unchanged.

    Raises:
        PresetError: unknown preset, or a need the run does not meet (one line that
            says how to meet it).
    """
    out = dict(data)
    name = out.get("preset")
    if not name or "preset_overrides" in out:
        return out
    if not isinstance(name, str):
        raise PresetError("run configuration: 'preset' must be a string")
    preset = load_preset(name, folder, keys)
    overrides = sorted(
        k for k in preset.settings if k in out and _differs(out[k], preset.settings[k])
    )
    _check_kind(preset, out)
    merged = {**preset.settings, **out}
    merged["preset_overrides"] = tuple(overrides)
    if merged.get("sample") is False:  # --greedy: the preset's draw parameters no longer apply
        for key in ("temperature", "top_p"):
            if key not in out:
                merged.pop(key, None)
    _check_needs(preset, merged)
    return merged


def _differs(explicit: Any, preset_value: Any) -> bool:
    """True when an explicit value is not the preset's (``"0,1"`` equals ``[0, 1]``)."""

    def norm(v: Any, as_list: bool) -> Any:
        if isinstance(v, str) and as_list:
            return [p.strip() for p in v.split(",") if p.strip()]
        if isinstance(v, (list, tuple)):
            return [str(x) for x in v]
        return v if isinstance(v, bool) else str(v)

    as_list = isinstance(preset_value, (list, tuple))
    return bool(norm(explicit, as_list) != norm(preset_value, as_list))


def _check_kind(preset: Preset, explicit: Mapping[str, Any]) -> None:
    """Refuse an explicit key of the other run kind, naming the preset that set this kind.

    Without this, ``--preset concept-tokens --tasks asr`` fails on the preset's
    conditions, which the user never typed.
    """
    sseu = any(preset.settings.get(k) for k in ("sseu_tasks", "joint", "cot"))
    other = _EMOTION_KEYS if sseu else _SSEU_KEYS
    for key, flag in other.items():
        value = explicit.get(key)
        if value in (None, False, "", [], ()) or (key, value) in _DEFAULTS:
            continue
        if key == "conditions" and not _differs(value, ["audio-only"]):
            continue  # what a speech / scene / event run asks anyway
        kind = "a speech/scene/event run" if sseu else "an emotion run"
        raise PresetError(
            f"preset {preset.name} is {kind}, which does not take {flag} ({key}); "
            f"drop {flag} or the preset"
        )


def _check_needs(preset: Preset, merged: Mapping[str, Any]) -> None:
    if "embedding-matcher" in preset.needs:
        matcher = str(merged.get("matcher") or "lexical")
        if not matcher.startswith(EMBEDDING_MATCHERS):
            raise PresetError(
                f"preset {preset.name} maps free answers with text embeddings and has no "
                f"matcher (got '{matcher}')",
                subject=preset.name,
                remedy=errors.EMBEDDING_MATCHER,
            )


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def explain(name: str, explicit: Mapping[str, Any] | None = None) -> str:
    """Each setting of preset ``name``, its value and where it comes from in the paper.

    Settings overridden in ``explicit`` are shown with the value that will run
    and the preset's value they replace.
    """
    preset = load_preset(name)
    given = dict(explicit or {})
    lines = [f"preset {preset.name}: {preset.title}", ""]
    for key, value in preset.settings.items():
        shown = _show(value)
        if key in given and _differs(given[key], value):
            shown = f"{_show(given[key])}  (overridden; preset: {shown})"
        lines.append(f"{key} = {shown}")
        lines.append(f"    {preset.sources[key]}")
    for need in preset.needs:
        lines.append(f"needs {need}")
        lines.append(f"    {preset.needs_sources.get(need, '')}")
    if preset.report:
        lines += ["", "analysis (cuelab report):"]
        for key, value in preset.report.items():
            shown = _show(value)
            if key in given and given[key] is not None and _differs(given[key], value):
                shown = f"{_show(given[key])}  (overridden; preset: {shown})"
            lines.append(f"{key} = {shown}")
            lines.append(f"    {preset.report_sources.get(key, '')}")
    if preset.build:
        lines += ["", "set layout (cuelab sseu build):"]
        for key, value in preset.build.items():
            lines.append(f"{key} = {_show(value)}")
            lines.append(f"    {preset.build_sources.get(key, '')}")
    return "\n".join(lines)
