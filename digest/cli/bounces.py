"""Commands on bounces and complaints: ``digest bounces`` (read a mailbox) and ``digest deliveries --bounced``."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from digest import pipeline
from digest.cli import show
from digest.config import Settings
from digest.errors import UsageError
from digest.interrupts import Interrupt
from digest.mailboxes import STDIN, open_mailbox
from digest.store import BounceRecord, Store
from digest.text import plural, printable

KINDS = ("hard", "soft", "complaint", "auto-reply", "unknown")


def bounces_command(args: argparse.Namespace, settings: Settings) -> int:
    """Read every message in the mailbox, apply each (unless --dry-run), print one line (or object) each."""
    source = args.source or settings.bounces.source
    if not source:
        raise UsageError(
            "say where bounces are: digest bounces MAILDIR|MBOX|imap|-, or set [bounces] source in the config"
        )
    now = datetime.now(UTC)
    stdin = sys.stdin.buffer if source == STDIN else None
    kinds: Counter[str] = Counter()
    actions: list[str] = []
    with (
        open_mailbox(source, settings.bounces, stdin=stdin) as box,
        Interrupt() as stop,
        Store.open(settings.database.location) as store,
    ):
        read = pipeline.read_mailbox(store, box, settings, now=now, dry_run=args.dry_run, stop=stop.is_set)
        for outcome in read:
            kinds[outcome.kind] += 1
            actions += outcome.actions
            _say(outcome, json=args.json, dry_run=args.dry_run)
    if not args.json:
        _summary(box.name, kinds, actions, dry_run=args.dry_run, stopped=stop.is_set())
    return stop.exit_code if stop.is_set() else 0


def _say(outcome: pipeline.BounceOutcome, *, json: bool, dry_run: bool) -> None:
    report, match = outcome.report, outcome.matched
    if json:
        show.json_line(
            {
                "source": outcome.source,
                "kind": report.kind,
                "recipients": report.recipients,
                "status": report.status,
                "reason": report.reason,
                "matched": match.delivery if match else None,
                "subscriber": match.subscriber if match else None,
                "actions": outcome.actions,
            }
        )
        return
    if report.kind == "unknown":
        show.warn(f"{outcome.source}: {report.note}; {'would be ' if dry_run else ''}filed as unknown")
        return
    if report.kind == "auto-reply":
        print(printable(f"{outcome.source}: an automatic reply; ignored"))
        return
    who = ", ".join(report.recipients) or "no recipient named"
    what = " ".join(filter(None, (report.kind, report.status, report.reason)))
    whose = _whose(match)
    done = f"; {'; '.join(outcome.actions)}" if outcome.actions else ""
    print(printable(f"{outcome.source}: {what}: {who} ({whose}){done}"))


def _whose(match: pipeline.BounceMatch | None) -> str:
    if match is None or (match.delivery is None and match.subscriber is None):
        return "no delivery matched"
    if match.delivery is None:
        return f"subscriber {match.subscriber}"
    return f"delivery #{match.delivery}, {match.subscriber}"


def _summary(name: str, kinds: Counter[str], actions: list[str], *, dry_run: bool, stopped: bool) -> None:
    read = sum(kinds.values())
    counts = ", ".join(f"{kinds[k]} {k}" for k in KINDS if kinds[k])
    suspended = sum(a.startswith(pipeline.SUSPENDED_ACTION) for a in actions)
    unsubscribed = sum(a.startswith(pipeline.UNSUBSCRIBED_ACTION) for a in actions)
    print(f"read {plural(read, 'message')} from {name}" + (f": {counts}" if counts else ""))
    if dry_run:
        print("dry run: nothing recorded, suspended or moved")
    elif suspended or unsubscribed:
        addresses = f"{suspended} address" + ("" if suspended == 1 else "es")
        print(f"suspended email to {addresses}; unsubscribed {unsubscribed} after a complaint")
    if stopped:
        print("interrupted: the messages not read yet stay in the mailbox for the next run")


def bounced_command(args: argparse.Namespace, settings: Settings) -> int:
    """``digest deliveries --bounced``: the bounces and complaints recorded, newest first."""
    with Store.open(settings.database.location) as store:
        rows = store.bounces.newest(limit=args.limit or None)
    if args.json:
        for row in rows:
            show.json_line(bounce_json(row))
        return 0
    if not rows:
        print("no bounces or complaints recorded; 'digest bounces' reads them")
        return 0
    for row in rows:
        print(printable(bounce_line(row)))
    return 0


def bounce_line(row: BounceRecord) -> str:
    delivery = f"#{row.delivery}" if row.delivery is not None else "-"
    what = " ".join(filter(None, (row.kind, row.status, row.reason)))
    return f"{row.at[:16].replace('T', ' ')}  {delivery:<7} {row.subscriber or '-':<14} {row.address or '-':<28} {what}"


def bounce_json(row: BounceRecord) -> dict[str, Any]:
    return {
        "at": row.at,
        "source": row.source,
        "kind": row.kind,
        "delivery": row.delivery,
        "subscriber": row.subscriber,
        "address": row.address,
        "status": row.status,
        "reason": row.reason,
        "diagnostic": row.diagnostic,
    }
