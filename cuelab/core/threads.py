"""How many threads torch may use, and how many cores the machine gives right now.

torch's default is one thread per core. On a shared workstation or a cluster
node whose cores other processes already use, those threads wait at barriers
for a descheduled partner: the tiny-model demo eval ran 1.7-3.8x slower than
with one thread (NOTES.md). CueLab therefore chooses the count itself:

1. an explicit request (``--threads N``, TOML ``threads``, ``CUELAB_THREADS``);
2. ``OMP_NUM_THREADS`` when the user set it (the convention every HPC scheduler uses);
3. otherwise the cores that are idle now, less the feature workers that run at the
   same time, and at least one: never more threads than free cores.

"Idle now" is measured from ``/proc/stat`` over a short window (Linux), falling
back to the one-minute load average elsewhere. Nothing here changes results;
the choice and why it was made are recorded in run.json.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from cuelab.core.errors import CueLabError

ENV_THREADS = "CUELAB_THREADS"


class ThreadsError(CueLabError):
    """A thread count that is not a positive integer."""


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def cpu_times() -> tuple[int, int] | None:
    """(idle, total) jiffies of all CPUs from /proc/stat, or None where there is none."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = fh.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    values = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
    return values[3] + values[4], sum(values)


def idle_cores(window_s: float = 0.15, cores: int | None = None) -> float:
    """Cores idle right now: the machine's idle share over ``window_s`` times its cores.

    The caller sleeps through the window, so its own threads count as idle. Where
    ``/proc/stat`` is missing the one-minute load average stands in.
    """
    machine = os.cpu_count() or 1
    mine = cores if cores is not None else usable_cores()
    first = cpu_times()
    if first is not None:
        time.sleep(window_s)
        second = cpu_times()
        if second is not None and second[1] > first[1]:
            share = (second[0] - first[0]) / (second[1] - first[1])
            return max(0.0, min(float(mine), share * machine))
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return float(mine)
    return max(0.0, min(float(mine), machine - load))


@dataclass(frozen=True)
class ThreadChoice:
    """The torch thread count and why (recorded in run.json).

    Attributes:
        threads: torch intra-op threads.
        source: ``flag`` (``--threads`` / TOML), ``CUELAB_THREADS``, ``OMP_NUM_THREADS``
            or ``free cores``.
        cores: cores this process may use.
        idle: cores measured idle when the choice was made (None when not measured).
        feature_workers: feature processes counted as running at the same time.
    """

    threads: int
    source: str
    cores: int
    idle: float | None = None
    feature_workers: int = 0

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        out = asdict(self)
        if self.idle is not None:
            out["idle"] = round(self.idle, 2)
        return out


def _positive(text: str, where: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ThreadsError(f"{where} must be a positive integer, not {text!r}") from None
    if value < 1:
        raise ThreadsError(f"{where} must be a positive integer, not {text!r}")
    return value


def choose_threads(
    requested: int | None = None,
    *,
    feature_workers: int = 0,
    environ: Mapping[str, str] | None = None,
    cores: int | None = None,
    idle: float | None = None,
) -> ThreadChoice:
    """The thread count for a run (see the module docstring for the order of sources).

    Args:
        requested: ``--threads`` / TOML ``threads`` (None: not given).
        feature_workers: feature processes that run while the model computes.
        environ: the environment (default ``os.environ``).
        cores: usable cores (default: this process's affinity).
        idle: cores idle now (default: measured with :func:`idle_cores`).

    Raises:
        ThreadsError: a count below 1, or a ``CUELAB_THREADS`` that is not an integer.
    """
    env = os.environ if environ is None else environ
    n_cores = cores if cores is not None else usable_cores()
    if requested is not None:
        if requested < 1:
            raise ThreadsError(f"threads must be a positive integer, not {requested}")
        return ThreadChoice(requested, "flag", n_cores)
    if env.get(ENV_THREADS, "").strip():
        return ThreadChoice(_positive(env[ENV_THREADS], ENV_THREADS), ENV_THREADS, n_cores)
    omp = env.get("OMP_NUM_THREADS", "").strip()
    if omp and omp != _omp_set_here:  # the user's (or scheduler's), not apply_threads' own
        try:
            return ThreadChoice(_positive(omp, "OMP_NUM_THREADS"), "OMP_NUM_THREADS", n_cores)
        except ThreadsError:
            pass  # a value OpenMP itself would reject: fall through to the measured default
    free = idle if idle is not None else idle_cores(cores=n_cores)
    # a core counts when at least three quarters of it is idle
    usable = min(n_cores, math.floor(free + 0.25)) - max(0, feature_workers)
    return ThreadChoice(max(1, usable), "free cores", n_cores, free, max(0, feature_workers))


#: The ``OMP_NUM_THREADS`` value :func:`apply_threads` set itself (None: never), so a later
#: choice in the same process does not mistake it for the user's.
_omp_set_here: str | None = None


def apply_threads(choice: ThreadChoice) -> None:
    """Set torch's intra-op thread count.

    torch is not imported for this: a run whose models never need it (the reference
    model, served and isolated models) must not pay its import, and in the window that
    import, on a worker thread, holds the GIL long enough to stall the GUI thread. When
    torch is not loaded yet, ``OMP_NUM_THREADS`` carries the choice to its import.
    """
    import sys

    global _omp_set_here
    torch = sys.modules.get("torch")
    if torch is None:
        if os.environ.get("OMP_NUM_THREADS", "").strip() in ("", _omp_set_here):
            _omp_set_here = os.environ["OMP_NUM_THREADS"] = str(choice.threads)
        return
    if torch.get_num_threads() != choice.threads:
        torch.set_num_threads(choice.threads)
