"""The only module that wires the stages together: files -> ingest -> store -> rank.

It decides nothing itself: ``ingest`` parses, ``profiles`` checks, ``store``
remembers, ``rank`` scores. What it adds is isolation (a bad file or profile
becomes an outcome with its error, and the rest goes on) and the cache of the
archive's TF-IDF space, refitted only when the archive changes.
"""

from __future__ import annotations

import ctypes
import gc
import hashlib
import hmac
import json
import multiprocessing
import multiprocessing.connection
import multiprocessing.process
import multiprocessing.queues
import os
import random
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from digest import cadence, ingest, profiles, rank, render
from digest.channels import REGISTRY, Channel, EmailPool, Job, Target, channel_name, vet
from digest.config import Settings
from digest.errors import (
    DeliveryError,
    DigestError,
    InputError,
    PermanentError,
    ProfileError,
    TransientError,
    UsageError,
)
from digest.models import (
    Delivery,
    Digest,
    Dump,
    Ingested,
    Message,
    NewDelivery,
    Paper,
    Profile,
    Ranked,
    StoredDigest,
    Subscriber,
)
from digest.store import FrozenDigest, Mark, Store, StoredProfile, frozen


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What became of one dump file: its parse and storage, or the error that stopped it."""

    path: Path
    dump: Dump | None = None
    ingested: Ingested | None = None
    error: DigestError | None = None


def is_dump_name(name: str) -> bool:
    """Files a folder scan takes: not hidden, not still being written (``*.tmp``)."""
    return not name.startswith(".") and not name.endswith(".tmp")


def dump_files(folder: Path) -> list[Path]:
    """A folder's entries in name order, except subfolders, hidden and ``*.tmp`` files.

    Symbolic links, FIFOs and devices are listed too (without following or
    opening them), so that reading refuses each with a line saying why.
    """
    with os.scandir(folder) as entries:
        return sorted(Path(e.path) for e in entries if is_dump_name(e.name) and not e.is_dir(follow_symlinks=False))


def expand(paths: Sequence[Path]) -> Iterator[Path | FileOutcome]:
    """Files first, folders as their dump files in name order; a bad path as an outcome."""
    for path in paths:
        if path.is_dir():  # a folder named on the command line may be a link the operator chose
            files = dump_files(path)
            if not files:
                yield FileOutcome(path, error=InputError(f"{path}: folder has no dump files; add .txt dumps to it"))
            yield from files
        elif os.path.lexists(path):
            yield path
        else:
            yield FileOutcome(path, error=InputError(f"{path}: no such file or folder; check the path"))


def parse_files(paths: Sequence[Path], *, settings: Settings, today: date) -> Iterator[FileOutcome]:
    """Read and parse each file; write nothing."""
    for item in expand(paths):
        if isinstance(item, FileOutcome):
            yield item
            continue
        try:
            dump, _ = ingest.load(
                item, today=today, max_bytes=settings.ingest.max_bytes, max_papers=settings.ingest.max_papers
            )
        except InputError as e:
            yield FileOutcome(item, error=e)
        else:
            yield FileOutcome(item, dump=dump)


def ingest_files(paths: Sequence[Path], *, store: Store, settings: Settings, now: datetime) -> Iterator[FileOutcome]:
    """Parse each file and store it: the seen-set learns which of its papers are new."""
    for item in expand(paths):
        if isinstance(item, FileOutcome):
            yield item
            continue
        try:
            dump, raw = ingest.load(
                item,
                today=now.astimezone().date(),
                max_bytes=settings.ingest.max_bytes,
                max_papers=settings.ingest.max_papers,
            )
            stored = store.ingest(dump, sha256=raw.sha256, at=now)
        except InputError as e:
            yield FileOutcome(item, error=e)
        else:
            yield FileOutcome(item, dump=dump, ingested=stored)


# --- subscribers -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What syncing the subscribers folder did."""

    folder: Path
    changes: dict[str, str]  # name -> added | updated | resubscribed
    removed: list[str]
    errors: list[ProfileError]


def subscribe(store: Store, path: Path, *, at: datetime) -> tuple[Profile, str]:
    """Check a profile file and store it; returns the profile and added/updated/unchanged/resubscribed."""
    profile, text = profiles.load(path)
    outcome = store.save_subscriber(
        profile.name, text=text, profile_hash=profiles.fingerprint(text), source=str(path), at=at
    )
    return profile, outcome


