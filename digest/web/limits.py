"""Request limits: attempts per key in a sliding hour, and the largest body a request may send."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta


class RateLimit:
    """At most ``per_hour`` attempts per key (a client address, an email address) in any hour."""

    def __init__(self, per_hour: int, *, clock: Callable[[], datetime]) -> None:
        self._limit = per_hour
        self._clock = clock
        self._seen: dict[str, deque[datetime]] = {}

    def allow(self, *keys: str) -> bool:
        """Count one attempt for each key; False (and nothing counted) when any key is over its limit."""
        now = self._clock()
        recent = [self._recent(key, now) for key in keys]
        if any(len(times) >= self._limit for times in recent):
            return False
        for times in recent:
            times.append(now)
        return True

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        times = self._seen.setdefault(key, deque())
        while times and now - times[0] >= timedelta(hours=1):
            times.popleft()
        return times
