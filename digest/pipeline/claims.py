"""Who this process is when it claims work on a shared database, and until when a claim holds.

On PostgreSQL several ``digest run`` and ``digest send`` processes, on several
hosts, share a day's work: each claims a batch of subscribers before making
their digests, and a batch of deliveries before sending them. A claim names
its holder (host and process id) and holds for ``[database] lease_s``; a
killed host's claims return to the pool when that runs out. On SQLite, with
one writer, every claim is granted at once and nothing is recorded.
"""

from __future__ import annotations

import os
import platform
from datetime import datetime, timedelta

from digest.config import Settings


def holder() -> str:
    """This process, as its claims name it: ``host:pid``."""
    return f"{platform.node() or 'localhost'}:{os.getpid()}"


def lease_end(settings: Settings, now: datetime) -> datetime:
    """Until when a claim taken ``now`` holds."""
    return now + timedelta(seconds=settings.database.lease_s)
