"""What a task kind tells the run engine: its plan, what is left, how an item is answered.

The engine (:func:`cuelab.core.runs.engine.run_kind`) owns everything a run has
whatever its task: the folder and its lock, run.json across sessions, the
durable writer, failed clips, model loading and the order of work. A kind owns
the rest, and the engine never looks inside it, as lm-evaluation-harness's
engine sees requests and never a task's internals. The kinds live beside their
task; this module sits below ``runs/``, so it names nothing of it: the engine
hands a kind what it needs (the rows already written, a loaded model, the run's
sections of run.json) as plain values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from cuelab.core.jobs import JobControl

#: The cells that identify a row of predictions.csv (clip, model, condition or mode, seed, ...).
Key = tuple[str, ...]
#: Rows for predictions.csv, cells in the header's order.
Rows = list[list[object]]
Item = TypeVar("Item")
Item_co = TypeVar("Item_co", covariant=True)


@dataclass(frozen=True)
class KindPlan:
    """What a kind decides before any model runs; the engine records and writes it.

    Attributes:
        identity: everything that decides the predictions (compared key by key on resume).
        manifest_path: the manifest, as recorded in run.json.
        labels: the closed label set (empty for open answers).
        header: the columns of predictions.csv.
        key_columns: the columns that identify a row (what ``todo`` is given back).
    """

    identity: dict[str, Any]
    manifest_path: str
    labels: Sequence[str]
    header: list[str]
    key_columns: tuple[str, ...]


class ItemStream(Protocol[Item_co]):
    """One model's items, in batches as they become ready while the kind's begin work runs.

    A kind that streams extracts its features in the background and hands the
    engine each batch as soon as it can be answered, so the first model scores
    while the next clips' features are extracted. Iterating to the end finishes
    what :meth:`TaskKind.begin` would have done (the sections are then up to date).
    """

    def __iter__(self) -> Iterator[Sequence[Item_co]]:
        """The batches, in the order their rows are written."""
        ...

    @property
    def note(self) -> str:
        """The detail of progress lines while it runs (how far the features are)."""
        ...

    def close(self) -> None:
        """Stop the background work (the run was cancelled or failed) and wait for it."""
        ...


class TaskKind(Protocol[Item]):
    """A task kind as the run engine sees it (one per run; built from the run's config).

    Attributes:
        name: the kind's name (``emotion``, ``sseu``).
        report: the report the reports layer builds for its folders.
        options: the configuration keys the kind reads beyond the common ones.
        progress: the name of the answering stage in progress reports.
    """

    name: str
    report: str
    options: tuple[str, ...]
    progress: str

    def plan(self) -> KindPlan:
        """Read the manifest and decide the identity, labels and table layout."""
        ...

    def sections(self, earlier: Mapping[str, Any]) -> dict[str, Any]:
        """The kind's sections of run.json, given those a resumed run recorded."""
        ...

    def ahead(self, done: set[Key], specs: Sequence[str]) -> str | None:
        """The model to load in the background while begin (or the stream) works; None: none.

        Called first in the session, with the keys of the rows already written.
        """
        ...

    def stream(
        self,
        spec: str | None,
        done: set[Key],
        sections: dict[str, Any],
        control: JobControl,
        failed: Callable[[str, str, str, str, str], None],
    ) -> ItemStream[Item] | None:
        """``spec``'s items as they become ready, instead of :meth:`begin`; None: no stream.

        ``spec`` is :meth:`ahead`'s model (None: the stream yields no items but still
        does begin's work). The engine answers the batches with ``spec``, then asks
        :meth:`todo` for the other models.
        """
        ...

    def todo(self, done: set[Key], specs: Sequence[str]) -> dict[str, list[Item]]:
        """Per model spec, the items still to answer, given the keys of rows written."""
        ...

    def units(self, todo: Mapping[str, Sequence[Item]]) -> int:
        """How many progress units ``todo`` is."""
        ...

    def begin(
        self,
        done: set[Key],
        sections: dict[str, Any],
        control: JobControl,
        failed: Callable[[str, str, str, str, str], None],
    ) -> bool:
        """Do what every model shares (features, matchers...) before the items are counted.

        ``done`` are the keys of the rows already written; ``failed(utt_id, path,
        model, stage, error)`` records a clip that cannot take part. Returns True
        when ``sections`` (the run's sections of run.json) changed.
        """
        ...

    def session(self, session: dict[str, Any]) -> None:
        """Add what this session of the kind chose (e.g. its threads) to its run.json entry."""
        ...

    def answerer(
        self,
        model: Any,
        spec: str,
        control: JobControl,
        failed: Callable[[str, str, str, str], None],
    ) -> Callable[[Item], tuple[Rows, int]]:
        """How one item is answered by a loaded model: (rows, progress units).

        ``control`` is checked between generations; ``failed(utt_id, path, stage,
        error)`` records a clip that cannot be answered (the run goes on), and the
        answerer then returns no rows for it.
        """
        ...

    def item_name(self, item: Item) -> str:
        """The clip an item is about, for progress lines."""
        ...

    def clips(self) -> int:
        """How many clips this run (or shard) holds."""
        ...

    def notes(self) -> Iterable[str]:
        """What the run should tell the user when it ends."""
        ...
