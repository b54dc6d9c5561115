"""Retention: a delivered digest's bodies go after [retention] bodies_days; its history stays, and nothing is
sent twice."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest

from digest import pipeline
from digest.cli import main
from digest.config import RetentionSettings
from digest.store import Store

from .conftest import DUMPS
from .deliverykit import World, make_world


def sent(root: Path, people: int = 3) -> World:
    world = make_world(root, people=people)
    world.write_config(f'[delivery]\noutbox_dir = "{root / "outbox"}"\n')
    assert len(world.send().sent) == people
    return world


def kept_bytes(world: World) -> list[int]:
    with closing(sqlite3.connect(world.settings.database.path)) as conn:
        query = (
            "SELECT coalesce(length(b.mime), 0) + coalesce(length(b.parts), 0) + length(d.body_text)"
            " FROM digests d LEFT JOIN bodies b ON b.digest = d.id ORDER BY d.id"
        )
        return [row[0] for row in conn.execute(query)]


def test_bodies_go_after_bodies_days_and_a_digest_still_owed_keeps_them(tmp_path: Path) -> None:
    world = sent(tmp_path)
    with Store.open(world.settings.database.path) as store:
        [owed] = store.ledger.deliveries(states=None, limit=1)  # the newest: user002's, say it failed
        store.ledger.update(owed.id, "failed", at=world.clock(), error="550 no such user")
        history = {d.subscriber: d.id for d in store.ledger.deliveries()}
        digested = {name: store.digests.digested(name) for name in history}
        early = pipeline.prune(store, world.settings, now=world.clock() + timedelta(days=13))
        dry = pipeline.prune(store, world.settings, now=world.clock() + timedelta(days=15), dry_run=True)
        assert kept_bytes(world) == [b for b in kept_bytes(world) if b > 0]  # the dry run dropped nothing
        done = pipeline.prune(store, world.settings, now=world.clock() + timedelta(days=15))
        again = pipeline.prune(store, world.settings, now=world.clock() + timedelta(days=16))
        assert {name: store.digests.digested(name) for name in history} == digested  # never the same paper twice
        feed = store.digests.papers([history[owed.subscriber]])
    assert (early.bodies, dry.bodies, done.bodies, again.bodies) == (0, 2, 2, 0)
    assert dry.bytes == done.bytes > 10_000  # two emailed digests' MIME bodies and Markdown
    sizes = kept_bytes(world)
    assert sorted(size > 0 for size in sizes) == [False, False, True]  # the failed one's bodies stay
    assert feed[history[owed.subscriber]]  # its items too


def test_a_digest_whose_bodies_went_is_shown_again_from_its_items(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world = sent(tmp_path, people=1)
    monkeypatch.chdir(tmp_path)
    with Store.open(world.settings.database.path) as store:
        last = store.digests.last("user000")
        assert last is not None
        titles = [item.paper.title for item in store.digests.papers([last.id])[last.id]]
        pipeline.prune(store, world.settings, now=world.clock() + timedelta(days=30))
    assert main(["preview", "user000", "--format", "text"]) == 0
    text = capsys.readouterr().out
    shown = " ".join(text.split())  # titles wrap
    assert titles and all(title in shown for title in titles)  # made again from its items: the same papers


def test_the_daily_run_prunes_at_its_end_and_says_so(tmp_path: Path) -> None:
    world = sent(tmp_path)
    world.settings = world.settings.model_copy(update={"retention": RetentionSettings(bodies_days=1)})
    world.clock.advance(2 * 86400)  # two days on: yesterday's edition and the first digests' age
    report = world.send()
    assert report.made and report.pruned == 3  # the first day's three; today's keep theirs
    assert sorted(size > 0 for size in kept_bytes(world)) == [False, False, False, True, True, True]


def test_prune_by_hand_says_what_it_would_free_then_frees_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world = sent(tmp_path)
    monkeypatch.chdir(tmp_path)
    with closing(sqlite3.connect(world.settings.database.path)) as conn, conn:  # made a month ago
        conn.execute("UPDATE digests SET created_at = '2020-01-01T00:00:00+00:00'")
    assert main(["prune", "--dry-run", "--json"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["dry_run"] is True and line["bodies"] == 3 and line["bodies_days"] == 14
    assert all(size > 0 for size in kept_bytes(world))
    assert main(["prune"]) == 0
    said = capsys.readouterr().out
    assert said.startswith("dropped the bodies of 3 digests delivered over 14 days ago (")
    assert not any(kept_bytes(world))


def test_run_once_prunes_after_its_pass_as_a_logged_event(tmp_path: Path) -> None:
    import io

    from digest import events, schedule

    world = sent(tmp_path)
    world.clock.advance(15 * 86400)
    out = io.StringIO()
    daemon = schedule.Daemon(world.settings, log=events.EventLog(stream=out, clock=world.clock), clock=world.clock)
    assert daemon.once(look_twice_after=0) == 0
    lines = out.getvalue().splitlines()
    [pruned] = [line for line in lines if " pruned " in line]
    assert " bodies=3 " in pruned and lines[-1].split()[1] == "done"  # after the pass, before its last line


def test_history_goes_after_history_days_and_no_paper_is_ever_sent_twice(tmp_path: Path) -> None:
    world = sent(tmp_path)
    world.settings = world.settings.model_copy(update={"retention": RetentionSettings(history_days=30)})
    database = world.settings.database.path
    with Store.open(database) as store:
        got = {name: store.digests.digested(name) for name in ("user000", "user001", "user002")}
        store.feedback.vote("user000", next(iter(got["user000"])), 1, edition=None, at=world.clock())
        world.clock.advance(31 * 86400)
        dry = pipeline.prune(store, world.settings, now=world.clock(), dry_run=True)
        done = pipeline.prune(store, world.settings, now=world.clock())
        assert store.digests.last("user000") is None and store.ledger.deliveries() == []
        assert len(store.feedback.votes("user000")) == 1  # a vote a month old still counts
        # Who received those papers is not kept: each was first seen before the history cut-off, where no
        # edition's window reaches any more.
        assert store.db.conn.execute("SELECT count(*) FROM received").fetchone()[0] == 0
    assert dry == pipeline.Pruned(3, dry.bytes, digests=3, sightings=dry.sightings, dry_run=True)
    assert done.digests == 3 and done.sightings == dry.sightings > 0 and not done.dry_run
    assert done.reclaimed > 0 and dry.reclaimed == 0  # the freed pages went back to the file system
    with closing(sqlite3.connect(database)) as conn:
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # a new database is made so
        assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0
    # The same papers on today's page again (a list that repeats them), with the subscribers' history gone
    # and user002's last digest forgotten: none of them is sent again.
    again = tmp_path / "again.txt"
    again.write_bytes(next(DUMPS.glob("*.txt")).read_bytes() + b"\n")
    with Store.open(database) as store:
        for _ in pipeline.ingest_files([again], papers=store.papers, settings=world.settings, now=world.clock()):
            pass
    world.clock.advance(3600)
    report = world.send()
    with Store.open(database) as store:
        for name, papers in got.items():
            new = store.digests.last(name)
            items = {paper for paper, _, _, _ in store.digests.items(new.id)} if new else set()
            assert not items & papers  # never the same paper twice
    assert report.made or report.skipped or report.sent
    with Store.open(database) as store:
        world.clock.advance(500 * 86400)
        assert pipeline.prune(store, world.settings, now=world.clock()).votes == 1  # 8 half-lives on: it goes


def test_no_window_reaches_past_history_days_so_nothing_forgotten_can_come_again(tmp_path: Path) -> None:
    world = sent(tmp_path, people=1)
    with Store.open(world.settings.database.path) as store:
        subscriber = store.subscribers.get("user000")
    assert subscriber is not None
    profile, fire = pipeline.stored_profile(subscriber), world.clock()
    long_ago = fire - timedelta(days=45)  # a latest digest older than history_days (its delivery never ended)
    assert pipeline.window_start(profile, fire, long_ago, history_days=30) == fire - timedelta(days=30)
    assert pipeline.window_start(profile, fire, fire - timedelta(days=2), history_days=30) == fire - timedelta(days=2)


def test_expired_and_long_confirmed_sign_ups_go_and_a_fresh_one_stays(tmp_path: Path) -> None:
    world = sent(tmp_path, people=1)
    now = world.clock()
    with Store.open(world.settings.database.path) as store:
        for name, age, confirmed in (
            ("fresh", timedelta(hours=1), False),  # its link still works
            ("expired", timedelta(hours=49), False),  # its link expired (48 hours)
            ("recent", timedelta(days=20), True),  # confirmed, within history_days
            ("old", timedelta(days=401), True),  # confirmed over history_days (400) ago
        ):
            store.signups.add(name, email=f"{name}@example.org", profile="p", at=now - age)
            if confirmed:
                store.signups.confirm(name, at=now - age)
        dry = pipeline.prune(store, world.settings, now=now, dry_run=True)
        done = pipeline.prune(store, world.settings, now=now)
        left = {row[0] for row in store.db.conn.execute("SELECT id FROM signups")}
    assert (dry.signups, done.signups, dry.anything) == (2, 2, True)
    assert left == {"fresh", "recent"}
