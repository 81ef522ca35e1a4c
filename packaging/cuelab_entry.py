"""Entry script of the frozen CueLab app (PyInstaller runs this, not ``cuelab.__main__``).

Feature extraction and the batch report run in ``forkserver``/``spawn``
worker processes. In a frozen app those children are started by re-running
this executable, so :func:`multiprocessing.freeze_support` must come first:
it turns such a start into the worker (or fork server) instead of a second
window.
"""

from __future__ import annotations

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()

    from cuelab.cli import main

    sys.exit(main())
