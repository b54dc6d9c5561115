"""Delivering what is due: every channel chosen through the registry, the ledger written before and after each try."""

from __future__ import annotations

import json
import os
import random
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from digest import bounces, links, render
from digest.channels import REGISTRY, Channel, Job, Target, channel_name, vet
from digest.config import Settings
from digest.errors import DeliveryError, PermanentError, SetupError, TransientError
from digest.models import Delivery, Message, StoredDigest
from digest.pipeline import claims, payloads
from digest.pipeline.bounces import refused
from digest.pipeline.report import Failure, Progress, Retry, SendReport, no_progress
from digest.store import Digests, Ledger, Location, Store, Update

DELIVERING = "delivering"


def webhook_target(kind: str, variable: str, settings: Settings) -> Target | None:
    """Where a webhook channel would post now (None while its variable is unset).

    Raises ``DeliveryError`` when the URL may not be used: see ``channels.vet``.
    """
    url = os.environ.get(variable, "").strip()
    if not url:
        return None
    allow = settings.delivery.allow_private_webhooks
    return vet(url, name=channel_name(kind, variable), allow_private=allow)


def backoff(attempts: int, settings: Settings, *, retry_after: float | None, rng: random.Random) -> float:
    """Seconds until the next try: exponential with jitter, or what the server asked for."""
    cap = settings.delivery.backoff_max_s
    if retry_after is not None:
        return min(cap, max(retry_after, 1.0))
    return float(min(cap, settings.delivery.backoff_s * 2 ** (attempts - 1)) * rng.uniform(0.5, 1.5))


def deliver(
    store: Store,
    settings: Settings,
    *,
    clock: Callable[[], datetime],
    names: set[str] | None = None,
    rng: random.Random | None = None,
    report: SendReport | None = None,
    stop: Callable[[], bool] = lambda: False,
    progress: Progress = no_progress,
) -> SendReport:
    """Try every due delivery once. The ledger is written before and after each try.

    Email first, then the other channels in the ledger's order. Each channel
    takes its ``batch`` of rows at a time and sends them (email over ``[smtp]
    connections`` in parallel, the others one by one). A row is marked
    ``sending`` as its own message is handed to the channel, and its outcome is
    committed as it is known: a crash in between is retried with the same
    Message-ID, and only rows on the wire are ever in doubt. ``stop`` is asked
    before each message: once it is true nothing new is handed out, and what is
    on the wire finishes and is recorded.

    A failure touches only its own row. Transient failures come back after a
    backoff until ``max_attempts``; permanent ones are recorded as failed. A
    ``SetupError`` (the channel's settings cannot work) halts that channel: its
    rows go back to pending with their tries uncounted, and the rest wait.
    ``progress`` hears ("delivering", rows done, rows due) as outcomes come.
    """
    report = report or SendReport()
    rng = rng or random.Random()  # noqa: S311 - the jitter of retry times, not a secret
    due = payloads.fill_missing(store, store.ledger.due(clock(), names=names), settings)
    ordered = [d for d in due if d.kind == "email"] + [d for d in due if d.kind != "email"]
    channels: dict[str, Channel] = {}
    done = 0
    report.untried = {}  # counted again by each pass: a later pass sees every row still waiting

    def one_more() -> None:
        nonlocal done
        done += 1
        progress(DELIVERING, done, len(ordered))

    try:
        for rows in _batches(ordered):
            if stop():
                break
            kind = rows[0].kind
            if kind in report.halted:
                report.untried[kind] = report.untried.get(kind, 0) + len(rows)
                done += len(rows)
                continue
            if kind not in channels:
                channels[kind] = REGISTRY[kind](settings)
            _deliver_batch(
                store.ledger, store.digests, channels[kind], rows, settings,
                clock=clock, rng=rng, report=report, done=one_more, stop=stop,
            )  # fmt: skip
    finally:
        for channel in channels.values():
            channel.close()
    if report.refused:  # recipients refused while sending: a dead address is suspended at once
        refusals, report.refused = report.refused, []
        report.bounced += refused(store.bounces, store.subscribers, refusals, settings, now=clock())
    return report


