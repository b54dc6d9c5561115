"""Where bounces and complaints arrive: a Maildir folder, an mbox file, an IMAP mailbox, or one message on stdin.

Each source hands out (id, bytes) pairs: the id is the file name in the Maildir, the message's index in
the mbox, the IMAP UID, or ``stdin``; the bytes are at most ``[bounces] max_message_kb`` of the message
(a report's parts come first). After a message is read it is filed, so the next pass does not read it
again: one that was recognised goes to ``done_folder``, one that was not to ``unknown_folder`` (a
Maildir's sub-folders ``.Processed`` and ``.Unknown``; beside an mbox, ``NAME.processed`` and
``NAME.unknown``; IMAP folders, made when missing). A dry run files nothing.

IMAP speaks TLS (``ssl``, or ``starttls``) with the certificate checked unless ``verify = false``; the
password comes from DIGEST_BOUNCES__PASSWORD and never appears in an error. Every network call has
``timeout_s``; a pass reads at most ``max_messages``.
"""

from __future__ import annotations

import contextlib
import imaplib
import mailbox
import re
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TypeVar

from digest.config import BouncesSettings
from digest.errors import MailboxError

T = TypeVar("T")
STDIN = "-"
IMAP = "imap"


class Mailbox(Protocol):
    """A source of bounce messages."""

    name: str  # what it is, in words: "the Maildir var/bounces", "imap.example.org:993 INBOX"

    def messages(self) -> Iterator[tuple[str, bytes]]: ...

    def file(self, message_id: str, *, recognised: bool) -> None: ...

    def close(self) -> None: ...


@contextmanager
def open_mailbox(source: str, settings: BouncesSettings, *, stdin: BinaryIO | None = None) -> Iterator[Mailbox]:
    """The mailbox ``source`` names, closed (what was filed written out, the session ended) on the way out."""
    box = _mailbox(source, settings, stdin=stdin)
    try:
        yield box
    finally:
        box.close()


def _mailbox(source: str, settings: BouncesSettings, *, stdin: BinaryIO | None) -> Mailbox:
    """The mailbox ``source`` names: ``-`` (stdin), ``imap`` (the [bounces] server), or a Maildir or mbox path."""
    limit = settings.max_message_kb * 1024
    if source == STDIN:
        if stdin is None:
            raise MailboxError("no message on stdin: pipe one message in, as an MTA's pipe transport does")
        return _Stdin(stdin, limit)
    if source == IMAP:
        return _Imap(settings, limit)
    path = Path(source)
    if path.is_dir():
        if not (path / "new").is_dir() or not (path / "cur").is_dir():
            raise MailboxError(f"{path}: not a Maildir (no new/ and cur/ in it); give a Maildir folder or an mbox file")
        return _Maildir(path, settings, limit)
    if path.is_file():
        return _Mbox(path, settings, limit)
    raise MailboxError(f"{path}: no such Maildir or mbox file; check [bounces] source or the path given")


class _Stdin:
    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self.name = "the message on stdin"
        self._stream = stream
        self._limit = limit

    def messages(self) -> Iterator[tuple[str, bytes]]:
        data = self._stream.read(self._limit)
        with contextlib.suppress(OSError):  # the rest is the returned mail; drained so the MTA's pipe closes cleanly
            while self._stream.read(1 << 16):
                pass
        if data.strip():
            yield "stdin", data

    def file(self, message_id: str, *, recognised: bool) -> None:
        return None

    def close(self) -> None:
        return None


