"""The exception tree. Every error the user can cause is a ``DigestError``.

::

    DigestError                 exit 1; one line naming the thing, the value and the fix
    ├── ConfigError             bad config file, key or environment variable
    ├── InputError              a dump that cannot be used
    │   ├── ReadError           unreadable bytes: missing, too large, binary, not UTF-8
    │   └── ParseError          readable text that holds no papers
    ├── FetchError              Hugging Face's list for a day could not be fetched (after the retries)
    ├── ProfileError            a subscriber profile that cannot be used
    ├── RenderError             a template that cannot be rendered (a user's override, mostly)
    ├── DeliveryError           a channel could not deliver (caught by the ledger, never shown raw)
    │   ├── TransientError      try again later: SMTP 4xx, HTTP 429/5xx, timeouts, dropped connections
    │   ├── PermanentError      do not retry: SMTP 5xx, HTTP 4xx, a missing webhook variable
    │   └── SetupError          the channel's own settings are wrong (TLS mode, login, certificate):
    │                           the channel stops for this run, its deliveries wait untouched
    ├── StoreError              the database cannot be opened or is from a newer version
    ├── BusyError               another digest run holds the database's lock
    └── UsageError              exit 2; the command line asks for something impossible

The CLI catches ``DigestError`` once, prints ``str(error)`` on one line and exits
with ``error.exit_code``. Messages never contain secrets.
"""

from __future__ import annotations


class DigestError(Exception):
    """Base of every error paper-digest reports to the user."""

    exit_code = 1


class ConfigError(DigestError):
    """The configuration file, a key in it, or a DIGEST_* variable is wrong."""


class InputError(DigestError):
    """A dump file cannot be used."""


class BusyError(DigestError):
    """Another ``digest run`` or ``digest send`` holds the database's lock."""


class FetchError(DigestError):
    """A day's Daily Papers list could not be fetched: refused, too large, or no answer after the retries."""


class ReadError(InputError):
    """A dump file's bytes cannot be read as text."""


class ParseError(InputError):
    """A dump file's text holds no papers."""


class ProfileError(DigestError):
    """A subscriber profile file, or a key in it, is wrong.

    One file's several problems are one ``ProfileError`` whose ``lines`` hold a
    line each (``str`` joins them with newlines); the CLI prints each as an error.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lines = message.split("\n")

    @classmethod
    def combine(cls, errors: list[ProfileError]) -> ProfileError:
        return errors[0] if len(errors) == 1 else cls("\n".join(line for e in errors for line in e.lines))


class RenderError(DigestError):
    """A template is missing, has a syntax error or uses a name it is not given."""


class DeliveryError(DigestError):
    """A channel failed to deliver one message; the reason never contains a secret."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.refused: tuple[int, str] | None = None  # an SMTP server's reply refusing the recipient (RCPT)


class TransientError(DeliveryError):
    """Worth another try later (``retry_after`` seconds, when the server said).

    ``connection`` is True when the server could not be reached at all (refused,
    timed out, dropped): a send where every email failed so exits 1.
    """

    def __init__(self, reason: str, *, retry_after: float | None = None, connection: bool = False) -> None:
        super().__init__(reason, retry_after=retry_after)
        self.connection = connection


class PermanentError(DeliveryError):
    """Another try would fail the same way."""


class SetupError(DeliveryError):
    """The channel cannot work as configured; no delivery is tried, counted or failed because of it."""


class MailboxError(DigestError):
    """The bounce mailbox (a Maildir, an mbox, an IMAP server) cannot be read or written."""


class StoreError(DigestError):
    """The database cannot be opened, migrated or queried."""


class UsageError(DigestError):
    """The command line asks for something that cannot be done."""

    exit_code = 2