def sync_subscribers(store: Store, folder: Path, *, at: datetime) -> SyncReport:
    """Bring the database in line with a folder of profiles.

    New and changed files are stored, files that went away unsubscribe, and a
    broken file is reported while its last good version stays in force.
    """
    errors: list[ProfileError] = []
    failed: set[str] = set()
    if not folder.is_dir():
        return SyncReport(folder, {}, [], [])

    def bad(path: Path, error: ProfileError) -> None:
        failed.add(str(path))
        errors.append(error)

    loaded = profiles.load_many(profiles.profile_files(folder), on_error=bad)
    present = {p.name for p, _ in loaded}
    outcomes = store.save_subscribers(
        [StoredProfile(p.name, text, profiles.fingerprint(text), p.source) for p, text in loaded], at=at
    )
    changes = {p.name: outcome for (p, _), outcome in zip(loaded, outcomes, strict=True) if outcome != "unchanged"}
    # A broken file still holds its subscriber: they stay subscribed on their last good version.
    present |= {s.name for s in store.subscribers() if s.source in failed}
    removed = store.unsubscribe_missing(folder=str(folder), present=present, at=at)
    return SyncReport(folder, changes, removed, errors)


def stored_profile(subscriber: Subscriber) -> Profile:
    """The Profile of a stored subscriber (its text was checked when it was stored)."""
    return profiles.parse(subscriber.text, source=subscriber.source or subscriber.name, default_name=subscriber.name)


def set_state(store: Store, name: str, status: str, *, at: datetime, until: date | None = None) -> None:
    """Unsubscribe, pause (optionally until a day) or resume a subscriber; unknown names are usage errors."""
    find_subscriber(store, name)
    store.set_status(name, status, at=at, until=until)


def find_subscriber(store: Store, name: str) -> Subscriber:
    subscriber = store.subscriber(name)
    if subscriber is None or subscriber.status == "unsubscribed":
        raise UsageError(f"no subscriber named {name!r}; 'digest subscribers' lists them")
    return subscriber


# --- ranking -----------------------------------------------------------------------

_corpus_cache: dict[tuple[str, int, int], rank.Corpus] = {}


def corpus(store: Store, extra: Sequence[Paper] = ()) -> rank.Corpus:
    """The archive's TF-IDF space, fitted once per archive version; ``extra`` papers not stored yet join it."""
    key = (str(store.path), *store.archive_version())
    if key not in _corpus_cache:
        _corpus_cache.clear()  # one archive at a time: an older space is stale now
        _corpus_cache[key] = rank.Corpus(store.archive())
    cached = _corpus_cache[key]
    unknown = [p for p in extra if p.id not in cached]
    if not unknown:
        return cached
    return rank.Corpus([*store.archive(), *unknown])


def weights(settings: Settings) -> rank.Weights:
    return rank.Weights(**settings.rank.model_dump())


def new_papers(store: Store) -> tuple[list[Paper], str | None]:
    """The papers first seen in the latest dump, with that dump's source."""
    latest = store.latest_dump()
    if latest is None:
        return [], None
    return [row.paper for row in store.papers(first_dump=latest.id)], latest.source


def rank_for(
    store: Store,
    profile: Profile,
    papers: Sequence[Paper],
    *,
    settings: Settings,
    keep_all: bool = False,
) -> list[Ranked]:
    """Rank papers for one profile, skipping what its subscriber already received."""
    return rank.rank(
        papers,
        profile,
        corpus=corpus(store, papers),
        normalise_title=ingest.normalise_title,
        weights=weights(settings),
        seen=store.digested(profile.name),
        keep_all=keep_all,
    )


@dataclass(frozen=True, slots=True)
class Preview:
    """What a subscriber would receive now."""

    profile: Profile
    items: list[Ranked]
    trending: list[Paper]
    candidates: int
    since: datetime


def renderer(settings: Settings) -> render.Renderer:
    """The Jinja environment and CSS inliner, built once per settings (templates are read once)."""
    key = str(settings.render.templates_dir)
    if key not in _renderers:
        _renderers[key] = render.Renderer(templates_dir=settings.render.templates_dir)
    return _renderers[key]


