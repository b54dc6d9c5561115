"""The ``digest`` argument parser: every command, its options and its --help text.

Light on purpose: the command modules (and numpy, scikit-learn, Jinja behind
them) are imported only when a command runs, so ``--help`` and ``--version``
answer at once.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from digest import __version__
from digest.cli.args import JSON_HELP, Adder, Command, Parser, day, lazy, positive
from digest.cli.upkeep import upkeep_commands
from digest.models import FORMATS
from digest.store.schema import SCHEMA_VERSION

SEND_JSON = ": event made, skipped, would_deliver, sent, retry, failed, halted or profile_error, then one summary"

EPILOG = """\
the day, by hand:
  digest init my-digest                 set up a new installation (config, example subscriber)
  digest ingest examples/dumps          ingest every dump in a folder, report what is new
  digest fetch                          or fetch today's list from Hugging Face and ingest it
  digest subscribe ada.toml             check a profile, store it, show what they will get
  digest preview ada --format html      the digest ada would receive now
  digest send                           make the digests that are due, deliver them
  digest status                         what the database holds, next runs, failures

or let the daemon do it: digest run (or digest run --once from cron), with
digest serve beside it for readers' one-click unsubscribe, votes and preferences.
parse, papers, rank, check, subscribers, feedback, onboard, pause, resume, unsubscribe,
deliveries and retry inspect and adjust; bounces reads what comes back; backup and
restore keep the database safe, migrate-db moves it to PostgreSQL; 'digest COMMAND --help' explains each.

