"""The parsers of the commands that look after the service: deliveries, retry, bounces, backup, restore,
migrate-db, prune (their help text, as ``parser`` has the others')."""

from __future__ import annotations

from pathlib import Path

from digest.cli.args import JSON_HELP, Adder, lazy, whole


def upkeep_commands(command: Adder) -> None:
    """Every command of this module."""
    _ledger_commands(command)
    _database_commands(command)
    _bounce_commands(command)


def _ledger_commands(command: Adder) -> None:
    """deliveries, retry."""
    sub = command("deliveries", lazy("digests", "deliveries_command"), "List the delivery ledger, newest first.", "")
    sub.add_argument("--failed", action="store_true", help="only deliveries that failed for good")
    sub.add_argument("--bounced", action="store_true", help="the bounces and complaints recorded instead, newest first")
    sub.add_argument(
        "-n", "--limit", type=whole, default=50, metavar="N", help="at most N rows (default 50; 0 for all)"
    )
    sub.add_argument("--json", action="store_true", help=JSON_HELP)

    sub = command(
        "retry",
        lazy("digests", "retry_command"),
        "Requeue a failed delivery (or all of them) to go out with the next send.",
        "",
    )
    sub.add_argument("id", nargs="?", type=int, metavar="ID", help="a delivery number from 'digest deliveries'")
    sub.add_argument("--all", action="store_true", help="every failed or waiting delivery")


def _bounce_commands(command: Adder) -> None:
    """bounces."""
    sub = command(
        "bounces",
        lazy("bounces", "bounces_command"),
        "Read bounces and complaints from a mailbox; stop mailing addresses that cannot take mail.",
        "SOURCE: a Maildir, an mbox file, 'imap' (the [bounces] server) or '-' (one message on\n"
        "stdin, for an MTA's pipe); default [bounces] source, which the daemon reads every poll.\n"
        "A hard bounce (the address is dead) stops email to it at once; soft ones count ([bounces]\n"
        "soft_limit within soft_days); a complaint unsubscribes the reader; chat channels go on.\n"
        "Each message read is moved aside (done_folder, unknown_folder). 'digest resume NAME'\n"
        "mails a suspended reader again.",
    )
    sub.add_argument("source", nargs="?", metavar="SOURCE", help="Maildir, mbox, imap or - (default: [bounces] source)")
    sub.add_argument(
        "--dry-run", action="store_true", help="say what each message is; record, suspend and move nothing"
    )
    sub.add_argument("--json", action="store_true", help=JSON_HELP)


def _database_commands(command: Adder) -> None:
    """backup, restore, migrate-db, prune."""
    sub = command(
        "backup",
        lazy("database", "backup_command"),
        "Copy the database to PATH, checked, while everything keeps running.",
        "SQLite's online backup (the daemon and the web side go on writing), then\n"
        "PRAGMA integrity_check on the copy, which only then takes its name: PATH holds a\n"
        "whole, sound copy or is left as it was. PATH may be a folder: the copy is then\n"
        "named after the database and the time. Keep the subscribers folder and the config\n"
        "with it (README: Backups).",
    )
    sub.add_argument("path", type=Path, metavar="PATH", help="the copy's file (or a folder for it)")
    sub.add_argument("--json", action="store_true", help=JSON_HELP)

    sub = command(
        "restore",
        lazy("database", "restore_command"),
        "Put a backup in the database's place; the current file is kept aside.",
        "Refused while 'digest run' or 'digest send' holds the database. The backup is\n"
        "checked first; the current file becomes NAME.before-restore-TIME.sqlite3 beside it.\n"
        "A backup of an older version is upgraded when it is next opened. Restart\n"
        "'digest serve' afterwards: it still reads the file it opened.",
    )
    sub.add_argument("path", type=Path, metavar="PATH", help="a file 'digest backup' wrote")

    sub = command(
        "migrate-db",
        lazy("database", "migrate_command"),
        "Copy this SQLite installation into an empty PostgreSQL database, checked.",
        "Every table is copied in one transaction, then counted and checksummed on both\n"
        "sides; a difference keeps nothing. Refused while 'digest run' or 'digest send'\n"
        "holds the database, and when the target holds tables already (createdb a new one).\n"
        "The password comes from PGPASSWORD, not the command line. The SQLite file is left\n"
        "as it was: keep it as your backup, then set [database] url to the new database.",
    )
    sub.add_argument(
        "--to", required=True, metavar="URL", help="the empty database: postgresql://user@host:5432/dbname"
    )
    sub.add_argument("--json", action="store_true", help=JSON_HELP)

    sub = command(
        "prune",
        lazy("database", "prune_command"),
        "Drop what [retention] says the database no longer needs; say what that freed.",
        "The text, HTML and MIME body of each digest delivered more than [retention]\n"
        "bodies_days ago (its items and reasons stay: history, feeds, votes and 'never the\n"
        "same paper twice' are untouched). The daemon does this every day, and 'digest\n"
        "send' at its end. Freed space is reused by later writes.",
    )
    sub.add_argument("--dry-run", action="store_true", help="say what would be dropped; change nothing")
    sub.add_argument("--json", action="store_true", help=JSON_HELP)
