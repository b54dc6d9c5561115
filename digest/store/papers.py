"""The seen-set: dumps, papers and their sightings, and the archive the ranker fits on.

* ``dumps``: one row per distinct file content (keyed by the sha256 of its
  bytes), so ingesting the same bytes twice is a no-op;
* ``papers``: the seen-set, one row per paper id, with its normalised title so
  one paper seen in two sources is one paper;
* ``sightings``: (dump, paper, position, upvotes): every appearance of a
  paper, new or not; the trending signal.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import datetime

from digest.models import Dump, DumpRecord, Ingested, Paper, SeenPaper, StoreStatus
from digest.store.db import Connection, Part, Row, day, iso


class Papers(Part):
    """Queries on dumps, papers and sightings."""

    def ingest(self, dump: Dump, *, sha256: str, at: datetime) -> Ingested:
        """Store a dump, its papers and their sightings, in one transaction.

        A dump whose bytes were stored before changes nothing and comes back with
        ``repeat=True``. A paper is new when no earlier dump had its id or its
        normalised title; a known paper only gains fields it lacked.
        """
        with self._transaction() as conn:
            row = conn.execute("SELECT * FROM dumps WHERE sha256 = ?", (sha256,)).fetchone()
            if row is not None:
                return Ingested(record=_dump_record(row), repeat=True)
            stamp = at.isoformat(timespec="seconds")
            dump_id = conn.execute(
                "INSERT INTO dumps (sha256, source, layout, page_date, paper_count, warning_count, ingested_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    sha256,
                    dump.source,
                    dump.layout,
                    iso(dump.page_date),
                    len(dump.papers),
                    len(dump.warnings),
                    stamp,
                ),
            ).fetchone()[0]
            new = 0
            for paper in dump.papers:
                known = conn.execute(
                    "SELECT id FROM papers WHERE id = ? UNION ALL SELECT id FROM papers WHERE norm_title = ?"
                    " UNION ALL SELECT paper FROM paper_aliases WHERE alias = ? LIMIT 1",
                    (paper.id, paper.norm_title, paper.id),
                ).fetchone()
                if known is None:
                    new += 1
                    paper_id = paper.id
                    conn.execute(_INSERT, (paper.id, paper.norm_title, paper.title, dump_id, stamp, *_values(paper)))
                else:
                    paper_id = self._adopt_arxiv_id(conn, known[0], paper.id)
                    conn.execute(_UPDATE, (*_values(paper, _FRESH), *_values(paper, _KEPT), paper_id))
                conn.execute(
                    "INSERT INTO sightings (dump, paper, position, upvotes) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (dump_id, paper_id, paper.position or 0, paper.upvotes),
                )
            conn.execute("UPDATE dumps SET new_count = ? WHERE id = ?", (new, dump_id))
            row = conn.execute("SELECT * FROM dumps WHERE id = ?", (dump_id,)).fetchone()
        return Ingested(record=_dump_record(row), repeat=False)

    def find_dump(self, ref: str) -> DumpRecord | None:
        """A dump by id, source path, file name or a sha256 prefix (newest first)."""
        query = (
            "SELECT * FROM dumps WHERE CAST(id AS TEXT) = :ref OR source = :ref"
            " OR source LIKE '%/' || :ref OR (length(:ref) >= 6 AND sha256 LIKE :ref || '%')"
            " ORDER BY id DESC LIMIT 1"
        )
        row = self._conn.execute(query, {"ref": ref}).fetchone()
        return _dump_record(row) if row else None

    def dumps(self) -> list[DumpRecord]:
        """Every stored dump, oldest first."""
        return [_dump_record(row) for row in self._conn.execute("SELECT * FROM dumps ORDER BY id")]

    def seen(self, *, first_dump: int | None = None, limit: int | None = None) -> list[SeenPaper]:
        """Papers of the seen-set in the order they were first seen, optionally from one dump."""
        where = " WHERE p.first_dump = :dump" if first_dump is not None else ""
        bound = " LIMIT :limit" if limit is not None else ""
        rows = self._conn.execute(
            _SEEN_QUERY + where + " ORDER BY p.first_dump, s.position" + bound,
            {"dump": first_dump, "limit": limit},
        )
        return [
            SeenPaper(
                paper=replace(paper_of_row(row), upvotes=row["upvotes"], position=row["position"]),
                first_dump=row["dump_source"],
                first_seen=datetime.fromisoformat(row["first_seen"]),
                sightings=row["sighting_count"],
            )
            for row in rows
        ]

    def status(self) -> StoreStatus:
        """How much the database holds, and the last dump stored."""
        counts = self._conn.execute(
            "SELECT (SELECT count(*) FROM dumps), (SELECT count(*) FROM papers), (SELECT count(*) FROM sightings)"
        ).fetchone()
        last = self._conn.execute("SELECT * FROM dumps ORDER BY id DESC LIMIT 1").fetchone()
        return StoreStatus(
            path=self._db.name,
            schema_version=self._db.version(),
            dumps=counts[0],
            papers=counts[1],
            sightings=counts[2],
            last_dump=_dump_record(last) if last else None,
        )

    def forget_sightings(self, *, before: datetime, dry_run: bool = False) -> int:
        """Forget the sightings of dumps ingested before ``before`` (the papers themselves stay: the archive
        and the seen-set). How many."""
        where = " FROM sightings WHERE dump IN (SELECT id FROM dumps WHERE ingested_at < ?)"
        stamp = (before.isoformat(timespec="seconds"),)
        with self._transaction() as conn:
            if dry_run:
                return int(conn.execute("SELECT count(*)" + where, stamp).fetchone()[0])
            return int(conn.execute("DELETE" + where, stamp).rowcount)

    def archive(self, since: datetime | None = None, *, titles: Collection[str] = ()) -> list[Paper]:
        """The ranker's corpus, in the order first seen: every paper first seen after ``since`` (all of them
        without it), and the older ones whose normalised title is one of ``titles`` (the profiles' seeds)."""
        stamp = since.isoformat(timespec="seconds") if since is not None else ""
        rows = list(self._conn.execute("SELECT rowid, * FROM papers WHERE first_seen > ?", (stamp,)))
        if stamp and titles:
            older = self._rows_in("SELECT rowid, * FROM papers WHERE norm_title IN ({marks})", sorted(titles))
            rows += [row for row in older if row["first_seen"] <= stamp]
        return [paper_of_row(row) for row in sorted(rows, key=lambda row: row["rowid"])]

    def archive_version(self) -> tuple[int, int, int]:
        """Changes whenever a paper is added or gains its arXiv id: (count, last rowid, aliases)."""
        row = self._conn.execute(
            "SELECT count(*), coalesce(max(rowid), 0), (SELECT count(*) FROM paper_aliases) FROM papers"
        ).fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    def get(self, paper_id: str) -> Paper | None:
        """A paper by its id, or by an id it had before it got its arXiv id."""
        row = self._conn.execute(
            "SELECT * FROM papers WHERE id = coalesce((SELECT paper FROM paper_aliases WHERE alias = ?), ?)",
            (paper_id, paper_id),
        ).fetchone()
        return paper_of_row(row) if row else None

    def latest_dump(self) -> DumpRecord | None:
        row = self._conn.execute("SELECT * FROM dumps ORDER BY id DESC LIMIT 1").fetchone()
        return _dump_record(row) if row else None

    def since(self, since: datetime) -> list[Paper]:
        """Papers first seen after ``since``, as on the page that first had them."""
        rows = self._conn.execute(
            "SELECT p.*, s.position, s.upvotes FROM papers p"
            " LEFT JOIN sightings s ON s.dump = p.first_dump AND s.paper = p.id"
            " WHERE p.first_seen > ? ORDER BY p.first_dump, s.position",
            (since.isoformat(timespec="seconds"),),
        )
        return [replace(paper_of_row(row), upvotes=row["upvotes"], position=row["position"]) for row in rows]

    def _adopt_arxiv_id(self, conn: Connection, known: str, arxiv: str) -> str:
        """A paper first stored under a title hash takes the arXiv id a later source gives it; the old id
        becomes an alias, and everything that named the paper names it by the new id. Returns its id now."""
        if known == arxiv or not known.startswith("t:") or arxiv.startswith("t:"):
            return known
        self._db.defer_foreign_keys()  # the rows that name it are moved within this transaction
        conn.execute("UPDATE papers SET id = ? WHERE id = ?", (arxiv, known))
        for table in ("sightings", "digest_items", "feedback"):
            conn.execute(f"UPDATE {table} SET paper = ? WHERE paper = ?", (arxiv, known))  # noqa: S608 - names fixed above
        conn.execute("UPDATE paper_aliases SET paper = ? WHERE paper = ?", (arxiv, known))
        conn.execute(
            "INSERT INTO paper_aliases (alias, paper) VALUES (?, ?)"
            " ON CONFLICT (alias) DO UPDATE SET paper = excluded.paper",
            (known, arxiv),
        )
        return arxiv


_SEEN_QUERY = (
    "SELECT p.*, d.source AS dump_source, s.position, s.upvotes,"
    " (SELECT count(*) FROM sightings WHERE paper = p.id) AS sighting_count"
    " FROM papers p JOIN dumps d ON d.id = p.first_dump"
    " LEFT JOIN sightings s ON s.dump = p.first_dump AND s.paper = p.id"
)
_FIELDS = (
    "abstract", "authors_count", "organization", "published", "authors", "comments",
    "github_repo", "github_stars", "project_page", "ai_summary",
)  # fmt: skip
_FRESH = ("comments", "github_stars")  # counts that grow: the latest sighting's wins
_KEPT = tuple(f for f in _FIELDS if f not in _FRESH)  # the rest: the first value seen stays
_INSERT = (
    f"INSERT INTO papers (id, norm_title, title, first_dump, first_seen, {', '.join(_FIELDS)})"  # noqa: S608 - fixed names
    f" VALUES (?, ?, ?, ?, ?, {', '.join('?' * len(_FIELDS))})"
)
_UPDATE = (
    f"UPDATE papers SET {', '.join(f'{f} = coalesce(?, {f})' for f in _FRESH)},"  # noqa: S608 - fixed names
    f" {', '.join(f'{f} = coalesce({f}, ?)' for f in _KEPT)} WHERE id = ?"
)


def _values(paper: Paper, fields: Sequence[str] = _FIELDS) -> list[object]:
    """The paper's stored fields, as SQL values."""
    value = {
        "published": iso(paper.published),
        "authors": json.dumps(list(paper.authors), ensure_ascii=False) if paper.authors else None,
    }
    return [value[f] if f in value else getattr(paper, f) for f in fields]


def paper_of_row(row: Row) -> Paper:
    return Paper(
        id=row["id"],
        title=row["title"],
        norm_title=row["norm_title"],
        abstract=row["abstract"],
        authors_count=row["authors_count"],
        organization=row["organization"],
        published=day(row["published"]),
        authors=tuple(json.loads(row["authors"])) if row["authors"] else (),
        comments=row["comments"],
        github_repo=row["github_repo"],
        github_stars=row["github_stars"],
        project_page=row["project_page"],
        ai_summary=row["ai_summary"],
    )


def _dump_record(row: Row) -> DumpRecord:
    return DumpRecord(
        id=row["id"],
        sha256=row["sha256"],
        source=row["source"],
        layout=row["layout"],
        page_date=day(row["page_date"]),
        papers=row["paper_count"],
        new=row["new_count"],
        warnings=row["warning_count"],
        ingested_at=datetime.fromisoformat(row["ingested_at"]),
    )
