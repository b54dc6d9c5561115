"""What a run did (``SendReport``), for the summary, the log and the exit code."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from digest.errors import ProfileError
from digest.models import Delivery

# Called as long work goes: (what is being done, how many done, how many in all).
Progress = Callable[[str, int, int], None]


def no_progress(doing: str, done: int, total: int) -> None:
    return None


class MadeDigest(NamedTuple):
    """A digest a run made: for whom, which edition, how many papers."""

    subscriber: str
    edition: str
    papers: int


class Skipped(NamedTuple):
    """An edition not made because the day was empty and the profile says ``empty_day = "skip"``."""

    subscriber: str
    edition: str


class Planned(NamedTuple):
    """A dry run's delivery: who would get it, by which channel."""

    subscriber: str
    channel: str


class Retry(NamedTuple):
    """A delivery that failed for now: why, and when it is tried again."""

    delivery: Delivery
    reason: str
    next_try: datetime


class Failure(NamedTuple):
    """A delivery that failed for good, and why."""

    delivery: Delivery
    reason: str


@dataclass
class SendReport:
    """What ``send`` did, for the summary and the exit code."""

    made: list[MadeDigest] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    planned: list[Planned] = field(default_factory=list)  # a dry run's
    sent: list[Delivery] = field(default_factory=list)
    retries: list[Retry] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    profile_errors: list[ProfileError] = field(default_factory=list)
    workers: int = 1  # processes that made the digests
    halted: dict[str, str] = field(default_factory=dict)  # channel kind -> why its settings cannot work
    untried: dict[str, int] = field(default_factory=dict)  # channel kind -> deliveries left waiting for that fix
    unreachable: int = 0  # email tries that failed because the SMTP server could not be reached
    unmade: int = 0  # due digests not made because the run was asked to stop: the next run makes them
    made_elsewhere: int = 0  # due digests another process had claimed (PostgreSQL): it makes them
    sent_elsewhere: int = 0  # due deliveries another process had claimed (PostgreSQL): it sends them
    chores_elsewhere: bool = False  # another process was ingesting, syncing and mailing sign-ups (PostgreSQL)
    waiting: int = 0  # after an interrupted run: deliveries due now that were not tried (the next send's)
    signup_mails: int = 0  # sign-up confirmations (or "you are subscribed already") mailed by this run
    pruned: int = 0  # delivered digests whose bodies this run dropped ([retention] bodies_days)
    refused: list[tuple[Delivery, int, str]] = field(default_factory=list)  # RCPT refusals not yet applied
    bounced: list[str] = field(default_factory=list)  # what refusals while sending led to ("suspended email to a@b")
    suspended: list[str] = field(default_factory=list)  # subscribers not made: every channel an email suspended

    def tried(self, kind: str | None = None) -> int:
        """Deliveries tried so far (of one channel kind): sent, failed or to be retried."""
        rows = [*self.sent, *(d for d, _ in self.failed), *(d for d, _, _ in self.retries)]
        return sum(1 for d in rows if kind is None or d.kind == kind)

    def unreachable_only(self) -> bool:
        """Whether email was tried and every try failed because the server could not be reached."""
        return 0 < self.tried("email") == self.unreachable
