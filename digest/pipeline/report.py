"""What a run did (``SendReport``), for the summary, the log and the exit code."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from digest.errors import ProfileError
from digest.models import Delivery

# Called as long work goes: (what is being done, how many done, how many in all).
Progress = Callable[[str, int, int], None]


def no_progress(doing: str, done: int, total: int) -> None:
    return None


@dataclass
class SendReport:
    """What ``send`` did, for the summary and the exit code."""

    made: list[tuple[str, str, int]] = field(default_factory=list)  # subscriber, edition, papers
    skipped: list[tuple[str, str]] = field(default_factory=list)  # empty days with empty_day = skip
    planned: list[tuple[str, str]] = field(default_factory=list)  # dry run: subscriber, channel
    sent: list[Delivery] = field(default_factory=list)
    retries: list[tuple[Delivery, str, datetime]] = field(default_factory=list)
    failed: list[tuple[Delivery, str]] = field(default_factory=list)
    profile_errors: list[ProfileError] = field(default_factory=list)
    workers: int = 1  # processes that made the digests
    halted: dict[str, str] = field(default_factory=dict)  # channel kind -> why its settings cannot work
    untried: dict[str, int] = field(default_factory=dict)  # channel kind -> deliveries left waiting for that fix
    unreachable: int = 0  # email tries that failed because the SMTP server could not be reached
    unmade: int = 0  # due digests not made because the run was asked to stop: the next run makes them
    waiting: int = 0  # after an interrupted run: deliveries due now that were not tried (the next send's)
    signup_mails: int = 0  # sign-up confirmations (or "you are subscribed already") mailed by this run

    def tried(self, kind: str | None = None) -> int:
        """Deliveries tried so far (of one channel kind): sent, failed or to be retried."""
        rows = [*self.sent, *(d for d, _ in self.failed), *(d for d, _, _ in self.retries)]
        return sum(1 for d in rows if kind is None or d.kind == kind)

    def unreachable_only(self) -> bool:
        """Whether email was tried and every try failed because the server could not be reached."""
        return 0 < self.tried("email") == self.unreachable
