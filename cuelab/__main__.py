"""``python -m cuelab``."""

from __future__ import annotations

import sys

from cuelab.cli import main

sys.exit(main())
