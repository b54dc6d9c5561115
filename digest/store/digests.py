"""Frozen digests: one per (subscriber, edition), with its items and its rendered content.

``digests`` and ``digest_items`` hold each digest as it was made, before
anything is sent: its papers, ranks, scores and reasons. A paper goes into a
subscriber's digests once, ever. Its content is kept once, in ``bodies``
(schema 14), a row that retention deletes whole:

* ``mime``: an email digest's MIME body as a zstd frame, all that sending
  reads; its text and HTML are read back from it (``render.alternatives``).
* ``parts``: one zstd frame (``compress``) of the text, HTML and Markdown the
  MIME body does not give back: the Markdown when a channel delivers it, and
  for a digest that is not mailed, its text and HTML. An empty text or HTML
  part beside a MIME body means "read it from the MIME body".

Digests made before schema 4 keep their content in ``body_text``,
``body_html`` and ``body_markdown``.

An item's reasons (the "why" of its score) are kept with its digest, one
record for all its items (``digests.reasons``, schema 17: ``packing.reasons_record``);
items frozen before keep theirs in ``digest_items.why``, a JSON object per
reason, and items frozen since leave that empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from digest import render
from digest.models import Message, NewDelivery, Ranked, Reason, StoredDigest
from digest.store.db import Part, Row
from digest.store.packing import ReasonsRead, compress, decompress, pack, reasons_record, unpack
from digest.store.papers import paper_of_row


@dataclass(frozen=True, slots=True)
class PreparedDigest:
    """A frozen digest to store with ``Digests.save``: items, packed content and deliveries.

    Made with ``prepare``, which packs the content as the digest is made, so a
    batch waiting to be stored holds a sixth of the bytes. An empty skip-day
    digest has no content: it only marks that the edition was made.
    """

    name: str
    edition: str
    items: list[Ranked]
    subject: str = ""
    parts: bytes | None = None  # what the MIME body does not give back, packed (``compress``)
    new_count: int = 0
    deliveries: list[NewDelivery] = field(default_factory=list)
    mime: bytes | None = None  # the MIME body, packed alone (``pack``)


def prepare(
    name: str,
    edition: str,
    items: list[Ranked],
    message: Message,
    *,
    new_count: int,
    deliveries: list[NewDelivery] | None = None,
    mime: bytes = b"",
    gives_back: bool = False,
) -> PreparedDigest:
    """A digest with its rendered message (and ``mime``, its MIME body when it goes out as email) packed,
    each part once: the text and HTML that ``mime`` gives back exactly are not kept beside it.

    ``gives_back``: ``render.email_body`` made ``mime`` and said it gives both back; otherwise they are
    read back from it and compared.
    """
    if gives_back:
        kept = [b"", b"", message.markdown.encode()]
    else:
        text, html = (render.alternatives(mime) if mime else None) or ("", "")
        kept = [
            b"" if text == message.text else message.text.encode(),
            b"" if html == message.html else message.html.encode(),
            message.markdown.encode(),
        ]
    parts = compress(kept) if any(kept) else None
    return PreparedDigest(
        name, edition, items, message.subject, parts, new_count, deliveries or [], pack(mime) if mime else None
    )


class Digests(Part):
    """Queries on digests and their items."""

    def digested(self, name: str) -> set[str]:
        """Ids of every paper in any of the subscriber's digests (those history retention forgot included)."""
        rows = self._conn.execute(
            "SELECT i.paper FROM digest_items i JOIN digests d ON d.id = i.digest WHERE d.subscriber = ?"
            " UNION SELECT paper FROM received WHERE subscriber = ?",
            (name, name),
        )
        return {row[0] for row in rows}

    def save(self, digests: Sequence[PreparedDigest], *, at: datetime) -> list[int | None]:
        """Freeze digests with their items, rendered content and deliveries, in one transaction.

        Returns each one's id, or None where that (subscriber, edition) existed
        already, in which case nothing of it is written. The rows are prepared
        before the transaction starts, so the database is locked only to write.
        """
        stamp = at.isoformat(timespec="seconds")
        rows = [_digest_rows(d, stamp) for d in digests]
        ids: list[int | None] = []
        with self._transaction() as conn:
            for digest, body, items, deliveries in rows:
                cursor = conn.execute(
                    "INSERT INTO digests (subscriber, edition, created_at, subject, new_count, reasons)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id",
                    digest,
                ).fetchone()
                if cursor is None:
                    ids.append(None)
                    continue
                digest_id = int(cursor[0])
                if body is not None:
                    conn.execute("INSERT INTO bodies (digest, mime, parts) VALUES (?, ?, ?)", (digest_id, *body))
                conn.executemany(
                    "INSERT INTO digest_items (digest, paper, rank, score, why) VALUES (?, ?, ?, ?, ?)",
                    [(digest_id, *item) for item in items],
                )
                conn.executemany(
                    "INSERT INTO deliveries (digest, channel, kind, target, message_id, payload, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(digest_id, *delivery) for delivery in deliveries],
                )
                ids.append(digest_id)
            conn.executemany("DELETE FROM claims WHERE subscriber = ?", [(d.name,) for d in digests])
        return ids

    def latest(self) -> dict[str, tuple[datetime, str]]:
        """Every subscriber's latest digest: (made at, edition), in one query."""
        rows = self._conn.execute("SELECT subscriber, max(created_at), max(edition) FROM digests GROUP BY subscriber")
        return {row[0]: (datetime.fromisoformat(row[1]), row[2]) for row in rows}

    def digested_among(self, paper_ids: Sequence[str]) -> dict[str, set[str]]:
        """For each subscriber, which of these papers their digests already had."""
        found: dict[str, set[str]] = {}
        query = (
            "SELECT d.subscriber, i.paper FROM digest_items i JOIN digests d ON d.id = i.digest"
            " WHERE i.paper IN ({marks})"
        )
        for name, paper in self._rows_in(query, paper_ids):
            found.setdefault(name, set()).add(paper)
        for name, paper in self._rows_in("SELECT subscriber, paper FROM received WHERE paper IN ({marks})", paper_ids):
            found.setdefault(name, set()).add(paper)
        return found

    def last_at(self, name: str) -> datetime | None:
        """When the subscriber's latest digest was made."""
        row = self._conn.execute("SELECT max(created_at) FROM digests WHERE subscriber = ?", (name,)).fetchone()
        return datetime.fromisoformat(row[0]) if row and row[0] else None

    def last(self, name: str) -> StoredDigest | None:
        """The subscriber's latest digest (the newest edition), or None before their first."""
        row = self._conn.execute(
            _DIGEST_QUERY + " WHERE d.subscriber = ? ORDER BY d.edition DESC, d.id DESC LIMIT 1", (name,)
        ).fetchone()
        return _stored_digest(row) if row else None

    def items(self, digest_id: int) -> list[tuple[str, int, float, tuple[Reason, ...]]]:
        """A digest's items as frozen: paper id, rank, score and reasons, best first."""
        rows = self._conn.execute(
            "SELECT i.paper, i.rank, i.score, i.why, d.reasons FROM digest_items i JOIN digests d ON d.id = i.digest"
            " WHERE i.digest = ? ORDER BY i.rank",
            (digest_id,),
        ).fetchall()
        kept = ReasonsRead()
        return [(row[0], row[1], row[2], kept.of(row[3], row[4], row[1])) for row in rows]

    def get(self, digest_id: int) -> StoredDigest:
        return self.get_many([digest_id])[digest_id]

    def get_many(self, ids: Sequence[int]) -> dict[int, StoredDigest]:
        """Several frozen digests by id, in few queries."""
        rows = self._rows_in(_DIGEST_QUERY + " WHERE d.id IN ({marks})", sorted(set(ids)))
        return {row["id"]: _stored_digest(row) for row in rows}

    def mail(self, ids: Sequence[int]) -> dict[int, StoredDigest]:
        """Frozen digests as sending email needs them: the subject and the MIME body, nothing else read.

        Their text, HTML and Markdown are empty and ``items`` is 0; a digest
        made before schema 9 is read whole (``get_many``).
        """
        query = (
            "SELECT d.id, d.subscriber, d.edition, d.subject, d.created_at, d.new_count, b.mime"
            " FROM digests d JOIN bodies b ON b.digest = d.id WHERE d.id IN ({marks})"
        )
        found = {}
        for row in self._rows_in(query, sorted(set(ids))):
            if row[6] is not None:
                found[row[0]] = StoredDigest(
                    id=row[0],
                    subscriber=row[1],
                    edition=date.fromisoformat(row[2]),
                    subject=row[3],
                    text="",
                    html="",
                    markdown="",
                    items=0,
                    created_at=datetime.fromisoformat(row[4]),
                    mime=unpack(row[6]),
                    new_count=row[5],
                )
        older = [i for i in ids if i not in found]
        return found | (self.get_many(older) if older else {})

    def drop_bodies(self, *, before: datetime, dry_run: bool = False) -> tuple[int, int]:
        """Drop the content of digests made before ``before`` whose every delivery went out: their MIME body,
        text, HTML and Markdown; their items and reasons stay. (How many digests, how many bytes of content.)

        A digest with a delivery still pending, sending, waiting to retry or failed keeps its bodies.
        """
        stamp = (before.isoformat(timespec="seconds"),)
        count = size = 0
        with self._transaction() as conn:
            for measure, drop in _DROPS:
                found, found_size = conn.execute(measure, stamp).fetchone()
                if found and not dry_run:
                    conn.execute(drop, stamp)
                count, size = count + int(found), size + int(found_size)
        return count, size

    def forget(self, *, before: datetime, dry_run: bool = False) -> int:
        """Forget the digests made before ``before``, their items and their deliveries that ended (sent or
        failed). How many digests.

        A digest with a delivery still under way stays until it ends. Which
        papers each reader received is kept (``received``) only for papers first
        seen after ``before``: no edition's window reaches further back
        (``pipeline.window_start``), so an older paper cannot be sent again, and
        the table stays small instead of growing by every paper every reader got.
        """
        old = (
            " FROM digests d WHERE d.created_at < ?"
            " AND NOT EXISTS (SELECT 1 FROM deliveries x WHERE x.digest = d.id AND x.state NOT IN ('sent', 'failed'))"
        )
        stamp = (before.isoformat(timespec="seconds"),)
        with self._transaction() as conn:
            count = int(conn.execute("SELECT count(*)" + old, stamp).fetchone()[0])
            if dry_run or not count:
                return count
            conn.execute("CREATE TEMP TABLE gone (id INTEGER PRIMARY KEY)")
            try:
                conn.execute("INSERT INTO gone SELECT d.id" + old, stamp)
                conn.execute(
                    "INSERT INTO received (subscriber, paper) SELECT d.subscriber, i.paper"
                    " FROM digest_items i JOIN digests d ON d.id = i.digest JOIN papers p ON p.id = i.paper"
                    " WHERE i.digest IN (SELECT id FROM gone) AND p.first_seen >= ? ON CONFLICT DO NOTHING",
                    stamp,
                )
                for table, column in (
                    ("digest_items", "digest"), ("deliveries", "digest"), ("bodies", "digest"), ("digests", "id")
                ):  # fmt: skip
                    conn.execute(f"DELETE FROM {table} WHERE {column} IN (SELECT id FROM gone)")  # noqa: S608 - fixed names
            finally:
                conn.execute("DROP TABLE gone")
            conn.execute(
                "DELETE FROM received WHERE NOT EXISTS"
                " (SELECT 1 FROM papers p WHERE p.id = received.paper AND p.first_seen >= ?)",
                stamp,
            )
        return count

    def recent(self, name: str, *, limit: int) -> list[StoredDigest]:
        """The subscriber's latest digests that have papers, newest first, without their content (a feed's
        entries are made from the items: ``papers``)."""
        query = f"{_HEAD_QUERY} WHERE d.subscriber = ? AND {_HAS_ITEMS} ORDER BY d.edition DESC LIMIT ?"
        rows = self._conn.execute(query, (name, limit))
        return [_stored_digest(row) for row in rows]

    def papers(self, digest_ids: Sequence[int]) -> dict[int, list[Ranked]]:
        """Each digest's items as frozen, best first, with their whole papers (for the entries of a feed)."""
        found: dict[int, list[Ranked]] = {i: [] for i in digest_ids}
        query = (
            "SELECT i.digest, i.rank, i.score, i.why, d.reasons, p.* FROM digest_items i"
            " JOIN papers p ON p.id = i.paper JOIN digests d ON d.id = i.digest"
            " WHERE i.digest IN ({marks}) ORDER BY i.digest, i.rank"
        )
        kept = ReasonsRead()
        for row in self._rows_in(query, digest_ids):
            why = kept.of(row["why"], row["reasons"], row["rank"])
            found[row["digest"]].append(Ranked(paper_of_row(row), row["rank"], row["score"], why))
        return found


