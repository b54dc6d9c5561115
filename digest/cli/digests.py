"""Commands on digests and deliveries: rank, preview, send, deliveries, retry, run."""

from __future__ import annotations

import argparse
import shlex
import sys
from datetime import UTC, date, datetime
from pathlib import Path

from digest import ingest, init, links, pipeline, profiles
from digest.cli import sending, show
from digest.config import Settings
from digest.errors import InputError, UsageError
from digest.interrupts import Interrupt
from digest.models import Paper, Subscriber
from digest.store import Store
from digest.text import plural


def rank_command(args: argparse.Namespace, settings: Settings) -> int:
    with Store.open(settings.database.location) as store:
        if args.subscriber:
            profile = pipeline.stored_profile(pipeline.find_subscriber(store.subscribers, args.subscriber))
        else:
            profile, _ = profiles.load(args.profile)
        papers, source = _papers_to_rank(store, args, settings)
        now = _clock()
        read = pipeline.reading(store, profile, papers, settings=settings, now=now)
        ranked = pipeline.rank_for(store, profile, papers, settings=settings, now=now, keep_all=args.all, read=read)
        everything = ranked if args.all else pipeline.rank_for(
            store, profile, papers, settings=settings, now=now, keep_all=True, read=read
        )  # fmt: skip
    if args.json:
        for r in ranked:
            show.json_line(
                {"rank": r.rank, "id": r.paper.id, "title": r.paper.title, "score": r.score,
                 "why": [w.as_dict() for w in r.why]}
            )  # fmt: skip
        return 0
    shown = "all" if args.all else f"top {len(ranked)}"
    print(f"{profile.name}: {shown} of {plural(len(papers), 'paper')} in {source}")
    show.print_ranked(ranked)
    if not args.all:
        whose = f"--subscriber {args.subscriber}" if args.subscriber else f"--profile {args.profile}"
        show.quiet_note(ranked, everything, profile, command=f"digest rank {whose} --all")
    return 0


def _papers_to_rank(store: Store, args: argparse.Namespace, settings: Settings) -> tuple[list[Paper], str]:
    """The papers of ``--dump FILE`` (not stored), or those new in the latest ingest."""
    if args.dump is not None:
        dump, _ = ingest.load(
            args.dump, today=date.today(), max_bytes=settings.ingest.max_bytes, max_papers=settings.ingest.max_papers
        )
        return list(dump.papers), str(args.dump)
    papers, source = pipeline.new_papers(store)
    if source is None:
        raise InputError("no dumps ingested yet; run 'digest ingest DUMP...' first, or pass --dump FILE")
    return papers, source


def preview_command(args: argparse.Namespace, settings: Settings) -> int:
    """The next digest when there are papers for it; else the last one they got (said so); else the notice."""
    with Store.open(settings.database.location) as store:
        broken = show.sync_report(pipeline.sync_subscribers(store.subscribers, settings.subscribers.dir, at=_clock()))
        view = pipeline.preview(store, args.name, settings=settings, now=_clock())
        last = None if view.items else pipeline.last_digest(store, view.profile)
        found = store.subscribers.get(args.name)
    if args.format != "terminal":
        _preview_file(args, settings, view, last)
    else:
        _preview_terminal(view, last)
    if found is not None:
        _feed_line(args, settings, found)
    return 1 if broken else 0


def _feed_line(args: argparse.Namespace, settings: Settings, found: Subscriber) -> None:
    """The subscriber's feed address, when links can be signed: after the preview, or on stderr beside a file."""
    feed = links.feed_url(found.name, found.link_key, settings.delivery)
    if feed is None:
        return
    if args.format == "terminal":
        print(f"\n{args.name}'s feed: {feed}")
    else:  # stdout holds the digest itself
        show.err.print(f"{args.name}'s feed: {feed}", markup=False, soft_wrap=True)


def _preview_file(
    args: argparse.Namespace, settings: Settings, view: pipeline.Preview, last: pipeline.LastDigest | None
) -> None:
    """The digest in ``--format``: the next one, or the last one's frozen content (chat formats made again)."""
    frozen = {"html": last.stored.html, "text": last.stored.text, "md": last.stored.markdown} if last else {}
    if frozen.get(args.format):
        output = frozen[args.format]
    else:  # a chat format, or one not kept with the digest (Markdown of an email-only digest): made again
        digest = last.as_digest() if last else pipeline.as_digest(view, now=datetime.now(UTC))
        output = pipeline.renderer(settings).render(digest, args.format)
    which = _which(view, last)
    if args.out is None:
        sys.stdout.write(output)
        show.err.print(f"{args.name}: {which}", markup=False)
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(output, encoding="utf-8")
    show.err.print(f"{args.name}: {which}, as {args.format}, written to {args.out}", markup=False)


def _which(view: pipeline.Preview, last: pipeline.LastDigest | None) -> str:
    """Which digest a preview shows, in words (and that they get none while paused or unsubscribed)."""
    state = "" if view.status == "active" else f" (they are {view.status}: nothing is sent to them now)"
    if view.items:
        return f"their next digest, if it were made now{state}"
    if last is not None:
        return f"nothing new for them yet; their last digest (edition {last.stored.edition}, made {_made(last)}){state}"
    return f"nothing for them yet; the notice they would get{state}"


