"""Retention: what the database no longer needs to keep, dropped (``[retention]``).

Today: a delivered digest's bodies (text, HTML, Markdown, MIME) after
``bodies_days``; its items and reasons stay, so the reader's history, feeds,
votes and "never the same paper twice" are untouched, and ``preview`` shows
an old digest again from its items. The daemon prunes once a day; ``digest
send`` and ``digest run --once`` at their end; ``digest prune`` by hand.
Freed pages are reused by later writes (the file stops growing; it does not
shrink).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from digest.config import Settings
from digest.store import Digests


@dataclass(frozen=True, slots=True)
class Pruned:
    """What a prune dropped (or, dry, would drop): digests whose bodies went, and their bytes."""

    bodies: int
    bytes: int
    dry_run: bool = False


def prune(digests: Digests, settings: Settings, *, now: datetime, dry_run: bool = False) -> Pruned:
    """Apply ``[retention]`` as of ``now`` (``dry_run``: only count)."""
    before = now - timedelta(days=settings.retention.bodies_days)
    count, size = digests.drop_bodies(before=before, dry_run=dry_run)
    return Pruned(count, size, dry_run)
