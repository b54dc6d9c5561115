"""The daemon over weeks: 40 simulated days of its jobs, a dump a day, retention on schedule, flat memory."""

from __future__ import annotations

import gc
import io
import json
import tracemalloc
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest import events, schedule
from digest.config import RetentionSettings
from digest.store import Store

from .test_schedule import person, world_with

DAYS = 40
START = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
PEOPLE = ("ada", "ben", "chen")


TOPICS = ("agents", "retrieval", "video", "speech", "robots", "proteins", "graphs", "code", "maths", "music")


def day_dump(folder: Path, day: int) -> None:
    """Day ``day``'s list as Hugging Face's JSON: ten papers of its own, each about learning something."""
    published = (START + timedelta(days=day)).strftime("%Y-%m-%dT05:00:00.000Z")
    items = [
        {
            "paper": {
                "id": f"2611.{day:02d}{n:03d}",
                "title": f"Learning {topic} at scale, day {day}",
                "summary": f"We study learning for {topic}. It works on day {day}.",
                "authors": [{"name": "Ada"}],
                "publishedAt": published,
                "upvotes": n,
            },
            "publishedAt": published,
        }
        for n, topic in enumerate(TOPICS)
    ]
    (folder / f"hf-day-{day:02d}.json").write_text(json.dumps(items), encoding="utf-8")


@pytest.mark.slow
def test_forty_days_of_the_daemon_send_each_digest_once_prune_on_schedule_and_stay_flat(tmp_path: Path) -> None:
    world = world_with(tmp_path, {name: person(name, "UTC", "07:00") for name in PEOPLE}, dumps=[])
    world.settings = world.settings.model_copy(update={"retention": RetentionSettings(bodies_days=7, history_days=30)})
    out = io.StringIO()
    world.clock.now = START
    daemon = schedule.Daemon(world.settings, log=events.EventLog(stream=out, clock=world.clock), clock=world.clock)
    sizes: dict[int, int] = {}
    tracemalloc.start()
    try:
        for day in range(DAYS):
            day_dump(tmp_path / "dumps", day)
            for hour in (1, 2, 3):  # the polls that see the dump settle, take it, and the 07:00 edition
                world.clock.now = START + timedelta(days=day, hours=hour)
                daemon.tick()
            world.clock.now = START + timedelta(days=day, hours=21, minutes=30)  # 03:30 UTC: the prune job
            daemon.prune()
            if day in (10, DAYS - 1):
                gc.collect()  # what is kept, not the garbage the cycle collector (paused while making) owes
                sizes[day] = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    with Store.open(world.settings.database.path) as store:
        deliveries = store.ledger.deliveries()
        recent = {name: store.digests.recent(name, limit=100) for name in PEOPLE}
        kept = {name: [d.edition for d in digests] for name, digests in recent.items()}
        in_kept = {
            name: sum(len(items) for items in store.digests.papers([d.id for d in digests]).values())
            for name, digests in recent.items()
        }
        received = {name: len(store.digests.digested(name)) for name in PEOPLE}
    per_edition = Counter((d.subscriber, d.edition) for d in deliveries)
    assert set(per_edition.values()) == {1} and all(d.state == "sent" for d in deliveries)  # once each
    files = Counter(p.parent.parent.name for p in (tmp_path / "outbox").glob("*/new/*.eml"))
    assert files == Counter(dict.fromkeys(PEOPLE, DAYS))  # every day's digest went out, once
    newest = (START + timedelta(days=DAYS - 1)).date()
    for name in PEOPLE:
        assert kept[name] and min(kept[name]) >= newest - timedelta(days=31)  # history_days on schedule
        assert received[name] >= in_kept[name] > 0  # every paper of the digests kept is known as received
    assert " pruned " in out.getvalue() and "digests=" in out.getvalue()
    assert sizes[DAYS - 1] - sizes[10] < 4 * 2**20  # memory of day 40 within a few MB of day 10's
