"""The ``digest`` command. Catches ``DigestError`` once: one line on stderr, an exit code.

Exit codes: 0 success, 1 bad input (some file, profile or config could not be
used; the rest went on), 2 bad usage, 130 interrupted. ``--verbose`` adds the
traceback to an error.

Machine output (``--json``) is a stable interface: one JSON object per line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from digest import __version__, config, pipeline
from digest.config import Settings
from digest.errors import DigestError, UsageError
from digest.models import Dump, DumpRecord, Paper, ParseWarning
from digest.store import Store

# How many warnings per file the human output shows before summing up the rest.
SHOWN_WARNINGS = 20
# From this many files on, ingest draws a progress bar (on a terminal only).
PROGRESS_FROM = 5

_err = Console(stderr=True, highlight=False, soft_wrap=True)


# --- output helpers -------------------------------------------------------


def _json_line(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, default=_json_default))


def _json_default(value: object) -> str:
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _paper_json(paper: Paper) -> dict[str, Any]:
    return {
        "id": paper.id,
        "title": paper.title,
        "abstract": paper.abstract,
        "authors_count": paper.authors_count,
        "organization": paper.organization,
        "published": paper.published,
        "upvotes": paper.upvotes,
        "position": paper.position,
    }


def _dump_json(dump: Dump) -> dict[str, Any]:
    return {
        "source": dump.source,
        "layout": dump.layout,
        "page_date": dump.page_date,
        "papers": [_paper_json(p) for p in dump.papers],
        "warnings": [{"line": w.line, "message": w.message} for w in dump.warnings],
    }


def _error(message: str) -> None:
    _err.print(f"digest: error: {message}", markup=False)


def _show_warnings(source: str, warnings: Sequence[ParseWarning]) -> None:
    for warning in warnings[:SHOWN_WARNINGS]:
        _err.print(f"{source}:{warning.line}: warning: {warning.message}", markup=False)
    if len(warnings) > SHOWN_WARNINGS:
        more = len(warnings) - SHOWN_WARNINGS
        _err.print(f"{source}: … and {more} more warnings (digest parse {source} --json lists them all)", markup=False)


def _meta(paper: Paper) -> str:
    parts = []
    if paper.authors_count is not None:
        parts.append(f"{paper.authors_count} author{'s' if paper.authors_count != 1 else ''}")
    if paper.organization:
        parts.append(paper.organization)
    if paper.published:
        parts.append(paper.published.isoformat())
    if paper.upvotes is not None:
        parts.append(f"▲{paper.upvotes}")
    if paper.abstract is None:
        parts.append("no abstract")
    return f"  [{' · '.join(parts)}]" if parts else ""


def _progress(items: Iterable[pipeline.FileOutcome], *, total: int) -> Iterator[pipeline.FileOutcome]:
    """Yield the items, drawing a progress bar on a terminal when there are many."""
    if total < PROGRESS_FROM or not _err.is_terminal:
        yield from items
        return
    with Progress(
        TextColumn("ingesting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=_err,
        transient=True,
    ) as bar:
        task = bar.add_task("ingest", total=total)
        for item in items:
            yield item
            bar.advance(task)


def _count_files(paths: Sequence[Path]) -> int:
    return sum(1 for _ in pipeline.expand(paths))


def _day(record: DumpRecord) -> str:
    return record.page_date.isoformat() if record.page_date else "no page day"


# --- commands ---------------------------------------------------------------
# Each command takes the parsed arguments and the settings and returns an exit code.


def parse_command(args: argparse.Namespace, settings: Settings) -> int:
    failed = 0
    for outcome in pipeline.parse_files(args.files, settings=settings, today=date.today()):
        if outcome.error is not None:
            failed += 1
            _error(str(outcome.error))
            continue
        dump = outcome.dump
        assert dump is not None
        if args.json:
            _json_line(_dump_json(dump))
            continue
        day = dump.page_date.isoformat() if dump.page_date else "no page day"
        print(f"{dump.source}: {dump.layout}, {day}, {len(dump.papers)} papers, {len(dump.warnings)} warnings")
        for paper in dump.papers:
            print(f"  {paper.position:>4}  {paper.title}{_meta(paper)}")
        _show_warnings(dump.source, dump.warnings)
    return 1 if failed else 0


def ingest_command(args: argparse.Namespace, settings: Settings) -> int:
    now = datetime.now(UTC)
    totals = {"dumps": 0, "repeats": 0, "papers": 0, "new": 0, "seen": 0, "failed": 0}
    with Store.open(settings.database.path) as store:
        outcomes = pipeline.ingest_files(args.paths, store=store, settings=settings, now=now)
        for outcome in _progress(outcomes, total=_count_files(args.paths)):
            if outcome.error is not None:
                totals["failed"] += 1
                if args.json:
                    _json_line({"source": str(outcome.path), "status": "error", "error": str(outcome.error)})
                _error(str(outcome.error))
                continue
            assert outcome.ingested is not None and outcome.dump is not None
            record, repeat = outcome.ingested.record, outcome.ingested.repeat
            totals["dumps"] += 1
            if repeat:
                totals["repeats"] += 1
            else:
                totals["papers"] += record.papers
                totals["new"] += record.new
                totals["seen"] += record.seen
            if args.json:
                _json_line(
                    {
                        "source": str(outcome.path),
                        "status": "repeat" if repeat else "ingested",
                        "dump": record.id,
                        "sha256": record.sha256,
                        "layout": record.layout,
                        "page_date": record.page_date,
                        "papers": 0 if repeat else record.papers,
                        "new": 0 if repeat else record.new,
                        "already_seen": 0 if repeat else record.seen,
                        "warnings": [{"line": w.line, "message": w.message} for w in outcome.dump.warnings],
                    }
                )
            elif repeat:
                when = record.ingested_at.strftime("%Y-%m-%d %H:%M UTC")
                print(f"{outcome.path.name}: already ingested on {when} (as dump {record.id}); nothing changed")
            else:
                print(
                    f"{outcome.path.name}: {record.layout}, {_day(record)}: "
                    f"{record.papers} papers, {record.new} new, {record.seen} already seen"
                )
                _show_warnings(str(outcome.path), outcome.dump.warnings)
    if not args.json:
        _ingest_summary(totals, database=settings.database.path)
    return 1 if totals["failed"] else 0


def _ingest_summary(totals: dict[str, int], *, database: Path) -> None:
    fresh = totals["dumps"] - totals["repeats"]
    parts = [f"{fresh} dump{'s' if fresh != 1 else ''} ingested"]
    if totals["repeats"]:
        parts.append(f"{totals['repeats']} ingested before (unchanged)")
    if totals["failed"]:
        parts.append(f"{totals['failed']} failed")
    print(
        f"total: {', '.join(parts)}; {totals['papers']} papers, {totals['new']} new, "
        f"{totals['seen']} already seen -> {database}"
    )
    if fresh:
        print("list the new papers of a dump: digest papers --new-in FILE_NAME")


def papers_command(args: argparse.Namespace, settings: Settings) -> int:
    with Store.open(settings.database.path) as store:
        first_dump = None
        if args.new_in is not None:
            record = store.find_dump(args.new_in)
            if record is None:
                raise UsageError(f"--new-in {args.new_in!r}: no such dump; name a file that was ingested")
            first_dump = record.id
        rows = store.papers(first_dump=first_dump, limit=args.limit)
    for row in rows:
        if args.json:
            extra = {"first_dump": row.first_dump, "first_seen": row.first_seen, "sightings": row.sightings}
            _json_line(_paper_json(row.paper) | extra)
        else:
            print(f"{row.paper.id}  {Path(row.first_dump).name:<28}  {row.paper.title}")
    if not args.json and not rows:
        print("no papers yet; add some with: digest ingest DUMP...")
    return 0


def status_command(args: argparse.Namespace, settings: Settings) -> int:
    with Store.open(settings.database.path) as store:
        status = store.status()
    last = status.last_dump
    if args.json:
        _json_line(
            {
                "database": status.path,
                "schema_version": status.schema_version,
                "dumps": status.dumps,
                "papers": status.papers,
                "sightings": status.sightings,
                "last_ingest": None
                if last is None
                else {"source": last.source, "at": last.ingested_at, "papers": last.papers, "new": last.new},
            }
        )
        return 0
    print(f"database:    {status.path} (schema {status.schema_version})")
    print(f"dumps:       {status.dumps}")
    print(f"papers:      {status.papers} distinct, {status.sightings} sightings")
    if last is None:
        print("last ingest: never; run: digest ingest DUMP...")
    else:
        when = last.ingested_at.strftime("%Y-%m-%d %H:%M UTC")
        print(f"last ingest: {last.source} at {when}: {last.papers} papers, {last.new} new")
    return 0


# --- argument parsing ---------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse that raises ``UsageError`` (exit 2, one line) instead of printing usage."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


_Command = Callable[[argparse.Namespace, Settings], int]

_EPILOG = """\
examples:
  digest ingest examples/dumps          ingest every dump in a folder, report what is new
  digest parse page.txt --json          parse one dump, print it as JSON, write nothing
  digest papers --new-in page.txt       the papers first seen in that dump

