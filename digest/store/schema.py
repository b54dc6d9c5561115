"""The schema, as data: ``MIGRATIONS[i]`` takes a database from version ``i`` to ``i + 1``.

Each migration is a tuple of statements, run one by one inside one
transaction with ``PRAGMA user_version`` (``Database._migrate``), so a failed
upgrade changes nothing. A migration is never edited once released: a change
is a new one at the end.
"""

from __future__ import annotations

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE dumps (
            id            INTEGER PRIMARY KEY,
            sha256        TEXT NOT NULL UNIQUE,
            source        TEXT NOT NULL,
            layout        TEXT NOT NULL,
            page_date     TEXT,
            paper_count   INTEGER NOT NULL DEFAULT 0,
            new_count     INTEGER NOT NULL DEFAULT 0,
            warning_count INTEGER NOT NULL DEFAULT 0,
            ingested_at   TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE papers (
            id            TEXT PRIMARY KEY,
            norm_title    TEXT NOT NULL,
            title         TEXT NOT NULL,
            abstract      TEXT,
            authors_count INTEGER,
            organization  TEXT,
            published     TEXT,
            first_dump    INTEGER NOT NULL REFERENCES dumps (id),
            first_seen    TEXT NOT NULL
        )
        """,
        """
        CREATE UNIQUE INDEX papers_norm_title ON papers (norm_title)
        """,
        """
        CREATE INDEX papers_first_dump ON papers (first_dump)
        """,
        """
        CREATE TABLE sightings (
            dump     INTEGER NOT NULL REFERENCES dumps (id),
            paper    TEXT NOT NULL REFERENCES papers (id),
            position INTEGER NOT NULL,
            upvotes  INTEGER,
            PRIMARY KEY (dump, paper)
        ) WITHOUT ROWID
        """,
        """
        CREATE INDEX sightings_paper ON sightings (paper)
        """,
    ),
    (
        """
        CREATE TABLE subscribers (
            name          TEXT PRIMARY KEY,
            source        TEXT,
            profile       TEXT NOT NULL,
            profile_hash  TEXT NOT NULL,
            status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'unsubscribed')),
            paused_until  TEXT,
            created_at    TEXT NOT NULL,
            updated_at    TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE digests (
            id          INTEGER PRIMARY KEY,
            subscriber  TEXT NOT NULL REFERENCES subscribers (name),
            edition     TEXT NOT NULL,
            created_at  TEXT NOT NULL,
            UNIQUE (subscriber, edition)
        )
        """,
        """
        CREATE TABLE digest_items (
            digest  INTEGER NOT NULL REFERENCES digests (id),
            paper   TEXT NOT NULL REFERENCES papers (id),
            rank    INTEGER NOT NULL,
            score   REAL NOT NULL,
            why     TEXT NOT NULL,
            PRIMARY KEY (digest, paper)
        ) WITHOUT ROWID
        """,
        """
        CREATE INDEX digest_items_paper ON digest_items (paper)
        """,
    ),
    (
        """
        ALTER TABLE digests ADD COLUMN subject TEXT NOT NULL DEFAULT ''
        """,
        """
        ALTER TABLE digests ADD COLUMN body_text TEXT NOT NULL DEFAULT ''
        """,
        """
        ALTER TABLE digests ADD COLUMN body_html TEXT NOT NULL DEFAULT ''
        """,
        """
        ALTER TABLE digests ADD COLUMN body_markdown TEXT NOT NULL DEFAULT ''
        """,
        """
        ALTER TABLE digests ADD COLUMN new_count INTEGER NOT NULL DEFAULT 0
        """,
        """
        CREATE TABLE deliveries (
            id          INTEGER PRIMARY KEY,
            digest      INTEGER NOT NULL REFERENCES digests (id),
            channel     TEXT NOT NULL,
            kind        TEXT NOT NULL,
            target      TEXT,
            message_id  TEXT NOT NULL,
            payload     TEXT,
            state       TEXT NOT NULL DEFAULT 'pending'
                        CHECK (state IN ('pending', 'sending', 'sent', 'retry', 'failed')),
            attempts    INTEGER NOT NULL DEFAULT 0,
            parts_sent  INTEGER NOT NULL DEFAULT 0,
            next_try    TEXT,
            last_error  TEXT,
            sent_at     TEXT,
            updated_at  TEXT NOT NULL,
            UNIQUE (digest, channel)
        )
        """,
        """
        CREATE INDEX deliveries_due ON deliveries (state, next_try)
        """,
    ),
    (
        """
        ALTER TABLE digests ADD COLUMN body BLOB
        """,
    ),
    (
        # Who unsubscribed a subscriber: 'file' (its profile file went away: the file coming back
        # resubscribes), 'operator' or 'reader' (sticks: only an explicit subscribe or resume undoes it).
        """
        ALTER TABLE subscribers ADD COLUMN unsubscribed_by TEXT
        """,
        """
        ALTER TABLE subscribers ADD COLUMN unsubscribed_at TEXT
        """,
        """
        ALTER TABLE subscribers ADD COLUMN held_noted INTEGER NOT NULL DEFAULT 0
        """,
        # A random key per subscriber: signed links name it instead of the subscriber.
        """
        ALTER TABLE subscribers ADD COLUMN link_key TEXT
        """,
        """
        UPDATE subscribers SET link_key = lower(hex(randomblob(12))),
            unsubscribed_by = CASE status WHEN 'unsubscribed' THEN 'operator' END
        """,
        """
        CREATE UNIQUE INDEX subscribers_link_key ON subscribers (link_key)
        """,
        """
        CREATE TABLE feedback (
            subscriber  TEXT NOT NULL REFERENCES subscribers (name),
            paper       TEXT NOT NULL,
            vote        INTEGER NOT NULL CHECK (vote IN (-1, 1)),
            edition     TEXT,
            at          TEXT NOT NULL,
            PRIMARY KEY (subscriber, paper)
        ) WITHOUT ROWID
        """,
        """
        CREATE TABLE signups (
            id            TEXT PRIMARY KEY,
            email         TEXT NOT NULL,
            profile       TEXT NOT NULL,
            created_at    TEXT NOT NULL,
            confirmed_at  TEXT
        )
        """,
    ),
    # 5 -> 6: what Hugging Face's JSON brings (authors, comments, GitHub, project page, AI summary), and the
    # ids a paper had before it got its arXiv id.
    (
        "ALTER TABLE papers ADD COLUMN authors TEXT",  # a JSON list of names
        "ALTER TABLE papers ADD COLUMN comments INTEGER",
        "ALTER TABLE papers ADD COLUMN github_repo TEXT",
        "ALTER TABLE papers ADD COLUMN github_stars INTEGER",
        "ALTER TABLE papers ADD COLUMN project_page TEXT",
        "ALTER TABLE papers ADD COLUMN ai_summary TEXT",
        """
        CREATE TABLE paper_aliases (
            alias  TEXT PRIMARY KEY,
            paper  TEXT NOT NULL REFERENCES papers (id)
        ) WITHOUT ROWID
        """,
    ),
    # 6 -> 7: what each day's fetch from Hugging Face found.
    (
        """
        CREATE TABLE fetches (
            day      TEXT PRIMARY KEY,
            outcome  TEXT NOT NULL,
            items    INTEGER NOT NULL,
            etag     TEXT,
            sha256   TEXT,
            detail   TEXT,
            at       TEXT NOT NULL
        ) WITHOUT ROWID
        """,
    ),
    # 7 -> 8: each profile file of the subscribers folder as last read, so a sync reads only what changed.
    (
        """
        CREATE TABLE profile_files (
            path        TEXT PRIMARY KEY,
            folder      TEXT NOT NULL,
            size        INTEGER NOT NULL,
            mtime_ns    INTEGER NOT NULL,
            checked_ns  INTEGER NOT NULL,
            hash        TEXT NOT NULL,
            name        TEXT NOT NULL
        ) WITHOUT ROWID
        """,
        """
        CREATE INDEX profile_files_folder ON profile_files (folder)
        """,
        """
        CREATE TABLE profile_folders (
            folder      TEXT PRIMARY KEY,
            listing     TEXT NOT NULL,
            checked_ns  INTEGER NOT NULL
        ) WITHOUT ROWID
        """,
    ),
    # 8 -> 9: the email's MIME body in a frame of its own, so sending reads only the bytes it sends.
    (
        """
        ALTER TABLE digests ADD COLUMN mail BLOB
        """,
    ),
    # 9 -> 10: a sign-up's mail is sent by the sender, not inside the web request: when it went out, and
    # the subscriber the address already belongs to (then the mail is their preferences link). Sign-ups
    # made before this were mailed at once.
    (
        "ALTER TABLE signups ADD COLUMN subscriber TEXT",
        "ALTER TABLE signups ADD COLUMN mailed_at TEXT",
        "UPDATE signups SET mailed_at = created_at",
    ),
    # 10 -> 11: when a reader who signed up on the page confirmed. Their first digest is the first edition
    # firing after it, never one that was past when they joined. NULL (profiles an operator adds): the due one.
    ("ALTER TABLE subscribers ADD COLUMN joined_at TEXT",),
    # 11 -> 12: retention finds the digests that still hold bodies by when they were made, without reading
    # the ones whose bodies went already (a partial index: only the last bodies_days of digests are in it).
    (
        """
        CREATE INDEX digests_with_bodies ON digests (created_at)
        WHERE body IS NOT NULL OR mail IS NOT NULL OR body_text != '' OR body_html != '' OR body_markdown != ''
        """,
    ),
    # 12 -> 13: history retention. Digests older than [retention] history_days go, with their items and
    # deliveries; which papers each reader received stays, compactly, so no paper is ever sent twice.
    (
        """
        CREATE TABLE received (
            subscriber  TEXT NOT NULL,
            paper       TEXT NOT NULL,
            PRIMARY KEY (subscriber, paper)
        ) WITHOUT ROWID
        """,
        """
        CREATE INDEX received_paper ON received (paper)
        """,
        """
        CREATE INDEX digests_created ON digests (created_at)
        """,
    ),
    # 13 -> 14: each digest's content kept once, in a table of its own: an email digest's MIME body, and only
    # what it does not give back (the Markdown; a digest not mailed, its text and HTML). Retention deletes a
    # row whole, so the pages it held are freed (an emptied column left most of a page behind).
    (
        """
        CREATE TABLE bodies (
            digest  INTEGER PRIMARY KEY REFERENCES digests (id),
            mime    BLOB,
            parts   BLOB
        )
        """,
        "INSERT INTO bodies (digest, mime, parts) SELECT id, mail, body FROM digests"
        " WHERE body IS NOT NULL OR mail IS NOT NULL",
        "UPDATE digests SET body = NULL, mail = NULL WHERE body IS NOT NULL OR mail IS NOT NULL",
        "DROP INDEX digests_with_bodies",
        """
        CREATE INDEX digests_legacy_bodies ON digests (created_at)
        WHERE body_text != '' OR body_html != '' OR body_markdown != ''
        """,
    ),
    # 14 -> 15: bounces and complaints. Each one read is recorded (never the raw message); an address that
    # cannot take mail is suspended (email only: the reader's chat channels go on) until the operator or the
    # reader lifts it. A bounce names its delivery by Message-ID, looked up by that.
    (
        """
        CREATE TABLE bounces (
            id          INTEGER PRIMARY KEY,
            at          TEXT NOT NULL,
            source      TEXT NOT NULL,
            kind        TEXT NOT NULL CHECK (kind IN ('hard', 'soft', 'complaint')),
            address     TEXT,
            subscriber  TEXT,
            delivery    INTEGER,
            status      TEXT,
            reason      TEXT NOT NULL,
            diagnostic  TEXT NOT NULL DEFAULT '',
            UNIQUE (delivery, address, kind)
        )
        """,
        "CREATE INDEX bounces_at ON bounces (at)",
        "CREATE INDEX bounces_address ON bounces (address, at)",
        """
        CREATE TABLE suspensions (
            address     TEXT PRIMARY KEY,
            subscriber  TEXT,
            since       TEXT NOT NULL,
            kind        TEXT NOT NULL CHECK (kind IN ('hard', 'soft')),
            reason      TEXT NOT NULL
        ) WITHOUT ROWID
        """,
        "CREATE INDEX deliveries_message_id ON deliveries (message_id)",
        # A request the preferences page records, mailed by the sender like a sign-up: 'signup' (confirm a
        # new subscription) or 'resume' (confirm, from the address itself, that it takes mail again).
        "ALTER TABLE signups ADD COLUMN purpose TEXT NOT NULL DEFAULT 'signup'",
    ),
    # 16: several processes share the work on PostgreSQL. A delivery claimed by one (``holder``) is left to
    # it until ``lease_until``; a subscriber whose edition one is making has a row in ``claims`` until the
    # digest is saved or the lease runs out (a killed host's claims return to the pool). SQLite, with one
    # writer, never sets them.
    (
        "ALTER TABLE deliveries ADD COLUMN holder TEXT",
        "ALTER TABLE deliveries ADD COLUMN lease_until TEXT",
        """
        CREATE TABLE claims (
            subscriber  TEXT PRIMARY KEY,
            edition     TEXT NOT NULL,
            holder      TEXT NOT NULL,
            lease_until TEXT NOT NULL
        )
        """,
    ),
    # 17: a digest's reasons kept once, one packed record for all its items (``packing.reasons_record``);
    # ``digest_items.why`` stays for the items frozen before, and is empty for those frozen since.
    ("ALTER TABLE digests ADD COLUMN reasons BLOB",),
)

SCHEMA_VERSION = len(MIGRATIONS)
