"""Commands on subscribers: subscribe, unsubscribe, pause, resume, subscribers, feedback, onboard, check."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from digest import links, pipeline, profiles
from digest.cli import show
from digest.config import Settings
from digest.errors import DeliveryError, DigestError, UsageError
from digest.models import Profile, Subscriber
from digest.store import Store
from digest.text import normalise_title, plural, printable

if TYPE_CHECKING:
    from digest.rank import Offer


def _archive_titles(store: Store) -> set[str]:
    return {p.norm_title for p in store.papers.archive()}


def subscribe_command(args: argparse.Namespace, settings: Settings) -> int:
    with Store.open(settings.database.location) as store:
        profile, outcome = pipeline.subscribe(store.subscribers, args.profile, at=datetime.now(UTC))
        titles = _archive_titles(store)
    if args.json:
        found = sum(normalise_title(seed) in titles for seed in profile.seeds)
        show.json_line({"name": profile.name, "outcome": outcome, "seeds_found": found} | show.profile_json(profile))
        return 0
    verb = {"unchanged": "already subscribed, unchanged"}.get(outcome, outcome)
    print(f"{profile.name}: {verb}")
    print("\n".join(map(printable, show.describe_profile(profile, archive_titles=titles))))
    return 0


def unsubscribe_command(args: argparse.Namespace, settings: Settings) -> int:
    with Store.open(settings.database.location) as store:
        pipeline.set_state(store.subscribers, args.name, "unsubscribed", at=datetime.now(UTC))
    print(f"{args.name}: unsubscribed; their digest history is kept, so subscribing again sends no repeats")
    return 0


def pause_command(args: argparse.Namespace, settings: Settings) -> int:
    if args.until is not None and args.until <= date.today():
        raise UsageError(f"--until {args.until}: not in the future; give a later date")
    with Store.open(settings.database.location) as store:
        pipeline.set_state(store.subscribers, args.name, "paused", until=args.until, at=datetime.now(UTC))
    until = f" until {args.until} (digests resume on {args.until + timedelta(days=1)})" if args.until else ""
    print(f"{args.name}: paused{until}; 'digest resume {args.name}' ends it")
    return 0


def resume_command(args: argparse.Namespace, settings: Settings) -> int:
    with Store.open(settings.database.location) as store:
        pipeline.set_state(store.subscribers, args.name, "active", at=datetime.now(UTC))
        lifted = pipeline.lift_suspension(store.bounces, store.subscribers, args.name)
    again = f"; email to {', '.join(lifted)} resumes (it had bounced)" if lifted else ""
    print(f"{args.name}: active{again}")
    return 0


def subscribers_command(args: argparse.Namespace, settings: Settings) -> int:
    with Store.open(settings.database.location) as store:
        broken = show.sync_report(
            pipeline.sync_subscribers(store.subscribers, settings.subscribers.dir, at=datetime.now(UTC))
        )
        rows = store.subscribers.all(include_unsubscribed=args.all)
        profiles_ = [(row, pipeline.stored_profile(row)) for row in rows]
        suspended = store.bounces.suspended()

    def state(row: Subscriber, profile: Profile) -> str:
        """The subscriber's status; ``bounced`` when they are active but their email is suspended."""
        bounced = row.status == "active" and bool(pipeline.suspended_addresses(profile, suspended))
        return "bounced" if bounced else row.status

    show.no_smtp_warning([p for row, p in profiles_ if row.status != "unsubscribed"], settings)
    if args.json:
        for row, profile in profiles_:
            place = {"status": state(row, profile), "paused_until": row.paused_until, "source": row.source}
            extra = {"feed": links.feed_url(row.name, row.link_key, settings.delivery), "updated_at": row.updated_at}
            show.json_line({"name": row.name} | place | show.profile_json(profile) | extra)
        return 1 if broken else 0
    if not profiles_:
        print(f"no subscribers yet: 'digest subscribe PROFILE.toml', or put profiles in {settings.subscribers.dir}/")
        return 1 if broken else 0
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("name", "status", "schedule", "channels", "keywords"):
        table.add_column(column, overflow="fold")
    for row, profile in profiles_:
        status = state(row, profile) + (f" until {row.paused_until}" if row.paused_until else "")
        cells = (
            profile.name,
            status,
            show.schedule_text(profile),
            show.channels_text(profile, smtp=bool(settings.smtp.host)),
            show.keywords_text(profile),
        )
        table.add_row(*(printable(cell) for cell in cells))  # a keyword cannot drive the terminal
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    with console.capture() as captured:
        console.print(table)
    print("\n".join(line.rstrip() for line in captured.get().splitlines()))
    return 1 if broken else 0


def check_command(args: argparse.Namespace, settings: Settings) -> int:
    failed = 0

    def bad(path: Path, error: DigestError) -> None:
        nonlocal failed
        failed += 1
        if args.json:
            show.json_line({"file": str(path), "status": "error", "errors": str(error).split("\n")})
        else:
            show.error(str(error))

    files = [file for path in args.profiles for file in (profiles.profile_files(path) if path.is_dir() else [path])]
    loaded = profiles.load_many(files, on_error=bad)
    if not args.json:
        show.no_smtp_warning([profile for profile, _ in loaded], settings)
    for profile, _ in loaded:
        hooks = [_webhook(channel.kind, channel.url_env, settings) for channel in profile.delivery if channel.url_env]
        failed += sum(1 for hook in hooks if hook["status"] == "refused")
        if args.json:
            show.json_line({"file": profile.source, "status": "ok"} | show.profile_json(profile) | {"webhooks": hooks})
            continue
        print(f"{profile.source}: ok ({profile.name})")
        print("\n".join(map(printable, show.describe_profile(profile))))
        _print_webhooks(hooks)
    return 1 if failed else 0


