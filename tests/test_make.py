"""Making digests at scale: worker processes make exactly what one process makes."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from digest import pipeline
from digest.config import MakeSettings
from digest.pipeline import make
from digest.store import Store

from .conftest import ROOT
from .deliverykit import START, make_world
from .test_crash import _alive

KEYWORDS = ["diffusion", "language model", "video", "reasoning", "robot", "3d", "agents", "speech"]
ZONES = ["UTC", "Asia/Tokyo", "America/New_York"]


def made_by(
    root: Path, *, workers: int, batch: int = 4
) -> tuple[pipeline.SendReport, list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """23 subscribers in three zones, made in batches of ``batch`` by ``workers`` processes: the report,
    every digest's content and every item, in a stable order."""
    world = make_world(root, people=0)
    for n in range(23):
        terms = ", ".join(f'"{KEYWORDS[(n + k) % len(KEYWORDS)]}"' for k in range(1 + n % 3))
        (root / "subscribers" / f"p{n:02d}.toml").write_text(
            f'email = "p{n:02d}@example.org"\ntimezone = "{ZONES[n % 3]}"\nkeywords = [{terms}]\n'
        )
    settings = world.settings.model_copy(update={"make": MakeSettings(workers=workers, batch_size=batch)})
    with Store.open(settings.database.path) as store:
        assert not pipeline.sync_subscribers(store.subscribers, settings.subscribers.dir, at=START).errors
        report = pipeline.make_digests(store, settings, now=START)
        names = sorted(name for name, _, _ in report.made)
        here = str(root)  # the footer names the profile's file
        digests = [
            (d.subscriber, d.edition, d.subject, d.text.replace(here, "~"), d.html.replace(here, "~"), d.items)
            for name in names
            for d in store.digests.recent(name, limit=5)
        ]
    with sqlite3.connect(settings.database.path) as db:
        items = db.execute(
            "SELECT d.subscriber, i.paper, i.rank, i.score, i.why, d.reasons FROM digest_items i"
            " JOIN digests d ON d.id = i.digest ORDER BY d.subscriber, i.rank"
        ).fetchall()
    return report, digests, items


@pytest.mark.slow
def test_two_workers_make_the_same_digests_as_one_process(tmp_path: Path) -> None:
    alone, digests, items = made_by(tmp_path / "one", workers=1)
    shared, digests_shared, items_shared = made_by(tmp_path / "two", workers=2)
    assert (alone.workers, shared.workers) == (1, 2)
    assert len(alone.made) == 23 and len(digests) == 23 and len(items) > 23
    assert sorted(shared.made) == sorted(alone.made)
    assert digests_shared == digests
    assert items_shared == items


def test_a_worker_that_dies_leaves_its_batches_to_the_main_process(tmp_path: Path) -> None:
    # SIGKILL the first worker as soon as it exists (out of memory, say): every digest is still
    # made once — stored batches stay, the rest is made in the main process.
    killed: list[int] = []

    def kill_a_worker() -> None:
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            for child in multiprocessing.active_children():
                if child.name.startswith("ForkServerProcess") and child.pid:
                    os.kill(child.pid, signal.SIGKILL)
                    killed.append(child.pid)
                    break
            time.sleep(0.01)

    killer = threading.Thread(target=kill_a_worker)
    killer.start()
    try:
        report, digests, _ = made_by(tmp_path, workers=2, batch=1)
    finally:
        killer.join()
    assert killed
    assert sorted(name for name, _, _ in report.made) == [f"p{n:02d}" for n in range(23)]
    assert len(digests) == 23


def _blocked_worker(parent: int, ready: Any) -> None:
    """A worker that will never finish its batch on its own (as one waiting on a lock would)."""
    from digest.pipeline import workers

    workers._die_with(parent)
    ready.set()
    time.sleep(120)


RUNNER = """
import multiprocessing, os, sys, time
sys.path.insert(0, sys.argv[1])
from tests.test_make import _blocked_worker
context = multiprocessing.get_context("forkserver")
ready = context.Event()
worker = context.Process(target=_blocked_worker, args=(os.getpid(), ready))
worker.start()
ready.wait(60)
print(worker.pid, flush=True)
time.sleep(120)
"""


def test_a_worker_ends_when_the_run_that_started_it_is_killed_even_in_the_middle_of_a_batch() -> None:
    """A worker's parent is the forkserver, which a live worker keeps alive: the worker must watch the run."""
    runner = subprocess.Popen([sys.executable, "-c", RUNNER, str(ROOT)], stdout=subprocess.PIPE)
    try:
        assert runner.stdout is not None
        worker = int(runner.stdout.readline())
    finally:
        runner.kill()
        runner.wait(timeout=30)
        if runner.stdout is not None:
            runner.stdout.close()
    deadline = time.monotonic() + 10
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(worker), "the worker outlived the run that started it"


def test_a_few_subscribers_are_made_without_starting_workers(tmp_path: Path) -> None:
    world = make_world(tmp_path, people=3)
    settings = world.settings.model_copy(update={"make": MakeSettings(workers=4)})
    with Store.open(settings.database.path) as store:
        pipeline.sync_subscribers(store.subscribers, settings.subscribers.dir, at=START)
        report = pipeline.make_digests(store, settings, now=START)
    assert report.workers == 1 and len(report.made) == 3


def test_a_day_of_many_papers_is_ranked_in_smaller_batches_that_make_the_same_digests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, digests, items = made_by(tmp_path / "whole", workers=1, batch=23)
    batches: list[int] = []
    real = make.make_batch  # type: ignore[attr-defined]  # the name make_digests calls, replaced below

    def counted(*args: Any, **kwargs: Any) -> Any:
        batches.append(len(args[3].members))
        return real(*args, **kwargs)

    with Store.open(make_world(tmp_path / "count", people=0).settings.database.path) as store:
        papers = len(store.papers.since(START - timedelta(days=400)))
    monkeypatch.setattr(make, "BATCH_CELLS", 5 * papers)  # five subscribers' scores at once
    monkeypatch.setattr(make, "make_batch", counted)
    _, capped, capped_items = made_by(tmp_path / "capped", workers=1, batch=23)
    assert max(batches) == 5 and sum(batches) == 23 and len(batches) == 6  # three zones: three windows
    assert (capped, capped_items) == (digests, items)


def test_each_window_s_papers_are_read_once_in_one_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Planning the batches reads each window's papers; making them uses what was read, not a second query."""
    from digest.store import Papers

    reads: list[object] = []
    real = Papers.since

    def since(self: Papers, moment: Any) -> Any:
        reads.append(moment)
        return real(self, moment)

    monkeypatch.setattr(Papers, "since", since)
    report, digests, _ = made_by(tmp_path, workers=1, batch=4)
    assert len(report.made) == 23 and digests
    assert len(reads) == len(set(reads)) == 3  # three zones: three windows, each read once
