"""The window's model while a batch run uses the same one: keep it, or free it and reload it.

A batch run is a child process (:mod:`cuelab.ui.batch_process`, so that it cannot
stall the window) and loads its own copy of its model. When the window holds the
same model on a GPU, that is a second copy of a checkpoint that may fill the card
(a 7B model in bf16 is about 15 GB): the run would fail to load, or both would
crawl. So by default the window frees its copy for the run, says so in the Batch
tab, and reloads it, with the options it was loaded with, when the run ends
(finished, cancelled or failed). A model on the CPU (the reference model, a tiny
one) is simply loaded twice: RAM is cheaper than the reload. The user can choose
either behaviour for every model ("Window's model" in the Batch tab).

Freeing is synchronous with the run's start: the run's worker thread unloads the
adapter under the session's model lock (so a prediction in flight finishes first)
before the child process starts, so the child never loads while the window's
weights are still on the card. ``unload`` is idempotent in every adapter, so the
session's own deferred unload of the same adapter is harmless.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QComboBox, QLabel, QWidget

from cuelab.core.runs import RunConfig
from cuelab.ui.session import Session

#: What a freed model is reloaded with: spec, quant, device, remote, trust.
_Reload = tuple[str, str, str, dict[str, str], dict[str, bool]]

#: The choices, as (key, what the user reads).
MODES = (
    ("auto", "Free it during the run when it is on a GPU"),
    ("free", "Free it during the run, reload it after"),
    ("keep", "Keep it (two copies while the run lasts)"),
)


def on_accelerator(adapter: Any) -> bool:
    """Whether ``adapter``'s weights are in accelerator memory (the copy a run would double).

    Read from its provenance: ``device`` (``cuda``, ``cpu``, ``auto``), or for a model in
    its own environment the device its worker resolved. A remote (``openai:``) model
    holds no local weights. An unresolved ``auto`` counts as a GPU: freeing a CPU model
    costs a reload, keeping a GPU one may cost the run.
    """
    info = adapter.describe()
    if "endpoints" in info:
        return False
    checkpoint = info.get("checkpoint")
    device = checkpoint.get("device") if isinstance(checkpoint, dict) else None
    device = str(device or info.get("device") or "cpu").lower()
    return not device.startswith("cpu")


class WindowModelHandover(QObject):
    """Frees the window's model for a run of the same model and reloads it afterwards.

    Attributes:
        combo: the user's choice (one of :data:`MODES`), shown in the Batch tab's form.
        note: a line in the Batch tab saying that the model was freed or is reloading.
        freed_spec: the spec freed for the live run ("" when none).
    """

    def __init__(self, session: Session, parent: QWidget) -> None:
        super().__init__(parent)
        self.session = session
        self._parent = parent
        self.combo = QComboBox()
        for key, text in MODES:
            self.combo.addItem(text, key)
        self.combo.setToolTip(
            "A batch run loads its own copy of its model. When the window holds the same "
            "model, free the window's copy during the run (it is reloaded when the run "
            "ends) or keep both."
        )
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.note.setVisible(False)
        self.freed_spec = ""
        self._reload: _Reload | None = None  # what to reload when the live run ends
        self._reloading: _Reload | None = None  # a reload in flight
        session.model_changed.connect(self._on_model_changed)
        session.model_failed.connect(self._on_model_changed)

    @property
    def mode(self) -> str:
        return str(self.combo.currentData())

    def set_mode(self, mode: str) -> None:
        self.combo.setCurrentIndex(self.combo.findData(mode))

    def free_for(self, config: RunConfig) -> Any:
        """At Start (GUI thread): free the window's model if the run would load it again.

        Returns the freed adapter, which the run's worker passes to :meth:`wait_freed`
        before the child starts, or None when the window keeps its model.
        """
        s = self.session
        adapter = s.model
        if self._reloading is not None and adapter is None and self._reloading[0] in config.models:
            # Resumed while the model freed for the last run is still reloading: stop the
            # reload and do it after this run instead.
            s.slots["model"].cancel()
            self._reload, self._reloading = self._reloading, None
            self.freed_spec = self._reload[0]
            self._say(f"The window's model {self.freed_spec} stays freed while the run uses it.")
            return None
        if adapter is None or s.model_spec not in config.models or self.mode == "keep":
            return None
        if self.mode == "auto" and (config.device == "cpu" or not on_accelerator(adapter)):
            return None
        spec = s.model_spec
        quant, device = s.model_options
        self._reload = (spec, quant, device, dict(s.model_remote), dict(s.model_trust))
        self.freed_spec = spec
        s.unload_model()  # the window shows no model (and predicts nothing) meanwhile
        self._say(
            f"The window's model {spec} is freed while the run uses it; it is reloaded "
            "when the run ends."
        )
        s.message.emit(f"Model {spec} freed for the batch run")
        return adapter

    def wait_freed(self, adapter: Any) -> None:
        """In the run's worker: unload ``adapter`` now (after any call still using it)."""
        with self.session.model_lock:
            adapter.unload()

    def run_ended(self) -> None:
        """The run is over (GUI thread): reload the freed model unless the window moved on.

        Nothing is reloaded when the user loaded a model meanwhile, or when the window
        is closing (it quits; a reload would only delay that).
        """
        reload, self._reload = self._reload, None
        self.freed_spec = ""
        if reload is None:
            return
        s = self.session
        if s.model is not None or s.slots["model"].busy or not self._parent.window().isVisible():
            self._say("")
            return
        spec, quant, device, remote, trust = reload
        self._reloading = reload
        self._say(f"Reloading the window's model {spec}…")
        s.load_model(spec, quant, device, remote=remote or None, trust=trust)

    def _on_model_changed(self, *_failed: object) -> None:
        """A model was loaded or unloaded, or a load failed: the reload is over."""
        if self._reload is None:
            self._reloading = None
            if not self.note.isHidden():
                self._say("")

    def _say(self, text: str) -> None:
        self.note.setText(text)
        self.note.setVisible(bool(text))
