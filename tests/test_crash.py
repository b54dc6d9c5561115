"""SIGKILL at random points: afterwards everyone has their digest, and repeats only come from the crash window.

A repeat is possible only when the kill lands after the server accepted a
message and before the ledger recorded it as sent: that row is still in
``sending``, and the retry carries the same Message-ID. The test checks that
every repeat is such a row, and prints the counts (run with -s to see them).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from digest import pipeline
from digest.store import Store

from .deliverykit import make_world
from .servers import Mailbox, smtp_server

RUNS = 20
PEOPLE = 20


def test_sigkill_at_random_points_loses_nothing_and_repeats_only_in_flight(tmp_path: Path) -> None:
    rng = random.Random(20261123)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    tally: Counter[str] = Counter()
    for run in range(RUNS):
        root = tmp_path / f"run{run:02d}"
        with smtp_server(Mailbox(delay=0.03)) as server:
            world = make_world(root, people=PEOPLE, smtp_port=server.port, backoff_max_seconds=30.0)
            settings = world.settings
            (root / "digest.toml").write_text(
                f'[database]\npath = "{settings.database.path}"\n[subscribers]\ndir = "{settings.subscribers.dir}"\n'
                f'[smtp]\nhost = "127.0.0.1"\nport = {server.port}\nsecurity = "none"\ntimeout = 5\n'
                f'[delivery]\noutbox_dir = "{root / "outbox"}"\nbackoff_seconds = 1\nbackoff_max_seconds = 30\n'
            )
            child = subprocess.Popen(
                [sys.executable, "-m", "digest", "send"],
                cwd=root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if run % 2:  # a random moment: start-up, ranking, rendering, sending or done
                time.sleep(rng.uniform(0.3, 4.0))
            else:  # a random point in the sending phase: after the server took k messages
                k = rng.randint(1, PEOPLE - 1)
                deadline = time.monotonic() + 30
                while len(server.box.messages) < k and child.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.005)
            killed = child.poll() is None
            if killed:
                child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
            accepted_before = len(server.box.messages)
            with Store.open(settings.database.path) as store:
                in_flight = {d.message_id for d in store.deliveries(states=("sending",))}
                # Finish the job as the next run of `digest send` would (its retries' time has come).
                pipeline.send(store, settings, clock=lambda: datetime.now(UTC))
                for _ in range(4):
                    pipeline.deliver(store, settings, clock=lambda: datetime.now(UTC) + timedelta(seconds=60))
                assert {d.state for d in store.deliveries()} == {"sent"}
            copies = Counter(m["Message-ID"] for m in server.box.messages)
            addresses = Counter(m["To"] for m in server.box.messages)
        assert set(addresses) == {f"user{n:03d}@example.org" for n in range(PEOPLE)}, f"run {run}: someone got nothing"
        repeats = {mid for mid, n in copies.items() if n > 1}
        assert all(n <= 2 for n in copies.values())
        assert repeats <= in_flight, f"run {run}: a repeat outside the crash window"
        tally["runs"] += 1
        tally["killed mid-run"] += killed
        tally["killed while messages were going out"] += killed and 0 < accepted_before < PEOPLE
        tally["rows in flight at the kill"] += len(in_flight)
        tally["repeats"] += len(repeats)
        tally["messages"] += sum(copies.values())
    print("\ncrash test:", dict(tally))
    assert tally["killed while messages were going out"] >= RUNS // 2  # the kills really hit the sending phase
