"""Every schema a release left behind opens with the current code: upgraded, every row kept, nothing sent twice."""

from __future__ import annotations

import logging
import sqlite3
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest

from digest import pipeline, render, store
from digest.models import Message
from digest.store import Store
from digest.store.packing import compress, pack

from .conftest import DUMPS
from .deliverykit import START, make_world
from .schemas import released

THEN = (START - timedelta(days=3)).isoformat(timespec="seconds")
EDITION = (START - timedelta(days=3)).date().isoformat()
PROFILE = 'email = "ada@example.org"\nkeywords = ["diffusion model", "language model", "agents"]\n'
WHY = '[{"kind": "keyword", "label": "agents", "score": 0.5, "where": ["title"], "detail": null}]'

# A value for every column any released schema has, by table (then by column name alone): a migration
# that adds a column without a value here fails this test until one is added.
BY_TABLE: dict[str, dict[str, object]] = {
    "dumps": {"id": 1, "source": "old.txt", "sha256": "0" * 64},
    "papers": {"id": "old-paper", "title": "An Old Paper About Agents"},
    "digests": {"id": 1, "created_at": THEN, "new_count": 1},
    "deliveries": {"id": 1, "state": "sent", "kind": "outbox", "channel": "outbox", "updated_at": THEN},
    "signups": {"id": "s1", "profile": PROFILE, "created_at": THEN},
    "paper_aliases": {"paper": "old-paper"},
    "profile_files": {"name": "ada", "hash": "h"},
    "fetches": {"sha256": None},
    "bounces": {
        "id": 1,
        "source": "imap",
        "kind": "hard",
        "delivery": 1,
        "reason": "mailbox unknown",
        "status": "5.1.1",
    },
    "suspensions": {"address": "gone@example.org", "subscriber": None, "kind": "hard", "reason": "mailbox unknown"},
    "claims": {"holder": "old-host:1", "lease_until": THEN},
}
BY_COLUMN: dict[str, object] = {
    "layout": "cards", "page_date": EDITION, "paper_count": 1, "new_count": 1, "warning_count": 0,
    "ingested_at": THEN, "norm_title": "an old paper about agents", "abstract": "Agents, once.",
    "authors_count": 3, "organization": None, "published": EDITION, "first_dump": 1, "first_seen": THEN,
    "authors": '["Ada"]', "comments": 0, "github_repo": None, "github_stars": None, "project_page": None,
    "ai_summary": None, "dump": 1, "paper": "old-paper", "position": 1, "upvotes": 5,
    "name": "ada", "source": None, "profile": PROFILE, "profile_hash": "h", "status": "active",
    "paused_until": None, "created_at": THEN, "updated_at": THEN, "unsubscribed_by": None,
    "unsubscribed_at": None, "held_noted": 0, "link_key": "k" * 24, "joined_at": None,
    "subscriber": "ada", "edition": EDITION, "subject": "Your digest", "body_text": "text\n",
    "body_html": "<p>html</p>", "body_markdown": "# md\n", "body": None, "mail": None,
    "digest": 1, "rank": 1, "score": 0.5, "why": WHY, "target": None, "message_id": "<old@localhost>",
    "payload": None, "attempts": 1, "parts_sent": 0, "next_try": None, "last_error": None, "sent_at": THEN,
    "vote": 1, "at": THEN, "email": "someone@example.org", "confirmed_at": None, "mailed_at": THEN,
    "alias": "old-alias", "day": EDITION, "outcome": "new", "items": 1, "etag": None, "detail": None,
    "path": "/nowhere/ada.toml", "folder": "/nowhere", "size": 1, "mtime_ns": 1, "checked_ns": 1,
    "listing": "x", "mime": None, "parts": None, "purpose": "signup", "address": "ada@example.org",
    "diagnostic": "", "since": THEN, "holder": None, "lease_until": None,
}  # fmt: skip
ORDER = ("dumps", "papers", "sightings", "paper_aliases", "subscribers", "digests", "digest_items", "deliveries",
         "feedback", "signups", "fetches", "profile_files", "profile_folders", "received", "bodies", "bounces",
         "suspensions", "claims")  # fmt: skip