class Deliverer:
    """Delivery in a thread of its own while the digests are made: each pass delivers what is due.

    ``wake()`` (after each frozen batch) starts a pass; leaving the ``with``
    block makes one last pass, waits for it, and raises what the thread
    raised. The thread has its own database connection; a digest's deliveries
    exist only once its batch is committed, so nothing goes out before it is
    frozen, and the ledger's rules are ``deliver``'s.
    """

    def __init__(
        self,
        path: Location,
        settings: Settings,
        *,
        clock: Callable[[], datetime],
        names: set[str] | None,
        rng: random.Random | None,
        stop: Callable[[], bool],
        progress: Progress,
        report: SendReport,
    ) -> None:
        self.report = report
        self._path, self._settings, self._clock, self._names = path, settings, clock, names
        self._rng, self._stop, self._progress = rng or random.Random(), stop, progress  # noqa: S311 - retry jitter
        self._wake = threading.Event()
        self._last = threading.Event()
        self._abort = threading.Event()  # the making failed or was interrupted: stop after the batch in hand
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="deliver", daemon=True)

    def __enter__(self) -> Deliverer:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if kind is not None:
            self._abort.set()
        self._last.set()
        self._wake.set()
        self._thread.join()
        if self._failure is not None and kind is None:
            raise self._failure

    def wake(self) -> None:
        """A batch was frozen: deliver what is due now."""
        self._wake.set()

    def _run(self) -> None:
        try:
            with Store.open(self._path) as store:
                while True:
                    self._wake.wait()
                    self._wake.clear()
                    last = self._last.is_set()
                    self._pass(store)
                    if last or self._stopping():
                        return
        except BaseException as e:  # raised again in the caller's thread, where the run reports it
            self._failure = e

    def _stopping(self) -> bool:
        return self._abort.is_set() or self._stop()

    def _pass(self, store: Store) -> None:
        before = self.report.tried()  # what earlier passes did: one running count over the passes

        def counted(doing: str, done: int, total: int) -> None:
            self._progress(doing, before + done, before + total)

        deliver(
            store,
            self._settings,
            clock=self._clock,
            names=self._names,
            rng=self._rng,
            report=self.report,
            stop=self._stopping,
            progress=counted,
        )


def _batches(rows: list[Delivery]) -> Iterator[list[Delivery]]:
    """Consecutive rows of one kind, at most that channel's ``batch`` of them at a time."""
    run: list[Delivery] = []
    for row in rows:
        if run and (row.kind != run[0].kind or len(run) >= REGISTRY[run[0].kind].batch):
            yield run
            run = []
        run.append(row)
    if run:
        yield run


def _deliver_batch(
    ledger: Ledger,
    digests: Digests,
    channel: Channel,
    rows: list[Delivery],
    settings: Settings,
    *,
    clock: Callable[[], datetime],
    rng: random.Random,
    report: SendReport,
    done: Callable[[], None],
    stop: Callable[[], bool],
) -> None:
    me = claims.holder()
    mine = ledger.claim([d.id for d in rows], holder=me, now=clock(), until=claims.lease_end(settings, clock()))
    report.sent_elsewhere += len(rows) - len(mine)
    for _ in range(len(rows) - len(mine)):
        done()
    rows = [d for d in rows if d.id in mine]
    wanted = [d.digest for d in rows]
    # SMTP sends only the MIME body; the outbox also writes the Markdown copy, so it reads the digest whole.
    frozen = digests.mail(wanted) if channel.kind == "email" else digests.get_many(wanted)

    def jobs() -> Iterator[Job]:
        """Each row marked ``sending`` as the channel takes its message (which it does only to send it), unless
        another process took it over meanwhile (``claims``)."""
        for d in rows:
            if stop():
                return
            until = claims.lease_end(settings, clock())
            if not ledger.start(d.id, attempts=d.attempts + 1, holder=me, at=clock(), until=until):
                report.sent_elsewhere += 1
                done()
                continue
            yield _job(channel, d, frozen[d.digest], settings, ledger=ledger, digests=digests, at=clock())

    for job, error in channel.send_all(jobs()):  # each job built while earlier ones are on the wire
        delivery = job.delivery
        outcome = _outcome(delivery, delivery.attempts + 1, error, settings, now=clock(), rng=rng, report=report)
        # Committed as it is known: only messages on the wire are ever in doubt after a crash.
        ledger.update_many([outcome], at=clock())
        done()


