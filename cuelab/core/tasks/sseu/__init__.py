"""Speech over background (SSEU-Bench style): build sets, prompt, parse, match, score.

* :mod:`~cuelab.core.tasks.sseu.build`: seeded mixtures and their manifest.
* :mod:`~cuelab.core.tasks.sseu.prompts`: ASR / ASC / AT, joint and CoT prompts as TaskPrompts.
* :mod:`~cuelab.core.tasks.sseu.answers`: free answers → transcript, scene text, event texts.
* :mod:`~cuelab.core.tasks.sseu.matching`: scene/event text → class + confidence.
* :mod:`~cuelab.core.tasks.sseu.score`: WER, mACC, mAP (percent), mean ± std over seeds.
* :mod:`~cuelab.core.tasks.sseu.answering`: one clip answered in one mode (generate or score).
* :mod:`~cuelab.core.tasks.sseu.matchers`: the run's scene and event matchers.

Submodules are imported on use, so importing this package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cuelab.core._faces import lazy_face

if TYPE_CHECKING:
    from cuelab.core.tasks.sseu.answers import ParsedAnswer, parse_sseu_answer
    from cuelab.core.tasks.sseu.build import (
        BuildConfig,
        BuildResult,
        SseuBuildError,
        build_sseu,
        read_classes,
    )
    from cuelab.core.tasks.sseu.matching import EmbeddingMatcher, LexicalMatcher, Matcher
    from cuelab.core.tasks.sseu.per_background import build_per_background
    from cuelab.core.tasks.sseu.prompts import (
        SSEU_TASKS,
        load_sseu_task,
        load_sseu_tasks,
        zero_shot_tasks,
    )
    from cuelab.core.tasks.sseu.score import manifest_answer, score_sseu
    from cuelab.core.tasks.sseu.sources import import_desed, import_maestro_real, import_vctk

# The public face: each name's module is imported on first use.
_LAZY = {
    "BuildConfig": "cuelab.core.tasks.sseu.build",
    "BuildResult": "cuelab.core.tasks.sseu.build",
    "EmbeddingMatcher": "cuelab.core.tasks.sseu.matching",
    "LexicalMatcher": "cuelab.core.tasks.sseu.matching",
    "Matcher": "cuelab.core.tasks.sseu.matching",
    "ParsedAnswer": "cuelab.core.tasks.sseu.answers",
    "SSEU_TASKS": "cuelab.core.tasks.sseu.prompts",
    "SseuBuildError": "cuelab.core.tasks.sseu.build",
    "build_per_background": "cuelab.core.tasks.sseu.per_background",
    "build_sseu": "cuelab.core.tasks.sseu.build",
    "import_desed": "cuelab.core.tasks.sseu.sources",
    "import_maestro_real": "cuelab.core.tasks.sseu.sources",
    "import_vctk": "cuelab.core.tasks.sseu.sources",
    "load_sseu_task": "cuelab.core.tasks.sseu.prompts",
    "load_sseu_tasks": "cuelab.core.tasks.sseu.prompts",
    "manifest_answer": "cuelab.core.tasks.sseu.score",
    "parse_sseu_answer": "cuelab.core.tasks.sseu.answers",
    "read_classes": "cuelab.core.tasks.sseu.build",
    "score_sseu": "cuelab.core.tasks.sseu.score",
    "zero_shot_tasks": "cuelab.core.tasks.sseu.prompts",
}
__getattr__, __dir__ = lazy_face(__name__, _LAZY)

__all__ = [
    "SSEU_TASKS",
    "BuildConfig",
    "BuildResult",
    "EmbeddingMatcher",
    "LexicalMatcher",
    "Matcher",
    "ParsedAnswer",
    "SseuBuildError",
    "build_per_background",
    "build_sseu",
    "import_desed",
    "import_maestro_real",
    "import_vctk",
    "load_sseu_task",
    "load_sseu_tasks",
    "manifest_answer",
    "parse_sseu_answer",
    "read_classes",
    "score_sseu",
    "zero_shot_tasks",
]
