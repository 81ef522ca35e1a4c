"""Logging set-up shared by the command line and the window.

Users see one line per error; the detail (tracebacks, timings) goes to a
rotating log file under the user's state folder (``CUELAB_LOG_DIR`` overrides).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path


def log_dir() -> Path:
    """Folder of the log file (created on demand)."""
    env = os.environ.get("CUELAB_LOG_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "cuelab"


def log_path() -> Path:
    """Path of the log file."""
    return log_dir() / "cuelab.log"


#: Environment switches that keep libraries' progress bars and advice off the terminal.
QUIET_LIBRARIES = {
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TQDM_DISABLE": "1",
}


def setup_logging(debug: bool = False) -> None:
    """Send CueLab's log records to the log file (and stderr when ``debug``).

    Without ``debug`` the libraries' chatter (transformers' and bitsandbytes'
    warnings, weight-loading progress bars, Python warnings) goes to the log file
    too, not to the terminal: a user sees CueLab's own lines and one line per error.
    """
    root = logging.getLogger("cuelab")
    if getattr(root, "_cuelab_configured", False):
        return
    if not debug:
        for key, value in QUIET_LIBRARIES.items():
            os.environ.setdefault(key, value)
    root.setLevel(logging.DEBUG)
    # A log file that cannot be written (its disk is full, like the run's) must not
    # print "--- Logging error ---" tracebacks over the user's one-line error.
    logging.raiseExceptions = debug
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        log_dir().mkdir(parents=True, exist_ok=True)
        fh = logging.handlers.RotatingFileHandler(log_path(), maxBytes=2_000_000, backupCount=2)
        fh.setFormatter(fmt)
        fh.setLevel(logging.DEBUG)
        root.addHandler(fh)
    except OSError:
        fh = None  # a read-only home must not stop the program
    if not debug:
        # other libraries log through the root logger (or Python's last-resort handler,
        # which prints to stderr): give it the file, and route warnings.warn there too
        libraries = logging.getLogger()
        libraries.addHandler(fh if fh is not None else logging.NullHandler())
        libraries.setLevel(logging.WARNING)
        root.propagate = False  # CueLab's records are in the file once
        logging.captureWarnings(True)
    if debug:
        sh = logging.StreamHandler()
        sh.setFormatter(fmt)
        sh.setLevel(logging.DEBUG)
        root.addHandler(sh)
    root._cuelab_configured = True  # type: ignore[attr-defined]
