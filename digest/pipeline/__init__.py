"""The only package that wires the stages together: dump files -> ingest -> store -> rank -> render -> channels.

It decides nothing the stages decide: ``ingest`` parses, ``profiles`` checks,
``store`` remembers, ``rank`` scores, ``render`` renders, ``channels`` deliver.
What it adds is isolation (a bad file or profile becomes an outcome with its
error, and the rest goes on), caching (the archive's TF-IDF space, the
renderer), the batching and worker processes that make 100,000 digests a day
quickly, and the ledger around every delivery. Rooms:

* ``intake``: dump files read, parsed and stored;
* ``fetching``: a day's list fetched from Hugging Face, written as a dump and ingested;
* ``subscribers``: profiles checked, stored and synced;
* ``ranking``: what making and previewing share (corpus, renderer, windows);
* ``onboarding``: the archive papers a new reader is asked to rate, and their answers;
* ``batch`` / ``make`` / ``workers``: the due digests made, batch by batch;
* ``delivery``: the ledger's due rows handed to their channels;
* ``run``: ``run_once``, the one sequence ``digest send`` and the daemon run;
* ``status``: how the service stands, for ``digest status`` and ``/healthz``;
* ``retry``: ``digest retry``, failed deliveries back to pending;
* ``retention``: what the database no longer needs, dropped (``digest prune``);
* ``payloads``: what each delivery carries besides its digest, made when it is frozen;
* ``bounces``: bounces and complaints matched to their delivery and applied (suspend, unsubscribe).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from digest import lazy

if TYPE_CHECKING:  # the names below load with their room on first use (PEP 562), so a command pays only for its own
    from digest.pipeline.batch import ledger_channels
    from digest.pipeline.bounces import (
        SUSPENDED_ACTION,
        UNSUBSCRIBED_ACTION,
        BounceMatch,
        BounceOutcome,
        apply_reports,
        lift_suspension,
        read_mailbox,
        suspended_addresses,
    )
    from digest.pipeline.delivery import backoff, deliver, webhook_target
    from digest.pipeline.fetching import FetchOutcome, days_between, fetch_day, fetch_days, fetch_window
    from digest.pipeline.intake import (
        DumpWatcher,
        FileOutcome,
        dump_files,
        expand,
        ingest_files,
        is_dump_name,
        parse_files,
        set_aside,
    )
    from digest.pipeline.make import due_edition, make_digests
    from digest.pipeline.notices import deliver_notice
    from digest.pipeline.onboarding import MAX_ANSWERS, onboarding_offers, record_answers
    from digest.pipeline.ranking import (
        LastDigest,
        Preview,
        as_digest,
        candidates,
        corpus,
        last_digest,
        new_papers,
        preview,
        rank_for,
        reading,
        renderer,
        vote_weights,
        weights,
        window_start,
    )
    from digest.pipeline.report import Progress, SendReport, no_progress
    from digest.pipeline.retention import Pruned, prune
    from digest.pipeline.retry import requeue
    from digest.pipeline.run import Hooks, run_daily, run_once
    from digest.pipeline.status import (
        RATE_DAYS,
        NextRun,
        Status,
        rate_levels,
        status,
    )
    from digest.pipeline.subscribers import (
        SyncReport,
        asks,
        find_subscriber,
        held_line,
        is_active,
        set_state,
        stored_profile,
        subscribe,
        sync_subscribers,
        vote,
    )

# Each name of the package, and the room that holds it.
_ROOMS = {
    "BounceMatch": "bounces",
    "SUSPENDED_ACTION": "bounces",
    "UNSUBSCRIBED_ACTION": "bounces",
    "BounceOutcome": "bounces",
    "apply_reports": "bounces",
    "suspended_addresses": "bounces",
    "lift_suspension": "bounces",
    "read_mailbox": "bounces",
    "DumpWatcher": "intake",
    "set_aside": "intake",
    "FetchOutcome": "fetching",
    "FileOutcome": "intake",
    "Hooks": "run",
    "Preview": "ranking",
    "onboarding_offers": "onboarding",
    "MAX_ANSWERS": "onboarding",
    "record_answers": "onboarding",
    "LastDigest": "ranking",
    "last_digest": "ranking",
    "Progress": "report",
    "SendReport": "report",
    "SyncReport": "subscribers",
    "as_digest": "ranking",
    "backoff": "delivery",
    "candidates": "ranking",
    "corpus": "ranking",
    "days_between": "fetching",
    "fetch_window": "fetching",
    "deliver": "delivery",
    "due_edition": "make",
    "dump_files": "intake",
    "expand": "intake",
    "fetch_day": "fetching",
    "fetch_days": "fetching",
    "find_subscriber": "subscribers",
    "held_line": "subscribers",
    "ingest_files": "intake",
    "is_active": "subscribers",
    "asks": "subscribers",
    "is_dump_name": "intake",
    "ledger_channels": "batch",
    "make_digests": "make",
    "new_papers": "ranking",
    "no_progress": "report",
    "parse_files": "intake",
    "preview": "ranking",
    "rank_for": "ranking",
    "reading": "ranking",
    "requeue": "retry",
    "Pruned": "retention",
    "prune": "retention",
    "NextRun": "status",
    "RATE_DAYS": "status",
    "rate_levels": "status",
    "Status": "status",
    "status": "status",
    "renderer": "ranking",
    "run_once": "run",
    "run_daily": "run",
    "deliver_notice": "notices",
    "set_state": "subscribers",
    "stored_profile": "subscribers",
    "subscribe": "subscribers",
    "sync_subscribers": "subscribers",
    "vote": "subscribers",
    "vote_weights": "ranking",
    "webhook_target": "delivery",
    "weights": "ranking",
    "window_start": "ranking",
}


# ``pipeline.X`` imports X's room on first use: ``digest send`` needs scikit-learn, ``digest deliveries`` does not.
__getattr__ = lazy.loader(__name__, _ROOMS, globals())


__all__ = [
    "MAX_ANSWERS",
    "RATE_DAYS",
    "SUSPENDED_ACTION",
    "UNSUBSCRIBED_ACTION",
    "BounceMatch",
    "BounceOutcome",
    "DumpWatcher",
    "FetchOutcome",
    "FileOutcome",
    "Hooks",
    "LastDigest",
    "NextRun",
    "Preview",
    "Progress",
    "Pruned",
    "SendReport",
    "Status",
    "SyncReport",
    "apply_reports",
    "as_digest",
    "asks",
    "backoff",
    "candidates",
    "corpus",
    "days_between",
    "deliver",
    "deliver_notice",
    "due_edition",
    "dump_files",
    "expand",
    "fetch_day",
    "fetch_days",
    "fetch_window",
    "find_subscriber",
    "held_line",
    "ingest_files",
    "is_active",
    "is_dump_name",
    "last_digest",
    "ledger_channels",
    "lift_suspension",
    "make_digests",
    "new_papers",
    "no_progress",
    "onboarding_offers",
    "parse_files",
    "preview",
    "prune",
    "rank_for",
    "rate_levels",
    "read_mailbox",
    "reading",
    "record_answers",
    "renderer",
    "requeue",
    "run_daily",
    "run_once",
    "set_aside",
    "set_state",
    "status",
    "stored_profile",
    "subscribe",
    "suspended_addresses",
    "sync_subscribers",
    "vote",
    "vote_weights",
    "webhook_target",
    "weights",
    "window_start",
]
