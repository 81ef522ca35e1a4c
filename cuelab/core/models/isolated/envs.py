"""Building and inspecting the isolated families' virtual environments.

An environment lives in ``<root>/<family>`` (root: ``$CUELAB_ENVS``, else
``$XDG_DATA_HOME/cuelab/envs``), or anywhere ``--dir`` says, remembered by a
``<root>/<family>.link`` file. A finished build writes ``cuelab-env.json``
(recipe hash, Python, every installed package's version); a build that did not
finish leaves ``cuelab-env.building`` instead. States: ``missing`` (nothing
there), ``ready`` (finished, built from the current recipe, its Python runs)
and ``broken`` (anything else, with the reason).
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cuelab.core import errors
from cuelab.core.errors import Cancelled, ModelError
from cuelab.core.jobs import JobControl
from cuelab.core.models.isolated import steps
from cuelab.core.models.isolated.inspect_env import MARKER, import_problem, read_marker
from cuelab.core.models.isolated.recipes import Recipe, get_recipe

log = logging.getLogger(__name__)

BUILDING = "cuelab-env.building"
CONSTRAINTS = "cuelab-constraints.txt"

MISSING, READY, BROKEN = "missing", "ready", "broken"

#: PyTorch's CPU wheels, used when no CPU wheel lies in pip's find-links.
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"

Progress = Callable[[str], None]


def envs_root() -> Path:
    """Where environments are built by default."""
    env = os.environ.get("CUELAB_ENVS")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "cuelab" / "envs"


def env_path(family: str) -> Path:
    """The environment folder of ``family`` (``--dir`` of its last build, else the default)."""
    link = envs_root() / f"{family}.link"
    if link.is_file():
        text = link.read_text(encoding="utf-8").strip()
        if text:
            return Path(text)
    return envs_root() / family


def env_python(folder: Path) -> Path:
    """The interpreter of a virtual environment."""
    if os.name == "nt":  # pragma: no cover - CueLab's environments are built on Linux/macOS
        return folder / "Scripts" / "python.exe"
    return folder / "bin" / "python"


@dataclass
class EnvStatus:
    """What ``cuelab env list`` prints for one family."""

    family: str
    state: str
    path: str
    python: str | None
    reason: str = ""
    remedy: errors.Remedy | None = None  # what fixes a broken one (the CLI / window word it)
    packages: dict[str, str] = field(default_factory=dict)
    recipe: str = ""

    def as_json(self) -> dict[str, Any]:
        """The ``env list --json`` object."""
        out: dict[str, Any] = {
            "family": self.family,
            "state": self.state,
            "path": self.path,
            "python": self.python,
        }
        if self.reason:
            out["reason"] = self.reason
        return out


def env_status(family: str, deep: bool = False) -> EnvStatus:
    """The state of ``family``'s environment.

    Never fails for what is on disk: a damaged link file, marker or folder makes
    the family ``broken`` with the true reason, so ``env list`` shows every family.

    Args:
        family: an isolated family.
        deep: also import the recipe's modules inside the environment (``env check``).
    """
    recipe = get_recipe(family)
    link = envs_root() / f"{family}.link"
    try:
        folder = env_path(family)
        if "\0" in str(folder):
            raise ValueError("it names a path with a NUL byte")
    except (OSError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        return EnvStatus(family, BROKEN, str(link), None, f"{link} cannot be read ({why})",
                         recipe=recipe.digest())  # fmt: skip
    status = EnvStatus(family, MISSING, str(folder), None, recipe=recipe.digest())
    try:
        return _fill_status(status, folder, recipe, deep)
    except (OSError, ValueError) as exc:
        status.state = BROKEN
        status.reason = f"cannot be read ({getattr(exc, 'strerror', None) or exc})"
        return status


def _fill_status(status: EnvStatus, folder: Path, recipe: Recipe, deep: bool) -> EnvStatus:
    family = recipe.family
    python = env_python(folder)
    if not folder.exists():
        return status
    status.state = BROKEN
    if folder.is_symlink():
        status.reason, status.remedy = "the folder is a symbolic link", errors.build_env(family)
        return status
    if (folder / BUILDING).exists():
        status.reason, status.remedy = "its build did not finish", errors.build_env(family)
        return status
    marker, problem = read_marker(folder)
    if problem:
        status.reason = problem
        return status
    if marker is None:
        if any(folder.iterdir()):
            status.reason = f"no {MARKER}: not built by cuelab env create"
        else:
            status.state = MISSING
        return status
    status.packages = {str(k): str(v) for k, v in marker["packages"].items()}
    if marker.get("recipe") != recipe.digest():
        status.reason, status.remedy = "built from another recipe", errors.build_env(family)
        return status
    if not python.exists():
        status.reason = f"{python} is missing"
        return status
    status.python = str(marker.get("python") or "")
    if deep:
        problem = import_problem(python, recipe.imports)
        if problem:
            status.reason = problem
            return status
    status.state = READY
    return status


def require_ready(family: str) -> tuple[Path, dict[str, Any]]:
    """The interpreter and marker of a ready environment.

    Raises:
        ModelError: missing or broken (the message says how to build it).
    """
    status = env_status(family)
    if status.state == MISSING:
        raise ModelError(
            f"model family {family!r} runs in its own environment, which is not built",
            subject=family,
            remedy=errors.build_env(family),
        )
    if status.state != READY:
        raise ModelError(
            f"the {family} environment at {status.path} is broken: {status.reason}",
            subject=family,
            remedy=status.remedy,
        )
    folder = Path(status.path)
    return env_python(folder), _read_marker(folder) or {}


def adopt(family: str, folder: Path) -> EnvStatus:
    """Point ``family`` at an environment built earlier with ``--dir`` (link file)."""
    _write_link(family, folder)
    return env_status(family)


# ----------------------------------------------------------------------------- building


def create_env(
    family: str,
    folder: Path | None = None,
    on_progress: Progress | None = None,
    control: JobControl | None = None,
) -> EnvStatus:
    """Build ``family``'s environment from its recipe.

    Args:
        family: an isolated family.
        folder: where to build (default ``<root>/<family>``); remembered for later use.
        on_progress: called with a short message per step.
        control: cancellation; a cancelled build stops its running step (pip, git) at
            once and leaves the folder marked as an unfinished build.

    Raises:
        ModelError: the folder holds something else or is a symbolic link, another build
            of the family holds its lock, the disk is full (the message names the folder),
            or a step failed (the message has the step and pip's last error line; the
            full output is in the log).
        Cancelled: ``control`` was cancelled.
    """
    get_recipe(family)  # an unknown family is refused before anything is made
    target = (folder or envs_root() / family).expanduser().absolute()
    if target.is_symlink():
        raise ModelError(
            f"{target} is a symbolic link; an environment is built only in a real folder "
            "(remove the link, or pass --dir with the folder it points to)",  # CLI-only (--dir)
            subject=target,
        )
    token = _CONTROL.set(control)
    target_token = steps.TARGET.set(target)
    family_token = _BUILDING_FAMILY.set(family)
    try:
        with steps.build_lock(family, envs_root()):
            return _create_env(family, folder, on_progress)
    except OSError as exc:  # CueLab's own writes in the folder (markers, constraints)
        if steps.is_no_space(exc):
            raise steps.no_space(target, "write the build's files", family) from exc
        raise
    finally:
        _BUILDING_FAMILY.reset(family_token)
        steps.TARGET.reset(target_token)
        _CONTROL.reset(token)


#: The build's cancellation, seen by every step (:func:`_run`) without passing it down.
_CONTROL: contextvars.ContextVar[JobControl | None] = contextvars.ContextVar(
    "cuelab_env_control", default=None
)


def _create_env(family: str, folder: Path | None, on_progress: Progress | None) -> EnvStatus:
    recipe = get_recipe(family)
    if recipe.python_max is not None and sys.version_info[:2] > recipe.python_max:
        newest = ".".join(map(str, recipe.python_max))
        here = ".".join(map(str, sys.version_info[:2]))
        raise ModelError(
            f"{family}: its pins (torch {recipe.torch}) have no wheels for Python {here}; "
            f"run 'cuelab env create {family}' from a CueLab installed on Python {newest} "
            "or older (the environment uses CueLab's own interpreter)"
        )
    say = on_progress or (lambda message: None)
    target = (folder or envs_root() / family).expanduser().absolute()
    _clear(target)
    target.mkdir(parents=True, exist_ok=True)
    (target / BUILDING).write_text(time.strftime("%Y-%m-%dT%H:%M:%S"), encoding="utf-8")
    if folder is not None:
        _write_link(family, target)
    else:
        (envs_root() / f"{family}.link").unlink(missing_ok=True)
    started = time.monotonic()
    src = None
    if recipe.code.startswith("git:"):  # before the long installs: an unreachable host fails now
        say(f"fetching the model code from {recipe.code[4:]}")
        src = _fetch_git_code(recipe, target)
    say(f"creating the virtual environment in {target}")
    _run([sys.executable, "-m", "venv", str(target)], "create the virtual environment")
    python = env_python(target)
    say(f"installing torch {recipe.torch}")
    _install_torch(python, recipe.torch, target)
    torch_version = _installed(python, ["torch"])["torch"]
    constraints = target / CONSTRAINTS
    constraints.write_text(f"torch=={torch_version}\n", encoding="utf-8")
    pip = [
        str(python),
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "-c",
        str(constraints),
    ]
    packages = list(recipe.packages)
    if recipe.code.startswith("pypi:") and recipe.code[5:] not in recipe.no_deps:
        packages.append(recipe.code[5:])
    if packages:
        say(f"installing {len(packages)} packages")
        _run([*pip, *packages], "install the packages")
    if recipe.no_deps:
        say(f"installing {', '.join(recipe.no_deps)} without dependencies")
        _run([*pip, "--no-deps", *recipe.no_deps], "install the packages without dependencies")
    if src is not None:
        say(f"installing the model code from {src}")
        _install_git_code(recipe, src, python, pip)
    say("checking the imports")
    problem = import_problem(python, recipe.imports)
    if problem:
        raise ModelError(f"the {family} environment was built but {problem}")
    marker = {
        "family": family,
        "recipe": recipe.digest(),
        "python": _run(
            [str(python), "-c", "import platform; print(platform.python_version())"],
            "read the Python version",
        ).strip(),
        "torch": torch_version,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "build_seconds": round(time.monotonic() - started, 1),
        "packages": _installed(python),
    }
    (target / MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True), encoding="utf-8")
    (target / BUILDING).unlink()
    say(f"ready in {marker['build_seconds']:.0f} s")
    return env_status(family)


def has_nvidia_gpu() -> bool:
    """True when ``nvidia-smi -L`` lists a GPU (``CUELAB_TORCH=cpu|cuda`` decides instead)."""
    choice = os.environ.get("CUELAB_TORCH", "").strip().lower()
    if choice in ("cpu", "cuda"):
        return choice == "cuda"
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    try:
        return subprocess.run([smi, "-L"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _install_torch(python: Path, version: str, target: Path) -> None:
    pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
    want = f"torch=={version}"
    if has_nvidia_gpu():
        _run([*pip, "install", want], "install torch (CUDA build)")
        return
    with tempfile.TemporaryDirectory(prefix="torch-", dir=target) as tmp:
        try:  # a CPU wheel already on this machine (pip's find-links), never a download
            _run([*pip, "download", "--no-deps", "--no-index", "-d", tmp, want], "find torch")
            found = True
        except steps.NoSpace:
            raise
        except ModelError:
            log.info("no local torch wheel for %s; using %s", want, TORCH_CPU_INDEX)
            found = False
        # only a download that finished: a failed one may have left a truncated wheel
        wheels = sorted(Path(tmp).glob("torch-*+cpu-*.whl")) if found else []
        if wheels:
            _run([*pip, "install", str(wheels[0])], "install torch (local CPU wheel)")
            return
    index = os.environ.get("CUELAB_TORCH_INDEX", TORCH_CPU_INDEX)
    _run([*pip, "install", want, "--index-url", index], "install torch (CPU build)")


def _fetch_git_code(recipe: Recipe, target: Path) -> Path:
    """Clone the recipe's repository at its commit into ``target/src`` (first: fails fast)."""
    url, _, rev = recipe.code[4:].rpartition("@")
    src = target / "src" / url.rstrip("/").rsplit("/", 1)[-1]
    git = shutil.which("git")
    if git is None:
        raise ModelError(f"{recipe.family}: git is needed to fetch {url}")
    _run([git, "clone", "--quiet", url, str(src)], f"clone {url}", timeout=1800)
    _run([git, "-C", str(src), "checkout", "--quiet", rev], f"check out {rev}")
    return src