_Row = tuple[Any, ...]

# Content retention may drop: a digest made before the cut-off whose every delivery went out.
_DELIVERED = " AND NOT EXISTS (SELECT 1 FROM deliveries x WHERE x.digest = d.id AND x.state != 'sent')"
_HELD = " FROM bodies b JOIN digests d ON d.id = b.digest WHERE d.created_at < ?" + _DELIVERED
_LEGACY = (  # made before schema 4: the content in the digest's columns (digests_legacy_bodies finds them)
    " FROM digests d WHERE d.created_at < ? AND (body_text != '' OR body_html != '' OR body_markdown != '')"
    + _DELIVERED
)
_DROPS = (  # (its count and bytes, the statement that drops it)
    (
        "SELECT count(*), coalesce(sum(coalesce(length(b.mime), 0) + coalesce(length(b.parts), 0)), 0)" + _HELD,
        "DELETE FROM bodies WHERE digest IN (SELECT b.digest" + _HELD + ")",  # noqa: S608 - fixed text, '?' only
    ),
    (
        "SELECT count(*), coalesce(sum(length(body_text) + length(body_html) + length(body_markdown)), 0)" + _LEGACY,
        f"UPDATE digests SET body_text = '', body_html = '', body_markdown = '' WHERE id IN (SELECT d.id{_LEGACY})",  # noqa: S608 - fixed text
    ),
)


