"""The email channel: smtplib, one connection reused across a batch and reopened when it drops.

SMTP 4xx replies and connection trouble are transient (retried with backoff);
5xx replies are permanent for that recipient. TLS certificates are checked
unless ``verify = false``. The password comes from DIGEST_SMTP__PASSWORD and
never appears in an error.
"""

from __future__ import annotations

import contextlib
import functools
import queue
import smtplib
import ssl
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ClassVar

from digest.channels.base import Job
from digest.config import SMTPSettings
from digest.errors import DeliveryError, PermanentError, TransientError


class EmailChannel:
    kind: ClassVar[str] = "email"

    def __init__(self, settings: SMTPSettings, *, sender: str) -> None:
        if not settings.host:
            raise ValueError("EmailChannel needs [smtp] host; without one email goes to the outbox")
        self._settings = settings
        self._sender = sender
        self._smtp: smtplib.SMTP | None = None

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self._settings.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _connect(self) -> smtplib.SMTP:
        s = self._settings
        smtp: smtplib.SMTP
        if s.security == "ssl":
            smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=self._context())
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        try:
            if s.security != "ssl":
                smtp.ehlo()
            if s.security == "starttls":
                smtp.starttls(context=self._context())
                smtp.ehlo()
            if s.username:
                smtp.login(s.username, s.password.get_secret_value())
        except BaseException:
            smtp.close()  # a half-open session (refused login, failed STARTTLS) must not leak its socket
            raise
        return smtp

    def send(self, job: Job) -> None:
        assert job.email is not None and job.delivery.target
        recipient = job.delivery.target
        where = f"{self._settings.host}:{self._settings.port}"
        for attempt in (1, 2):  # a connection that dropped between messages is reopened once
            try:
                if self._smtp is None:
                    self._smtp = self._connect()
                _transmit(self._smtp, self._sender, recipient, job.email)
                return
            except smtplib.SMTPServerDisconnected as e:
                self._smtp = None
                if attempt == 2:
                    raise TransientError(f"{where} closed the connection") from e
            except smtplib.SMTPRecipientsRefused as e:
                code, text = e.recipients.get(recipient, (550, b"refused"))
                raise _classify(code, text, f"{recipient} refused") from e
            except smtplib.SMTPAuthenticationError as e:
                self.close()
                raise PermanentError(
                    f"{where} refused the login ({e.smtp_code}); check [smtp] username and DIGEST_SMTP__PASSWORD"
                ) from e
            except smtplib.SMTPResponseException as e:
                raise _classify(e.smtp_code, e.smtp_error, "server answered") from e
            except smtplib.SMTPException as e:
                self.close()
                raise TransientError(f"{where}: {type(e).__name__}") from e
            except ssl.SSLCertVerificationError as e:
                self.close()
                raise PermanentError(
                    f"{where}: certificate not trusted ({e.verify_message}); fix the server or [smtp] verify"
                ) from e
            except (OSError, TimeoutError) as e:
                self.close()
                raise TransientError(f"cannot reach {where} ({type(e).__name__})") from e

    def close(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._smtp.quit()
            self._smtp = None


class EmailPool:
    """Several EmailChannel connections sending one batch in parallel, each kept open for the batch.

    ``send_all`` returns, per job, None when the server accepted it or the
    DeliveryError that stopped it; one failure never stops the others.
    """

    def __init__(self, settings: SMTPSettings, *, sender: str) -> None:
        self._settings = settings
        self._sender = sender
        self._local = threading.local()
        self._channels: list[EmailChannel] = []
        self._lock = threading.Lock()
        self._workers = ThreadPoolExecutor(max_workers=settings.connections, thread_name_prefix="smtp")

    def _channel(self) -> EmailChannel:
        channel = getattr(self._local, "channel", None)
        if channel is None:
            channel = EmailChannel(self._settings, sender=self._sender)
            self._local.channel = channel
            with self._lock:
                self._channels.append(channel)
        return channel

    def _send(self, job: Job) -> DeliveryError | None:
        try:
            self._channel().send(job)
        except DeliveryError as e:
            return e
        except Exception as e:  # a bug must fail this message, not the batch
            return TransientError(f"unexpected {type(e).__name__} in the email channel")
        return None

    def send_all(self, jobs: Iterable[Job]) -> Iterator[tuple[Job, DeliveryError | None]]:
        """Each job with its outcome, in the order they finish (so acceptances can be recorded early).

        ``jobs`` is consumed as messages go out: at most two per connection wait
        to be sent, so the caller can build the next messages while earlier
        ones are on the wire, and record outcomes between them.
        """
        finished: queue.SimpleQueue[tuple[Job, Future[DeliveryError | None]]] = queue.SimpleQueue()
        window = 2 * self._settings.connections
        waiting = 0
        for job in jobs:
            future = self._workers.submit(self._send, job)
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
        for channel in self._channels:
            channel.close()


def _transmit(smtp: smtplib.SMTP, sender: str, recipient: str, message: bytes) -> None:
    """``smtp.sendmail`` for one recipient and a message with CRLF line ends, minus its slow part.

    smtplib doubles leading dots with a multi-line regex that took 130 us on a 35 KB
    digest, holding the GIL the other connections need; one ``replace`` does the
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


def _classify(code: int, text: bytes | str, what: str) -> TransientError | PermanentError:
    message = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    reason = f"{what}: {code} {' '.join(message.split())[:200]}"
    return TransientError(reason) if 400 <= code < 500 else PermanentError(reason)
