"""The email as bytes: every header and the MIME body, RFC 5322 with CRLF line ends.

Pure: the moment and the addresses are arguments.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from collections.abc import Iterator
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, formataddr
from typing import AnyStr

from digest.models import Message
from digest.render.context import header_text


def eml(
    message: Message,
    *,
    sender: str,
    to: str,
    sender_name: str = "paper-digest",
    reply_to: str | None = None,
    message_id: str | None = None,
    sent: datetime | None = None,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> bytes:
    """One multipart/alternative email (plain text, then HTML) as RFC 5322 bytes with CRLF line ends.

    Assembled directly rather than through ``email.message.EmailMessage``, which
    was the slowest step of sending in bench/scale.py: header values are single safe lines,
    encoded as RFC 2047 words when not ASCII; then ``body``, the message's
    ``mime_body`` (given when it was made ahead, else made here).
    """
    head = eml_head(
        message.subject,
        sender=sender,
        to=to,
        sender_name=sender_name,
        reply_to=reply_to,
        message_id=message_id,
        headers=headers,
    )
    return dated(head, body if body is not None else mime_body(message), sent)


def eml_head(
    subject: str,
    *,
    sender: str,
    to: str,
    sender_name: str = "paper-digest",
    reply_to: str | None = None,
    message_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> str:
    """Every header of the email but Date, as ASCII lines: made when the digest is frozen, with its body."""
    fields = [("Subject", header_text(subject))]
    fields.append(("From", formataddr((header_text(sender_name, limit=80), header_text(sender)), charset="utf-8")))
    fields.append(("To", header_text(to)))
    if reply_to:
        fields.append(("Reply-To", header_text(reply_to)))
    if message_id:
        fields.append(("Message-ID", header_text(message_id)))
    fields += [(name, header_text(value, limit=900)) for name, value in (headers or {}).items()]
    return "\r\n".join(_header(name, value) for name, value in fields)


def dated(head: str, body: bytes, sent: datetime | None) -> bytes:
    """The whole email: a Date line for the moment it is handed on (if given), the frozen headers, the body."""
    date = f"Date: {format_datetime(sent)}\r\n" if sent is not None else ""
    return (date + head + "\r\n").encode("ascii") + body


def mime_body(message: Message) -> bytes:
    """The MIME part of ``email``: its MIME headers and both alternatives, the same for every send.

    The text part is quoted-printable, the HTML part 7bit where it can be
    (``_html_body``). Made when the digest is frozen, so sending adds only the
    headers that name the recipient and the moment.
    """
    return email_body(message)[0]


def email_body(message: Message) -> tuple[bytes, bool]:
    """``mime_body``, and whether ``alternatives`` gives the message's text and HTML back from it exactly.

    Known from how the parts were encoded, without decoding them again (which
    was a tenth of making a digest): see ``_gives_back``.
    """
    text = _qp(message.text)
    html_encoding, html, folded = _html_body(message.html)
    boundary = "==paper-digest-" + hashlib.sha256(text[:4096] + html[:4096]).hexdigest()[:24] + "=="
    part = 'Content-Type: text/{}; charset="utf-8"\r\nContent-Transfer-Encoding: {}\r\n\r\n'
    return b"".join(
        [
            f'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="{boundary}"\r\n'.encode(),
            f"\r\n--{boundary}\r\n".encode(),
            part.format("plain", "quoted-printable").encode(),
            text,
            f"\r\n--{boundary}\r\n".encode(),
            part.format("html", html_encoding).encode(),
            html,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    ), _gives_back(message, seven_bit=html_encoding == "7bit", folded=folded)


def _gives_back(message: Message, *, seven_bit: bool, folded: bool) -> bool:
    """Whether ``alternatives`` returns exactly this text and HTML, as encoded by ``email_body``.

    Both parts come back with LF line ends, the text ending with one and the
    HTML with none; a 7-bit HTML part turns every reference to a character
    beyond ASCII back into the character, so the HTML must have written none
    itself, and a folded line does not come back.
    """
    text, html = message.text, message.html
    if "\r" in text or "\r" in html or not text.endswith("\n") or text.endswith("\n\n") or html.endswith("\n"):
        return False
    return not seven_bit or (not folded and _REFERENCE.search(html) is None)


def alternatives(body: bytes) -> tuple[str, str] | None:
    """The text and the HTML back from a ``mime_body``: the stored form of an email digest gives both.

    Exactly what was rendered when the text's and the HTML's encodings lose
    nothing, which ``prepare`` checks when the digest is made: line ends become
    LF, the text ends with one and the HTML with none (as the templates render
    them), and in 7-bit HTML a reference to a character beyond
    ASCII becomes the character again (a template that writes such a reference
    itself, or a line folded to fit, does not come back exactly; the digest
    then keeps that part beside its MIME body). None for bytes not made by ``mime_body``.
    """
    _, marked, rest = body.partition(b'boundary="')
    boundary = rest.split(b'"', 1)[0]
    parts = body.split(b"\r\n--" + boundary + b"\r\n")[1:3] if marked else []
    if len(parts) != 2:
        return None
    found: list[str] = []
    for part in parts:
        headers, _, data = part.partition(b"\r\n\r\n")
        data = data.removesuffix(b"\r\n--" + boundary + b"--\r\n")
        try:
            if b"quoted-printable" in headers:
                decoded = binascii.a2b_qp(data).decode("utf-8")
            else:
                decoded = _REFERENCE.sub(_character, data.decode("ascii"))
        except UnicodeDecodeError:
            return None
        found.append(decoded.replace("\r\n", "\n"))
    text, html = found
    return text, html.removesuffix("\n")


_REFERENCE = re.compile(r"&#(\d{3,7});")


def _character(reference: re.Match[str]) -> str:
    number = int(reference[1])
    return chr(number) if 127 < number <= 0x10FFFF else reference[0]


MAX_LINE = 998  # RFC 5322: octets a line may hold, CRLF not counted


def _raw_text_is_ascii(body: bytes, html: str) -> bool:
    """No character beyond ASCII inside <style> or <script>, where a reference would stay literal.

    Read in ``body``, the HTML with every other character as a reference: where a
    raw-text element there has no "&#", the HTML had none; where it has, ``html``
    itself is read.
    """
    for name in ("style", "script"):
        opening, closing = f"<{name}", f"</{name}"
        referenced = any(b"&#" in part for part in _elements(body, opening.encode(), closing.encode()))
        if referenced and not all(part.isascii() for part in _elements(html, opening, closing)):
            return False
    return True


def _elements(document: AnyStr, opening: AnyStr, closing: AnyStr) -> Iterator[AnyStr]:
    """Each element of the document from its start tag (``opening``) to its end tag (or the document's end)."""
    start = document.find(opening)
    while start >= 0:
        stop = document.find(closing, start)
        yield document[start : stop if stop >= 0 else len(document)]
        start = document.find(opening, stop) if stop >= 0 else -1


def _html_body(html: str) -> tuple[str, bytes, bool]:
    """The HTML part as 7bit where it can travel so, else quoted-printable.

    7bit needs ASCII and lines of at most 998 octets: other characters become
    character references (the same text to a reader), which HTML decodes
    everywhere but inside <style> and <script>. A 7-bit part is about half the
    lines of a quoted-printable one, so the receiving server reads far fewer.
    The HTML is encoded first and read as bytes from then on: an HTML digest
    has non-ASCII characters, and every pass over such a string costs more.
    Last, whether a line was folded.
    """
    body = html.encode("ascii", "xmlcharrefreplace")
    if _raw_text_is_ascii(body, html):
        lf = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n") if b"\r" in body else body
        lines = lf.rstrip(b"\n").split(b"\n")
        fitted = lines if max(map(len, lines)) <= MAX_LINE else _fold(lines)
        if fitted is not None:
            return "7bit", b"\r\n".join(fitted) + b"\r\n", fitted is not lines
    return "quoted-printable", _qp(html), False


_ATTRIBUTE_GAP = re.compile(rb"(?<=[\"']) +(?=[A-Za-z_:][-A-Za-z0-9_:.]*=)")


def _fold(lines: list[bytes]) -> list[bytes] | None:
    """Lines over 998 octets broken between a tag's attributes, where a line break means what a space does.

    None when a long line has no such place (a very long title, say).
    """
    folded: list[bytes] = []
    for line in lines:
        if len(line) <= MAX_LINE:
            folded.append(line)
            continue
        # A quote, spaces, then name= : a gap between attributes when it is inside a tag.
        gaps = [
            g.start()
            for g in _ATTRIBUTE_GAP.finditer(line)
            if line.rfind(b"<", 0, g.start()) > line.rfind(b">", 0, g.start())
        ]
        start = 0
        while len(line) - start > MAX_LINE:
            fitting = [gap for gap in gaps if start < gap <= start + MAX_LINE]
            if not fitting:
                return None
            folded.append(line[start : fitting[-1]])
            start = fitting[-1] + 1
        folded.append(line[start:])
    return folded


def _qp(body: str) -> bytes:
    """Quoted-printable (binascii, in C), CRLF line ends, ending with a line break.

    Line by line, each line's encoding kept: quoted-printable encodes every
    line on its own, and a digest's lines (titles, summaries, links) recur in
    thousands of digests a day.
    """
    lines = _lf(body).rstrip("\n").split("\n")
    if len(_QP_LINES) + len(lines) > QP_LINES_KEPT:
        _QP_LINES.clear()
    known = _QP_LINES.get
    return b"\r\n".join([e if (e := known(line)) is not None else _qp_line(line) for line in lines]) + b"\r\n"


def _qp_line(line: str) -> bytes:
    if len(line) > QP_WIDTH and _plain(line):  # not kept: such long lines are mostly vote links, one-offs
        return _soft_broken(line).encode("ascii")
    # With its line end, as in the whole text: a space last on a full line is encoded before it, not after a break.
    encoded = binascii.b2a_qp(line.encode("utf-8") + b"\n", istext=True)[:-1].replace(b"\n", b"\r\n")
    _QP_LINES[line] = encoded
    return encoded


def _plain(line: str) -> bool:
    """A line quoted-printable only breaks where it is long: printable ASCII, no "=", no space last."""
    return line.isascii() and line.isprintable() and "=" not in line and line[-1:] != " "


def _soft_broken(line: str) -> str:
    """A ``_plain`` line longer than 76 characters as quoted-printable writes it: 75 characters and a soft break
    ("="), while what is left is longer than 76; what is left is never one character (so never a lone ".")."""
    cuts = range(0, len(line) - QP_WIDTH, QP_WIDTH - 1)
    pieces = [line[start : start + QP_WIDTH - 1] + "=" for start in cuts]
    return "\r\n".join([*pieces, line[len(pieces) * (QP_WIDTH - 1) :]])


QP_WIDTH = 76  # characters a quoted-printable line holds before a soft break
QP_LINES_KEPT = 50_000  # encoded lines kept before the store starts over (a day's digests share a few thousand)
_QP_LINES: dict[str, bytes] = {}


def _lf(text: str) -> str:
    """Every line end as LF (the parts turn them into CRLF when encoded)."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text  # a search is cheaper


def _header(name: str, value: str) -> str:
    """``Name: value``, as encoded words when the value is not ASCII, folded where it is long."""
    if value.isascii():
        if len(value) + len(name) < 900:
            return f"{name}: {value}"
        return f"{name}: " + Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
    return f"{name}: " + encoded_words(value)


WORD_BYTES = 42  # UTF-8 bytes per encoded word: 56 base64 characters, a 68-character word, lines under 78


def encoded_words(value: str) -> str:
    """RFC 2047 base64 words (``=?utf-8?b?...?=``), one per line, each cut between characters.

    What ``email.header.Header`` does, at a fraction of the cost: it weighs
    quoted-printable against base64 byte by byte in Python, over a millisecond
    for a digest's subject, on every message sent.
    """
    data = value.encode("utf-8")
    words = []
    start = 0
    while start < len(data):
        cut = min(start + WORD_BYTES, len(data))
        while cut < len(data) and data[cut] & 0xC0 == 0x80:  # not inside a character
            cut -= 1
        words.append("=?utf-8?b?" + binascii.b2a_base64(data[start:cut], newline=False).decode("ascii") + "?=")
        start = cut
    return "\r\n ".join(words)


def message_id(name: str, edition: str, channel: str, *, sender: str) -> str:
    """The same Message-ID for every try of one (digest, channel), so a repeat is recognisable."""
    domain = sender.rsplit("@", 1)[-1] or "localhost"
    tag = hashlib.sha256(channel.encode()).hexdigest()[:10]
    return f"<{edition}.{tag}.{name}@{domain}>"


def list_unsubscribe(link: str | None) -> dict[str, str]:
    """RFC 2369 / RFC 8058 headers: one-click unsubscribe by POST to ``link`` (served by ``digest serve``).

    No mailto: nothing reads that mailbox. Without a link (no ``[delivery]
    base_url`` and secret), no header: a link that is not served is worse than none.
    """
    if not link:
        return {}
    return {"List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
