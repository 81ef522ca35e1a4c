"""Choose, load and unload a model; watch loading progress and memory."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QToolButton,
    QWidget,
)

from cuelab.core.errors import Remedy, RemedyKind
from cuelab.core.models import (
    DEMO_REFERENCE,
    DEVICE_CHOICES,
    PROMPT_FAMILIES,
    QUANT_CHOICES,
    RECIPES,
    SCORING_CHOICES,
    SERVER_FAMILY,
    families,
)
from cuelab.ui import remedies
from cuelab.ui.dsp import format_bytes, process_rss_bytes
from cuelab.ui.session import Session
from cuelab.ui.widgets import ElidedLabel
from cuelab.ui.workers import Job, JobSlot

LOCAL_HINT = "folder, or a hub id already in the local cache"
REMOTE_HINT = "http://gpu1:8000/v1[,http://gpu2:8000/v1][#MODEL]  (key: $CUELAB_API_KEY)"


def shown_path(path: str | Path) -> str:
    """A folder as the form shows it: relative to the working folder, or ``~/``, when shorter.

    The window (and the README's screenshot) then says ``assets/models/demo-reference``
    rather than the absolute path of one machine; :meth:`ModelPanel.spec` resolves it back.
    """
    folder = Path(path).expanduser()
    if not folder.is_absolute():
        return str(path)
    for base, prefix in ((Path.cwd(), ""), (Path.home(), "~/")):
        try:
            return prefix + str(folder.relative_to(base))
        except ValueError:
            continue
    return str(folder)


class ModelPanel(QGroupBox):
    """Family, location, quantisation and device; load in the background."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__("Model", parent)
        self.session = session
        self._locations: dict[str, str] = {}  # family -> the location last typed for it
        self._family: str | None = None
        self._build()
        slot = session.slots["model"]
        slot.progress.connect(self.progress_label.setText)
        slot.busy_changed.connect(self._on_busy)
        session.model_failed.connect(self._on_failed)
        slot.raised.connect(self._offer)
        session.model_changed.connect(self._on_model)
        self._mem_timer = QTimer(self)
        self._mem_timer.setInterval(1000)
        self._mem_timer.timeout.connect(self.update_memory)
        self._mem_timer.start()
        self.update_memory()

    def _build(self) -> None:
        self.family_combo = QComboBox()
        self.family_combo.addItems(families())
        self.family_combo.setCurrentText("reference")
        self.family_combo.currentTextChanged.connect(self._on_family)
        self.location_edit = QLineEdit(shown_path(DEMO_REFERENCE))
        self.location_edit.setPlaceholderText(LOCAL_HINT)
        self.browse_button = browse = QToolButton(text="…")
        browse.setToolTip("Choose a model folder")
        browse.clicked.connect(self._browse)
        loc = QHBoxLayout()
        loc.addWidget(self.location_edit, 1)
        loc.addWidget(browse)
        self.quant_combo = QComboBox()
        self.quant_combo.addItems(list(QUANT_CHOICES))
        self.device_combo = QComboBox()
        self.device_combo.addItems(list(DEVICE_CHOICES))
        # a model behind OpenAI-compatible servers: how it scores, which system prompt
        self.scoring_combo = QComboBox()
        self.scoring_combo.addItems(list(SCORING_CHOICES))
        self.scoring_combo.setToolTip(
            "first-token: label first-token log-probabilities; continuation: whole-label "
            "prompt_logprobs; generate: answer and parse; auto: the most exact the server allows"
        )
        self.prompt_combo = QComboBox()
        self.prompt_combo.addItems(sorted(PROMPT_FAMILIES))
        self.prompt_combo.setCurrentText(SERVER_FAMILY)
        self.prompt_combo.setToolTip("system prompt sent to the server (server: none)")
        # what a checkpoint may do when it loads: never implied, the user ticks it
        self.pickle_check = QCheckBox("Allow pickle")
        self.pickle_check.setToolTip(
            "load .pt/.pth/.bin checkpoints (pickle can run code: only for sources you trust)"
        )
        self.remote_code_check = QCheckBox("Trust remote code")
        self.remote_code_check.setToolTip(
            "run the checkpoint's own Python code (e.g. Step-Audio 2)"
        )
        self.trust_row = QWidget()
        trust = QHBoxLayout(self.trust_row)
        trust.setContentsMargins(0, 0, 0, 0)
        trust.addWidget(self.pickle_check)
        trust.addWidget(self.remote_code_check)
        trust.addStretch(1)
        self.load_button = QPushButton("Load")
        self.load_button.clicked.connect(self.load)
        self.unload_button = QPushButton("Unload")
        self.unload_button.clicked.connect(self.session.unload_model)
        self.unload_button.setEnabled(False)
        # a failed load's remedy, performed (tick 'Allow pickle' and load again, …)
        self.fix_button = QPushButton("")
        self.fix_button.setVisible(False)
        self.fix_button.clicked.connect(self.apply_fix)
        self.fix: Remedy | None = None
        buttons = QHBoxLayout()
        buttons.addWidget(self.load_button)
        buttons.addWidget(self.unload_button)
        buttons.addWidget(self.fix_button)
        self.state_label = ElidedLabel("No model")
        self.progress_label = QLabel("")
        self.progress_label.setWordWrap(True)
        self.progress_label.setStyleSheet("color: #555;")
        self.failed = False
        self.memory_label = QLabel("")
        # isolated families: the state of their environment, built in the background
        self.env_label = QLabel("")
        self.env_label.setWordWrap(True)
        self.env_button = QPushButton("Create")
        self.env_button.setToolTip("build this family's environment from its pinned recipe")
        self.env_button.clicked.connect(self.create_env)
        self.env_slot = JobSlot("env", self.session.pool, self)
        self.session.slots["env"] = self.env_slot  # cancelled and awaited when the window closes
        self.env_slot.progress.connect(self.progress_label.setText)
        self.env_slot.busy_changed.connect(self._on_env_busy)
        self.env_slot.failed.connect(self.session.error)
        self.env_slot.failed.connect(lambda _msg: self.refresh_env())
        self.env_row = QWidget()
        env = QHBoxLayout(self.env_row)
        env.setContentsMargins(0, 0, 0, 0)
        env.addWidget(self.env_label, 1)
        env.addWidget(self.env_button)
        form = self.form = QFormLayout(self)
        form.addRow("Family", self.family_combo)
        form.addRow("Location", loc)
        form.addRow("Quantisation", self.quant_combo)
        form.addRow("Device", self.device_combo)
        form.addRow("Environment", self.env_row)
        form.addRow("Safety", self.trust_row)
        form.addRow("Scoring", self.scoring_combo)
        form.addRow("Prompt", self.prompt_combo)
        self._on_family(self.family_combo.currentText())
        form.addRow(buttons)
        form.addRow("Loaded", self.state_label)
        form.addRow("", self.progress_label)
        form.addRow("Memory", self.memory_label)

    def spec(self) -> str:
        """The ``family:location`` spec of the current choice."""
        family, location = self.family_combo.currentText(), self.location_edit.text().strip()
        folder = Path(location).expanduser()
        if family != "openai" and location and folder.exists():
            location = str(folder.resolve())  # a shown (relative or ~/) folder, made absolute
        return f"{family}:{location}"

    def show_spec(self, spec: str) -> None:
        """Put ``family:location`` into the form (a remembered model)."""
        family, _, location = spec.partition(":")
        if family in families():
            self.family_combo.setCurrentText(family)
            if location:
                local = Path(location).is_absolute() and Path(location).exists()
                self.location_edit.setText(shown_path(location) if local else location)

    def _on_failed(self, message: str) -> None:
        """The load failed: say so here, in red, until the next Load."""
        self.failed = True
        self.progress_label.setStyleSheet("color: #b00020;")
        self.progress_label.setText(message)

    #: The remedies this panel can perform with its own controls.
    FIXES = frozenset(
        {
            RemedyKind.ALLOW_PICKLE,
            RemedyKind.TRUST_REMOTE_CODE,
            RemedyKind.BUILD_ENV,
            RemedyKind.DEVICE_CPU,
            RemedyKind.MODEL_SPEC,
            RemedyKind.SCORING_GENERATE,
        }
    )

    def _offer(self, exc: BaseException) -> None:
        """A load failed with a remedy this panel can perform: offer it as a button."""
        fix = remedies.offered(exc, self.FIXES)  # also through the window's wrapper's cause
        self.fix = fix
        self.fix_button.setText(remedies.action_label(fix) if fix is not None else "")
        self.fix_button.setVisible(fix is not None)

    def apply_fix(self) -> None:
        """Perform the offered remedy with the panel's own controls, then load again."""
        fix, self.fix = self.fix, None
        self.fix_button.setVisible(False)
        if fix is None:
            return
        if fix.kind is RemedyKind.BUILD_ENV:
            if fix.value in RECIPES:
                self.family_combo.setCurrentText(fix.value)
            self.create_env()
            return
        if fix.kind is RemedyKind.ALLOW_PICKLE:
            self.pickle_check.setChecked(True)
        elif fix.kind is RemedyKind.TRUST_REMOTE_CODE:
            self.remote_code_check.setChecked(True)
        elif fix.kind is RemedyKind.DEVICE_CPU:
            self.device_combo.setCurrentText("cpu")
        elif fix.kind is RemedyKind.SCORING_GENERATE:
            self.scoring_combo.setCurrentText("generate")
        elif fix.kind is RemedyKind.MODEL_SPEC and fix.value:
            self.show_spec(fix.value)
        self.load()

    def load(self) -> None:
        """Start loading the chosen model (the current one stays until it is ready)."""
        self.failed = False
        self.fix = None
        self.fix_button.setVisible(False)
        self.progress_label.setStyleSheet("color: #555;")
        remote = None
        if self.family_combo.currentText() == "openai":
            remote = {
                "scoring": self.scoring_combo.currentText(),
                "prompt_family": self.prompt_combo.currentText(),
            }
        trust = {
            "allow_pickle": self.pickle_check.isChecked(),
            "trust_remote_code": self.remote_code_check.isChecked(),
        }
        self.session.load_model(
            self.spec(),
            self.quant_combo.currentText(),
            self.device_combo.currentText(),
            remote,
            trust,
        )

    def _on_family(self, family: str) -> None:
        remote = family == "openai"
        # Each family keeps its own location: a Qwen folder or a server URL typed for one
        # family is never loaded as another's.
        if self._family is not None and self._family != family:
            self._locations[self._family] = self.location_edit.text()
        self._family = family
        if family in self._locations:
            self.location_edit.setText(self._locations[family])
        elif family == "reference":
            self.location_edit.setText(shown_path(DEMO_REFERENCE))
        else:
            self.location_edit.clear()
        self.location_edit.setPlaceholderText(REMOTE_HINT if remote else LOCAL_HINT)
        self.browse_button.setEnabled(not remote)
        for combo in (self.quant_combo, self.device_combo):
            combo.setEnabled(not remote)  # the server decides
        for combo in (self.scoring_combo, self.prompt_combo):
            combo.setEnabled(remote)
            self.form.setRowVisible(combo, remote)  # shown only where they apply: less height
        self.form.setRowVisible(self.env_row, family in RECIPES)
        # the reference and the oracle load nothing that could run code; a server loads its own
        self.form.setRowVisible(self.trust_row, family not in ("reference", "oracle", "openai"))
        for box in (self.pickle_check, self.remote_code_check):
            box.setChecked(False)  # a new family is trusted anew
        self.refresh_env()

    def refresh_env(self) -> None:
        """Show the chosen isolated family's environment state (a marker-file read)."""
        from cuelab.core.models import READY, env_status

        family = self.family_combo.currentText()
        if family not in RECIPES:
            return
        status = env_status(family)
        text = status.state + (f": {status.reason}" if status.reason else "")
        if status.remedy is not None:
            text += f"; {remedies.phrase(status.remedy)}"
        self.env_label.setText(text)
        self.env_label.setToolTip(status.path)
        if not self.env_slot.busy:
            self.env_button.setText("Rebuild" if status.state == READY else "Create")

    def _on_env_busy(self, busy: bool) -> None:
        """While a build runs its button is Cancel; after it, Create or Rebuild again."""
        if busy:
            self.env_button.setText("Cancel")
            self.env_button.setToolTip("stop the build (its half-built folder is kept as broken)")
        else:
            self.env_button.setToolTip("build this family's environment from its pinned recipe")
            if not self.failed:  # a model's load error stays where it is
                self.progress_label.setText("")
            self.refresh_env()

    def create_env(self) -> None:
        """Build the chosen family's environment in the background, with progress."""
        from cuelab.core.models import create_env

        if self.env_slot.busy:  # the button reads Cancel
            self.env_slot.cancel()
            self.env_label.setText("cancelling…")
            self.session.message.emit("Environment build cancelled")
            return
        family = self.family_combo.currentText()
        if family not in RECIPES:
            return

        def work(job: Job) -> object:
            return create_env(family, None, job.report, job.control)

        def done(_status: object, seconds: float) -> None:
            self.session.message.emit(f"Environment {family} ready in {seconds:.0f} s")
            self.progress_label.setText("")
            self.refresh_env()

        self.env_label.setText("building…")
        self.env_slot.start(work, done)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Model folder", self.location_edit.text())
        if folder:
            self.location_edit.setText(folder)

    def _on_busy(self, busy: bool) -> None:
        self.load_button.setEnabled(not busy)
        if busy and self.failed:  # a load started elsewhere (remembered model, tests)
            self.failed = False
            self.progress_label.setStyleSheet("color: #555;")
        if not busy and not self.failed:
            self.progress_label.setText("")

    def _on_model(self) -> None:
        s = self.session
        self.unload_button.setEnabled(s.model is not None)
        if s.model is None:
            self.state_label.setText("No model")
            return
        self.show_spec(s.model_spec)  # the form shows what is loaded (gui --model, a session)
        info = s.model.describe()
        keys = (
            ("model", "server_version", "scoring") if "endpoints" in info else ("quant", "device")
        )
        extra = ", ".join(f"{k}={info[k]}" for k in keys if info.get(k) is not None)
        self.state_label.setText(f"{s.model_spec}" + (f" ({extra})" if extra else ""))
        if not self.failed:
            self.progress_label.setText("")
        self.update_memory()

    def update_memory(self) -> None:
        """Show this process's resident memory (cheap: one /proc read)."""
        self.memory_label.setText(f"process RSS {format_bytes(process_rss_bytes())}")