_renderers: dict[str, render.Renderer] = {}


def as_digest(view: Preview, *, now: datetime) -> Digest:
    """A preview as the digest it would become: the edition of the latest firing (or today)."""
    fire = cadence.last_fire(view.profile, now)
    edition = fire.date() if fire else now.astimezone(ZoneInfo(view.profile.timezone)).date()
    return Digest(
        profile=view.profile,
        edition=edition,
        items=tuple(view.items),
        trending=tuple(view.trending),
        new_count=view.candidates,
    )


def candidates(store: Store, profile: Profile, *, now: datetime) -> tuple[list[Paper], datetime]:
    """The papers an edition due at ``now`` draws from, and since when.

    Papers first seen after the subscriber's latest digest; for a first digest,
    after the firing before the one that is due (a day, or a week for weekly).
    A daemon that was down for days therefore sends one digest covering them all.
    """
    since = window_start(profile, cadence.last_fire(profile, now) or now, store.last_digest_at(profile.name))
    return store.papers_since(since), since


def window_start(profile: Profile, fire: datetime, last_made: datetime | None) -> datetime:
    """Where the papers of the edition firing at ``fire`` begin: after the subscriber's latest
    digest, or for a first digest, after the firing before this one."""
    return last_made if last_made is not None else cadence.previous_fire(profile, fire)


def preview(store: Store, name: str, *, settings: Settings, now: datetime) -> Preview:
    """What the subscriber's next digest would hold if it were made now."""
    profile = stored_profile(find_subscriber(store, name))
    papers, since = candidates(store, profile, now=now)
    items = rank_for(store, profile, papers, settings=settings)
    chosen = {item.paper.id for item in items} | store.digested(profile.name)
    hot = rank.trending(papers, count=profile.trending, skip=chosen, exclude=profile.exclude)
    return Preview(profile=profile, items=items, trending=hot, candidates=len(papers), since=since)


# --- making digests and delivering them -------------------------------------------------


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


def is_active(subscriber: Subscriber, *, today: date) -> bool:
    """Active, or paused until a day that has passed."""
    if subscriber.status == "active":
        return True
    return subscriber.status == "paused" and subscriber.paused_until is not None and subscriber.paused_until < today


def ledger_channels(profile: Profile, settings: Settings) -> list[tuple[str, str, str | None]]:
    """(channel name, kind, target) per channel; email goes to the outbox when no SMTP host is set."""
    found: dict[str, tuple[str, str, str | None]] = {}
    for channel in profile.delivery:
        if channel.kind == "email":
            address = channel.address or profile.email
            entry = (f"email:{address}", "email", address) if settings.smtp.host else ("outbox", "outbox", None)
        elif channel.url_env:
            entry = (f"{channel.kind}:${channel.url_env}", channel.kind, channel.url_env)
        else:
            entry = (channel.kind, channel.kind, None)
        found.setdefault(entry[0], entry)
    return list(found.values())


def message_id(name: str, edition: str, channel: str, *, sender: str) -> str:
    """The same Message-ID for every try of one (digest, channel), so a repeat is recognisable."""
    domain = sender.rsplit("@", 1)[-1] or "localhost"
    tag = hashlib.sha256(channel.encode()).hexdigest()[:10]
    return f"<{edition}.{tag}.{name}@{domain}>"


def unsubscribe_url(name: str, settings: Settings) -> str | None:
    """A one-click unsubscribe link signed with HMAC-SHA256, when a base URL and a secret are set."""
    secret = settings.delivery.secret.get_secret_value()
    base = settings.delivery.base_url.rstrip("/")
    if not base or not secret:
        return None
    token = hmac.new(secret.encode(), name.encode(), hashlib.sha256).hexdigest()[:32]
    return f"{base}/unsubscribe/{name}/{token}"


MARKDOWN_KINDS = ("outbox",)  # the channels that deliver the Markdown digest; for others it is not rendered
EMAIL_KINDS = ("email", "outbox")  # the channels that send the email: its MIME body is made with the digest


