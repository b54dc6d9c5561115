"""Worker processes that make batches of digests side by side, and die with the process that started them."""

from __future__ import annotations

import ctypes
import multiprocessing
import multiprocessing.connection
import multiprocessing.process
import multiprocessing.queues
import os
import signal
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from digest.config import Settings
from digest.pipeline.batch import Batch, Made, Windows, make_batch
from digest.store import Location, Store


def make_in_processes(
    path: Location,
    settings: Settings,
    batches: list[Batch],
    *,
    now: datetime,
    workers: int,
    on_made: Callable[[Made], None],
    stop: Callable[[], bool] = lambda: False,
) -> bool:
    """Each batch made by one of ``workers`` processes, each handed to ``on_made``; whether a worker died.

    When ``stop()`` turns true (an interrupt) the workers are stopped where they
    are: each batch is stored whole or not at all, and what was not made is made
    by the next run. Workers ignore SIGINT and SIGTERM themselves: a Ctrl-C
    reaches the whole process group, and the parent decides.

    Workers are forked by a forkserver that has imported what they need
    (``PRELOAD``), all before any work is handed out: a spawned worker spent
    about two seconds of CPU importing before its first batch. Not forked from
    this process: it runs other threads (the delivery beside the making, the
    daemon's scheduler and fetch), and a fork copies a lock one of them holds.
    They take batches from one queue, open the database themselves and write
    their own batches, one at a time: a lock shared by the workers wakes the
    next writer at once, where SQLite's busy handler would sleep and poll. Each
    answers over its own pipe. When a worker dies, every batch finished before
    is still counted, and the others are stopped (each batch is stored whole or
    not at all).

    (Python 3.11's ProcessPoolExecutor starts workers on demand while handing
    out work; a worker dying meanwhile made the next start fail, or left a
    worker that shutting down waited for for ever.)
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    tasks: multiprocessing.queues.Queue[Batch | None] = context.Queue()
    lock = context.Lock()
    pipes = [context.Pipe(duplex=False) for _ in range(workers)]
    setup = _Setup(os.getpid(), path, settings, lock, now)
    processes: list[multiprocessing.process.BaseProcess] = [
        context.Process(target=_worker, args=(setup, tasks, sender), daemon=True) for _, sender in pipes
    ]
    answers = {receiver: process for (receiver, _), process in zip(pipes, processes, strict=True)}
    made = 0
    broken = False
    try:
        for process in processes:
            process.start()
        for _, sender in pipes:
            sender.close()  # the worker holds its own copy: the pipe ends when the worker does
        for item in [*batches, *[None] * workers]:
            tasks.put(item)
        while answers and made < len(batches) and not broken and not stop():
            for ready in multiprocessing.connection.wait(list(answers), timeout=_LOOK_FOR_STOP_S):
                made_here, ended = _answer(ready, answers)
                for one in made_here:
                    on_made(one)
                made += len(made_here)
                broken = broken or ended
    finally:
        interrupted = stop()
        broken = broken or (made < len(batches) and not interrupted)  # what is missing is made in this process
        _stop(processes, tasks, force=broken or interrupted)
    return broken


# What a worker imports, once by the forkserver rather than by every worker it starts.
PRELOAD = [
    "digest.pipeline.workers",
    "digest.pipeline.batch",
    "digest.render.message",
    "digest.store",
    "sklearn.feature_extraction.text",  # the stop words (rank.corpus), a second of imports
]
_LOOK_FOR_STOP_S = 0.25  # how often the parent looks whether it was asked to stop while the workers make


def _answer(
    ready: object, answers: dict[multiprocessing.connection.Connection, multiprocessing.process.BaseProcess]
) -> tuple[list[Made], bool]:
    """Read one worker's answer: a made batch, its error (raised here), or its end (True if it died)."""
    assert isinstance(ready, multiprocessing.connection.Connection)  # noqa: S101 - an invariant, for the type checker; no input is checked by it
    try:
        answer = ready.recv()
    except EOFError:  # the worker ended: after its last batch, or killed
        process = answers.pop(ready)
        process.join(timeout=30)
        return [], process.exitcode != 0
    if isinstance(answer, BaseException):
        raise answer
    return [answer], False


def _stop(
    processes: list[multiprocessing.process.BaseProcess],
    tasks: multiprocessing.queues.Queue[Batch | None],
    *,
    force: bool,
) -> None:
    """Let the workers end (each took its ``None``), or kill them when the run went wrong."""
    for process in processes:
        if force and process.is_alive():
            process.kill()
        process.join(timeout=None if force else 30)
        if process.is_alive():
            process.kill()
            process.join()
    tasks.close()
    tasks.cancel_join_thread()  # batches no worker took: nobody will read them


@dataclass(frozen=True)
class _Setup:
    """What every worker of a run is started with."""

    parent: int  # the process that started the run: the worker ends when it does (through the forkserver)
    path: Location
    settings: Settings
    lock: AbstractContextManager[object]  # held to write
    now: datetime


def _worker(
    setup: _Setup,
    tasks: multiprocessing.queues.Queue[Batch | None],
    answers: multiprocessing.connection.Connection,
) -> None:
    """A worker process: make batches until the queue hands out ``None``; answer each with what it made."""
    _die_with(setup.parent)
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_IGN)
    windows = Windows()
    with answers, Store.open(setup.path) as store:
        store.db.defer_checkpoints()  # each worker checkpoints after its write, outside the lock
        for batch in iter(tasks.get, None):
            try:
                made = make_batch(
                    store, setup.settings, windows, batch, now=setup.now, lock=setup.lock, checkpoint=True
                )
                answers.send(made)
                _give_back_memory()
            except Exception as e:  # the parent raises it: the run fails as it would in one process
                answers.send(e)
                return


def _give_back_memory() -> None:
    """Hand the memory a batch freed back to the system (glibc keeps it otherwise), so a worker's footprint
    is its largest batch, not every batch's leftovers. Elsewhere, nothing."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _die_with(parent: int) -> None:
    """End this worker when the process that started the run (``parent``) dies, even by SIGKILL.

    The worker's own parent is the forkserver, and the forkserver outlives the
    run while any worker it forked does (each holds the pipe whose end tells the
    forkserver to stop), so the kernel's signal on a parent's death
    (``PR_SET_PDEATHSIG``) only covers the forkserver going. A thread looks
    every half second whether ``parent`` is still there, and whether the
    forkserver is; a ``parent`` already gone is caught at once.
    """
    with suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    server = os.getppid()
    if server == 1 or not _alive(parent):
        os._exit(1)
    threading.Thread(target=_watch, args=(parent, server), name="parent-watch", daemon=True).start()


def _watch(parent: int, server: int) -> None:
    while os.getppid() == server and _alive(parent):
        time.sleep(_LOOK_FOR_PARENT_S)
    os._exit(1)


_LOOK_FOR_PARENT_S = 0.5


def _alive(pid: int) -> bool:
    """Whether a process is there (a zombie, ended but not yet collected by its parent, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # there, under another user
    with suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True