config: ./digest.toml if present, or --config FILE; DIGEST_* environment variables
override it (e.g. DIGEST_DATABASE__PATH). Every key: config.example.toml.
exit codes: 0 ok, 1 some input could not be used (the rest went on), 2 bad usage,
130 interrupted by Ctrl-C, 143 by SIGTERM (what was on the wire finished and was recorded).
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``digest`` argument parser; global options work before or after the command."""
    common = Parser(add_help=False)
    common.add_argument(
        "-c",
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        metavar="FILE",
        help="TOML config file (default: ./digest.toml when present, else built-in defaults)",
    )
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="show tracebacks with errors"
    )
    parser = Parser(
        prog="digest",
        description="Trending research papers from Hugging Face Daily Papers dumps, ranked for you, delivered daily.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    schema = f"paper-digest {__version__} (database schema {SCHEMA_VERSION})"
    parser.add_argument("--version", action="version", version=schema)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def command(name: str, run: Command, summary: str, description: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=summary,
            description=f"{summary}\n\n{description}".strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[common],
        )
        sub.set_defaults(run=run)
        return sub

    _paper_commands(command)
    _subscriber_commands(command)
    _digest_commands(command)
    _service_commands(command)
    upkeep_commands(command)
    return parser


def _paper_commands(command: Adder) -> None:
    """parse, ingest, papers, status."""
    sub = command(
        "parse",
        lazy("papers", "parse_command"),
        "Parse dump files and show their papers; writes nothing.",
        "With --json, one object per file: source, layout, page_date, papers (id, title,\n"
        "abstract, authors_count, organization, published, upvotes, position, and from\n"
        "Hugging Face's JSON authors, comments, github_repo, github_stars, project_page,\n"
        "ai_summary) and warnings (line, message). Absent values are null.",
    )
    sub.add_argument(
        "files", nargs="+", type=Path, metavar="FILE",
        help="a dump: the text of a Daily Papers page, or Hugging Face's daily_papers JSON",
    )  # fmt: skip
    sub.add_argument("--json", action="store_true", help=JSON_HELP)

    sub = command(
        "ingest",
        lazy("papers", "ingest_command"),
        "Ingest dumps into the database and report, per dump, what is new.",
        "A paper is new when no earlier dump had it (same arXiv id or same normalised\n"
        "title). Ingesting the same bytes again changes nothing. A bad file is reported\n"
        "in one line (one of [ingest] dumps_dir is moved into its quarantine/ with a .error\n"
        "note, as the daemon does); the others still go in, and the exit code is 1.",
    )
    sub.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="dump files, or folders of dumps (name order)")
    sub.add_argument("--json", action="store_true", help=JSON_HELP)

    sub = command(
        "fetch",
        lazy("papers", "fetch_command"),
        "Fetch Hugging Face's Daily Papers list for a day, write it as a dump and ingest it.",
        "Asks {[fetch] base_url}/api/daily_papers?date=D page by page, writes the list as\n"
        "{[ingest] dumps_dir}/hf-D.json and ingests it (output as for ingest). A day fetched\n"
        "again with the same content adds nothing; an empty day is 'no papers listed'.\n"
        "One request a second at most; 429 and 5xx are retried ([fetch] max_attempts).\n"
        "Bounded: each answer must come whole within [fetch] timeout_s and max_size_mb, a\n"
        "day within max_pages and max_day_mb; an answer that is not a clean list of papers\n"
        "goes to {[ingest] dumps_dir}/quarantine/ and never into the dumps folder.\n"
        "HF_TOKEN, when set in the environment, raises Hugging Face's rate limit.",
    )
    when = sub.add_mutually_exclusive_group()
    when.add_argument("--date", type=day, metavar="YYYY-MM-DD", help="the list of this day (default: today, UTC)")
    when.add_argument(
        "--since", type=day, metavar="YYYY-MM-DD", help="every day from this one to today (at most 62 days back)"
    )
    sub.add_argument("--force", action="store_true", help="let --since reach further back than 62 days")
    sub.add_argument("--json", action="store_true", help=JSON_HELP)

    sub = command(
        "papers", lazy("papers", "papers_command"), "List the papers of the seen-set, in the order first seen.", ""
    )
    sub.add_argument("--new-in", metavar="DUMP", help="only papers first seen in DUMP (file name, id, sha256 prefix)")
    sub.add_argument("-n", "--limit", type=positive, metavar="N", help="at most N papers")
    sub.add_argument("--json", action="store_true", help=JSON_HELP)

    sub = command(
        "status", lazy("papers", "status_command"), "Show the database: its path, what it holds, the last ingest.", ""
    )
    sub.add_argument("--json", action="store_true", help=JSON_HELP)


def _subscriber_commands(command: Adder) -> None:
    """subscribe, unsubscribe, pause, resume, subscribers, check."""
    sub = command(
        "subscribe",
        lazy("people", "subscribe_command"),
        "Check a profile file, store it, and show what the subscriber will get.",
        "Subscribing again with a changed file updates the profile; an unsubscribed\n"
        "name comes back. The profile format: examples/subscribers/ and the README.",
    )
    sub.add_argument("profile", type=Path, metavar="PROFILE.toml", help="a subscriber profile")
    sub.add_argument("--json", action="store_true", help=JSON_HELP + ": the profile, its outcome and seeds_found")
    sub = command(
        "unsubscribe",
        lazy("people", "unsubscribe_command"),
        "Stop a subscriber's digests (their history is kept).",
        "",
    )
    sub.add_argument("name", metavar="NAME")
    sub = command(
        "pause", lazy("people", "pause_command"), "Pause a subscriber's digests, for good or until a day.", ""
    )
    sub.add_argument("name", metavar="NAME")
    sub.add_argument("--until", type=day, metavar="YYYY-MM-DD", help="resume after this day")
    sub = command(
        "resume",
        lazy("people", "resume_command"),
        "Resume a paused subscriber, or mail a subscriber whose address bounced again.",
        "A paused subscriber becomes active. An address suspended because it bounced (or\n"
        "bounced softly too often) is mailed again from the next digest on.",
    )
    sub.add_argument("name", metavar="NAME")
    sub = command(
        "subscribers",
        lazy("people", "subscribers_command"),
        "List the subscribers (after syncing the subscribers folder).",
        "The folder is config [subscribers] dir: new files subscribe, changed files\n"
        "update, removed files unsubscribe, a broken file keeps its last good version.",
    )
    sub.add_argument("--all", action="store_true", help="include unsubscribed ones")
    sub.add_argument("--json", action="store_true", help=JSON_HELP)
    sub = command(
        "feedback",
        lazy("people", "feedback_command"),
        "Record a subscriber's votes on papers, or list them.",
        "With paper ids and --up (more like this), --down (less like this) or --clear, records\n"
        "the vote as the links in the digest do (the last vote wins). Without ids, lists the\n"
        "subscriber's votes, newest first.",
    )
    sub.add_argument("name", metavar="NAME")
    sub.add_argument("papers", nargs="*", metavar="PAPER_ID", help="paper ids, as 'digest papers' shows them")
    vote = sub.add_mutually_exclusive_group()
    vote.add_argument("--up", action="store_true", help="more like these")
    vote.add_argument("--down", action="store_true", help="less like these")
    vote.add_argument("--clear", action="store_true", help="forget the votes on these")
    sub.add_argument("--json", action="store_true", help=JSON_HELP)
    sub = command(
        "onboard",
        lazy("people", "onboard_command"),
        "Offer a subscriber about ten recent papers to rate, to teach their ranking quickly.",
        "Chooses papers whose answers teach the most: four of the profile's best matches,\n"
        "four it is least sure of (scores nearest min_score), and two more near\n"
        "that line but unlike the rest; none they voted on or were sent. On a terminal,\n"
        "asks for each (y / n / s to skip) and records the answers as votes; otherwise\n"
        "lists them with the command that records votes and the reader's own page, when\n"
        "links can be signed. Readers get the same page after confirming a sign-up.",
    )
    sub.add_argument("name", metavar="NAME")
    sub.add_argument("--json", action="store_true", help=JSON_HELP + ": {id, title, score, kind} per paper")
    sub = command(
        "check",
        lazy("people", "check_command"),
        "Check profile files; store nothing.",
        "Lists every mistake of each file, and resolves each webhook now to say where it\n"
        "would post (or why it may not). Exit code 1 when a file or a webhook is refused.",
    )
    sub.add_argument(
        "profiles", nargs="+", type=Path, metavar="PROFILE.toml", help="profile files, or folders of them (*.toml)"
    )
    sub.add_argument("--json", action="store_true", help=JSON_HELP + ": a line per file, status ok or error")


def _digest_commands(command: Adder) -> None:
    """rank, preview, send."""
    sub = command(
        "rank",
        lazy("digests", "rank_command"),
        "Rank the papers of a dump, or the newest ones, for a profile or a subscriber.",
        "--json prints one object per line, best first: {rank, id, title, score, why:\n"
        "[{kind, label, score, where, detail}]}. Without --all: the papers that reach the\n"
        "profile's min_score, at most max_items; with --all every paper not excluded.",
    )
    whose = sub.add_mutually_exclusive_group(required=True)
    whose.add_argument("--profile", type=Path, metavar="FILE", help="the profile file to rank for")
    whose.add_argument("--subscriber", metavar="NAME", help="a stored subscriber, their votes included")
    source = sub.add_mutually_exclusive_group()
    source.add_argument("--dump", type=Path, metavar="FILE", help="rank this dump file's papers (it is not stored)")
    source.add_argument("--new", action="store_true", help="rank the papers new in the latest ingest (default)")
    sub.add_argument("--all", action="store_true", help="every paper, not only those reaching min_score")
    sub.add_argument("--json", action="store_true", help=JSON_HELP)

    sub = command(
        "preview",
        lazy("digests", "preview_command"),
        "Show what a subscriber would receive now, as text.",
        "Ranks the papers new in the latest ingest for NAME, leaving out papers they\n"
        "already received, and lists the day's trending papers as their digest would.\n"
        "--format shows the digest as it would be sent: the email's html or text part,\n"
        "the Markdown file, or a chat platform's JSON payloads.",
    )
    sub.add_argument("name", metavar="NAME")
    sub.add_argument(
        "--format",
        choices=("terminal", *FORMATS),
        default="terminal",
        help="terminal (default), html, text, md, slack, discord, teams, mattermost or webhook (JSON)",
    )
    sub.add_argument("--out", type=Path, metavar="FILE", help="write the rendered digest to FILE")

    sub = command(
        "send",
        lazy("digests", "send_command"),
        "Make the digests that are due and deliver everything pending.",
        "Syncs the subscribers folder, freezes today's digest for each active subscriber\n"
        "who has none yet, then delivers what is due: new messages, crashed ones, and\n"
        "retries whose time has come. Each message is recorded in the ledger before and\n"
        "after it goes out, so re-running never sends a digest twice. Ctrl-C (or SIGTERM)\n"
        "hands out nothing new, lets the messages on the wire finish (30 s at most) and\n"
        "records them, then says what waits and exits 130 (143); a second Ctrl-C stops at\n"
        "once. Exit code 1 when anything failed for good, when the SMTP settings cannot\n"
        "work (TLS mode, login), or when no email reached the SMTP server. A progress bar\n"
        "shows on a terminal.",
    )
    sub.add_argument("--dry-run", action="store_true", help="show what would be made and sent; change nothing")
    sub.add_argument("--subscriber", metavar="NAME", help="only this subscriber")
    sub.add_argument("--json", action="store_true", help=JSON_HELP + SEND_JSON)


def _service_commands(command: Adder) -> None:
    """init, run, serve."""
    sub = command(
        "init",
        lazy("digests", "init_command"),
        "Set up a new installation in a folder: config, an example subscriber, dumps/ and var/.",
        "Writes FOLDER/digest.toml (the example config, every key commented),\n"
        "FOLDER/subscribers/example.toml.off (switched off until you edit it and rename it\n"
        "to NAME.toml), and makes dumps/ and var/; then prints the next\n"
        "commands. Refuses a folder that already has a digest.toml.",
    )
    sub.add_argument("folder", nargs="?", type=Path, default=Path("."), metavar="FOLDER", help="default: here")

    sub = command(
        "run",
        lazy("digests", "run_command"),
        "Run the daemon: take new dumps, send each digest at its subscriber's local time.",
        "Polls [ingest] dumps_dir every [schedule] poll_s and takes each dump once its\n"
        "size stops changing (write *.tmp, then rename; bad files go to quarantine/). It\n"
        "wakes at each subscriber's send_at in their timezone. On start it catches up what\n"
        "was missed (one digest per subscriber covering the gap) and sends due retries.\n"
        "Profiles are re-read when their files change. SIGTERM/SIGINT: nothing new starts,\n"
        "what is on the wire finishes and is recorded, exit 143/130. Fetching ([fetch]\n"
        "enabled) runs beside the schedule, never delaying a digest. One log line per event\n"
        "on stderr.\n"
        "--once does everything due now and exits (for cron and systemd timers); while\n"
        "another run holds the database it says so and exits 0 (--strict: exit 1).",
    )
    sub.add_argument("--once", action="store_true", help="do what is due now, then exit (exit code 1 on failures)")
    sub.add_argument(
        "--strict", action="store_true",
        help="with --once: exit 1 when another run holds the database (default: say so and exit 0)",
    )  # fmt: skip
    sub.add_argument("--log-format", choices=("plain", "json"), default="plain", help="log lines as text or JSON")

    sub = command(
        "serve",
        lazy("digests", "serve_command"),
        "Serve the reader's side: one-click unsubscribe, votes, preferences, sign-up, feeds.",
        "A small web app over the same database as 'digest run' and 'digest send'. Put it\n"
        "behind a TLS reverse proxy and set [delivery] base_url to its public address;\n"
        "links are signed with DIGEST_DELIVERY__SECRET. No GET changes anything.",
    )
    sub.add_argument("--host", metavar="ADDRESS", help="address to listen on (default [web] host: 127.0.0.1)")
    sub.add_argument("--port", type=positive, metavar="PORT", help="port (default [web] port: 8080)")