def due_edition(
    subscriber: Subscriber, profile: Profile, *, now: datetime, mark: tuple[datetime, str] | None
) -> datetime | None:
    """The firing whose edition should be made now, if any: the latest one not made yet.

    ``mark`` is the subscriber's latest digest (made at, edition), from ``Store.digest_marks``.
    """
    fire = cadence.last_fire(profile, now)
    if fire is None or not is_active(subscriber, today=fire.date()):
        return None
    if mark is not None and (mark[1] >= fire.date().isoformat() or mark[0] >= fire):
        return None  # this edition, or a catch-up covering it, exists already
    return fire


def make_digests(
    store: Store,
    settings: Settings,
    *,
    now: datetime,
    names: set[str] | None = None,
    timings: dict[str, float] | None = None,
) -> SendReport:
    """Freeze the due edition for every active subscriber.

    An edition is due once its firing (send_at, in the subscriber's zone, on the
    days of their frequency) has passed and it has not been made. After
    downtime, only the latest missed edition is made, covering every paper since
    the previous digest. Subscribers that share a window of candidate papers are
    ranked together (``rank_all``, ``[render] batch_size`` at a time) and each batch is frozen
    in one transaction. When many batches are due, ``[render] workers``
    processes make them side by side (``report.workers``). ``timings``, when
    given, collects seconds per phase (rank, render, freeze), summed over the
    processes, for the benchmarks.
    """
    report = SendReport()
    if store.latest_dump() is None:
        return report
    batch = settings.render.batch_size
    marks = store.digest_marks()
    groups: dict[datetime, list[tuple[Profile, datetime]]] = {}
    for subscriber in store.subscribers():
        if names is not None and subscriber.name not in names:
            continue
        profile = stored_profile(subscriber)
        mark = marks.get(profile.name)
        fire = due_edition(subscriber, profile, now=now, mark=mark)
        if fire is not None:
            since = window_start(profile, fire, mark[0] if mark else None)
            groups.setdefault(since, []).append((profile, fire))
    units: list[_Unit] = []
    for since, members in groups.items():
        # What each subscriber had before, read before this run writes anything.
        paper_ids = [p.id for p in store.papers_since(since)]
        seen = store.digested_among(paper_ids) if paper_ids else {}
        for start in range(0, len(members), batch):
            part = members[start : start + batch]
            units.append(_Unit(since, part, {p.name: seen[p.name] for p, _ in part if p.name in seen}))
    report.workers = _processes(settings, due=sum(len(unit.members) for unit in units), batch=batch)
    if report.workers == 1:
        days: dict[datetime, _Day] = {}
        for unit in units:
            _count(report, _make_batch(store, settings, days, unit, now=now, lock=nullcontext()), timings)
        return report
    results, broken = _make_in_processes(store.path, settings, units, now=now, workers=report.workers)
    for made in results:
        _count(report, made, timings)
    if broken:
        # A worker died (killed, out of memory). Each batch is stored whole or not at all, so
        # what is still due is exactly what was not stored: make that here, in this process.
        alone = settings.model_copy(update={"render": settings.render.model_copy(update={"workers": 1})})
        rest = make_digests(store, alone, now=now, names=names, timings=timings)
        report.made += rest.made
        report.skipped += rest.skipped
    return report


def _count(report: SendReport, made: _Made, timings: dict[str, float] | None) -> None:
    report.made += made.made
    report.skipped += made.skipped
    if timings is not None:
        for phase, seconds in made.seconds.items():
            timings[phase] = timings.get(phase, 0.0) + seconds


PARALLEL_FROM = 2  # batches due at once before worker processes are worth starting (each takes ~2 s to start)