def at_version(path: Path, version: int) -> dict[str, int]:
    """A database as the released migrations left it at ``version``, a row in every table; its row counts."""
    with released(path, version) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert tables <= set(ORDER), f"a table this test does not fill: {sorted(tables - set(ORDER))}"
        for table in (t for t in ORDER if t in tables):
            columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
            values = [BY_TABLE.get(table, {}).get(c, BY_COLUMN.get(c, KeyError)) for c in columns]
            missing = [c for c, v in zip(columns, values, strict=True) if v is KeyError]
            assert not missing, f"{table}: give the test a value for {missing}"
            marks = ", ".join("?" * len(columns))
            conn.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", values)
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


@pytest.mark.slow
@pytest.mark.parametrize("version", range(1, store.SCHEMA_VERSION))
def test_a_database_of_every_released_schema_upgrades_keeps_its_rows_and_sends_nothing_twice(
    tmp_path: Path, version: int, caplog: pytest.LogCaptureFixture
) -> None:
    world = make_world(tmp_path, people=0)  # settings, a clock and a subscribers folder
    old = tmp_path / "old.sqlite3"
    before = at_version(old, version)
    (tmp_path / "subscribers" / "ada.toml").write_text(PROFILE)
    settings = world.settings.model_copy(update={"database": world.settings.database.model_copy(update={"path": old})})
    with caplog.at_level(logging.WARNING, logger="digest.store"), Store.open(old) as db:
        assert db.papers.status().schema_version == store.SCHEMA_VERSION
    copy = tmp_path / f"old.pre-v{version}.sqlite3"
    said = f"upgraded {old} from schema {version} to {store.SCHEMA_VERSION} (backup: {copy}; vacuumed once in "
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith(said)
    with closing(sqlite3.connect(old)) as conn:
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # INCREMENTAL: retention gives space back
    with closing(sqlite3.connect(old)) as conn:
        after = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in before}
    assert after == before  # every row kept
    with Store.open(old) as db:
        for _ in pipeline.ingest_files([DUMPS], papers=db.papers, settings=settings, now=world.clock()):
            pass
        report = pipeline.run_daily(db, settings, clock=world.clock)
        old_row = db.ledger.get(1)
        editions = {d.edition for d in db.digests.recent("ada", limit=10)}
    assert report.sent  # the upgraded database makes and delivers the day's digest
    if "deliveries" in before:  # the old digest's delivery went out before the upgrade: never again
        assert old_row is not None and (old_row.state, old_row.attempts) == ("sent", 1)
        assert all(d.digest != 1 for d in report.sent)
    if "digests" in before:
        assert EDITION in {e.isoformat() for e in editions}  # the old digest is still the reader's history


def test_a_digest_kept_twice_before_schema_14_is_kept_once_after_and_reads_back_exactly(tmp_path: Path) -> None:
    message = Message("Your digest", "text \u25b2\n", "<p>html \u2014 &#39;ok&#39;</p>", "# md\n")
    mime = render.mime_body(message)
    old = tmp_path / "old.sqlite3"
    with released(old, 13) as conn:
        conn.execute(
            "INSERT INTO subscribers (name, profile, profile_hash, status, created_at, updated_at)"
            " VALUES ('ada', ?, 'h', 'active', ?, ?)",
            (PROFILE, THEN, THEN),
        )
        conn.execute(
            "INSERT INTO digests (subscriber, edition, created_at, subject, body, mail) VALUES ('ada', ?, ?, ?, ?, ?)",
            (EDITION, THEN, message.subject, compress([message.text.encode(), message.html.encode(), b"# md\n", b""]),
             pack(mime)),
        )  # fmt: skip
    with Store.open(old) as db:
        stored = db.digests.get(1)
    assert (stored.text, stored.html, stored.markdown, stored.mime) == (message.text, message.html, "# md\n", mime)
    with closing(sqlite3.connect(old)) as conn:
        assert conn.execute("SELECT body, mail FROM digests").fetchone() == (None, None)  # moved, not copied
        assert conn.execute("SELECT count(*) FROM bodies").fetchone()[0] == 1
