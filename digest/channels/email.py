"""The email channel: smtplib, ``[smtp] connections`` sessions sending a batch in parallel.

Each session is reused across the run and reopened once when it drops.

SMTP 4xx replies and connection trouble are transient (retried with backoff);
5xx replies are permanent for that recipient. Settings that cannot work (a
TLS mode the server does not speak, a refused login, an untrusted certificate,
a server that wants STARTTLS or a login first) are a ``SetupError``: the
channel stops at once and every email waits, untried, for the fix. After
``UNREACHABLE_AFTER`` connections in a row that could not be opened, the
rest of the run's emails are not tried either: they wait for their retry.
TLS certificates are checked unless ``verify = false``. The password comes
from DIGEST_SMTP__PASSWORD and never appears in an error.
"""

from __future__ import annotations

import contextlib
import functools
import queue
import smtplib
import socket
import ssl
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ClassVar

from digest.channels.base import Job, Takes, attempt
from digest.config import Settings, SMTPSettings
from digest.errors import DeliveryError, PermanentError, SetupError, TransientError

UNREACHABLE_AFTER = 3  # connections in a row that could not be opened before the rest of the run waits


class _Connection:
    """One SMTP session, opened on first use and reopened once when the server dropped it."""

    def __init__(self, settings: SMTPSettings, *, sender: str) -> None:
        self._settings = settings
        self._sender = sender
        self._smtp: smtplib.SMTP | None = None

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self._settings.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    @property
    def where(self) -> str:
        return f"{self._settings.host}:{self._settings.port}"

    def _connect(self) -> smtplib.SMTP:
        """A session ready for mail, or ``SetupError`` when the settings cannot work with this server."""
        s = self._settings
        try:
            smtp = self._open()
        except ssl.SSLCertVerificationError:
            raise
        except ssl.SSLError as e:
            raise SetupError(
                f"{self.where} did not answer in TLS ({e.reason or 'handshake failed'}); "
                'with security = "ssl" use the server\'s TLS port (465), or set security = "starttls" for 587'
            ) from e
        try:
            if s.security != "ssl":
                smtp.ehlo()
            if s.security == "starttls":
                _starttls(smtp, self.where, self._context())
            if s.username:
                smtp.login(s.username, s.password.get_secret_value())
        except BaseException:
            smtp.close()  # a half-open session (refused login, failed STARTTLS) must not leak its socket
            raise
        return smtp

    def _open(self) -> smtplib.SMTP:
        s = self._settings
        if s.security == "ssl":
            return smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout_s, context=self._context())
        return smtplib.SMTP(s.host, s.port, timeout=s.timeout_s)

    def send(self, job: Job) -> None:
        assert job.eml is not None and job.delivery.target  # noqa: S101 - an invariant, for the type checker; no input is checked by it
        self.transmit(job.delivery.target, job.eml, envelope=job.envelope)

    def transmit(self, recipient: str, message: bytes, *, envelope: str | None = None) -> None:
        """Send one message (RFC 5322, CRLF) to one recipient, or raise a ``DeliveryError``.

        An address SMTP cannot carry as written (profiles and the sign-up page refuse
        them, so only an older database holds one) fails for good, never in a loop.
        """
        if not recipient.isascii() or any(c in recipient for c in '\r\n<>()" ,;\\') or not recipient.isprintable():
            raise PermanentError(f"{recipient!r} cannot be sent to as written; correct the address in the profile")
        for try_number in (1, 2):  # a connection that dropped between messages is reopened once
            try:
                self._transmit_once(recipient, message, envelope or self._sender)
                return
            except smtplib.SMTPServerDisconnected as e:
                self._smtp = None
                if try_number == 2:
                    raise TransientError(f"{self.where} closed the connection", connection=True) from e

    def _transmit_once(self, recipient: str, message: bytes, sender: str) -> None:
        """One try; every error but a dropped connection becomes a ``DeliveryError``."""
        try:
            if self._smtp is None:
                self._smtp = self._connect()
            _mail_transaction(self._smtp, sender, recipient, message)
        except smtplib.SMTPServerDisconnected:
            raise
        except UnicodeEncodeError as e:
            raise PermanentError(f"{recipient!r}: not plain ASCII, which this SMTP session cannot carry") from e
        except smtplib.SMTPRecipientsRefused as e:
            code, text = e.recipients.get(recipient, (550, b"refused"))
            refusal = _classify(code, text, f"{recipient} refused", where=self.where)
            refusal.refused = (code, _said(text))  # what the recipient's server said, for the bounce policy
            raise refusal from e
        except smtplib.SMTPAuthenticationError as e:
            self.close()
            raise SetupError(
                f"{self.where} refused the login ({e.smtp_code}); check [smtp] username and DIGEST_SMTP__PASSWORD"
            ) from e
        except smtplib.SMTPNotSupportedError as e:
            self.close()
            raise SetupError(
                f"{self.where} does not offer a login (AUTH); remove [smtp] username, or use the server's "
                'submission port (587) with security = "starttls"'
            ) from e
        except smtplib.SMTPResponseException as e:
            raise _classify(e.smtp_code, e.smtp_error, "server answered", where=self.where) from e
        except smtplib.SMTPException as e:
            self.close()
            raise TransientError(f"{self.where}: {type(e).__name__}", connection=True) from e
        except ssl.SSLCertVerificationError as e:
            self.close()
            raise SetupError(
                f"{self.where}: certificate not trusted ({e.verify_message}); fix the server or [smtp] verify"
            ) from e
        except (OSError, TimeoutError) as e:
            self.close()
            raise TransientError(self._unreachable(e), connection=True) from e

    def _unreachable(self, error: OSError | TimeoutError) -> str:
        """Why the server could not be reached, in words (one reason per cause, so a summary can count them)."""
        if isinstance(error, ConnectionRefusedError):
            return f"{self.where} refused the connection"
        if isinstance(error, TimeoutError):
            return f"{self.where} did not answer within {self._settings.timeout_s:g} s"
        if isinstance(error, socket.gaierror):
            return f"{self._settings.host} does not resolve"
        return f"cannot reach {self.where} ({type(error).__name__})"

    def close(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._smtp.quit()
            self._smtp = None


class EmailChannel:
    """``[smtp] connections`` sessions sending a batch in parallel, one per thread, each kept open for the run."""

    kind: ClassVar[str] = "email"
    takes: ClassVar[Takes] = "email"
    markdown: ClassVar[bool] = False
    batch: ClassVar[int] = 200  # emails read from the ledger together, sent over the connections in parallel

    def __init__(self, settings: Settings) -> None:
        if not settings.smtp.host:
            raise ValueError("EmailChannel needs [smtp] host; without one email goes to the outbox")
        self._settings = settings.smtp
        self._sender = settings.email.sender
        self._local = threading.local()
        self._connections: list[_Connection] = []
        self._lock = threading.Lock()
        self._workers = ThreadPoolExecutor(max_workers=self._settings.connections, thread_name_prefix="smtp")
        self._halted: DeliveryError | None = None  # set once: the reason no further email is tried this run
        self._unreachable = 0  # connections in a row that could not be opened

    def _connection(self) -> _Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = _Connection(self._settings, sender=self._sender)
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def _send_job(self, job: Job) -> DeliveryError | None:
        """One email, unless the channel halted: then the reason it halted, and nothing tried."""
        if self._halted is not None:
            return self._halted
        error = attempt(self._connection().send, job, kind=self.kind)
        with self._lock:
            if isinstance(error, SetupError):
                self._halted = error
            elif isinstance(error, TransientError) and error.connection:
                self._unreachable += 1
                if self._unreachable >= UNREACHABLE_AFTER:
                    self._halted = error
            else:
                self._unreachable = 0
        return error

    def send_all(self, jobs: Iterable[Job]) -> Iterator[tuple[Job, DeliveryError | None]]:
        """Each job with its outcome, in the order they finish (so acceptances can be recorded early).

        ``jobs`` is consumed only as a connection is free to send the next
        message, so no more jobs are taken than there are connections: the
        caller marks a row ``sending`` as it hands its job over, builds the next
        while others are on the wire, and records outcomes between them.
        """
        finished: queue.SimpleQueue[tuple[Job, Future[DeliveryError | None]]] = queue.SimpleQueue()
        window = self._settings.connections
        waiting = 0
        for job in jobs:
            future = self._workers.submit(self._send_job, job)
            future.add_done_callback(functools.partial(_put, finished, job))
            waiting += 1
            while waiting >= window or not finished.empty():
                done_job, done = finished.get()
                waiting -= 1
                yield done_job, done.result()
        for _ in range(waiting):
            done_job, done = finished.get()
            yield done_job, done.result()

    def close(self) -> None:
        self._workers.shutdown(wait=True)
        for connection in self._connections:
            connection.close()


def send_one(settings: Settings, recipient: str, message: bytes) -> None:
    """One message outside any digest (a sign-up's confirmation), on a session of its own.

    Its bounces go to ``[smtp] bounce_address`` (no delivery to name), else to the sender."""
    connection = _Connection(settings.smtp, sender=settings.smtp.bounce_address or settings.email.sender)
    try:
        connection.transmit(recipient, message)
    finally:
        connection.close()


def _mail_transaction(smtp: smtplib.SMTP, sender: str, recipient: str, message: bytes) -> None:
    """``smtp.sendmail`` for one recipient and a message with CRLF line ends, minus its slow part.

    smtplib doubles leading dots with a multi-line regex, slow on a large digest
    and holding the GIL the other connections need; one ``replace`` does the
    same on CRLF text. The replies are checked, and the session reset or closed on
    a refusal, as sendmail does.
    """
    smtp.ehlo_or_helo_if_needed()
    code, reply = smtp.mail(sender)
    if code != 250:
        _reset(smtp, code)
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    code, reply = smtp.rcpt(recipient)
    if code not in (250, 251):
        _reset(smtp, code)
        raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
    code, reply = smtp.docmd("data")
    if code != 354:
        _reset(smtp, code)
        raise smtplib.SMTPDataError(code, reply)
    stuffed = message.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    smtp.send(stuffed + b".\r\n")
    code, reply = smtp.getreply()
    if code != 250:
        _reset(smtp, code)
        raise smtplib.SMTPDataError(code, reply)


def _reset(smtp: smtplib.SMTP, code: int) -> None:
    """After a refusal: a closing server (421) is closed, any other session reset for the next message."""
    if code == 421:
        smtp.close()
        return
    with contextlib.suppress(smtplib.SMTPServerDisconnected):
        smtp.rset()


def _put(
    into: queue.SimpleQueue[tuple[Job, Future[DeliveryError | None]]], job: Job, done: Future[DeliveryError | None]
) -> None:
    into.put((job, done))


def _starttls(smtp: smtplib.SMTP, where: str, context: ssl.SSLContext) -> None:
    if not smtp.has_extn("starttls"):
        raise SetupError(
            f'{where} does not offer STARTTLS; set [smtp] security = "ssl" for its TLS port (465), '
            'or security = "none" for a server on this machine'
        )
    smtp.starttls(context=context)
    smtp.ehlo()


def _said(text: bytes | str) -> str:
    """A server's reply text as one line, at most 200 characters."""
    message = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return " ".join(message.split())[:200]


def _classify(code: int, text: bytes | str, what: str, *, where: str) -> DeliveryError:
    """A refusal as an error: 4xx transient, 5xx permanent; 530 (STARTTLS or login first) the settings'."""
    said = _said(text)
    if code == 530:
        return SetupError(
            f'{where} wants STARTTLS or a login first ({code} {said}); set [smtp] security = "starttls" '
            "and [smtp] username with DIGEST_SMTP__PASSWORD"
        )
    reason = f"{what}: {code} {said}"
    return TransientError(reason) if 400 <= code < 500 else PermanentError(reason)
