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