def _install_git_code(recipe: Recipe, src: Path, python: Path, pip: list[str]) -> None:
    """Install the checkout (``pip``) or put it on ``sys.path`` with a ``.pth`` file."""
    if recipe.code_install == "pip":
        _run([*pip, str(src)], f"install {src.name}")
        return
    purelib = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        "find site-packages",
    ).strip()
    (Path(purelib) / "cuelab-model-code.pth").write_text(f"{src}\n", encoding="utf-8")


def _clear(target: Path) -> None:
    """Remove an earlier CueLab environment at ``target``; refuse anything else."""
    if not target.exists():
        return
    if not target.is_dir():
        raise ModelError(f"{target} is a file, not a folder for an environment")
    if not any(target.iterdir()):
        return
    if (target / MARKER).exists() or (target / BUILDING).exists():
        shutil.rmtree(target)
        return
    raise ModelError(
        f"{target} is not empty and holds no CueLab environment",
        subject=target,
        remedy=errors.NEW_ENV_FOLDER,
    )


def _write_link(family: str, folder: Path) -> None:
    root = envs_root()
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{family}.link").write_text(f"{folder.absolute()}\n", encoding="utf-8")


def _read_marker(folder: Path) -> dict[str, Any] | None:
    return read_marker(folder)[0]


