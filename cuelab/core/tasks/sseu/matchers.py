"""An SSEU run's matchers: how free scene and event answers become class scores.

Lexical, a local sentence-transformers folder (``embeddings:FOLDER``) or an
OpenAI-compatible embeddings server (``openai-embeddings:URL[#MODEL]``, see
:mod:`cuelab.core.tasks.sseu.remote_embeddings`). Kept apart from
:mod:`cuelab.core.runs.sseu` so that module stays readable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from cuelab.core.tasks.sseu.matching import Matcher


class MatcherOptions(Protocol):
    """The options of a run that its matchers read (a :class:`~cuelab.core.runs.config.RunConfig`)."""

    @property
    def matcher(self) -> str:
        """``lexical``, ``embeddings:FOLDER`` or ``openai-embeddings:URL#MODEL``."""
        ...

    @property
    def device(self) -> str:
        """Where a local text encoder runs."""
        ...


class MatcherSetup(Protocol):
    """What a matcher needs of :class:`cuelab.core.runs.sseu.SseuSetup` (no import cycle)."""

    @property
    def scenes(self) -> tuple[str, ...]: ...
    @property
    def events(self) -> tuple[str, ...]: ...
    @property
    def asked(self) -> tuple[str, ...]: ...


__all__ = ["build_matchers", "early_matchers"]


def build_matchers(
    config: MatcherOptions,
    setup: MatcherSetup,
    folder: Path | None = None,
    provenance: dict[str, Any] | None = None,
    cache: Any = None,
) -> tuple[Matcher | None, Matcher | None]:
    """The scene and event matchers (None for a field the run does not ask).

    An ``openai-embeddings:`` matcher keeps its embeddings in ``folder``'s
    ``embeddings.jsonl`` (or in ``cache``, an ``EmbeddingCache``, when given) and
    writes its model id and embedding size into ``provenance["matcher_provenance"]``
    (the ``sseu`` section of the run record).
    """
    from cuelab.core.tasks.sseu.matching import EmbeddingMatcher, LexicalMatcher, load_text_encoder

    need_scene = "scene" in setup.asked and bool(setup.scenes)
    need_events = "events" in setup.asked and bool(setup.events)
    if config.matcher == "lexical":
        return (
            LexicalMatcher(setup.scenes) if need_scene else None,
            LexicalMatcher(setup.events) if need_events else None,
        )
    if config.matcher.startswith("openai-embeddings:"):
        from cuelab.core.tasks.sseu.remote_embeddings import (
            CACHE_FILE,
            EmbeddingCache,
            OpenAIEmbeddings,
        )

        if cache is None:
            cache = EmbeddingCache(folder / CACHE_FILE if folder is not None else None)
        remote = OpenAIEmbeddings(config.matcher.split(":", 1)[1], cache)
        matchers = (
            EmbeddingMatcher(setup.scenes, remote) if need_scene else None,
            EmbeddingMatcher(setup.events, remote) if need_events else None,
        )
        if provenance is not None:
            provenance["matcher_provenance"] = remote.provenance()
        return matchers
    device = "cuda" if config.device == "cuda" else "cpu"
    encoder = load_text_encoder(config.matcher.split(":", 1)[1], device=device)
    return (
        EmbeddingMatcher(setup.scenes, encoder) if need_scene else None,
        EmbeddingMatcher(setup.events, encoder) if need_events else None,
    )


def early_matchers(config: MatcherOptions, setup: MatcherSetup, fresh: bool) -> Any:
    """A fresh run's embedding matchers, built before anything is recorded, or None.

    A wrong URL or folder then fails before the run folder exists, instead of
    leaving one that ``--resume`` refuses with the corrected matcher. Returns
    ``(matchers, cache or None, {"matcher_provenance": ...})``.
    """
    if config.matcher == "lexical" or not fresh:
        return None
    cache = None
    if config.matcher.startswith("openai-embeddings:"):
        from cuelab.core.tasks.sseu.remote_embeddings import EmbeddingCache

        cache = EmbeddingCache(None)
    provenance: dict[str, Any] = {}
    matchers = build_matchers(config, setup, None, provenance, cache=cache)
    return matchers, cache, provenance