class _Maildir:
    """A Maildir read by hand: the files in new/ and cur/, each moved into a Maildir++ sub-folder once read."""

    def __init__(self, root: Path, settings: BouncesSettings, limit: int) -> None:
        self.name = f"the Maildir {root}"
        self._root = root
        self._done = root / f".{settings.done_folder}"
        self._unknown = root / f".{settings.unknown_folder}"
        self._limit = limit
        self._max = settings.max_messages
        self._paths: dict[str, Path] = {}

    def messages(self) -> Iterator[tuple[str, bytes]]:
        found = sorted(p for sub in ("new", "cur") for p in (self._root / sub).iterdir() if p.is_file())
        for path in found[: self._max]:
            try:
                with path.open("rb") as handle:
                    data = handle.read(self._limit)
            except OSError:
                continue  # taken by another reader meanwhile
            self._paths[path.name] = path
            yield path.name, data

    def file(self, message_id: str, *, recognised: bool) -> None:
        folder = self._done if recognised else self._unknown
        for sub in ("tmp", "new", "cur"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        path = self._paths.pop(message_id)
        try:
            path.rename(folder / "cur" / path.name)
        except FileNotFoundError:
            return  # another reader (the daemon, a second `digest bounces`) filed it meanwhile
        except OSError as e:
            raise MailboxError(
                f"{path}: cannot move it into {folder} ({e.strerror}); check the folder's permissions"
            ) from e

    def close(self) -> None:
        return None


class _Mbox:
    """An mbox file, locked while it is read; messages read are moved to NAME.processed or NAME.unknown."""

    def __init__(self, path: Path, settings: BouncesSettings, limit: int) -> None:
        self.name = f"the mbox {path}"
        self._path = path
        self._limit = limit
        self._max = settings.max_messages
        self._filed: dict[str, bool] = {}
        self._keys: dict[str, str] = {}
        try:
            self._box = mailbox.mbox(path, create=False)
            self._box.lock()
        except (OSError, mailbox.Error) as e:
            raise MailboxError(f"{path}: cannot open or lock the mbox ({e}); check it is an mbox file") from e

    def messages(self) -> Iterator[tuple[str, bytes]]:
        for key in list(self._box.keys())[: self._max]:
            self._keys[str(key)] = key
            yield str(key), self._box.get_bytes(key)[: self._limit]

    def file(self, message_id: str, *, recognised: bool) -> None:
        self._filed[message_id] = recognised

    def close(self) -> None:
        """Move the messages filed into their sibling mboxes, then write this one without them, unlocked."""
        try:
            for recognised in (True, False):
                keys = [self._keys[k] for k, known in self._filed.items() if known is recognised]
                if keys:
                    sibling = self._path.with_name(f"{self._path.name}.{'processed' if recognised else 'unknown'}")
                    _append(sibling, [self._box.get_bytes(k) for k in keys])
            for key in self._filed:
                self._box.remove(self._keys[key])
            self._box.flush()
        except (OSError, mailbox.Error) as e:
            raise MailboxError(f"{self._path}: cannot write the mbox ({e}); the messages read stay in it") from e
        finally:
            self._box.unlock()
            self._box.close()


def _append(path: Path, messages: list[bytes]) -> None:
    box = mailbox.mbox(path, create=True)
    box.lock()
    try:
        for message in messages:
            box.add(message)
        box.flush()
    finally:
        box.unlock()
        box.close()


class _Imap:
    """An IMAP mailbox: UIDs searched in ``folder``, each message fetched (at most ``limit`` bytes), then moved."""

    def __init__(self, settings: BouncesSettings, limit: int) -> None:
        if not settings.host:
            raise MailboxError('[bounces] source = "imap" needs [bounces] host (and username, folder)')
        self.name = f"{settings.host}:{settings.port} {settings.folder}"
        self._settings = settings
        self._limit = limit
        self._made: set[str] = set()
        self._moved = False
        self._offers: set[bytes] | None = None
        self._imap = self._call("connect", self._connect)
        self._call("select the folder", lambda: _ok(self._imap.select(_quoted(settings.folder))))

    def _connect(self) -> imaplib.IMAP4:
        s = self._settings
        if s.security == "ssl":
            imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(s.host, s.port, ssl_context=self._context(), timeout=s.timeout_s)
        else:
            imap = imaplib.IMAP4(s.host, s.port, timeout=s.timeout_s)
        try:
            if s.security == "starttls":
                imap.starttls(ssl_context=self._context())
            imap.login(s.username, s.password.get_secret_value())
        except BaseException:
            with contextlib.suppress(Exception):
                imap.shutdown()
            raise
        return imap

    def _context(self) -> ssl.SSLContext:
        s = self._settings
        context = ssl.create_default_context(cafile=str(s.ca_file) if s.ca_file else None)
        if not s.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _call(self, doing: str, action: Callable[[], T]) -> T:
        """``action()``, its failure one line naming the server and what was being done (never the password)."""
        try:
            return action()
        except imaplib.IMAP4.error as e:
            said = " ".join(str(e).split())[:200].replace(self._settings.password.get_secret_value() or "\0", "***")
            raise MailboxError(f"IMAP {self.name}: could not {doing} ({said}); check [bounces] username, "
                               "DIGEST_BOUNCES__PASSWORD and folder") from e  # fmt: skip
        except ssl.SSLCertVerificationError as e:
            raise MailboxError(f"IMAP {self.name}: certificate not trusted ({e.verify_message}); "
                               "fix the server, or set [bounces] ca_file or verify") from e  # fmt: skip
        except (OSError, TimeoutError) as e:
            raise MailboxError(f"IMAP {self.name}: could not {doing} ({type(e).__name__}: {e}); "
                               "check [bounces] host, port and security") from e  # fmt: skip

    def messages(self) -> Iterator[tuple[str, bytes]]:
        data = self._call("search the folder", lambda: _ok(self._imap.uid("SEARCH", "ALL")))
        uids = data[0].split() if data and isinstance(data[0], bytes) else []
        for raw_uid in uids[: self._settings.max_messages]:
            uid = raw_uid.decode()
            body = self._call("fetch a message", lambda: self._fetch(uid))  # noqa: B023 - called at once
            if body is not None:
                yield uid, body

    def _fetch(self, uid: str) -> bytes | None:
        """The first ``limit`` bytes of message ``uid``, without marking it seen."""
        fetched = _ok(self._imap.uid("FETCH", uid, f"(BODY.PEEK[]<0.{self._limit}>)"))
        return next((p[1] for p in fetched if isinstance(p, tuple) and len(p) > 1 and isinstance(p[1], bytes)), None)

    def file(self, message_id: str, *, recognised: bool) -> None:
        folder = self._settings.done_folder if recognised else self._settings.unknown_folder
        if folder not in self._made:
            self._call("make a folder", lambda: self._imap.create(_quoted(folder)))  # "already exists" is fine
            self._made.add(folder)
        if b"MOVE" in self._capabilities():
            self._call("move a message", lambda: _ok(self._imap.uid("MOVE", message_id, _quoted(folder))))
            return
        self._call("copy a message", lambda: _ok(self._imap.uid("COPY", message_id, _quoted(folder))))
        self._call("mark a message", lambda: _ok(self._imap.uid("STORE", message_id, "+FLAGS", r"(\Deleted)")))
        self._moved = True

    def _capabilities(self) -> set[bytes]:
        """What the server offers now (after login it may offer more than in its greeting: MOVE)."""
        if self._offers is None:
            data = self._call("ask the server's capabilities", lambda: _ok(self._imap.capability()))
            self._offers = {c.upper() for c in data[0].split()} if data and isinstance(data[0], bytes) else set()
        return self._offers

    def close(self) -> None:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            if self._moved:
                self._imap.expunge()
            self._imap.close()
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            self._imap.logout()


def _ok(answer: tuple[str, list[Any]]) -> list[Any]:
    kind, data = answer
    if kind != "OK":
        raise imaplib.IMAP4.error(
            " ".join(x.decode(errors="replace") if isinstance(x, bytes) else str(x) for x in data)
        )
    return data


def _quoted(folder: str) -> str:
    """A folder name as an IMAP string (quoted; a name with a quote or a backslash escaped)."""
    return '"' + re.sub(r'(["\\])', r"\\\1", folder) + '"'