def _digest_rows(d: PreparedDigest, stamp: str) -> tuple[_Row, _Row | None, list[_Row], list[_Row]]:
    """A digest's row, its content's (None when it has none), its items' and its deliveries' (each without the
    digest's id, not known yet)."""
    digest = (d.name, d.edition, stamp, d.subject, d.new_count, reasons_record(d.items))
    body = (d.mime, d.parts) if d.mime is not None or d.parts is not None else None
    items = [(item.paper.id, item.rank, item.score, "") for item in d.items]
    deliveries = [(x.channel, x.kind, x.target, x.message_id, x.payload, stamp) for x in d.deliveries]
    return digest, body, items, deliveries


_ITEMS = "(SELECT count(*) FROM digest_items i WHERE i.digest = d.id) AS items"
_DIGEST_QUERY = f"SELECT d.*, b.mime, b.parts, {_ITEMS} FROM digests d LEFT JOIN bodies b ON b.digest = d.id"  # noqa: S608 - fixed text
_HAS_ITEMS = "EXISTS (SELECT 1 FROM digest_items i WHERE i.digest = d.id)"
_HEAD_QUERY = f"SELECT d.*, NULL AS mime, NULL AS parts, {_ITEMS} FROM digests d"  # noqa: S608 - fixed text: no content read


def _content(row: Row) -> tuple[str, str, str, bytes]:
    """A digest's text, HTML, Markdown and MIME body, each from where it is kept (see the module's doc)."""
    if row["mime"] is None and row["parts"] is None:  # made before schema 4, or its content dropped
        return row["body_text"], row["body_html"], row["body_markdown"], b""
    content = decompress(row["parts"]) if row["parts"] is not None else [b"", b"", b""]
    text, html, markdown = (part.decode() for part in content[:3])
    mime = unpack(row["mime"]) if row["mime"] is not None else b"".join(content[3:4])  # schema 4-8: in the frame
    if mime and not (text and html):
        derived = render.alternatives(mime) or ("", "")
        text, html = text or derived[0], html or derived[1]
    return text, html, markdown, mime


def _stored_digest(row: Row) -> StoredDigest:
    text, html, markdown, mime = _content(row)
    return StoredDigest(
        id=row["id"],
        subscriber=row["subscriber"],
        edition=date.fromisoformat(row["edition"]),
        subject=row["subject"],
        text=text,
        html=html,
        markdown=markdown,
        items=row["items"],
        created_at=datetime.fromisoformat(row["created_at"]),
        mime=mime,
        new_count=row["new_count"],
    )