def _outcome(
    delivery: Delivery,
    attempts: int,
    error: DeliveryError | None,
    settings: Settings,
    *,
    now: datetime,
    rng: random.Random,
    report: SendReport,
) -> Update:
    """The ledger state a try leads to (and its line in the report)."""
    if error is None:
        report.sent.append(delivery)
        return Update(delivery.id, "sent")
    if isinstance(error, SetupError):
        report.halted.setdefault(delivery.kind, error.reason)
        report.untried[delivery.kind] = report.untried.get(delivery.kind, 0) + 1
        return Update(delivery.id, "pending", attempts=attempts - 1, error=error.reason)
    if isinstance(error, TransientError) and error.connection and delivery.kind == "email":
        report.unreachable += 1
    if isinstance(error, PermanentError):
        report.failed.append(Failure(delivery, error.reason))
        if error.refused is not None and delivery.kind == "email":
            report.refused.append((delivery, *error.refused))
        return Update(delivery.id, "failed", error=error.reason)
    if attempts >= settings.delivery.max_attempts:
        final = f"gave up after {attempts} tries: {error.reason}"
        report.failed.append(Failure(delivery, final))
        return Update(delivery.id, "failed", error=final)
    next_try = now + timedelta(seconds=backoff(attempts, settings, retry_after=error.retry_after, rng=rng))
    report.retries.append(Retry(delivery, error.reason, next_try))
    return Update(delivery.id, "retry", next_try=next_try, error=error.reason)


def _tracked(delivery: Delivery, settings: Settings) -> tuple[str, str | None]:
    """An email's frozen headers with X-Digest-Delivery (its signed token), and its envelope sender:
    ``[smtp] bounce_address`` with the token (VERP), so a bounce names the delivery it is about."""
    secret = settings.delivery.secret.get_secret_value()
    if not secret:
        return delivery.payload or "", settings.smtp.bounce_address or None
    token = links.bounce_token(secret, delivery.id)
    head = f"{delivery.payload or ''}\r\n{bounces.DELIVERY_HEADER}: {token}"
    bounce_address = settings.smtp.bounce_address
    return head, links.verp(bounce_address, token) if bounce_address else None


def _job(
    channel: Channel,
    delivery: Delivery,
    digest: StoredDigest,
    settings: Settings,
    *,
    ledger: Ledger,
    digests: Digests,
    at: datetime,
) -> Job:
    """What the channel needs for this delivery: the email, the feed's history, or the chat parts.

    Each is what the digest was frozen with (``payloads``); the email gets its Date line here.
    """

    def progress(sent: int) -> None:
        ledger.update(delivery.id, "sending", at=at, parts_sent=sent)

    if channel.takes == "email":
        # A digest made before schema 9 kept no MIME body: it is made from the frozen text and HTML.
        body = digest.mime or render.mime_body(Message(digest.subject, digest.text, digest.html, digest.markdown))
        head, envelope = _tracked(delivery, settings)
        return Job(delivery, digest, eml=render.dated(head, body, at), envelope=envelope)
    if channel.takes == "history":
        history = digests.recent(delivery.subscriber, limit=settings.delivery.atom_entries)
        return Job(delivery, digest, history=history, related=digests.papers([d.id for d in history]))
    return Job(delivery, digest, parts=json.loads(delivery.payload or "[]"), on_part=progress)
