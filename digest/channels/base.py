"""What every channel shares: the ``Job`` it is handed and the ``Channel`` protocol."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from digest.models import Delivery, StoredDigest


@dataclass(frozen=True)
class Job:
    """Everything one delivery needs."""

    delivery: Delivery
    digest: StoredDigest
    email: bytes | None = None  # the whole message, RFC 5322, CRLF
    parts: list[dict[str, Any]] = field(default_factory=list)
    history: list[StoredDigest] = field(default_factory=list)
    on_part: Callable[[int], None] = field(default=lambda sent: None)


class Channel(Protocol):
    kind: ClassVar[str]

    def send(self, job: Job) -> None: ...

    def close(self) -> None: ...
