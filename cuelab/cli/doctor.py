"""``cuelab doctor``: what works on this machine, and what to do about what does not.

Each check is one line: ``ok``, ``warn`` (something optional is missing) or
``fail`` (CueLab cannot work until it is fixed), then what was found and,
when it is not ok, the command that fixes it. The exit status is 1 when a
check failed. Nothing here loads a model or opens a window.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

OK, WARN, FAIL = "ok", "warn", "fail"
#: Free disk below this on a place CueLab writes is a warning (a 7B checkpoint is ~16 GB).
LOW_DISK_GIB = 20.0


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    name: str
    state: str
    found: str
    todo: str = ""

    def as_json(self) -> dict[str, str]:
        """The ``--json`` object."""
        return {"check": self.name, "state": self.state, "found": self.found, "todo": self.todo}


def check_python() -> Check:
    v = sys.version_info
    found = f"Python {v.major}.{v.minor}.{v.micro} ({sys.executable})"
    if v < (3, 10):
        return Check("python", FAIL, found, "use Python 3.10 or newer")
    return Check("python", OK, found)


def check_torch() -> Check:
    try:
        import torch
    except ImportError:
        return Check(
            "torch", FAIL, "not installed", "bash scripts/run.sh test (or pip install torch)"
        )
    found = f"torch {torch.__version__}"
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        free, total = torch.cuda.mem_get_info()
        return Check("torch", OK, f"{found}, CUDA {torch.version.cuda}: {name} "
                     f"({free / 1024**3:.0f} of {total / 1024**3:.0f} GiB free)")  # fmt: skip
    build = "CPU build" if torch.version.cuda is None else f"CUDA {torch.version.cuda} build"
    return Check("torch", WARN, f"{found} ({build}), no CUDA GPU: 7B models will be slow",
                 "on a GPU machine: CUELAB_TORCH=cuda bash scripts/run.sh test, or serve the "
                 "model with vLLM and use --model openai:URL")  # fmt: skip


def check_bitsandbytes() -> Check:
    try:
        found = f"bitsandbytes {version('bitsandbytes')}"
    except PackageNotFoundError:
        return Check("bitsandbytes", WARN, "not installed: --quant nf4/8bit unavailable",
                     "pip install bitsandbytes")  # fmt: skip
    return Check("bitsandbytes", OK, found + " (--quant nf4, 8bit)")


def check_display() -> Check:
    from cuelab.cli.display import NO_DISPLAY_HINT, display_problem

    problem = display_problem()
    if problem:
        return Check("display", WARN, problem, NO_DISPLAY_HINT)
    shown = os.environ.get("QT_QPA_PLATFORM") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get(
        "DISPLAY", "")  # fmt: skip
    return Check("display", OK, f"the window can open ({shown or sys.platform})")


def check_program(name: str, program: str, why: str, install: str) -> Check:
    path = shutil.which(program)
    if path:
        return Check(name, OK, path)
    return Check(name, WARN, f"{program} not found: {why}", install)


def check_hf_cache() -> Check:
    try:
        from huggingface_hub import constants
    except ImportError:
        return Check(
            "hf-cache", WARN, "huggingface_hub not installed", "pip install huggingface_hub"
        )
    cache = Path(constants.HF_HUB_CACHE)
    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
    models = sorted(p.name[len("models--") :].replace("--", "/") for p in cache.glob("models--*"))
    mode = "offline" if offline else "online"
    if not models:
        return Check("hf-cache", WARN, f"{cache}: no model cached ({mode})",
                     "on a machine with internet: hf download Qwen/Qwen2-Audio-7B-Instruct, "
                     "then copy the cache here or pass a local folder")  # fmt: skip
    shown = ", ".join(models[:3]) + (f" and {len(models) - 3} more" if len(models) > 3 else "")
    return Check("hf-cache", OK, f"{cache} ({mode}): {shown}")


def check_envs() -> Check:
    from cuelab.core.models import env_status, envs_root
    from cuelab.core.models import isolated_families as families

    states: dict[str, list[str]] = {}
    for family in families():
        try:
            state = env_status(family).state
        except Exception as exc:  # a damaged marker must not stop the doctor
            state = f"unreadable ({type(exc).__name__})"
        states.setdefault(state, []).append(family)
    found = f"{envs_root()}: " + "; ".join(
        f"{k}: {', '.join(v)}" for k, v in sorted(states.items())
    )
    broken = [f for k, v in states.items() if k not in ("ready", "missing") for f in v]
    if broken:
        return Check("environments", WARN, found, f"cuelab env create {broken[0]}")
    if "ready" not in states:
        return Check("environments", OK, found + " (only needed for isolated families)",
                     "")  # fmt: skip
    return Check("environments", OK, found)


def _cache_root() -> Path:
    env = os.environ.get("CUELAB_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "cuelab"


def check_disk() -> Check:
    places = {"here": Path.cwd(), "cache": _cache_root()}
    try:
        from huggingface_hub import constants

        places["hf-cache"] = Path(constants.HF_HUB_CACHE)
    except ImportError:
        pass
    parts, low = [], []
    for label, place in places.items():
        probe = place
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        free = shutil.disk_usage(probe).free / 1024**3
        parts.append(f"{label} {free:.0f} GiB")
        if free < LOW_DISK_GIB:
            low.append(f"{label} ({place})")
    found = "free: " + ", ".join(parts)
    if low:
        return Check("disk", WARN, found + f"; under {LOW_DISK_GIB:.0f} GiB at " + ", ".join(low),
                     "free space: a 7B checkpoint takes ~16 GB, an environment 1-4 GB")  # fmt: skip
    return Check("disk", OK, found)


def run_checks() -> list[Check]:
    """Every check, in the order printed."""
    return [
        check_python(),
        check_torch(),
        check_bitsandbytes(),
        check_display(),
        check_program("xvfb", "xvfb-run", "no virtual screen for the window on a server",
                      "sudo apt-get install xvfb xauth (bash scripts/run.sh does it)"),
        check_program("espeak-ng", "espeak-ng", "no synthetic speech for the demo and tests",
                      "sudo apt-get install espeak-ng"),
        check_hf_cache(),
        check_envs(),
        check_disk(),
    ]  # fmt: skip


def register(subparsers: Any) -> None:
    """Add the ``doctor`` sub-command."""
    p = subparsers.add_parser(
        "doctor",
        help="check this machine: Python, torch/CUDA, display, tools, caches, disk",
        description="Check what CueLab needs and say what to do about what is missing.",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per check")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print every check; exit 1 when one failed."""
    from cuelab.cli.common import json_line

    checks = run_checks()
    for c in checks:
        if args.json:
            print(json_line(c.as_json()))
            continue
        print(f"{c.state:<4}  {c.name:<13} {c.found}")
        if c.todo:
            print(f"{'':<19} do: {c.todo}")
    return 1 if any(c.state == FAIL for c in checks) else 0
