"""Bounces and complaints applied: whose each one is, what is recorded, and who is no longer mailed.

* hard (the address is dead): the address is suspended at once; its pending email is cancelled;
* soft: counted, one per delivery; ``[bounces] soft_limit`` within ``soft_days`` suspends;
* complaint: the reader is unsubscribed at once (``unsubscribed_by = complaint``): only a new
  sign-up or the operator brings them back;
* an auto-reply or an unknown message: nothing changes.

A suspension stops email only: a reader's chat channels and feed go on. ``digest resume`` (or the reader,
from their preferences page, confirming by mail) lifts it.

Whose it is: the signed token of the VERP address or the X-Digest-Delivery header (checked with
the signing secret), else the returned Message-ID, else the failed address when exactly one
subscriber has it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from digest import bounces as reading
from digest import links
from digest.bounces import Bounce, Report, judged, status_code
from digest.config import Settings
from digest.mailboxes import Mailbox
from digest.models import Delivery, Profile
from digest.pipeline.subscribers import stored_profile
from digest.store import BounceRecord, Bounces, Store, Subscribers

COMPLAINT = "complaint"  # who unsubscribed a reader whose mail they reported as spam
SUSPENDED_ACTION = "suspended email to"  # how an action that stopped email to an address begins
UNSUBSCRIBED_ACTION = "unsubscribed"  # how an action that unsubscribed a reader begins


@dataclass(frozen=True, slots=True)
class BounceMatch:
    """Whose a bounce is: the delivery (when known), the subscriber, the address."""

    delivery: int | None
    subscriber: str | None
    address: str | None


@dataclass
class BounceOutcome:
    """One message read and what it led to, for ``digest bounces`` to print."""

    source: str
    report: Report
    matched: BounceMatch | None = None
    actions: list[str] = field(default_factory=list)  # "suspended a@b", "unsubscribed ada", "counted 2 of 3"

    @property
    def kind(self) -> str:
        return self.report.kind

    @property
    def changes(self) -> list[str]:
        """The actions that changed who is mailed (a suspension, an unsubscribe): what the daemon logs."""
        return [a for a in self.actions if a.startswith((SUSPENDED_ACTION, UNSUBSCRIBED_ACTION))]


def apply_reports(
    bounces: Bounces,
    subscribers: Subscribers,
    reports: Iterable[tuple[str, Report]],
    settings: Settings,
    *,
    now: datetime,
    source: str,
    dry_run: bool = False,
) -> Iterable[BounceOutcome]:
    """Each (source id, report) matched, recorded and acted on (``dry_run``: matched only), as it comes."""
    for where, report in reports:
        outcome = BounceOutcome(where, report)
        for bounce in report.bounces:
            match = _match(bounces, subscribers, report, bounce, settings)
            outcome.matched = outcome.matched or match
            if not dry_run and report.kind in ("hard", "soft", "complaint"):
                outcome.actions += _act(bounces, subscribers, bounce, match, settings, now=now, source=source)
        yield outcome


def read_mailbox(
    store: Store,
    box: Mailbox,
    settings: Settings,
    *,
    now: datetime,
    dry_run: bool = False,
    stop: Callable[[], bool] = lambda: False,
) -> Iterator[BounceOutcome]:
    """Every message in ``box`` read, applied and then filed (recognised or unknown), as it goes.

    A message is filed only after what it led to is committed: a crash in between reads it again
    next time, and the second reading changes nothing (``Bounces.record`` keeps one of each).
    ``stop()`` is asked before each message.
    """

    def reports() -> Iterator[tuple[str, Report]]:
        for where, raw in box.messages():
            if stop():
                return
            yield where, reading.read(raw)

    for outcome in apply_reports(store.bounces, store.subscribers, reports(), settings, now=now, source="mailbox",
                         dry_run=dry_run):  # fmt: skip
        if not dry_run:
            box.file(outcome.source, recognised=outcome.kind != "unknown")
        yield outcome


def refused(bounces: Bounces, subscribers: Subscribers, rows: list[tuple[Delivery, int, str]], settings: Settings,
            *, now: datetime) -> list[str]:  # fmt: skip
    """RCPT refusals met while sending (the recipient's server said no at once): a dead address is suspended
    like a hard bounce; any other refusal is recorded as soft. The actions taken."""
    actions: list[str] = []
    for delivery, code, text in rows:
        bounce = judged(delivery.target, f"{code} {text}", status_code(text))
        match = BounceMatch(delivery.id, delivery.subscriber, delivery.target)
        done = _act(bounces, subscribers, bounce, match, settings, now=now, source="smtp")
        actions.append(f"{delivery.target} refused ({bounce.kind}, {bounce.reason}): {'; '.join(done) or 'recorded'}")
    return actions


def suspended_addresses(profile: Profile, suspended: set[str]) -> list[str]:
    """The addresses a profile's email goes to (its email, and any email channel's own) that are in
    ``suspended`` (``Bounces.suspended``): not mailed, because they bounced."""
    found = [channel.address or profile.email for channel in profile.delivery if channel.kind == "email"]
    return sorted({a.lower() for a in found if a} & suspended)


def lift_suspension(bounces: Bounces, subscribers: Subscribers, name: str) -> list[str]:
    """Mail ``name`` again: the suspensions of their addresses lifted; those addresses."""
    found = subscribers.get(name)
    if found is None:
        return []
    addresses = suspended_addresses(stored_profile(found), bounces.suspended())
    bounces.lift(addresses)
    return addresses


def _match(
    bounces: Bounces, subscribers: Subscribers, report: Report, bounce: Bounce, settings: Settings
) -> BounceMatch:
    secret = settings.delivery.secret.get_secret_value()
    for token in report.tokens:
        delivery = links.bounce_delivery(secret, token)
        found = bounces.delivery(delivery) if delivery is not None else None
        if found is not None:
            return BounceMatch(found[0], found[1], found[2] or bounce.recipient)
    found = bounces.delivery_by_message_id(_bracketed(report.message_ids))
    if found is not None:
        return BounceMatch(found[0], found[1], found[2] or bounce.recipient)
    if bounce.recipient:
        having = subscribers.with_address(bounce.recipient)
        current = [name for name, gone in having if not gone]
        names = current or [name for name, _ in having]  # one still subscribed, else one who left
        if len(names) == 1:
            last = bounces.last_delivery_to(bounce.recipient)
            return BounceMatch(last[0] if last and last[1] == names[0] else None, names[0], bounce.recipient)
    return BounceMatch(None, None, bounce.recipient)


def _act(
    bounces: Bounces,
    subscribers: Subscribers,
    bounce: Bounce,
    match: BounceMatch,
    settings: Settings,
    *,
    now: datetime,
    source: str,
) -> list[str]:
    """Record one recipient's bounce and apply the policy; the actions taken, in words."""
    address = match.address or bounce.recipient
    record = BounceRecord(
        now.isoformat(timespec="seconds"), source, bounce.kind, address, match.subscriber, match.delivery,
        bounce.status, bounce.reason, bounce.diagnostic,
    )  # fmt: skip
    if not bounces.record(record):
        return ["read before"]
    if bounce.kind == "complaint":
        return _complained(subscribers, match, now=now)
    if address is None:
        return []
    if bounce.kind == "hard":
        return _suspend(bounces, address, match, kind="hard", reason=f"{bounce.reason} ({bounce.status})", now=now)
    policy = settings.bounces
    count = bounces.soft_count(address, since=now - timedelta(days=policy.soft_days))
    if count >= policy.soft_limit:
        why = f"{count} soft bounces in {policy.soft_days} days, the last {bounce.reason}"
        return _suspend(bounces, address, match, kind="soft", reason=why, now=now)
    return [f"counted: {count} of {policy.soft_limit} soft bounces in {policy.soft_days} days"]


def _suspend(bounces: Bounces, address: str, match: BounceMatch, *, kind: str, reason: str, now: datetime) -> list[str]:
    if not bounces.suspend(address, subscriber=match.subscriber, kind=kind, reason=reason, at=now):
        return ["suspended already"]
    return [f"{SUSPENDED_ACTION} {address}"]


def _complained(subscribers: Subscribers, match: BounceMatch, *, now: datetime) -> list[str]:
    if match.subscriber is None:
        return []
    if not subscribers.set_status(match.subscriber, "unsubscribed", at=now, by=COMPLAINT):
        return []
    return [f"{UNSUBSCRIBED_ACTION} {match.subscriber}"]


def _bracketed(message_ids: Iterable[str]) -> list[str]:
    """Message-IDs as the ledger keeps them, in angle brackets (a provider may send them bare)."""
    return [i if i.startswith("<") else f"<{i.strip()}>" for i in message_ids if i.strip()]
