"""What the window's child processes share: a safe start method, and errors as objects.

``forkserver`` (where there is one) starts children from a clean server process, so it
is safe from the window's threads; ``spawn`` elsewhere. A child's CueLab error crosses
the pipe as the object itself: it pickles with its subject and remedies, so the window
can offer the remedy (a Resume button, a switch) as for an error raised in a thread.
"""

from __future__ import annotations

import multiprocessing as mp
import pickle
from typing import Any

from cuelab.core.errors import CueLabError


def context() -> Any:
    """The multiprocessing context for the window's children (typeshed's BaseContext
    lacks ``Process``, hence Any)."""
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    return mp.get_context(method)


def error_message(exc: BaseException, where: str) -> tuple[str, CueLabError]:
    """``("error", error)`` for the parent: a CueLab error as itself (or as its type and
    message, should its subject not pickle); anything else as one CueLab line naming
    ``where`` (the detail stays in the child's log)."""
    if not isinstance(exc, CueLabError):
        return ("error", CueLabError(f"{where}: {type(exc).__name__}: {exc}"))
    try:
        pickle.dumps(exc)
        return ("error", exc)
    except Exception:
        try:
            plain = type(exc)(str(exc), remedy=exc.remedies)
            pickle.dumps(plain)
            return ("error", plain)
        except Exception:
            return ("error", CueLabError(str(exc), remedy=exc.remedies))
