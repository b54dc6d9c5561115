"""What every channel shares: the ``Job`` it is handed, the ``Channel`` protocol, and one-at-a-time sending."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

from digest.config import Settings
from digest.errors import DeliveryError, TransientError
from digest.models import Delivery, Ranked, StoredDigest

Takes = Literal["email", "history", "parts"]


@dataclass(frozen=True)
class Job:
    """Everything one delivery needs."""

    delivery: Delivery
    digest: StoredDigest
    eml: bytes | None = None  # the whole email as an .eml file holds it: RFC 5322, CRLF (Date added at send)
    envelope: str | None = None  # the email's envelope sender (MAIL FROM): its VERP bounce address, if any
    parts: list[dict[str, Any]] = field(default_factory=list)
    history: list[StoredDigest] = field(default_factory=list)
    related: dict[int, list[Ranked]] = field(default_factory=dict)  # each digest of the history: its items
    on_part: Callable[[int], None] = field(default=lambda sent: None)


class Channel(Protocol):
    """A transport. Built from the whole ``Settings``; options are checked in ``__init__``."""

    kind: ClassVar[str]
    takes: ClassVar[Takes]  # what a job carries besides the digest: the email, the feed's history, chat parts
    markdown: ClassVar[bool]  # whether it delivers the Markdown digest (rendered with the digest only if so)
    batch: ClassVar[int]  # deliveries read from the ledger together and handed to ``send_all`` as one stream

    def __init__(self, settings: Settings) -> None: ...

    def send_all(self, jobs: Iterable[Job]) -> Iterator[tuple[Job, DeliveryError | None]]:
        """Each job with None when it was delivered, or the error that stopped it; one failure stops no other.

        A job is taken from ``jobs`` only when it is about to be sent: the caller marks its row ``sending``
        as it hands it over, so the rows in doubt after a crash are at most the messages on the wire.
        """
        ...

    def close(self) -> None: ...


class OneAtATime(ABC):
    """A channel that sends one job at a time (``send``); ``send_all`` runs them in order."""

    kind: ClassVar[str]
    takes: ClassVar[Takes]
    markdown: ClassVar[bool] = False
    batch: ClassVar[int] = 1

    @abstractmethod
    def send(self, job: Job) -> None:
        """Deliver one job or raise ``TransientError`` / ``PermanentError`` with a reason that names no secret."""

    def send_all(self, jobs: Iterable[Job]) -> Iterator[tuple[Job, DeliveryError | None]]:
        for job in jobs:
            yield job, attempt(self.send, job, kind=self.kind)

    def close(self) -> None:
        return None


def attempt(send: Callable[[Job], None], job: Job, *, kind: str) -> DeliveryError | None:
    """``send(job)``, its error as a value; a bug (any other exception) fails this job, not the run."""
    try:
        send(job)
    except DeliveryError as e:
        return e
    except Exception as e:
        return TransientError(f"unexpected {type(e).__name__} in the {kind} channel")
    return None
