"""Label Studio JSON tasks: annotations out and in, model answers as pre-annotations.

One task per clip, ``data`` holding ``audio`` (the file), ``path`` (as in the
manifest, the key on the way back) and the manifest's ``label``. Every
annotator's work is one entry of ``annotations``; its ``result`` uses the
control names of :data:`LABEL_CONFIG`:

- ``label`` (Choices): the whole-clip label; ``note`` (TextArea): its note;
- ``region`` (Labels on the audio, ``start``/``end`` in seconds) and
  ``region_note`` (a per-region TextArea sharing the region's ``id``).

The annotator is kept in ``cuelab_annotator`` and as ``completed_by.email``
(``<annotator>@cuelab.local``); on import a Label Studio export's own
``completed_by`` (a user id or an object with an email) names the annotator
when ``cuelab_annotator`` is absent. ``predictions`` (a model's answers) start
a Label Studio project from CueLab's output; they are not annotations and are
not imported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import quoteattr

from cuelab.core.datasets.annotations import Annotation, unit_sort_key
from cuelab.core.errors import ManifestError

LABEL_CONFIG = """<View>
  <Audio name="audio" value="$audio"/>
  <Choices name="label" toName="audio" choice="single">
{choices}  </Choices>
  <TextArea name="note" toName="audio" placeholder="note"/>
  <Labels name="region" toName="audio">
{labels}  </Labels>
  <TextArea name="region_note" toName="audio" perRegion="true" placeholder="region note"/>
