"""What ``digest send`` and ``digest deliveries`` print: the summary of a run (made, sent, retried,
failed, interrupted), its JSON lines, and the ledger's rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from digest import pipeline
from digest.cli.show import error, json_line
from digest.config import Settings
from digest.models import Delivery
from digest.text import plural

SHOWN_NAMES = 5  # a summary names this many, then says how many more
SHOWN_LINES = 10  # retries, failures and planned deliveries listed one per line, at most


def few(items: Sequence[str], *, shown: int = SHOWN_NAMES) -> str:
    """``a, b, c, … and 2,997 more``."""
    rest = len(items) - shown
    return ", ".join(items[:shown]) + (f", … and {rest:,} more" if rest > 0 else "")


def made_line(report: pipeline.SendReport, *, dry_run: bool) -> str:
    """``made 3,000 digests: 29,412 papers, 2 'nothing matched' notices (ada 10, ben 7, … and 2,998 more)``."""
    verb = "would make" if dry_run else "made"
    if not report.made:
        return f"{verb} no digests (none due)"
    papers = sum(count for _, _, count in report.made)
    notices = sum(1 for _, _, count in report.made if count == 0)
    counts = ", ".join(
        [plural(papers, "paper")] * bool(papers or not notices)
        + [plural(notices, "nothing-matched notice")] * bool(notices)
    )
    names = few([f"{name} {count}" if count else f"{name} notice" for name, _, count in report.made])
    return f"{verb} {plural(len(report.made), 'digest')}: {counts} ({names})"


def send_summary(report: pipeline.SendReport, *, settings: Settings, dry_run: bool) -> None:
    print(made_line(report, dry_run=dry_run))
    if report.skipped:
        names = few([name for name, _ in report.skipped])
        print(f"skipped {len(report.skipped):,} (nothing matched; empty_day = skip): {names}")
    if report.suspended:
        names = few(report.suspended)
        print(
            f"not mailed: {len(report.suspended):,} whose address bounced ({names}); 'digest resume NAME' after a fix"
        )
    if dry_run:
        print(f"would deliver {plural(len(report.planned), 'message')}")
        _capped([f"  {name} -> {channel}" for name, channel in report.planned], more="more")
        print("dry run: nothing was written or sent")
        return
    outcome = [f"sent {plural(len(report.sent), 'message')}"]
    if report.retries:
        outcome.append(f"{len(report.retries):,} to retry")
    if report.failed:
        outcome.append(f"{len(report.failed):,} failed")
    if report.pruned:
        outcome.append(f"the bodies of {plural(report.pruned, 'old digest')} dropped")
    if report.signup_mails:
        outcome.append(f"{plural(report.signup_mails, 'sign-up email')}")
    print("; ".join(outcome))
    if report.chores_elsewhere:
        print("ingest, the profiles' sync and sign-up mail were left to another process sharing the database")
    if report.made_elsewhere or report.sent_elsewhere:
        shared = f"{plural(report.made_elsewhere, 'digest')} and {plural(report.sent_elsewhere, 'delivery')}"
        print(f"left to other processes sharing the database (they had claimed them first): {shared}")
    _capped(retry_lines(report.retries), more="more retries: digest deliveries")
    _capped(
        [f"FAILED:  #{d.id} {d.subscriber} -> {d.channel}: {why}" for d, why in report.failed],
        more="more failed: digest deliveries --failed",
    )
    if report.failed:
        print("after fixing the cause: digest retry ID (or --all)")
    _capped([f"bounced: {what}" for what in report.bounced], more="more: digest deliveries --bounced")
    if any(d.kind in ("outbox", "atom") for d in report.sent):
        box = settings.delivery.outbox_dir
        print(f"look in: {box}/NAME/new/*.eml (Maildir), {box}/NAME/digests/*.md, {box}/feeds/*.atom")


def retry_lines(retries: Sequence[tuple[Delivery, str, datetime]]) -> list[str]:
    """A line per delivery to retry, except that deliveries sharing one reason (a server down) share a line:
    ``127.0.0.1:2525 refused the connection: 22 emails wait for a retry (the first at 09:25:08 UTC)``."""
    by_reason: dict[str, list[tuple[Delivery, datetime]]] = {}
    for delivery, why, when in retries:
        by_reason.setdefault(why, []).append((delivery, when))
    lines = []
    for why, rows in by_reason.items():
        if len(rows) == 1:
            ((d, when),) = rows
            lines.append(
                f"retry:   #{d.id} {d.subscriber} -> {d.channel}: {why}; next try {when:%Y-%m-%d %H:%M:%S} UTC"
            )
            continue
        kinds = {d.kind for d, _ in rows}
        noun = "email" if kinds == {"email"} else "delivery"
        first = min(when for _, when in rows)
        lines.append(f"retry:   {why}: {plural(len(rows), noun)} wait for a retry (the first at {first:%H:%M:%S} UTC)")
    return lines


def interrupted_line(report: pipeline.SendReport) -> str:
    """After Ctrl-C or SIGTERM: what went out, and what the next send takes up."""
    rest = [f"{report.waiting:,} wait for the next send"]
    if report.unmade:
        rest.append(f"{plural(report.unmade, 'digest')} not made yet")
    return f"interrupted: {len(report.sent):,} sent, {', '.join(rest)}"


def _capped(lines: Sequence[str], *, more: str) -> None:
    for line in lines[:SHOWN_LINES]:
        print(line)
    if len(lines) > SHOWN_LINES:
        print(f"  … and {len(lines) - SHOWN_LINES:,} {more}")


def send_json(report: pipeline.SendReport, *, dry_run: bool) -> None:
    """``send --json``: a line per digest and per delivery, then one ``summary`` line."""
    for name, edition, count in report.made:
        json_line({"event": "made", "subscriber": name, "edition": edition, "papers": count})
    for name, edition in report.skipped:
        json_line({"event": "skipped", "subscriber": name, "edition": edition, "reason": "nothing matched"})
    for name, channel in report.planned:
        json_line({"event": "would_deliver", "subscriber": name, "channel": channel})
    for d in report.sent:
        json_line({"event": "sent", "id": d.id, "subscriber": d.subscriber, "channel": d.channel})
    for d, why, when in report.retries:
        json_line({"event": "retry", "id": d.id, "subscriber": d.subscriber, "channel": d.channel, "error": why,
                   "next_try": when})  # fmt: skip
    for d, why in report.failed:
        json_line({"event": "failed", "id": d.id, "subscriber": d.subscriber, "channel": d.channel, "error": why})
    for kind, why in report.halted.items():
        json_line({"event": "halted", "channel": kind, "waiting": report.untried.get(kind, 0), "error": why})
    for problem in report.profile_errors:
        json_line({"event": "profile_error", "error": str(problem)})
    for name in report.suspended:
        json_line({"event": "suspended", "subscriber": name, "reason": "their address bounced"})
    for what in report.bounced:
        json_line({"event": "bounced", "action": what})
    json_line(
        {
            "event": "summary",
            "dry_run": dry_run,
            "made": len(report.made),
            "papers": sum(count for _, _, count in report.made),
            "skipped": len(report.skipped),
            "sent": len(report.sent),
            "retries": len(report.retries),
            "failed": len(report.failed),
            "unreachable": report.unreachable_only(),
            "pruned": report.pruned,
            "made_elsewhere": report.made_elsewhere,
            "sent_elsewhere": report.sent_elsewhere,
        }
    )


DELIVERY_HEADER = f"{'#':<6} {'state':<8} {'edition':<10}  {'subscriber':<14} {'channel':<32} {'tries':<9}  when (UTC)"


def delivery_line(row: Delivery) -> str:
    """One row of ``digest deliveries``: number, state, edition, subscriber, channel, tries, when, and why."""
    when = row.sent_at or row.next_try or row.updated_at
    note = f"  {row.last_error}" if row.last_error and row.state != "sent" else ""
    return (
        f"#{row.id:<5} {row.state:<8} {row.edition}  {row.subscriber:<14} {row.channel:<32} "
        f"{plural(row.attempts, 'try'):<9}  {when:%Y-%m-%d %H:%M}{note}"
    )


def delivery_json(row: Delivery) -> dict[str, Any]:
    return {
        "id": row.id,
        "subscriber": row.subscriber,
        "edition": row.edition,
        "channel": row.channel,
        "state": row.state,
        "attempts": row.attempts,
        "message_id": row.message_id,
        "next_try": row.next_try,
        "sent_at": row.sent_at,
        "error": row.last_error,
    }


def halted_errors(report: pipeline.SendReport) -> None:
    """One error line per channel whose settings cannot work, and one when no email reached the server."""
    for kind, reason in report.halted.items():
        waiting = report.untried.get(kind, 0)
        error(f"{reason} ({plural(waiting, kind + ' delivery')} wait, untried; 'digest send' sends them after the fix)")
    if report.unreachable_only():
        count = report.unreachable
        error(f"the SMTP server could not be reached: all {plural(count, 'email')} wait for a retry")