def _processes(settings: Settings, *, due: int, batch: int) -> int:
    """How many processes make this run's digests: one unless several batches are due."""
    if due < PARALLEL_FROM * batch:
        return 1
    wanted = settings.render.workers or os.cpu_count() or 1
    return max(1, min(wanted, -(-due // batch)))


@dataclass
class _Unit:
    """One batch of subscribers sharing a window of candidate papers, with what each had before."""

    since: datetime
    members: list[tuple[Profile, datetime]]
    seen: dict[str, set[str]]


@dataclass
class _Made:
    """What making one batch did: (subscriber, edition, papers) made, empty days skipped, seconds per phase."""

    made: list[tuple[str, str, int]]
    skipped: list[tuple[str, str]]
    seconds: dict[str, float]


@dataclass
class _Day:
    """A window's candidate papers, with what every batch against it shares (loaded once per process)."""

    papers: list[Paper]
    order: list[Paper]
    space: rank.Corpus


def _make_batch(
    store: Store,
    settings: Settings,
    days: dict[datetime, _Day],
    unit: _Unit,
    *,
    now: datetime,
    lock: AbstractContextManager[object],
    checkpoint: bool = False,
) -> _Made:
    """Rank, render and freeze one batch (in this process or a worker; ``lock`` is held to write)."""
    seconds: dict[str, float] = {}
    clocked = _Stopwatch(seconds)
    if unit.since not in days:
        days.clear()  # batches come window by window: only the latest is needed again
        papers = store.papers_since(unit.since)
        days[unit.since] = _Day(papers, rank.trending_order(papers), corpus(store, papers))
    day = days[unit.since]
    with _gc_paused():
        with clocked("rank"):
            ranked = rank.rank_all(
                day.papers,
                [profile for profile, _ in unit.members],
                corpus=day.space,
                normalise_title=ingest.normalise_title,
                weights=weights(settings),
                seen=unit.seen,
            )
        frozen = [
            _freeze(profile, fire, items, day, seen=unit.seen, settings=settings, clocked=clocked)
            for (profile, fire), items in zip(unit.members, ranked, strict=True)
        ]
        with clocked("freeze"):
            with lock:
                store.save_digests(frozen, at=now)
            if checkpoint:
                store.checkpoint()  # outside the lock: the other workers write meanwhile
    made = _Made([], [], seconds)
    for (profile, fire), items in zip(unit.members, ranked, strict=True):
        edition = fire.date().isoformat()
        if not items and profile.empty_day == "skip":
            made.skipped.append((profile.name, edition))
        else:
            made.made.append((profile.name, edition, len(items)))
    return made


def _make_in_processes(
    path: Path, settings: Settings, units: list[_Unit], *, now: datetime, workers: int
) -> tuple[list[_Made], bool]:
    """Each unit made by one of ``workers`` processes: what the made ones did, and whether a worker died.

    Workers are spawned, not forked (the daemon calls this from a thread), all
    before any work is handed out. They take units from one queue, open the
    database themselves and write their own batches, one at a time: a lock
    shared by the workers wakes the next writer at once, where SQLite's busy
    handler would sleep and poll. Each answers over its own pipe. When a worker
    dies, every batch finished before is still counted, and the others are
    stopped (each batch is stored whole or not at all).

    (Python 3.11's ProcessPoolExecutor starts workers on demand while handing
    out work; a worker dying meanwhile made the next start fail, or left a
    worker that shutting down waited for for ever.)
    """
    context = multiprocessing.get_context("spawn")
    tasks: multiprocessing.queues.Queue[_Unit | None] = context.Queue()
    lock = context.Lock()
    pipes = [context.Pipe(duplex=False) for _ in range(workers)]
    setup = _Setup(os.getpid(), path, settings, lock, now)
    processes: list[multiprocessing.process.BaseProcess] = [
        context.Process(target=_worker, args=(setup, tasks, sender), daemon=True) for _, sender in pipes
    ]
    answers = {receiver: process for (receiver, _), process in zip(pipes, processes, strict=True)}
    made: list[_Made] = []
    broken = False
    try:
        for process in processes:
            process.start()
        for _, sender in pipes:
            sender.close()  # the worker holds its own copy: the pipe ends when the worker does
        for item in [*units, *[None] * workers]:
            tasks.put(item)
        while answers and len(made) < len(units) and not broken:
            for ready in multiprocessing.connection.wait(list(answers)):
                made_here, ended = _answer(ready, answers)
                made += made_here
                broken = broken or ended
    finally:
        broken = broken or len(made) < len(units)  # what is missing is made in this process
        _stop(processes, tasks, force=broken)
    return made, broken


def _answer(
    ready: object, answers: dict[multiprocessing.connection.Connection, multiprocessing.process.BaseProcess]
) -> tuple[list[_Made], bool]:
    """Read one worker's answer: a made batch, its error (raised here), or its end (True if it died)."""
    assert isinstance(ready, multiprocessing.connection.Connection)
    try:
        answer = ready.recv()
    except EOFError:  # the worker ended: after its last unit, or killed
        process = answers.pop(ready)
        process.join(timeout=30)
        return [], process.exitcode != 0
    if isinstance(answer, BaseException):
        raise answer
    return [answer], False


def _stop(
    processes: list[multiprocessing.process.BaseProcess],
    tasks: multiprocessing.queues.Queue[_Unit | None],
    *,
    force: bool,
) -> None:
    """Let the workers end (each took its ``None``), or kill them when the run went wrong."""
    for process in processes:
        if force and process.is_alive():
            process.kill()
        process.join(timeout=None if force else 30)
        if process.is_alive():
            process.kill()
            process.join()
    tasks.close()
    tasks.cancel_join_thread()  # units no worker took: nobody will read them


@dataclass(frozen=True)
class _Setup:
    """What every worker of a run is started with."""

    parent: int  # the process that started it: the worker ends when it does
    path: Path
    settings: Settings
    lock: AbstractContextManager[object]  # held to write
    now: datetime


def _worker(
    setup: _Setup,
    tasks: multiprocessing.queues.Queue[_Unit | None],
    answers: multiprocessing.connection.Connection,
) -> None:
    """A worker process: make units until the queue hands out ``None``; answer each with what it made."""
    _die_with(setup.parent)
    days: dict[datetime, _Day] = {}
    with answers, Store.open(setup.path) as store:
        store.defer_checkpoints()  # each worker checkpoints after its write, outside the lock
        for unit in iter(tasks.get, None):
            try:
                made = _make_batch(store, setup.settings, days, unit, now=setup.now, lock=setup.lock, checkpoint=True)
                answers.send(made)
            except Exception as e:  # the parent raises it: the run fails as it would in one process
                answers.send(e)
                return


PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _die_with(parent: int) -> None:
    """End this worker when the process that started it dies, even by SIGKILL.

    On Linux the kernel sends SIGKILL when the parent goes (``PR_SET_PDEATHSIG``);
    a thread that watches the parent's pid does the same job everywhere else
    within a second. A parent already gone before either was set up is caught
    by comparing the pid once.
    """
    with suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), name="parent-watch", daemon=True).start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _freeze(
    profile: Profile,
    fire: datetime,
    items: list[Ranked],
    day: _Day,
    *,
    seen: dict[str, set[str]],
    settings: Settings,
    clocked: _Stopwatch,
) -> FrozenDigest:
    """One subscriber's digest, rendered and ready to store (an empty skip-day keeps only its mark)."""
    edition = fire.date().isoformat()
    papers = day.papers
    if not items and profile.empty_day == "skip":
        return FrozenDigest(profile.name, edition, [], new_count=len(papers))
    with clocked("rank"):
        chosen = {item.paper.id for item in items} | seen.get(profile.name, set())
        hot = rank.trending(papers, count=profile.trending, skip=chosen, exclude=profile.exclude, order=day.order)
    digest = Digest(profile, fire.date(), tuple(items), tuple(hot), new_count=len(papers))
    with clocked("render"):
        draw = renderer(settings)
        channels = ledger_channels(profile, settings)
        message = draw.message(
            digest,
            unsubscribe_url=unsubscribe_url(profile.name, settings),
            markdown=any(kind in MARKDOWN_KINDS for _, kind, _ in channels),
        )
        emailed = any(kind in EMAIL_KINDS for _, kind, _ in channels)
        deliveries = [
            NewDelivery(
                channel=channel,
                kind=kind,
                target=target,
                message_id=message_id(profile.name, edition, channel, sender=settings.email.sender),
                payload=json.dumps(draw.chat(digest, kind)) if kind in render.CHAT_KINDS else None,
            )
            for channel, kind, target in channels
        ]
        body = render.email_body(message) if emailed else b""
    with clocked("freeze"):  # packing the content is part of freezing it
        return frozen(profile.name, edition, items, message, new_count=len(papers), deliveries=deliveries, email=body)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The cycle collector off while a batch is made.

    A batch makes a few hundred thousand short-lived objects, freed by reference
    counting when it is stored; each automatic collection meanwhile walks every
    live object (the day's papers, the archive), which was over a third of the
    ranking time at 10,000 subscribers. Cycles made in the batch are left to
    the collections after it.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Stopwatch:
    """Adds the seconds spent in each named phase to a dict (or does nothing without one)."""

    def __init__(self, into: dict[str, float] | None) -> None:
        self._into = into

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        if self._into is None:
            yield
            return
        started = time.perf_counter()
        try:
            yield
        finally:
            self._into[phase] = self._into.get(phase, 0.0) + time.perf_counter() - started


def _email(delivery: Delivery, digest: StoredDigest, settings: Settings, *, at: datetime) -> bytes:
    mail_settings = settings.email
    headers = {"List-Unsubscribe": f"<mailto:{mail_settings.sender}?subject=unsubscribe%20{delivery.subscriber}>"}
    link = unsubscribe_url(delivery.subscriber, settings)
    if link:
        headers["List-Unsubscribe"] = f"<{link}>, {headers['List-Unsubscribe']}"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return render.email(
        Message(digest.subject, digest.text, digest.html, digest.markdown),
        sender=mail_settings.sender,
        sender_name=mail_settings.sender_name,
        to=delivery.target or f"{delivery.subscriber}@localhost",
        reply_to=mail_settings.reply_to or None,
        message_id=delivery.message_id,
        sent=at,
        headers=headers,
        body=digest.email or None,  # made with the digest; older digests have none
    )


def webhook_target(kind: str, variable: str, settings: Settings) -> Target | None:
    """Where a webhook channel would post now (None while its variable is unset).

    Raises ``DeliveryError`` when the URL may not be used: see ``channels.vet``.
    """
    url = os.environ.get(variable, "").strip()
    if not url:
        return None
    allow = settings.delivery.allow_private_webhooks
    return vet(url, name=channel_name(kind, variable), allow_private=allow)


def open_channel(kind: str, settings: Settings) -> Channel:
    """A channel instance for this run; the email channel keeps its connection across messages."""
    cls = REGISTRY[kind]
    if kind == "email":
        return cls(settings.smtp, sender=settings.email.sender)  # type: ignore[call-arg]
    return cls(settings.delivery)  # type: ignore[call-arg]


def backoff(attempts: int, settings: Settings, *, retry_after: float | None, rng: random.Random) -> float:
    """Seconds until the next try: exponential with jitter, or what the server asked for."""
    cap = settings.delivery.backoff_max_seconds
    if retry_after is not None:
        return min(cap, max(retry_after, 1.0))
    return float(min(cap, settings.delivery.backoff_seconds * 2 ** (attempts - 1)) * rng.uniform(0.5, 1.5))


EMAIL_CHUNK = 200  # emails marked sending together and sent in parallel


def deliver(
    store: Store,
    settings: Settings,
    *,
    clock: Callable[[], datetime],
    names: set[str] | None = None,
    rng: random.Random | None = None,
    report: SendReport | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> SendReport:
    """Try every due delivery once. The ledger is written before and after each try.

    Email goes out in chunks: one transaction marks a chunk ``sending``, the
    ``[smtp] connections`` send it in parallel, one transaction records every
    outcome. Other channels go one by one. Either way a row is ``sending`` from
    before its try until its outcome is committed, so a crash in between is
    retried with the same Message-ID. ``stop`` is asked before each chunk or
    message: a daemon shutting down finishes what is in flight.

    A failure touches only its own row. Transient failures come back after a
    backoff until ``max_attempts``; permanent ones are recorded as failed.
    """
    report = report or SendReport()
    rng = rng or random.Random()
    due = store.due(clock(), names=names)
    emails = [d for d in due if d.kind == "email"]
    if emails:
        _deliver_emails(store, emails, settings, clock=clock, rng=rng, report=report, stop=stop)
    channels: dict[str, Channel] = {}
    try:
        for delivery in (d for d in due if d.kind != "email"):
            if stop():
                break
            digest = store.stored_digest(delivery.digest)
            attempts = delivery.attempts + 1
            store.mark(delivery.id, "sending", at=clock(), attempts=attempts)
            error: DeliveryError | None = None
            try:
                job = _job(store, delivery, digest, settings, at=clock())
                if delivery.kind not in channels:
                    channels[delivery.kind] = open_channel(delivery.kind, settings)
                channels[delivery.kind].send(job)
            except DeliveryError as e:
                error = e
            except Exception as e:  # a bug in one channel must not stop the others
                error = TransientError(f"unexpected {type(e).__name__} in the {delivery.kind} channel")
            outcome = _outcome(delivery, attempts, error, settings, now=clock(), rng=rng, report=report)
            store.mark_many([outcome], at=clock())
    finally:
        for channel in channels.values():
            channel.close()
    return report


def _deliver_emails(
    store: Store,
    rows: list[Delivery],
    settings: Settings,
    *,
    clock: Callable[[], datetime],
    rng: random.Random,
    report: SendReport,
    stop: Callable[[], bool],
) -> None:
    pool = EmailPool(settings.smtp, sender=settings.email.sender)
    try:
        for start in range(0, len(rows), EMAIL_CHUNK):
            if stop():
                break
            chunk = rows[start : start + EMAIL_CHUNK]
            store.mark_many([Mark(d.id, "sending", attempts=d.attempts + 1) for d in chunk], at=clock())
            digests = store.stored_digests([d.digest for d in chunk])
            jobs = (Job(d, digests[d.digest], email=_email(d, digests[d.digest], settings, at=clock())) for d in chunk)
            for job, error in pool.send_all(jobs):  # each message built while earlier ones are on the wire
                delivery = job.delivery
                outcome = _outcome(
                    delivery, delivery.attempts + 1, error, settings, now=clock(), rng=rng, report=report
                )
                # Committed as it is known: only messages on the wire are ever in doubt after a crash.
                store.mark_many([outcome], at=clock())
    finally:
        pool.close()


def _outcome(
    delivery: Delivery,
    attempts: int,
    error: DeliveryError | None,
    settings: Settings,
    *,
    now: datetime,
    rng: random.Random,
    report: SendReport,
) -> Mark:
    """The ledger state a try leads to (and its line in the report)."""
    if error is None:
        report.sent.append(delivery)
        return Mark(delivery.id, "sent")
    if isinstance(error, PermanentError):
        report.failed.append((delivery, error.reason))
        return Mark(delivery.id, "failed", error=error.reason)
    if attempts >= settings.delivery.max_attempts:
        final = f"gave up after {attempts} tries: {error.reason}"
        report.failed.append((delivery, final))
        return Mark(delivery.id, "failed", error=final)
    next_try = now + timedelta(seconds=backoff(attempts, settings, retry_after=error.retry_after, rng=rng))
    report.retries.append((delivery, error.reason, next_try))
    return Mark(delivery.id, "retry", next_try=next_try, error=error.reason)


def _job(store: Store, delivery: Delivery, digest: StoredDigest, settings: Settings, *, at: datetime) -> Job:
    def progress(sent: int) -> None:
        store.mark(delivery.id, "sending", at=at, parts_sent=sent)

    if delivery.kind in EMAIL_KINDS:
        return Job(delivery, digest, email=_email(delivery, digest, settings, at=at))
    if delivery.kind == "atom":
        history = store.recent_digests(delivery.subscriber, limit=settings.delivery.atom_entries)
        return Job(delivery, digest, history=history)
    return Job(delivery, digest, parts=json.loads(delivery.payload or "[]"), on_part=progress)


def send(
    store: Store,
    settings: Settings,
    *,
    clock: Callable[[], datetime],
    names: set[str] | None = None,
    dry_run: bool = False,
    rng: random.Random | None = None,
) -> SendReport:
    """The daily job: sync profiles, freeze the digests that are due, deliver everything due.

    A dry run does the same syncing and freezing on a snapshot of the database,
    reports what would go out, and leaves the real database and every server alone.
    """
    if dry_run:
        with tempfile.TemporaryDirectory() as scratch:
            copy = Path(scratch) / "dry-run.sqlite3"
            store.snapshot(copy)
            with Store.open(copy) as shadow:
                errors = sync_subscribers(shadow, settings.subscribers.dir, at=clock()).errors
                report = make_digests(shadow, settings, now=clock(), names=names)
                report.planned = [(d.subscriber, d.channel) for d in shadow.due(clock(), names=names)]
        report.profile_errors = errors
        return report
    errors = sync_subscribers(store, settings.subscribers.dir, at=clock()).errors
    report = make_digests(store, settings, now=clock(), names=names)
    report.profile_errors = errors
    return deliver(store, settings, clock=clock, names=names, rng=rng, report=report)