def _webhook(kind: str, variable: str, settings: Settings) -> dict[str, Any]:
    """Where a webhook channel would post, resolved and checked now: ok (with where), unset, or refused (why)."""
    from digest import channels  # noqa: PLC0415 - the channels (httpx) only for a profile with webhooks

    found: dict[str, Any] = {"channel": channels.channel_name(kind, variable)}
    try:
        target = pipeline.webhook_target(kind, variable, settings)
    except DeliveryError as e:
        return found | {"status": "refused", "error": str(e)}
    if target is None:
        return found | {"status": "unset", "error": channels.UNSET}
    return found | {"status": "ok", "scheme": target.url.scheme, "addresses": list(target.addresses)}


def _print_webhooks(hooks: list[dict[str, Any]]) -> None:
    for hook in hooks:
        if hook["status"] == "refused":
            show.error(hook["error"])
        elif hook["status"] == "unset":
            show.warn(f"{hook['channel']}: {hook['error']}")
        else:
            print(f"  webhooks:  {hook['channel']}: {hook['scheme']} to {', '.join(hook['addresses'])}")


def feedback_command(args: argparse.Namespace, settings: Settings) -> int:
    """Record votes (--up, --down, --clear) on papers, or list a subscriber's votes."""
    direction = 1 if args.up else -1 if args.down else 0 if args.clear else None
    with Store.open(settings.database.location) as store:
        if args.papers and direction is None:
            raise UsageError("say which: --up, --down or --clear with paper ids")
        if args.papers and direction is not None:
            changed = pipeline.vote(store, args.name, args.papers, direction, at=datetime.now(UTC))
            if args.json:
                show.json_line({"subscriber": args.name, "vote": direction, "papers": args.papers, "changed": changed})
                return 0
            verb = {1: "more like", -1: "less like", 0: "no vote on"}[direction]
            print(f"{args.name}: {verb} {plural(len(args.papers), 'paper')} ({changed} changed)")
            return 0
        pipeline.find_subscriber(store.subscribers, args.name, unsubscribed=True)
        votes = store.feedback.votes(args.name)
    for v in votes:
        if args.json:
            show.json_line({"paper": v.paper, "title": v.title, "vote": v.vote, "edition": v.edition, "at": v.at})
        else:
            print(f"{'+1' if v.vote > 0 else '-1'}  {v.paper:<20}  {v.title or '(not in the archive)'}")
    if not votes and not args.json:
        print(f"{args.name}: no votes yet")
    return 0


KIND_WORDS = {"best": "a best match", "unsure": "the ranking is unsure", "apart": "unsure, and unlike the others"}
ANSWER_KEYS = {"y": 1, "yes": 1, "n": -1, "no": -1, "s": 0, "skip": 0, "": 0}


def onboard_command(args: argparse.Namespace, settings: Settings) -> int:
    """Offer about ten archive papers to rate: asked one by one on a terminal, else listed (or as JSON)."""
    with Store.open(settings.database.location) as store:
        show.sync_report(pipeline.sync_subscribers(store.subscribers, settings.subscribers.dir, at=datetime.now(UTC)))
        subscriber = pipeline.find_subscriber(store.subscribers, args.name)
        offers = pipeline.onboarding_offers(
            store, pipeline.stored_profile(subscriber), settings=settings, now=datetime.now(UTC)
        )
        signed = links.links_for(subscriber.name, subscriber.link_key, settings.delivery)
        page = signed.onboard if signed else None
        if args.json:
            for offer in offers:
                paper = offer.item.paper
                show.json_line({"id": paper.id, "title": paper.title, "score": offer.item.score, "kind": offer.kind})
            return 0
        if not offers:
            print(f"{args.name}: no recent papers to offer yet (ingest some dumps first)")
            return 0
        if sys.stdin.isatty() and sys.stdout.isatty():
            answers = _ask(offers)
            changed = pipeline.record_answers(store.feedback, args.name, answers, at=datetime.now(UTC))
            print(f"{args.name}: {plural(len(answers), 'answer')} recorded as votes ({changed} changed)")
            return 0
    _list_offers(args.name, offers, page)
    return 0


def _list_offers(name: str, offers: list[Offer], page: str | None) -> None:
    print(f"{name}: {plural(len(offers), 'paper')} to rate, best match first")
    for number, offer in enumerate(offers, start=1):
        paper = offer.item.paper
        print(f"{number:>3}. {printable(paper.title)}")
        print(f"     {paper.id}  score {offer.item.score:.3f}  ({KIND_WORDS[offer.kind]})")
    print(f"\nrecord answers: digest feedback {name} PAPER_ID... --up (yes) or --down (no)")
    if page:
        print(f"or send the reader their page: {page}")


def _ask(offers: list[Offer]) -> dict[str, int]:
    """Each paper's answer from the terminal: y(es), n(o) or s(kip); Ctrl-D stops asking, keeping what was said."""
    answers: dict[str, int] = {}
    for number, offer in enumerate(offers, start=1):
        paper = offer.item.paper
        print(f"\n{number}/{len(offers)}  {printable(paper.title)}")
        if paper.abstract:
            print("   " + printable(paper.abstract[:300]) + ("…" if len(paper.abstract) > 300 else ""))
        while True:
            try:
                reply = input("   more like this? [y]es / [n]o / [s]kip: ").strip().lower()
            except EOFError:
                print()
                return answers
            if reply in ANSWER_KEYS:
                break
            print("   please answer y, n or s")
        if ANSWER_KEYS[reply]:
            answers[paper.id] = ANSWER_KEYS[reply]
    return answers
