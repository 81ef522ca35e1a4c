"""Features and models at the same time: the model loads while features start, and a
run whose variants need only each clip's own tokens scores clips while the next
ones' features are extracted.

On the tiny model, features were 26 % of an eval and model load 21 %, one after
the other. Two pieces overlap them:

- :class:`ModelPreload` loads the first model in a background thread while the
  main thread extracts features (or scores, see below); the run takes the
  adapter when it needs it.
- :class:`FeatureStream` extracts features chunk by chunk in a background thread
  into a bounded queue; the run scores each chunk as it arrives. The command line
  asks for it (``run_eval(stream_features=True)``); the window keeps its two
  progress stages (features, then scoring). Only runs without shuffle conditions
  stream: a shuffle gives each clip another clip's
  tokens, drawn over every clip of the split that has features, so it has to
  wait for all of them.

Rows are still written in manifest order (the chunks arrive in order and each is
scored in order), so ``kill -9`` and ``--resume`` behave as without overlap.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from cuelab.core.cues.feature_cache import FeatureCache
from cuelab.core.cues.interventions import SHUFFLE_KINDS, parse_condition
from cuelab.core.cues.norms import NormsProfile
from cuelab.core.cues.tokens import TokenSet
from cuelab.core.datasets.manifest import ManifestRow
from cuelab.core.jobs import JobControl
from cuelab.core.models.base import LoadOptions, ModelAdapter
from cuelab.core.runs.config import RunConfig
from cuelab.core.runs.plan import compute_token_sets

log = logging.getLogger(__name__)

#: Clips per streamed chunk when features run in this process (a pool takes 256).
STREAM_CHUNK = 8
#: Chunks extracted ahead of scoring at most (memory holds token sets only).
STREAM_AHEAD = 4


def can_stream(config: RunConfig) -> bool:
    """True when every condition needs only the clip's own tokens (no shuffle)."""
    return not any(parse_condition(c).kind in SHUFFLE_KINDS for c in config.conditions)


class ModelPreload:
    """Load one model in a background thread; :meth:`take` waits for it.

    A load that fails raises from :meth:`take`; an adapter never taken is unloaded
    by :meth:`discard` (the run was cancelled or failed first).
    """

    def __init__(self, spec: str, options: LoadOptions, loader: Any) -> None:
        self.spec = spec
        self._adapter: ModelAdapter | None = None
        self._error: BaseException | None = None
        self._taken = False
        self._thread = threading.Thread(
            target=self._run, args=(loader, options), name="cuelab-model-load", daemon=True
        )
        self._thread.start()

    def _run(self, loader: Any, options: LoadOptions) -> None:
        try:
            self._adapter = loader(self.spec, options)
        except BaseException as exc:  # handed to the run's thread by take()
            self._error = exc

    def take(self) -> ModelAdapter:
        """The loaded adapter (waits for the load); raises what the load raised."""
        self._thread.join()
        self._taken = True
        if self._error is not None:
            raise self._error
        assert self._adapter is not None
        return self._adapter

    def discard(self) -> None:
        """Unload the adapter unless the run took it (waits for the load to end)."""
        if self._taken:
            return
        self._thread.join()
        self._taken = True
        if self._adapter is not None:
            self._adapter.unload()


class _ChildControl(JobControl):
    """Cancelled whenever the run is; its own progress is not the run's."""

    def __init__(self, parent: JobControl) -> None:
        super().__init__()
        self._parent = parent
        self.message = ""

    def check(self) -> None:
        self._parent.check()
        super().check()

    def advance(self, n: int = 1, message: str = "", detail: str = "") -> None:
        super().advance(n, message, detail)
        self.message = detail or message


Chunk = tuple[list[ManifestRow], list["TokenSet | None"], dict[str, str]]


class FeatureStream:
    """Token sets of ``rows``, extracted ahead of scoring in a background thread.

    Iterating yields ``(rows, token_sets, failures)`` per chunk, in manifest order;
    ``failures`` maps a failed clip's utterance id to its one-line error (only when
    ``tolerant``; otherwise the first failure raises from the iteration). At most
    :data:`STREAM_AHEAD` chunks wait in the queue.
    """

    def __init__(
        self,
        rows: Sequence[ManifestRow],
        norms: NormsProfile,
        cache: FeatureCache,
        control: JobControl,
        workers: int | None,
        tolerant: bool,
        chunk: int = STREAM_CHUNK,
    ) -> None:
        self.rows = list(rows)
        self.control = _ChildControl(control)
        self.done = 0  # clips handed to the run
        self.extracted = 0  # clips whose features are ready
        self._queue: queue.Queue[Chunk | BaseException | None] = queue.Queue(STREAM_AHEAD)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._produce,
            args=(norms, cache, workers, tolerant, chunk),
            name="cuelab-features",
            daemon=True,
        )
        self._thread.start()

    def _put(self, item: Chunk | BaseException | None) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(
        self,
        norms: NormsProfile,
        cache: FeatureCache,
        workers: int | None,
        tolerant: bool,
        chunk: int,
    ) -> None:
        try:
            for start in range(0, len(self.rows), chunk):
                part = self.rows[start : start + chunk]
                failures: dict[str, str] | None = {} if tolerant else None
                sets = compute_token_sets(part, norms, cache, self.control, workers, failures)
                self.extracted += len(part)
                if not self._put((part, sets, failures or {})):
                    return
            self._put(None)
        except BaseException as exc:  # re-raised in the consuming thread
            self._put(exc)

    def __iter__(self) -> Iterator[Chunk]:
        while True:
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                self.control.check()
                continue
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            self.done += len(item[0])
            yield item

    @property
    def note(self) -> str:
        """For the progress line: how far features are, and with how many workers."""
        where = f", {self.control.message}" if self.control.message else ""
        return f"features {self.extracted}/{len(self.rows)}{where}"

    def close(self) -> None:
        """Stop extracting (a cancelled or failed run) and wait for the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self.control.cancel()
        self._thread.join()