</View>
"""


def label_config(labels: Sequence[str]) -> str:
    """A Label Studio labeling configuration for these labels."""
    choices = "".join(f"    <Choice value={quoteattr(x)}/>\n" for x in labels)
    marks = "".join(f"    <Label value={quoteattr(x)}/>\n" for x in labels)
    return LABEL_CONFIG.format(choices=choices, labels=marks)


def _results(annotations: Sequence[Annotation]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for k, a in enumerate(sorted(annotations, key=unit_sort_key)):
        base = {"to_name": "audio", "origin": "manual"}
        if not a.is_region:
            if a.label:
                out.append({**base, "id": f"c{k}", "from_name": "label", "type": "choices",
                            "value": {"choices": [a.label]}})  # fmt: skip
            if a.note:
                out.append({**base, "id": f"n{k}", "from_name": "note", "type": "textarea",
                            "value": {"text": [a.note]}})  # fmt: skip
            continue
        span = {"start": a.start, "end": a.end, "channel": 0}
        out.append({**base, "id": f"r{k}", "from_name": "region", "type": "labels",
                    "value": {**span, "labels": [a.label] if a.label else []}})  # fmt: skip
        if a.note:
            out.append({**base, "id": f"r{k}", "from_name": "region_note", "type": "textarea",
                        "value": {**span, "text": [a.note]}})  # fmt: skip
    return out


def export_tasks(
    clips: Sequence[tuple[str, str, str]],
    annotations: Mapping[str, Sequence[Annotation]],
    predictions: Mapping[str, Mapping[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """Label Studio tasks.

    Args:
        clips: (path as in the manifest, audio location, manifest label) per clip.
        annotations: clip path -> every annotator's annotations of it.
        predictions: model -> clip path -> answer; each becomes a pre-annotation.
    """
    tasks = []
    for i, (path, audio, label) in enumerate(clips, start=1):
        mine = annotations.get(path, [])
        entries = []
        for who in sorted({a.annotator for a in mine}):
            entries.append({
                "cuelab_annotator": who,
                "completed_by": {"email": f"{who}@cuelab.local"},
                "was_cancelled": False,
                "result": _results([a for a in mine if a.annotator == who]),
            })  # fmt: skip
        preds = []
        for model in sorted(predictions or {}):
            answer = (predictions or {})[model].get(path)
            if answer:
                preds.append({"model_version": model, "result": [
                    {"id": "p0", "from_name": "label", "to_name": "audio", "type": "choices",
                     "value": {"choices": [answer]}}]})  # fmt: skip
        tasks.append({"id": i, "data": {"audio": audio, "path": path, "label": label},
                      "annotations": entries, "predictions": preds})  # fmt: skip
    return tasks


def _annotator(entry: Mapping[str, Any]) -> str:
    if entry.get("cuelab_annotator"):
        return str(entry["cuelab_annotator"])
    by = entry.get("completed_by")
    if isinstance(by, Mapping):
        email = str(by.get("email") or "")
        if email:
            return email.split("@", 1)[0]
        if by.get("id") is not None:
            return f"user{by['id']}"
    if entry.get("created_username"):
        return str(entry["created_username"]).split("@", 1)[0].split(",", 1)[0].strip()
    return f"user{by}" if by is not None else "labelstudio"


def import_tasks(tasks: Any, known_paths: Mapping[str, str]) -> tuple[list[Annotation], list[str]]:
    """Annotations from Label Studio tasks, and notes on what was skipped.

    Args:
        tasks: the parsed JSON (a list of tasks, or one task).
        known_paths: any name a task may use for a clip (path, file name,
            audio location) -> the clip's path as in the manifest.

    Raises:
        ManifestError: not Label Studio tasks.
    """
    import re

    if isinstance(tasks, Mapping):
        tasks = [tasks]
    if not isinstance(tasks, list):
        raise ManifestError("Label Studio JSON: expected a list of tasks")
    out: list[Annotation] = []
    skipped: list[str] = []
    for n, task in enumerate(tasks, start=1):
        data = task.get("data") if isinstance(task, Mapping) else None
        if not isinstance(data, Mapping):
            raise ManifestError(f"Label Studio JSON: task {n} has no 'data'")
        path = None
        for cand in (data.get("path"), data.get("audio")):
            if cand is not None and str(cand) in known_paths:
                path = known_paths[str(cand)]
                break
            if cand is not None and str(cand).rsplit("/", 1)[-1] in known_paths:
                path = known_paths[str(cand).rsplit("/", 1)[-1]]
                break
        if path is None:
            skipped.append(
                f"task {task.get('id', n)}: no clip of the manifest ({data.get('path') or data.get('audio')})"
            )
            continue
        if task.get("predictions"):
            skipped.append(
                f"task {task.get('id', n)}: {len(task['predictions'])} predictions not imported (model output)"
            )
        for entry in task.get("annotations") or []:
            if entry.get("was_cancelled"):
                continue
            who = re.sub(r"[^\w.-]", "_", _annotator(entry)).strip(".") or "labelstudio"
            out.extend(_read_result(path, who, entry.get("result") or []))
    return out, skipped


def _read_result(path: str, who: str, result: Sequence[Mapping[str, Any]]) -> list[Annotation]:
    whole = {"label": "", "note": ""}
    regions: dict[str, dict[str, Any]] = {}
    for item in result:
        kind, value = item.get("type"), item.get("value") or {}
        if "start" in value and "end" in value and kind in ("labels", "textarea"):
            r = regions.setdefault(str(item.get("id")), {"start": float(value["start"]),
                                                         "end": float(value["end"]),
                                                         "label": "", "note": ""})  # fmt: skip
            if kind == "labels":
                r["label"] = ";".join(value.get("labels") or [])
            else:
                r["note"] = "\n".join(value.get("text") or [])
        elif kind == "choices":
            whole["label"] = ";".join(value.get("choices") or [])
        elif kind == "textarea":
            whole["note"] = "\n".join(value.get("text") or [])
    out = []
    if whole["label"] or whole["note"]:
        out.append(Annotation(path, whole["label"], whole["note"], annotator=who))
    for r in regions.values():
        out.append(Annotation(path, r["label"], r["note"], r["start"], r["end"], annotator=who))
    return out