_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def _shown(text: str) -> str:
    """``text`` with the credentials of any URL in it (``https://user:token@host``) hidden."""
    return _USERINFO.sub("***@", text)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """Stop a step and everything it started (pip runs builds in child processes)."""
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    try:
        proc.communicate(timeout=2)
    except subprocess.TimeoutExpired:  # a process outside the group holds the pipes
        log.warning("a step of the build left a process holding its output")


def _run(argv: Sequence[str], what: str, timeout: float = 3600.0) -> str:
    """Run a build step; its whole output goes to the log, a failure is one line.

    Git never prompts (a repository that moved fails at once instead of waiting
    for a password), and no URL credential reaches the log or the message.
    """
    control = _CONTROL.get()
    if control is not None:
        control.check()
    log.info("env step %s: %s", what, _shown(" ".join(argv)))
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "echo"}
    lock = steps.LOCK_FD.get()
    try:  # its own group, under a supervisor that ends the group if CueLab is killed
        proc = subprocess.Popen(steps.supervised(argv), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                                env=env, start_new_session=True,
                                pass_fds=() if lock is None else (lock,))  # fmt: skip
    except OSError as exc:
        raise ModelError(f"could not {_shown(what)}: {exc.strerror or exc}") from exc
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                out, err = proc.communicate(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                stop = "cancelled" if control is not None and control.cancelled else ""
                if not stop and time.monotonic() > deadline:
                    stop = f"no result within {timeout:g} s"
                if stop:
                    _kill_group(proc)
                    if stop == "cancelled":
                        raise Cancelled(f"environment build cancelled during: {what}") from None
                    raise ModelError(f"could not {_shown(what)}: {stop}") from None
    except BaseException:  # Ctrl-C, SIGTERM (raised here), any error: the step ends too
        if proc.returncode is None:
            _kill_group(proc)
        raise
    code = proc.returncode
    if out.strip():
        log.debug("%s stdout:\n%s", what, _shown(out))
    if err.strip():
        log.info("%s stderr:\n%s", what, _shown(err))
    if code != 0:
        target = steps.TARGET.get()
        if steps.out_of_space(err + out, target):
            raise steps.no_space(target, what, _BUILDING_FAMILY.get() or "FAMILY")
        lines = [s for s in err.splitlines() if s.strip() and not s.startswith("WARNING")]
        last = next((s for s in lines if s.startswith("ERROR")), lines[-1] if lines else "")
        why = _shown(last.strip()) or f"exit code {code}"
        raise ModelError(f"could not {_shown(what)}: {why}")
    return out


#: The family being built (named in the "run cuelab env create FAMILY again" advice).
_BUILDING_FAMILY: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "cuelab_env_family", default=None
)


_LIST_PACKAGES = (
    "import json, sys\n"
    "from importlib import metadata\n"
    "want = set(sys.argv[1:])\n"
    "out = {}\n"
    "for d in metadata.distributions():\n"
    "    n = (d.metadata['Name'] or '').lower().replace('_', '-')\n"
    "    if n and (not want or n in want): out[n] = d.version\n"
    "print(json.dumps(out, sort_keys=True))\n"
)


def _installed(python: Path, names: Sequence[str] = ()) -> dict[str, str]:
    out = json.loads(_run([str(python), "-c", _LIST_PACKAGES, *names], "list the packages"))
    missing = [n for n in names if n not in out]
    if missing:
        raise ModelError(f"{missing[0]} is not installed in {python.parent.parent}")
    return {str(k): str(v) for k, v in out.items()}
