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


def setup_logging(debug: bool = False) -> None:
    """Send CueLab's log records to the log file (and stderr when ``debug``)."""
    root = logging.getLogger("cuelab")
    if getattr(root, "_cuelab_configured", False):
        return
    root.setLevel(logging.DEBUG)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        log_dir().mkdir(parents=True, exist_ok=True)
        fh = logging.handlers.RotatingFileHandler(log_path(), maxBytes=2_000_000, backupCount=2)
        fh.setFormatter(fmt)
        fh.setLevel(logging.DEBUG)
        root.addHandler(fh)
    except OSError:
        pass  # a read-only home must not stop the program
    if debug:
        sh = logging.StreamHandler()
        sh.setFormatter(fmt)
        sh.setLevel(logging.DEBUG)
        root.addHandler(sh)
    root._cuelab_configured = True  # type: ignore[attr-defined]