def _made(last: pipeline.LastDigest) -> str:
    return f"{last.stored.created_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _preview_terminal(view: pipeline.Preview, last: pipeline.LastDigest | None) -> None:
    profile = view.profile
    print(f"{profile.name}: {show.schedule_text(profile)}, to {show.channels_text(profile)}")
    if view.status != "active":
        print(f"{profile.name} is {view.status}: nothing is sent to them now; this is what they would get")
    since = view.since.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if last is not None:  # found only when nothing is new for them
        print(f"nothing new for {profile.name} since {since}; their last digest:")
        print(f"edition {last.stored.edition} (made {_made(last)}): {last.stored.subject}\n")
        show.print_ranked(last.items)
        if not last.items:
            print("  a short 'nothing matched today' notice")
        return
    if view.items:
        print(f"{plural(len(view.items), 'paper')} for {profile.name} out of {view.candidates:,} new since {since}\n")
        show.print_ranked(view.items)
    else:
        notice = "a short 'nothing matched today' notice" if profile.empty_day == "notice" else "nothing (skip)"
        print(f"  nothing scores {profile.min_score:g} or more today; they would get {notice}")
    show.quiet_note(view.items, view.everything, profile, command=f"digest rank --subscriber {profile.name} --all")
    if view.trending:
        print("\ntrending today")
        for paper in view.trending:
            votes = f"  ({plural(paper.upvotes, 'upvote')})" if paper.upvotes else ""
            print(f"   -  {paper.title}{votes}")


def _clock() -> datetime:
    return datetime.now(UTC)


def send_command(args: argparse.Namespace, settings: Settings) -> int:
    names = {args.subscriber} if args.subscriber else None
    from digest import schedule  # noqa: PLC0415 - APScheduler and the fetch client, only for the commands that run

    with schedule.exclusive(settings.database.location), Store.open(settings.database.location) as store:
        if args.subscriber and store.subscribers.get(args.subscriber) is None:  # a profile added just now
            pipeline.sync_subscribers(store.subscribers, settings.subscribers.dir, at=_clock())
        if args.subscriber:
            pipeline.find_subscriber(store.subscribers, args.subscriber)
        with show.Bars() as bars, Interrupt() as interrupt:
            report = pipeline.run_daily(
                store, settings, clock=_clock, names=names, dry_run=args.dry_run, progress=bars, stop=interrupt.is_set
            )
        active = [pipeline.stored_profile(s) for s in store.subscribers.all() if not names or s.name in names]
    show.no_smtp_warning(active, settings)
    for error in report.profile_errors:
        show.error(f"{error} (the last good version stays in force)")
    if args.json:
        sending.send_json(report, dry_run=args.dry_run)
    else:
        sending.send_summary(report, settings=settings, dry_run=args.dry_run)
    sending.halted_errors(report)
    if interrupt.is_set():
        show.error(sending.interrupted_line(report))
        return interrupt.exit_code
    return 1 if report.failed or report.profile_errors or report.halted or report.unreachable_only() else 0


def deliveries_command(args: argparse.Namespace, settings: Settings) -> int:
    if args.bounced:
        from digest.cli.bounces import bounced_command  # noqa: PLC0415 - a listing of its own

        return bounced_command(args, settings)
    states = ("failed",) if args.failed else None
    with Store.open(settings.database.location) as store:
        rows = store.ledger.deliveries(states=states, limit=args.limit or None)
        more = store.ledger.count(states=states) - len(rows)
    if args.json:
        for row in rows:
            show.json_line(sending.delivery_json(row))
        return 0
    if not rows:
        print("no failed deliveries" if args.failed else "no deliveries yet; 'digest send' makes and sends digests")
        return 0
    print(sending.DELIVERY_HEADER)
    for row in rows:
        print(sending.delivery_line(row))
    if more > 0:
        print(f"… and {more:,} more (--limit 0 for all)")
    return 0


def retry_command(args: argparse.Namespace, settings: Settings) -> int:
    if args.id is None and not args.all:
        raise UsageError("say which: digest retry ID, or digest retry --all")
    with Store.open(settings.database.location) as store:
        count = pipeline.requeue(store.ledger, None if args.all else args.id, at=_clock())
    if args.id is not None and count == 0:
        print(f"#{args.id} is not failed or waiting; nothing to do")
        return 0
    print(f"requeued {plural(count, 'delivery')}; 'digest send' delivers them now")
    return 0


def serve_command(args: argparse.Namespace, settings: Settings) -> int:
    from digest import web  # noqa: PLC0415 - Starlette and uvicorn load only for this command

    host = args.host or settings.web.host
    return web.serve(settings, host=host, port=args.port or settings.web.port)


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    from digest import events, schedule  # noqa: PLC0415 - as in send_command

    log = events.EventLog(fmt=args.log_format)
    if not args.once:
        return schedule.Daemon(settings, log=log).forever()
    with show.Bars() as bars:
        return schedule.Daemon(settings, log=log, progress=bars).once(strict=args.strict)


def init_command(args: argparse.Namespace, settings: Settings) -> int:
    folder: Path = args.folder
    made = init.init(folder)
    where = folder.resolve()
    print(f"set up {where}: " + ", ".join(_shown(path, folder) for path in made if path != folder))
    print("next:")
    if where != Path.cwd().resolve():
        print(f"  cd {shlex.quote(str(folder))}")
    print("  edit subscribers/example.toml.off           your address, zone and keywords (nobody is mailed yet)")
    print("  mv subscribers/example.toml.off subscribers/you.toml   switches it on: each *.toml there is a subscriber")
    print("  digest fetch                                today's papers from Hugging Face (or drop a page into dumps/)")
    print("  digest send                                 make the digests that are due and deliver them")
    print("settings: digest.toml (every key explained; email goes to outbox/ until [smtp] host is set)")
    return 0


def _shown(path: Path, folder: Path) -> str:
    name = str(path.relative_to(folder))
    return name + "/" if path.is_dir() else name
