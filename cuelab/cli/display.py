"""Is there a screen for the window? Checked before Qt is imported.

Without a display Qt's xcb plug-in aborts the process (exit 134) and the
reason only reaches the log. The window and ``cuelab doctor`` ask here first,
so a newcomer on a server gets one line that names the way out.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

#: Qt platform plug-ins that draw without any display server.
HEADLESS_PLATFORMS = ("offscreen", "minimal", "vnc", "linuxfb", "eglfs", "vkkhrdisplay")

NO_DISPLAY_HINT = (
    "run it under a virtual screen (`xvfb-run -a cuelab ...`), use `bash scripts/run.sh demo`, "
    "or set QT_QPA_PLATFORM=offscreen"
)


def display_problem(
    env: Mapping[str, str] | None = None, platform: str | None = None
) -> str | None:
    """Why the window cannot open here, or None when a display (or a headless plug-in) is set.

    Only Linux and the BSDs need an X11 or Wayland server; macOS and Windows always have a screen.
    """
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if not platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return None
    chosen = env.get("QT_QPA_PLATFORM", "").strip()
    name = chosen.split(":", 1)[0].split(";", 1)[0].strip().lower()
    if name in HEADLESS_PLATFORMS:
        return None
    has_x = bool(env.get("DISPLAY", "").strip())
    has_wayland = bool(env.get("WAYLAND_DISPLAY", "").strip())
    if name == "wayland" or name.startswith("wayland-"):
        return (
            None
            if has_wayland
            else "no display (QT_QPA_PLATFORM=wayland but WAYLAND_DISPLAY is not set)"
        )
    if name.startswith("xcb"):
        return None if has_x else "no display (QT_QPA_PLATFORM=xcb but DISPLAY is not set)"
    if name:
        return None  # a plug-in we do not know: let Qt decide
    if has_x or has_wayland:
        return None
    return "no display (neither DISPLAY nor WAYLAND_DISPLAY is set)"
