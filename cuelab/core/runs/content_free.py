"""Content-free inputs of a run, for contextual calibration (Zhao et al., 2021).

Per model and condition the model scores one content-free input: silence as
long as the run's median clip, and the condition's token text with every
value replaced by ``N/A`` (``PITCH=N/A ENERGY=N/A``; no text for audio-only).
This is the "documented equivalent" of a silent copy of every clip: one call
per model instead of one per clip, and the same distribution divides every
clip of the condition. The distributions go to ``content_free.csv``
(``model, condition, seconds, tokens, p_<label>..., note``); the report
divides by them (``--calibrate contextual``). A model that cannot score a
content-free input (the oracle reads the answer from the manifest) gets an
empty row with a note, and its contextual rows say ``n/a``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cuelab.core.datasets.manifest import read_manifest
from cuelab.core.errors import CueLabError
from cuelab.core.models.base import Clip
from cuelab.core.runs import record as rec
from cuelab.core.runs.config import RunConfig
from cuelab.core.runs.csvio import write_csv
from cuelab.core.runs.folder import RunFolder
from cuelab.core.runs.model_run import ModelLoader, default_loader
from cuelab.core.runs.plan import select_rows

log = logging.getLogger(__name__)

CONTENT_FREE_CSV = "content_free.csv"
NA_VALUE = "N/A"


def content_free_text(tokens: str | None) -> str | None:
    """A condition's token text with every value replaced by ``N/A`` (None stays None)."""
    if not tokens:
        return None
    return re.sub(r"=[^\s,;]+", f"={NA_VALUE}", tokens)


def _condition_texts(folder: Path, record: rec.RunRecord) -> dict[str, str | None]:
    """Per condition, the content-free text built from the first row's token text."""
    header, rows = RunFolder(folder).read_predictions(record)
    ci, ti = header.index("condition"), header.index("tokens")
    out: dict[str, str | None] = {}
    for r in rows:
        if r[ci] not in out or (out[r[ci]] is None and r[ti]):
            out[r[ci]] = content_free_text(r[ti])
    return out


def median_seconds(config: RunConfig) -> float:
    """The median duration of the run's clips (header reads, no decoding)."""
    import soundfile as sf

    rows = select_rows(read_manifest(config.manifest), config)
    return float(np.median([sf.info(str(r.path)).duration for r in rows]))


def score_content_free(folder: str | Path, *, loader: ModelLoader | None = None) -> Path:
    """Score the content-free input of every model × condition of a run; write content_free.csv."""
    from cuelab.core.tasks.prompts import load_task

    folder = Path(folder)
    record = RunFolder(folder).read_record()
    config = record.run_config()
    labels: Sequence[str] = list(record.labels)
    task = load_task(config.task, labels)
    texts = _condition_texts(folder, record)
    conditions = [c for c in config.conditions if c in texts]
    seconds = median_seconds(config)
    out: list[list[object]] = []
    for spec in config.models:
        adapter = (loader or default_loader)(spec, config.load_options())
        try:
            sr = adapter.sample_rate
            clip = Clip(np.zeros(max(1, round(seconds * sr)), dtype=np.float32), sr, "content-free")
            used = dict(texts)
            distinct = list(dict.fromkeys(used[c] for c in conditions))
            note = ""
            try:
                try:
                    scored = adapter.score_labels(clip, task, labels, distinct)
                except CueLabError as exc:
                    if distinct == [None]:
                        raise
                    # a model that parses its tokens (the reference) refuses N/A values:
                    # silence without token text is its content-free input
                    note = f"N/A token text refused ({exc}); scored silence without tokens"
                    used = dict.fromkeys(texts)
                    distinct = [None]
                    scored = adapter.score_labels(clip, task, labels, distinct)
                preds = dict(zip(distinct, scored))
            except CueLabError as exc:
                log.warning("%s: %s cannot score a content-free input: %s", folder, spec, exc)
                preds, note = {}, f"no content-free score: {exc}"
            for c in conditions:
                p = preds.get(used[c])
                cells = [
                    format(p.probs[lab], ".6g") if p and lab in p.probs else "" for lab in labels
                ]
                if p is not None and not p.probs:
                    note = note or "the model gave no label probabilities"
                out.append([spec, c, format(seconds, ".4g"), used[c] or "", *cells, note])
        finally:
            adapter.unload()
    header = ["model", "condition", "seconds", "tokens", *(f"p_{lab}" for lab in labels), "note"]
    return write_csv(folder / CONTENT_FREE_CSV, header, out)
