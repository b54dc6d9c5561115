"""How the service stands: what the database holds, the last fetch, who is due when, what waits or failed.

One answer for ``digest status`` and the web side's ``/healthz``; the brief
one (``brief=True``) is what a health probe needs, with no subscriber read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from digest import cadence
from digest.models import Delivery, FetchRecord, StoreStatus, Subscriber
from digest.pipeline.subscribers import stored_profile
from digest.store import Rates, Store

WAITING = ("pending", "sending", "retry")
LAST_FAILURES = 5
RATE_DAYS = 30  # the window bounce and complaint rates are measured over
# Gmail and Yahoo's bulk-sender rules: complaints under 0.3% at all times, under 0.1% advised.
COMPLAINT_WARN, COMPLAINT_ERROR = 0.001, 0.003
# Providers review a sender whose bounces pass 5% (Amazon SES: review at 5%, pause at 10%); 2% is early warning.
BOUNCE_WARN, BOUNCE_ERROR = 0.02, 0.05


class NextRun(NamedTuple):
    """A subscriber and the next time their schedule fires, in their zone."""

    subscriber: Subscriber
    at: datetime


@dataclass(frozen=True, slots=True)
class Status:
    """The service as it stands at ``now``."""

    now: datetime
    store: StoreStatus
    failed_last_day: int  # deliveries that failed for good in the last 24 hours
    rates: Rates  # the last RATE_DAYS days' email: sent, bounced, complained of
    last_fetch: FetchRecord | None = None
    next_runs: list[NextRun] = field(default_factory=list)
    waiting: list[Delivery] = field(default_factory=list)  # pending, sending or waiting to retry
    failures: list[Delivery] = field(default_factory=list)  # the last few that failed for good

    @property
    def last_ingest_age_s(self) -> int | None:
        last = self.store.last_dump
        return round((self.now - last.ingested_at).total_seconds()) if last else None


class Level(NamedTuple):
    """A rate against its thresholds: ``ok``, ``warning`` or ``error``, and the threshold it is at or over."""

    level: str
    threshold: float


def rate_levels(rates: Rates) -> tuple[Level, Level]:
    """The bounce rate's level, then the complaint rate's."""
    return _level(rates.bounce_rate, BOUNCE_WARN, BOUNCE_ERROR), _level(
        rates.complaint_rate, COMPLAINT_WARN, COMPLAINT_ERROR
    )


def _level(rate: float, warn: float, error: float) -> Level:
    if rate >= error:
        return Level("error", error)
    return Level("warning", warn) if rate >= warn else Level("ok", 0.0)


def status(store: Store, *, now: datetime, brief: bool = False) -> Status:
    """How things stand; ``brief``: only the counts, the last ingest and the failures of the last day."""
    counts = store.papers.status()
    failed = store.ledger.failed_since(now - timedelta(days=1))
    rates = store.bounces.rates(since=now - timedelta(days=RATE_DAYS))
    if brief:
        return Status(now, counts, failed, rates)
    return Status(
        now,
        counts,
        failed,
        rates,
        last_fetch=store.fetches.last(),
        next_runs=[NextRun(s, cadence.next_fire(stored_profile(s), now)) for s in store.subscribers.all()],
        waiting=store.ledger.deliveries(states=WAITING),
        failures=store.ledger.deliveries(states=("failed",), limit=LAST_FAILURES),
    )
