"""openSMILE eGeMAPS features per clip, with an on-disk cache.

Concept tokens, norms and the reference model all start from one
:class:`ClipFeatures` per clip: the 88 eGeMAPSv02 functionals, the clip mean
of each of the 25 low-level descriptors (LLDs) and the frame-wise F0 track
the window draws. The ``_sma3nz`` LLDs are zero on unvoiced frames, so their
means are taken over voiced frames only; otherwise a clip with pauses would
look lower-pitched than the same speech without them.

Extraction costs ~0.07 s per 3 s clip on one core, so a dataset is worth
caching: entries are JSON files keyed by the SHA-256 of the file's bytes and
:meth:`FeatureConfig.key` (feature set, rate, openSMILE version and
:data:`FEATURE_SCHEMA_VERSION`), so any change that could alter the numbers
misses the cache instead of serving stale values.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import json
import logging
import math
import multiprocessing
import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from cuelab.core.audio import io as audio
from cuelab.core.cues.workers import choose_workers, run_shared
from cuelab.core.errors import AudioError, CueLabError, FeatureError
from cuelab.core.jobs import JobControl, pool_worker_init
from cuelab.core.safeio import atomic_write_text

log = logging.getLogger(__name__)

#: Bumped whenever ClipFeatures' content or its computation changes, so old
#: cache entries stop matching.
FEATURE_SCHEMA_VERSION = 1

#: The LLD that decides voicing: openSMILE writes 0 on unvoiced frames.
F0_COLUMN = "F0semitoneFrom27.5Hz_sma3nz"
#: Hop between LLD frames in eGeMAPS.
FRAME_HOP_S = 0.01
_VOICED_SUFFIX = "_sma3nz"
_INT16_MAX = 32767 / 32768


@lru_cache(maxsize=1)
def opensmile_version() -> str:
    """Installed openSMILE (python package) version, read without importing it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("opensmile")
    except PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class FeatureConfig:
    """Everything that decides the feature values of a clip.

    Attributes:
        feature_set: an ``opensmile.FeatureSet`` name (the eGeMAPS family:
            the voicing logic needs the ``F0semitoneFrom27.5Hz_sma3nz`` LLD).
        sample_rate: the rate audio is resampled to before extraction.
    """

    feature_set: str = "eGeMAPSv02"
    sample_rate: int = 16000

    def key(self) -> str:
        """Short hash of this config, the openSMILE version and the schema version."""
        payload = json.dumps(
            {
                "feature_set": self.feature_set,
                "sample_rate": self.sample_rate,
                "opensmile": opensmile_version(),
                "schema": FEATURE_SCHEMA_VERSION,
            },
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _nan_to_none(v: float) -> float | None:
    return None if math.isnan(v) else v


def _none_to_nan(v: float | None) -> float:
    return math.nan if v is None else float(v)


@dataclass
class ClipFeatures:
    """eGeMAPS summary of one clip.

    Attributes:
        descriptors: mean of each LLD; ``_sma3nz`` ones over voiced frames
            only (NaN when no frame is voiced).
        functionals: the openSMILE functionals (88 for eGeMAPSv02).
        voiced_ratio: voiced frames / frames.
        n_frames: number of LLD frames.
        duration_s: clip duration in seconds.
        f0_semitones: per-frame F0 in semitones re 27.5 Hz, 0 when unvoiced.
        frame_hop_s: time between F0 frames.
    """

    descriptors: dict[str, float]
    functionals: dict[str, float]
    voiced_ratio: float
    n_frames: int
    duration_s: float
    f0_semitones: list[float]
    frame_hop_s: float = FRAME_HOP_S

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (NaN becomes None, since JSON has no NaN)."""
        return {
            "descriptors": {k: _nan_to_none(v) for k, v in self.descriptors.items()},
            "functionals": {k: _nan_to_none(v) for k, v in self.functionals.items()},
            "voiced_ratio": self.voiced_ratio,
            "n_frames": self.n_frames,
            "duration_s": self.duration_s,
            "f0_semitones": list(self.f0_semitones),
            "frame_hop_s": self.frame_hop_s,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClipFeatures:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: when a field is missing or has the wrong type.
        """
        try:
            return cls(
                descriptors={str(k): _none_to_nan(v) for k, v in d["descriptors"].items()},
                functionals={str(k): _none_to_nan(v) for k, v in d["functionals"].items()},
                voiced_ratio=float(d["voiced_ratio"]),
                n_frames=int(d["n_frames"]),
                duration_s=float(d["duration_s"]),
                f0_semitones=[float(v) for v in d["f0_semitones"]],
                frame_hop_s=float(d.get("frame_hop_s", FRAME_HOP_S)),
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"malformed features record: {exc!r}") from exc


# --- openSMILE ------------------------------------------------------------------

_SMILES: dict[FeatureConfig, _OnePass] = {}
_SMILES_LOCK = threading.Lock()


class _OnePass:
    """eGeMAPS low-level descriptors and functionals from one openSMILE run.

    The ``opensmile`` package runs its configuration once per feature level, so
    LLDs and functionals would mean two runs over the same audio. Its own
    configuration tree ships a two-sink output
    (``shared/standard_external_data_output_multi.conf.inc``: ``extsinklld`` and
    ``extsinkfunc``); this runs the feature set's configuration once with that
    output, through the package's own ``OpenSMILE`` API, and reads both levels.
    The numbers are those of the two separate runs (a test compares them).
    """

    def __init__(self, feature_set: str) -> None:
        import opensmile

        try:
            fs = opensmile.FeatureSet[feature_set]
        except KeyError:
            known = ", ".join(m.name for m in opensmile.FeatureSet)
            raise FeatureError(
                f"unknown openSMILE feature set {feature_set!r} (known: {known})"
            ) from None
        lld = opensmile.Smile(
            feature_set=fs, feature_level=opensmile.FeatureLevel.LowLevelDescriptors
        )
        func = opensmile.Smile(feature_set=fs, feature_level=opensmile.FeatureLevel.Functionals)
        self.lld_names = list(lld.feature_names)
        self.func_names = list(func.feature_names)
        self.config_file = lld.config_path
        root = Path(lld.default_config_root)
        self.options = {
            "source": str(root / "shared" / "standard_external_wave_input.conf.inc"),
            "sink": str(root / "shared" / "standard_external_data_output_multi.conf.inc"),
            "sinkLevelLLD": "lld",
            "sinkLevelFunc": "func",
            "bufferModeRbConf": str(root / "shared" / "BufferModeRb.conf.inc"),
            "frameModeFunctionalsConf": str(root / "shared" / "FrameModeFunctionals.conf.inc"),
            "nBits": 16,
        }

    def __call__(self, mono: np.ndarray, sr: int) -> tuple[Any, Any]:
        """(LLD frame table, one-row functionals table) of a mono signal in [-1, 1)."""
        import pandas as pd
        from opensmile.core.lib import OpenSMILE

        rows: dict[str, list[np.ndarray]] = {"lld": [], "func": []}

        def collect(level: str) -> Any:
            def callback(data: np.ndarray, meta: Any) -> None:
                rows[level].append(np.array(data, dtype=np.float64))

            return callback

        smile = OpenSMILE()
        smile.initialize(config_file=self.config_file, options={**self.options, "sampleRate": sr})
        try:
            smile.external_sink_set_callback_ex("extsinklld", collect("lld"))
            smile.external_sink_set_callback_ex("extsinkfunc", collect("func"))
            pcm = (mono * 32768).astype(np.int16)
            smile.external_audio_source_write_data("extsource", pcm.tobytes())
            smile.external_audio_source_set_eoi("extsource")
            smile.run()
        finally:
            smile.free()
        lld = pd.DataFrame(np.vstack(rows["lld"]) if rows["lld"] else np.empty((0, len(self.lld_names))),
                           columns=self.lld_names)  # fmt: skip
        func = pd.DataFrame(np.vstack(rows["func"]) if rows["func"] else np.empty((0, len(self.func_names))),
                            columns=self.func_names)  # fmt: skip
        return lld, func


def _smiles(config: FeatureConfig) -> _OnePass:
    """The one-pass extractor of ``config``, created once per process."""
    with _SMILES_LOCK:
        smile = _SMILES.get(config)
        if smile is None:
            smile = _OnePass(config.feature_set)
            _SMILES[config] = smile
        return smile


def _summarise(lld: Any, func: Any, n_samples: int, sr: int) -> ClipFeatures:
    """Turn openSMILE's LLD and functional tables into a ClipFeatures."""
    f0 = np.nan_to_num(lld[F0_COLUMN].to_numpy(dtype=np.float64), nan=0.0)
    voiced = f0 > 0
    descriptors: dict[str, float] = {}
    for col in lld.columns:
        values = lld[col].to_numpy(dtype=np.float64)
        if col.endswith(_VOICED_SUFFIX):
            values = values[voiced]
        values = values[np.isfinite(values)]
        descriptors[str(col)] = float(values.mean()) if values.size else math.nan
    functionals = {str(k): float(v) for k, v in func.iloc[0].items()}
    n_frames = int(f0.size)
    return ClipFeatures(
        descriptors=descriptors,
        functionals=functionals,
        voiced_ratio=float(voiced.mean()) if n_frames else 0.0,
        n_frames=n_frames,
        duration_s=n_samples / sr,
        f0_semitones=[float(v) for v in np.where(voiced, f0, 0.0)],
    )


def extract_signal(
    x: np.ndarray,
    sr: int,
    config: FeatureConfig = FeatureConfig(),
    *,
    name: str = "<signal>",
) -> ClipFeatures:
    """Extract eGeMAPS features from an in-memory signal.

    Args:
        x: samples (mono or multichannel; checked with :func:`audio.check_signal`).
        sr: their rate in Hz; resampled to ``config.sample_rate`` if different.
        config: the feature configuration.
        name: what to call the signal in error messages (usually its path).

    Raises:
        AudioError: the signal is empty, non-finite or shorter than 0.1 s.
        FeatureError: openSMILE failed or produced no usable frame.
    """
    mono = audio.check_signal(x, sr, name)
    if sr != config.sample_rate:
        mono = audio.resample(mono, sr, config.sample_rate)
    # openSMILE converts to int16 by scaling with 32768 and would wrap, not
    # clip, samples at or beyond full scale.
    mono = np.clip(mono, -1.0, _INT16_MAX)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lld, func = _smiles(config)(mono, config.sample_rate)
    except FeatureError:
        raise
    except Exception as exc:  # openSMILE raises assorted types
        msg = " ".join(str(exc).split()) or type(exc).__name__
        raise FeatureError(f"{name}: openSMILE failed ({msg})") from exc
    if F0_COLUMN not in lld.columns:
        raise FeatureError(f"{name}: feature set {config.feature_set} has no {F0_COLUMN} column")
    if len(lld) == 0 or len(func) == 0 or lld.isna().all(axis=None):
        raise FeatureError(f"{name}: too short for openSMILE (no complete frame)")
    return _summarise(lld, func, mono.size, config.sample_rate)


# --- cache ----------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$CUELAB_CACHE_DIR/features``, else ``~/.cache/cuelab/features``."""
    env = os.environ.get("CUELAB_CACHE_DIR")
    base = Path(env) if env else Path.home() / ".cache" / "cuelab"
    return base / "features"


def cache_key(file_sha256: str, config: FeatureConfig) -> str:
    """Cache key of a file's content under a feature configuration."""
    return f"{file_sha256}-{config.key()}"


class FeatureCache:
    """Features on disk, one JSON file per (file content, config) key.

    Entries sit in two levels of fan-out folders (``ab/cd/abcd….json``) so no
    folder grows huge. Writes are atomic; an unreadable or malformed entry is
    logged and treated as a miss (the next :meth:`put` replaces it). Failing
    to write is logged, not raised: the cache only saves time.
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()

    def path_for(self, key: str) -> Path:
        """File that holds (or would hold) the entry ``key``."""
        return self.root / key[:2] / key[2:4] / f"{key}.json"

    def get(self, key: str) -> ClipFeatures | None:
        """The cached features of ``key``, or None on a miss or a corrupt entry."""
        path = self.path_for(key)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("feature cache: cannot read %s (%s); recomputing", path, exc)
            return None
        try:
            record = json.loads(text)
            if record.get("key") != key:
                raise ValueError("entry belongs to another key")
            return ClipFeatures.from_dict(record["features"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("feature cache: corrupt entry %s (%s); recomputing", path, exc)
            return None

    def put(self, key: str, feats: ClipFeatures) -> None:
        """Store ``feats`` under ``key`` (atomically; errors are logged)."""
        path = self.path_for(key)
        try:
            # allow_nan=False refuses inf (NaN is already None): a miss next time,
            # never a crash of the extraction that produced the values.
            text = json.dumps({"key": key, "features": feats.to_dict()}, allow_nan=False)
            atomic_write_text(path, text)
        except (OSError, ValueError) as exc:
            log.warning("feature cache: cannot write %s (%s)", path, exc)


# --- files ----------------------------------------------------------------------


def _extract_path(path: str, config: FeatureConfig, max_seconds: float | None) -> ClipFeatures:
    """Decode and extract one file, with every failure as a CueLabError naming it.

    Runs in worker processes too, so unexpected exceptions are converted to
    FeatureError here (they may not pickle, and the user needs the file name).
    """
    try:
        x, sr = audio.load_audio(path, config.sample_rate, max_seconds=max_seconds)
        return extract_signal(x, sr, config, name=path)
    except CueLabError:
        raise
    except Exception as exc:
        msg = " ".join(str(exc).split())
        raise FeatureError(
            f"{path}: feature extraction failed ({type(exc).__name__}: {msg})"
        ) from exc


def _check_hit(path: Path, feats: ClipFeatures, max_seconds: float | None) -> ClipFeatures:
    """Apply the duration limit to a cache hit, as a fresh decode would."""
    if max_seconds is not None and feats.duration_s > max_seconds:
        raise AudioError(
            f"{path}: too long ({feats.duration_s:.1f} s; the limit is {max_seconds:g} s)"
        )
    return feats


def extract_file(
    path: audio.PathLike,
    config: FeatureConfig = FeatureConfig(),
    cache: FeatureCache | None = None,
    *,
    max_seconds: float | None = 600.0,
) -> ClipFeatures:
    """Features of an audio file, served from ``cache`` when possible.

    Raises:
        AudioError: the file is missing, undecodable or out of limits.
        FeatureError: openSMILE failed on it.
    """
    p = Path(path)
    if cache is None:
        return _extract_path(str(p), config, max_seconds)
    key = cache_key(audio.file_sha256(p), config)
    hit = cache.get(key)
    if hit is not None:
        return _check_hit(p, hit, max_seconds)
    feats = _extract_path(str(p), config, max_seconds)
    cache.put(key, feats)
    return feats


def _mp_context() -> multiprocessing.context.BaseContext:
    """A start method that is safe from a threaded (GUI) process.

    ``fork`` copies a process with other threads' locks held and can deadlock
    it; ``forkserver`` forks workers from a clean server process that has the
    heavy modules preloaded, so each pool starts quickly after the first.
    """
    if sys.platform != "win32" and "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["opensmile", "cuelab.core.cues.features"])
        _start_forkserver()
        return ctx
    return multiprocessing.get_context("spawn")


@contextlib.contextmanager
def _signals_held() -> Iterator[list[int]]:
    """Hold SIGINT and SIGTERM back for the block (main thread); they are raised after it.

    Yields the list of signals noted meanwhile, for the block to poll. Masking
    the signals is not enough: native threads (BLAS, OpenMP) take them for the
    process, so the Python handlers are swapped for ones that only note them.
    """
    import signal

    noted: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield noted
        return
    kinds = (signal.SIGINT, signal.SIGTERM)
    previous = {k: signal.signal(k, lambda num, frame: noted.append(num)) for k in kinds}
    try:
        yield noted
    finally:
        for kind, handler in previous.items():
            signal.signal(kind, handler)
        for num in dict.fromkeys(noted):
            signal.raise_signal(num)  # now handled as it would have been


def _start_forkserver() -> None:
    """Start the fork server with SIGINT ignored, so that its children inherit that.

    Each worker the server forks puts back the server's original SIGINT handler
    before :func:`~cuelab.core.jobs.pool_worker_init` runs; a Ctrl-C at the
    terminal in that instant would print a worker's KeyboardInterrupt traceback.
    A process started with SIGINT ignored keeps it ignored (Python installs its
    handler only over the default), and the parent alone handles Ctrl-C.
    """
    import multiprocessing.forkserver as fs
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        # Dispositions can only be changed from the main thread; a SIGINT blocked in this
        # thread is inherited through fork and exec all the same, and is never delivered.
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            fs.ensure_running()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        fs.ensure_running()
    finally:
        signal.signal(signal.SIGINT, previous)


# One unit of work: the input positions that share it, the file and its cache key.
_Job = tuple[list[int], Path, str | None]


def extract_many(
    paths: Sequence[audio.PathLike],
    config: FeatureConfig = FeatureConfig(),
    cache: FeatureCache | None = None,
    *,
    workers: int | None = None,
    control: JobControl | None = None,
    max_seconds: float | None = 600.0,
) -> list[ClipFeatures]:
    """Features of many files (see :func:`extract_many_tolerant`); the first failure raises.

    Raises:
        Cancelled: ``control`` was cancelled (queued work is dropped).
        AudioError, FeatureError: for the first file that failed (named).
    """
    results = _extract_many(paths, config, cache, workers, control, max_seconds, None)
    return [r for r in results if r is not None]


def extract_many_tolerant(
    paths: Sequence[audio.PathLike],
    config: FeatureConfig = FeatureConfig(),
    cache: FeatureCache | None = None,
    *,
    workers: int | None = None,
    control: JobControl | None = None,
    max_seconds: float | None = 600.0,
) -> tuple[list[ClipFeatures | None], dict[int, str]]:
    """Features of many files, going on past files that fail.

    Returns:
        One entry per path (None where the file failed), and the one-line error of
        each failed position.

    Raises:
        Cancelled: ``control`` was cancelled (queued work is dropped).
    """
    errors: dict[int, str] = {}
    results = _extract_many(paths, config, cache, workers, control, max_seconds, errors)
    return results, errors


def _extract_many(
    paths: Sequence[audio.PathLike],
    config: FeatureConfig,
    cache: FeatureCache | None,
    workers: int | None,
    control: JobControl | None,
    max_seconds: float | None,
    errors: dict[int, str] | None,
) -> list[ClipFeatures | None]:
    """Features of many files, in input order, on the cores that pay.

    Cache hits are served first, in this process; misses run in this process
    and, with ``workers`` > 1, on up to ``workers - 1`` helper processes that
    take clips from the same queue (default: as many as the job repays, see
    :func:`choose_workers`; ``workers=1`` runs in-process only). Each result is
    cached as soon as it arrives, so a cancelled or failed run loses nothing
    already computed. Files with the
    same content are extracted once.

    Args:
        paths: audio files.
        config: the feature configuration.
        cache: where to look up and store features, or None for no cache.
        workers: processes extracting, this one included, or None to decide
            (:func:`choose_workers`).
        control: progress (one ``advance`` per clip) and cancellation.
        max_seconds: longest accepted clip.

    Raises:
        Cancelled: ``control`` was cancelled (queued work is dropped).
        AudioError, FeatureError: for the first file that failed (named).
    """
    ctl = control if control is not None else JobControl()
    files = [Path(p) for p in paths]
    ctl.start(len(files))
    results: list[ClipFeatures | None] = [None] * len(files)
    jobs: dict[str, _Job] = {}

    note = ["cache"]  # the progress message: where features come from now

    def fail(idxs: list[int], exc: CueLabError) -> None:
        if errors is None:
            raise exc
        for i in idxs:
            errors[i] = str(exc)
        ctl.advance(len(idxs), note[0])

    for i, p in enumerate(files):
        ctl.check()
        try:
            key = cache_key(audio.file_sha256(p), config) if cache is not None else None
            hit = cache.get(key) if cache is not None and key is not None else None
            if hit is not None:
                results[i] = _check_hit(p, hit, max_seconds)
                ctl.advance(1, note[0])
                continue
        except (AudioError, FeatureError) as exc:
            fail([i], exc)
            continue
        job_id = key if key is not None else str(p.resolve())
        jobs.setdefault(job_id, ([], p, key))[0].append(i)

    def finish(job: _Job, feats: ClipFeatures) -> None:
        idxs, _, key = job
        if cache is not None and key is not None:
            cache.put(key, feats)
        for i in idxs:
            results[i] = feats
        ctl.advance(len(idxs), note[0])

    todo = list(jobs.values())
    choice = choose_workers([job[1] for job in todo]) if workers is None and todo else None
    most = choice.workers if choice is not None else (workers or 1)
    n_workers = max(1, min(most, len(todo)))
    note[0] = "1 worker"
    if n_workers <= 1:
        for job in todo:
            ctl.check()
            try:
                feats = _extract_path(str(job[1]), config, max_seconds)
            except (AudioError, FeatureError) as exc:
                fail(job[0], exc)
                continue
            finish(job, feats)
    else:
        work_s = choice.work_s if choice is not None else (1.0,) * len(todo)
        _run_pool(todo, work_s, config, max_seconds, n_workers, ctl, finish, fail, note,
                  grow=choice is not None)  # fmt: skip
    missing = [i for i, r in enumerate(results) if r is None and i not in (errors or {})]
    if missing:  # every position is filled by a hit, a job or an error
        raise FeatureError("internal error: some clips got no features")
    return results


def _run_pool(
    jobs: list[_Job],
    work_s: Sequence[float],
    config: FeatureConfig,
    max_seconds: float | None,
    n_workers: int,
    ctl: JobControl,
    finish: Callable[[_Job, ClipFeatures], None],
    fail: Callable[[list[int], CueLabError], None],
    note: list[str],
    *,
    grow: bool,
) -> None:
    """Extract ``jobs`` here and on up to ``n_workers - 1`` helper processes.

    This thread starts at once while the helpers start in the background and take jobs
    from the same queue (:func:`~cuelab.core.cues.workers.run_shared`). With ``grow``
    (the count was chosen, not given) helpers start only on cores that stay idle while
    this thread extracts, and each after the first only while the work left repays it.
    ``finish`` and ``fail`` run in this thread, once per job.

    Ctrl-C and SIGTERM (in the main thread) are taken only between jobs; on one, the
    helpers are stopped and joined (none left starting up, none outliving the run),
    and the signal is raised again once they are gone.
    """

    def task(i: int) -> tuple[Callable[..., ClipFeatures], tuple[Any, ...]]:
        return _extract_path, (str(jobs[i][1]), config, max_seconds)

    def settle(i: int, feats: ClipFeatures | None, exc: BaseException | None) -> None:
        job = jobs[i]
        if exc is None and feats is not None:
            finish(job, feats)
        elif isinstance(exc, (AudioError, FeatureError)):
            fail(job[0], exc)
        elif isinstance(exc, cf.process.BrokenProcessPool):
            raise FeatureError(
                f"{job[1]}: a feature worker process died ({type(exc).__name__})"
            ) from exc
        elif exc is not None:
            raise exc

    def workers_now(text: str) -> None:
        note[0] = text

    parent = os.getpid()

    def start_pool(n: int) -> cf.Executor:
        # on the helpers' thread, and only once a helper will start: the fork server's
        # imports cost about 1 s of CPU, which a busy machine takes from this process
        return cf.ProcessPoolExecutor(
            max_workers=n, mp_context=_mp_context(), initializer=pool_worker_init,
            initargs=(parent,),
        )  # fmt: skip

    with _signals_held() as noted:

        def stop() -> bool:
            ctl.check()
            return bool(noted)

        run_shared(work_s, task, settle, helpers=n_workers - 1, start_pool=start_pool,
                   stop=stop, on_workers=workers_now, grow=grow)  # fmt: skip
