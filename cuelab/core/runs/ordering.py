"""The order of work: results handed over in the order of the items, several in flight.

A run's predictions.csv is written in the manifest's order whatever the number
of clips in flight, so a kill leaves a prefix of it and ``--resume`` redoes only
what is missing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from cuelab.core.jobs import JobControl

Item = TypeVar("Item")
Result = TypeVar("Result")


def in_order(
    work: Callable[[Item], Result],
    items: Iterable[Item],
    workers: int,
    control: JobControl,
) -> Iterator[tuple[Item, Result]]:
    """``(item, work(item))`` in the order of ``items``, with up to ``workers`` in flight.

    With one worker this is a plain loop. With more (a remote model that serves
    many requests at once) the next items are started while the caller writes
    the finished ones, so the file is written in the same order as a sequential
    run: a kill leaves a prefix of it, and ``--resume`` redoes only what is
    missing. Cancellation is checked before each item is started; the items
    already running are waited for (their results are dropped), then
    :class:`~cuelab.core.errors.Cancelled` is raised. The first failure is
    raised after the items before it have been handed over.
    """
    if workers <= 1:
        for item in items:
            control.check()
            yield item, work(item)
        return
    pending: deque[tuple[Item, Future[Result]]] = deque()
    source = iter(items)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="clip")
    finished = False
    try:
        while True:
            while len(pending) < workers and not control.cancelled:
                item = next(source, _END)
                if item is _END:
                    break
                pending.append((item, pool.submit(work, item)))
            if not pending:
                control.check()
                finished = True
                return
            item, future = pending.popleft()
            yield item, future.result()
            control.check()
    finally:
        # On a failure or cancel the clips still running are not waited for here: the
        # caller unloads the model next, which cancels their queued requests.
        pool.shutdown(wait=finished, cancel_futures=True)


_END: Any = object()
