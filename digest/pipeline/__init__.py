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
* ``batch`` / ``make`` / ``workers``: the due digests made, batch by batch;
* ``deliver``: the ledger's due rows handed to their channels;
* ``run``: ``run_once``, the one sequence ``digest send`` and the daemon run.
"""

from __future__ import annotations

from digest.pipeline.batch import ledger_channels
from digest.pipeline.deliver import backoff, deliver, webhook_target
from digest.pipeline.fetching import FetchOutcome, days_between, fetch_day, fetch_days
from digest.pipeline.intake import DumpWatcher, FileOutcome, dump_files, expand, ingest_files, is_dump_name, parse_files
from digest.pipeline.make import due_edition, make_digests
from digest.pipeline.notices import send_notice
from digest.pipeline.ranking import (
    Preview,
    as_digest,
    candidates,
    corpus,
    new_papers,
    preview,
    rank_for,
    renderer,
    vote_weights,
    weights,
    window_start,
)
from digest.pipeline.report import Progress, SendReport, no_progress
from digest.pipeline.run import Hooks, run_once, send
from digest.pipeline.subscribers import (
    SyncReport,
    find_subscriber,
    held_line,
    is_active,
    set_state,
    stored_profile,
    subscribe,
    sync_subscribers,
    vote,
)

__all__ = [
    "DumpWatcher",
    "FetchOutcome",
    "FileOutcome",
    "Hooks",
    "Preview",
    "Progress",
    "SendReport",
    "SyncReport",
    "as_digest",
    "backoff",
    "candidates",
    "corpus",
    "days_between",
    "deliver",
    "due_edition",
    "dump_files",
    "expand",
    "fetch_day",
    "fetch_days",
    "find_subscriber",
    "held_line",
    "ingest_files",
    "is_active",
    "is_dump_name",
    "ledger_channels",
    "make_digests",
    "new_papers",
    "no_progress",
    "parse_files",
    "preview",
    "rank_for",
    "renderer",
    "run_once",
    "send",
    "send_notice",
    "set_state",
    "stored_profile",
    "subscribe",
    "sync_subscribers",
    "vote",
    "vote_weights",
    "webhook_target",
    "weights",
    "window_start",
]
