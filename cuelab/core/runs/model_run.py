"""One model loaded for a run: loading, and its describe() checked against run.json.

:class:`ModelRun` refuses to resume with a model that describes itself
differently from the one recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cuelab.core.models.base import LoadOptions, ModelAdapter
from cuelab.core.models.capabilities import has_label_texts, is_served
from cuelab.core.runs import record as rec
from cuelab.core.runs.config import RunConfig, RunConfigError

ModelLoader = Callable[[str, LoadOptions], ModelAdapter]


def default_loader(spec: str, options: LoadOptions) -> ModelAdapter:
    """Load ``spec`` through the model registry."""
    from cuelab.core.models.registry import load_model

    return load_model(spec, options)


class ModelRun:
    """One model loaded for the run; its describe() is checked against run.json.

    Keys the adapter lists in ``recorded_only`` (a remote model's endpoints) are
    recorded anew but may differ on resume.
    """

    def __init__(
        self,
        spec: str,
        config: RunConfig,
        record: rec.RunRecord,
        out: Path,
        loader: ModelLoader,
        adapter: ModelAdapter | None = None,
    ) -> None:
        self.spec = spec
        # ``adapter``: the model already loaded (in the background, while features ran)
        self.adapter = adapter if adapter is not None else loader(spec, config.load_options())
        described = self.adapter.describe()
        if has_label_texts(self.adapter):  # reads no instruction: tokens cannot reach it
            if record.labels:  # the text each label is scored with
                described = {**described, "prompts": self.adapter.label_prompts(record.labels)}
            described = {**described, "tokens_note": self.adapter.token_note()}
        previous = record.models.get(spec)
        free = set(self.adapter.recorded_only)
        changed = sorted(
            k
            for k in set(previous or {}) | set(described)
            if k not in free and (previous or {}).get(k) != described.get(k)
        )
        if previous is not None and changed:
            self.adapter.unload()
            raise RunConfigError(
                f"cannot resume {out}: model {spec} differs in '{changed[0]}' from the run's"
            )
        record.models[spec] = described
        rec.write_record(out, record)

    def progress(self, what: str) -> str:
        """A progress line for ``what``, with the adapter's request figures when it has them."""
        note = f" ({self.adapter.progress_note()})" if is_served(self.adapter) else ""
        return f"{self.spec}: {what}{note}"

    def close(self) -> None:
        """Free the model."""
        self.adapter.unload()
