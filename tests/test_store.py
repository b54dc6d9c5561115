"""The store on a real SQLite file and a real PostgreSQL database: seen-set, sightings, re-ingest, digests and
their content; SQLite's own: migrations, file mode."""

from __future__ import annotations

import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

import digest
from digest import ingest, render, store
from digest.errors import StoreError
from digest.models import Dump, Message, NewDelivery, Ranked, Reason, ReasonKind
from digest.store import Location, PreparedDigest, Store, prepare
from digest.store.packing import compress, decompress

from .conftest import DUMPS, SEED_COUNTS, TODAY
from .dumpgen import Card, cards

NOW = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)


def load(name: str) -> tuple[Dump, str]:
    dump, raw = ingest.load(DUMPS / name, today=TODAY, max_bytes=50 << 20)
    return dump, raw.sha256


def test_seeds_in_order_give_443_papers_429_new_14_seen(database: Location) -> None:
    with Store.open(database) as db:
        results = []
        for name in sorted(SEED_COUNTS):
            dump, sha = load(name)
            results.append(db.papers.ingest(dump, sha256=sha, at=NOW))
        assert [(r.record.papers, r.record.new, r.record.seen) for r in results] == [
            (226, 226, 0),
            (56, 56, 0),
            (86, 84, 2),
            (75, 63, 12),
        ]
        status = db.papers.status()
        assert (status.dumps, status.papers, status.sightings) == (4, 429, 443)


def test_same_bytes_again_is_a_no_op_across_reopen(database: Location) -> None:
    dump, sha = load("002_de1b89f38ace8a1e.txt")
    with Store.open(database) as db:
        first = db.papers.ingest(dump, sha256=sha, at=NOW)
    with Store.open(database) as db:
        again = db.papers.ingest(dump, sha256=sha, at=datetime(2027, 1, 1, tzinfo=UTC))
        assert again.repeat and not first.repeat
        assert again.record == first.record
        assert db.papers.status().sightings == 86


def test_a_paper_seen_before_is_not_new_and_gains_missing_fields(database: Location) -> None:
    bare = ingest.parse(cards([Card("Shared Paper Title", None)]), source="a.txt", today=TODAY)
    rich = ingest.parse(
        cards(
            [
                Card(
                    "shared paper title.",
                    "Now with an abstract. It is long enough to be one.",
                    "3 authors",
                    "Jan 2, 2024",
                    9,
                )
            ]
        ),
        source="b.txt",
        today=TODAY,
    )
    with Store.open(database) as db:
        assert db.papers.ingest(bare, sha256="a" * 64, at=NOW).record.new == 1
        second = db.papers.ingest(rich, sha256="b" * 64, at=NOW)
        assert (second.record.new, second.record.seen) == (0, 1)
        [row] = db.papers.seen()
    assert row.paper.title == "Shared Paper Title"  # the first sighting's title stays
    assert row.paper.abstract == "Now with an abstract. It is long enough to be one."
    assert (row.paper.authors_count, row.sightings, row.first_dump) == (3, 2, "a.txt")


def test_sightings_keep_position_and_upvotes(database: Location) -> None:
    dump, sha = load("001_dc7b62520b3cf1f2.txt")
    with Store.open(database) as db:
        db.papers.ingest(dump, sha256=sha, at=NOW)
        rows = db.db.conn.execute(
            "SELECT position, upvotes FROM sightings WHERE upvotes IS NOT NULL ORDER BY position"
        ).fetchall()
    positions = [p.position for p in dump.papers if p.upvotes is not None]
    assert [tuple(row) for row in rows] == [(positions[0], 1), (positions[1], 2)]


def test_papers_new_in_one_dump_and_find_dump_by_name_id_or_hash(database: Location) -> None:
    with Store.open(database) as db:
        for name in sorted(SEED_COUNTS):
            dump, sha = load(name)
            db.papers.ingest(dump, sha256=sha, at=NOW)
        record = db.papers.find_dump("003_7a5f3204ee6361bf.txt")
        assert record is not None
        assert db.papers.find_dump(str(record.id)) == record == db.papers.find_dump(record.sha256[:8])
        assert db.papers.find_dump("nothing.txt") is None
        new = db.papers.seen(first_dump=record.id)
        assert len(new) == 63
        assert all(p.first_dump.endswith("003_7a5f3204ee6361bf.txt") for p in new)
        assert len(db.papers.seen(limit=5)) == 5