config: ./digest.toml if present, or --config FILE; DIGEST_* environment variables
override it (e.g. DIGEST_DATABASE__PATH). Every key: config.example.toml.
exit codes: 0 ok, 1 some input could not be used (the rest went on), 2 bad usage.
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``digest`` argument parser; global options work before or after the command."""
    common = _Parser(add_help=False)
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
    parser = _Parser(
        prog="digest",
        description="Trending research papers from Hugging Face Daily Papers dumps, ranked for you, delivered daily.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"paper-digest {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def command(name: str, run: _Command, summary: str, description: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=summary,
            description=f"{summary}\n\n{description}".strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[common],
        )
        sub.set_defaults(run=run)
        return sub

    json_help = "one JSON object per line (a stable interface for scripts)"
    sub = command(
        "parse",
        parse_command,
        "Parse dump files and show their papers; writes nothing.",
        "With --json, one object per file: source, layout, page_date, papers (id, title,\n"
        "abstract, authors_count, organization, published, upvotes, position) and\n"
        "warnings (line, message). Absent values are null.",
    )
    sub.add_argument("files", nargs="+", type=Path, metavar="FILE", help="a dump: the text of a Daily Papers page")
    sub.add_argument("--json", action="store_true", help=json_help)

    sub = command(
        "ingest",
        ingest_command,
        "Ingest dumps into the database and report, per dump, what is new.",
        "A paper is new when no earlier dump had it (same arXiv id or same normalised\n"
        "title). Ingesting the same bytes again changes nothing. A bad file is reported\n"
        "and skipped; the others still go in, and the exit code is 1.",
    )
    sub.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="dump files, or folders of dumps (name order)")
    sub.add_argument("--json", action="store_true", help=json_help)

    sub = command("papers", papers_command, "List the papers of the seen-set, in the order first seen.", "")
    sub.add_argument("--new-in", metavar="DUMP", help="only papers first seen in DUMP (file name, id, sha256 prefix)")
    sub.add_argument("-n", "--limit", type=_positive, metavar="N", help="at most N papers")
    sub.add_argument("--json", action="store_true", help=json_help)

    sub = command("status", status_command, "Show the database: its path, what it holds, the last ingest.", "")
    sub.add_argument("--json", action="store_true", help=json_help)
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


# --- entry point ------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code instead of exiting (tests call this)."""
    verbose = False
    try:
        args = build_parser().parse_args(argv)
        verbose = getattr(args, "verbose", False)
        settings = config.load(getattr(args, "config", None))
        run: _Command = args.run
        return run(args, settings)
    except SystemExit as e:  # --help and --version
        return e.code if isinstance(e.code, int) else 0
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except BrokenPipeError:  # `digest parse x | head`: the reader left; stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except DigestError as e:
        if verbose:
            traceback.print_exc()
        _error(str(e))
        return e.exit_code