def test_database_file_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dir" / "d.sqlite3"
    with Store.open(path):
        pass
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {store.SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer than this paper-digest understands"), Store.open(path):
        pass


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite3"
    path.write_bytes(b"this is not sqlite at all, just some text " * 100)
    with pytest.raises(StoreError, match=r"not a SQLite database .*restore it from your backup"), Store.open(path):
        pass


def test_a_failed_ingest_leaves_nothing_behind(database: Location) -> None:
    dump, sha = load("003_7a5f3204ee6361bf.txt")
    broken = Dump(source=dump.source, layout=dump.layout, page_date=dump.page_date, papers=(*dump.papers, None))  # type: ignore[arg-type]
    with Store.open(database) as db:
        with pytest.raises(AttributeError):
            db.papers.ingest(broken, sha256=sha, at=NOW)
        assert (db.papers.status().dumps, db.papers.status().papers) == (0, 0)
        assert not db.papers.ingest(dump, sha256=sha, at=NOW).repeat


def test_version_1_database_migrates_keeping_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:
        for statement in store.MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
        conn.execute(
            "INSERT INTO dumps (sha256, source, layout, ingested_at) VALUES ('ab', 'x.txt', 'flat', '2026-01-01')"
        )
    with Store.open(path) as db:
        assert db.papers.status().schema_version == store.SCHEMA_VERSION
        assert db.papers.status().dumps == 1
        assert db.subscribers.all() == []


def test_subscribers_and_digests(database: Location) -> None:
    dump, sha = load("003_7a5f3204ee6361bf.txt")
    with Store.open(database) as db:
        db.papers.ingest(dump, sha256=sha, at=NOW)
        assert db.subscribers.save("ada", text="a", profile_hash="1", source="s/ada.toml", at=NOW) == "added"
        assert db.subscribers.save("ada", text="a", profile_hash="1", source="s/ada.toml", at=NOW) == "unchanged"
        assert db.subscribers.save("ada", text="b", profile_hash="2", source="s/ada.toml", at=NOW) == "updated"
        assert db.subscribers.set_status("ada", "unsubscribed", at=NOW)  # by the operator: it sticks
        assert db.subscribers.all() == []
        assert db.subscribers.save("ada", text="b", profile_hash="2", source="s/ada.toml", at=NOW) == "held"
        assert db.subscribers.save("ada", text="b", profile_hash="2", source="s/ada.toml", at=NOW) == "unchanged"
        assert db.subscribers.all() == []
        saved = db.subscribers.save("ada", text="b", profile_hash="2", source="s/ada.toml", at=NOW, resubscribe=True)
        assert saved == "resubscribed"
        assert db.subscribers.set_status(
            "ada", "unsubscribed", at=NOW, by="file"
        )  # its file went away: it comes back with it
        assert db.subscribers.save("ada", text="b", profile_hash="2", source="s/ada.toml", at=NOW) == "resubscribed"
        assert not db.subscribers.set_status("nobody", "paused", at=NOW)
        item = Ranked(
            paper=dump.papers[0], rank=1, score=0.5, why=(Reason(ReasonKind.KEYWORD, "tracking", 0.5, ("title",)),)
        )
        made = PreparedDigest("ada", "2026-11-23", [item])
        assert db.digests.save([made], at=NOW)[0] is not None
        assert db.digests.save([made], at=NOW) == [None]
        assert db.digests.digested("ada") == {dump.papers[0].id}
        assert db.digests.digested("someone else") == set()


def test_reasons_are_kept_once_per_digest_and_read_back_exactly_beside_items_frozen_before(
    database: Location,
) -> None:
    """A digest's reasons are one record (schema 17); an item frozen before keeps its own JSON, and both read
    back as they were: for `digest explain`, the feed and the ranking's memory of what was shown."""
    dump, sha = load("003_7a5f3204ee6361bf.txt")
    why = [
        (Reason(ReasonKind.KEYWORD, "model compression", 0.41234567891, ("title", "abstract"), "compression"),),
        (
            Reason(ReasonKind.SEED, "PD-Quant: “Post-Training” ▲", 0.2, (), "liked"),
            Reason(ReasonKind.TRENDING, "", 0.0),
        ),
        (),
    ]
    items = [Ranked(paper, n, 1.0 / n, w) for n, (paper, w) in enumerate(zip(dump.papers, why, strict=False), 1)]
    old = (Reason(ReasonKind.KEYWORD, "tracking", 0.5, ("title",)),)
    with Store.open(database) as db:
        db.papers.ingest(dump, sha256=sha, at=NOW)
        db.subscribers.save("ada", text="a", profile_hash="1", source="s/ada.toml", at=NOW)
        [new, before] = db.digests.save(
            [PreparedDigest("ada", "2026-11-23", items), PreparedDigest("ada", "2026-11-22", items[:1])], at=NOW
        )
        assert new is not None and before is not None
        with db.db.transaction() as conn:  # as an item frozen before schema 17 is kept
            conn.execute("UPDATE digests SET reasons = NULL WHERE id = ?", (before,))
            conn.execute(
                "UPDATE digest_items SET why = ? WHERE digest = ?",
                (
                    '[{"kind": "keyword", "label": "tracking", "score": 0.5, "where": ["title"], "detail": null}]',
                    before,
                ),
            )
        assert [w for _, _, _, w in db.digests.items(new)] == why
        assert [w for _, _, _, w in db.digests.items(before)] == [old]
        papers = db.digests.papers([new, before])
        assert [r.why for r in papers[new]] == why and [r.why for r in papers[before]] == [old]
        assert db.db.conn.execute("SELECT count(*) FROM digest_items WHERE why != ''").fetchone()[0] == 1


def test_a_retry_is_never_due_before_its_time_even_within_the_second(database: Location) -> None:
    """The ledger keeps whole seconds: a backoff of 0.4 s must not make the row due again at once (the same run
    tried it twice), so its time is rounded up, never down."""
    from datetime import timedelta

    with Store.open(database) as db:
        db.subscribers.save("ada", text="a", profile_hash="1", source="s/ada.toml", at=NOW)
        delivery = NewDelivery("email:ada@example.org", "email", "ada@example.org", "<m@x>")
        db.digests.save([PreparedDigest("ada", "2026-11-23", [], deliveries=[delivery])], at=NOW)
        [row] = db.ledger.due(NOW)
        db.ledger.update(row.id, "retry", at=NOW, attempts=1, next_try=NOW + timedelta(seconds=0.4))
        assert db.ledger.due(NOW) == [] and db.ledger.due(NOW + timedelta(seconds=0.9)) == []
        assert [d.id for d in db.ledger.due(NOW + timedelta(seconds=1))] == [row.id]


def test_digest_content_is_stored_once_compressed_and_read_back_whole(database: Location) -> None:
    dump, sha = load("003_7a5f3204ee6361bf.txt")
    html = "".join(
        f"<p style='margin: 0;color: #1f2937;'>{p.title} &#183; {p.abstract} — ok</p>\n" for p in dump.papers
    )
    message = Message("Your papers · Mon", "plain ▲ text\nline two  \nend\n", html.rstrip("\n"), "# Markdown ✓\n")
    with Store.open(database) as db:
        db.papers.ingest(dump, sha256=sha, at=NOW)
        db.subscribers.save("ada", text="a", profile_hash="1", source="s/ada.toml", at=NOW)
        mime = render.mime_body(message)
        crlf = Message(message.subject, "a text\r\nwith CR LF", message.html, "")  # not given back as it was
        [mailed, plain, kept] = db.digests.save(
            [
                prepare("ada", "2026-11-23", [], message, new_count=0, mime=mime),
                prepare("ada", "2026-11-24", [], message, new_count=0),
                prepare("ada", "2026-11-25", [], crlf, new_count=0, mime=render.mime_body(crlf)),
            ],
            at=NOW,
        )
        assert mailed is not None and plain is not None and kept is not None
        stored = {i: db.digests.get(i) for i in (mailed, plain, kept)}
        rows = {row[0]: bytes(row[1]) for row in db.db.conn.execute("SELECT digest, parts FROM bodies")}
        old_columns = db.db.conn.execute("SELECT max(length(body_text || body_html)) FROM digests").fetchone()[0]
    assert (stored[mailed].mime, stored[plain].mime) == (mime, b"")
    for i, sent in ((mailed, message), (plain, message), (kept, crlf)):
        assert (stored[i].subject, stored[i].text, stored[i].html, stored[i].markdown) == (
            sent.subject, sent.text, sent.html, sent.markdown,
        )  # fmt: skip
    assert old_columns == 0 and dump.papers[0].title.encode() not in rows[plain]
    # Beside the MIME body, only what it does not give back: the Markdown; for the CR LF text, that text.
    assert decompress(rows[mailed]) == [b"", b"", message.markdown.encode()]
    assert decompress(rows[kept]) == [crlf.text.encode(), b"", b""]
    assert len(rows[plain]) * 2 < len(html)  # prose compresses least; a real email digest (markup) to a sixth


def test_sending_email_reads_only_the_mime_body_and_older_digests_still_send(database: Location) -> None:
    message = Message("Grüße · Mon", "plain text\n", "<p>html</p>", "# md\n")
    mime = render.mime_body(message)
    with Store.open(database) as db:
        db.subscribers.save("ada", text="a", profile_hash="1", source="s/ada.toml", at=NOW)
        [new, old] = db.digests.save(
            [
                prepare("ada", "2026-11-23", [], message, new_count=4, mime=mime),
                prepare("ada", "2026-11-24", [], message, new_count=0),
            ],
            at=NOW,
        )
        assert new is not None and old is not None
        # A digest made before schema 9, as schema 14 moved it: the MIME body inside the one frame.
        db.db.conn.execute(
            "UPDATE bodies SET parts = ?, mime = NULL WHERE digest = ?",
            (compress([b"plain text\n", b"<p>html</p>", b"# md\n", mime]), old),
        )
        mailed = db.digests.mail([new, old])
        assert (mailed[new].subject, mailed[new].mime, mailed[new].new_count) == (message.subject, mime, 4)
        assert (mailed[new].text, mailed[new].html, mailed[new].markdown) == ("", "", "")  # not read
        assert (mailed[old].mime, mailed[old].text) == (mime, "plain text\n")  # read whole, as before
        assert db.digests.get(new).mime == mime and db.digests.get(new).html == "<p>html</p>"


def test_digests_made_before_compression_still_read_back(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:
        for migration in store.MIGRATIONS[:3]:
            for statement in migration:
                conn.execute(statement)
        conn.execute("PRAGMA user_version = 3")
        conn.execute(
            "INSERT INTO subscribers (name, profile, profile_hash, status, created_at, updated_at)"
            " VALUES ('ada', 'a', '1', 'active', '2026-11-22', '2026-11-22')"
        )
        conn.execute(
            "INSERT INTO digests (subscriber, edition, created_at, subject, body_text, body_html,"
            " body_markdown) VALUES ('ada', '2026-11-22', '2026-11-22T06:00:00+00:00', 's', 't', 'h', 'm')"
        )
    with Store.open(path) as db:
        assert db.papers.status().schema_version == store.SCHEMA_VERSION
        [old] = db.digests.get_many([1]).values()
        assert (old.subject, old.text, old.html, old.markdown) == ("s", "t", "h", "m")


def test_the_corpus_is_fitted_once_per_archive_version(database: Location) -> None:
    from digest import pipeline
    from digest.config import Settings

    settings, now = Settings(), NOW
    first, sha = load("001_dc7b62520b3cf1f2.txt")
    with Store.open(database) as db:
        db.papers.ingest(first, sha256=sha, at=NOW)
        space = pipeline.corpus(db, first.papers, settings=settings, now=now)
        assert pipeline.corpus(db, settings=settings, now=now) is space  # stored papers need no refit
        second, sha2 = load("002_de1b89f38ace8a1e.txt")
        assert pipeline.corpus(db, second.papers, settings=settings, now=now) is not space  # unstored ones join
        assert pipeline.corpus(db, settings=settings, now=now) is space
        db.papers.ingest(second, sha256=sha2, at=NOW)
        refitted = pipeline.corpus(db, settings=settings, now=now)
        assert refitted is not space and refitted.size == 56 + 86  # these two dumps share no paper


def test_the_corpus_holds_what_the_service_remembers_and_every_seed(database: Location) -> None:
    """Papers first seen over history_days ago leave the corpus, so a day's ranking stops growing with the
    archive; a profile's seed stays in it however old."""
    from datetime import timedelta

    from digest import pipeline
    from digest.config import Settings

    settings = Settings()
    first, sha = load("001_dc7b62520b3cf1f2.txt")
    second, sha2 = load("002_de1b89f38ace8a1e.txt")
    seed = first.papers[0]
    later = NOW + timedelta(days=settings.retention.history_days + 2)
    with Store.open(database) as db:
        db.papers.ingest(first, sha256=sha, at=NOW)
        db.papers.ingest(second, sha256=sha2, at=later - timedelta(days=1))
        assert pipeline.corpus(db, settings=settings, now=later).size == 86  # the first dump is forgotten
        profile = f'email = "ada@example.org"\nkeywords = ["agents"]\nseeds = ["{seed.title}"]\n'
        db.subscribers.save("ada", text=profile, profile_hash="1", source="s/ada.toml", at=NOW)
        space = pipeline.corpus(db, settings=settings, now=later)
        assert space.size == 86 + 1 and space.seed_row(seed.norm_title) is not None  # but not its seed


def test_the_minor_version_is_the_schema_version() -> None:
    # CONTRIBUTING.md, "Versions": before 1.0 a release with a migration bumps the minor version.
    major, minor, _patch = (int(part) for part in digest.__version__.split("."))
    assert (major, minor) == (0, store.SCHEMA_VERSION), "a migration was added: bump the minor version"
