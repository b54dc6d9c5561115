"""One message from a bounce mailbox → a ``Report``: what kind it is, whose, and why. Pure.

Recognised, in this order:

* an ARF complaint (RFC 5965: ``multipart/report; report-type=feedback-report``);
* an RFC 3464 delivery status notification (a ``message/delivery-status`` part: per
  recipient Final-Recipient, Action, Status, Diagnostic-Code), as Postfix, Gmail,
  Exchange/Outlook and most servers send;
* a bounce in words only (Exim's "Mail delivery failed", qmail's "failure notice",
  older Exchange and Sendmail texts): the failed addresses, from X-Failed-Recipients
  or the text, each with the lines that follow it;
* an auto-reply (RFC 3834 Auto-Submitted, vacation and out-of-office messages), to ignore.

Anything else is ``unknown``. Which delivery it was is told by the returned message's
Message-ID and X-Digest-Delivery header, and by the VERP token in the address the
bounce was sent to (``tokens``); the caller checks the tokens' signatures.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses
from typing import Final, Literal

from digest.bounces.classify import classify, said_after_data, status_code

Kind = Literal["hard", "soft", "complaint", "auto-reply", "unknown"]
KINDS: Final = ("hard", "soft", "complaint", "auto-reply", "unknown")
MAX_PARSED: Final = 1 << 20  # bytes of a message read: a report's parts come first, the rest is the returned mail
DELIVERY_HEADER: Final = "X-Digest-Delivery"
_ENVELOPE_HEADERS: Final = ("To", "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "X-Rcpt-To")
_ADDRESS: Final = re.compile(r"<?([A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63})>?")
_MESSAGE_ID: Final = re.compile(r"^(?:Message-ID|Original-Message-ID)\s*:\s*(<[^>\s]{1,250}>)", re.I | re.M)
_DELIVERY: Final = re.compile(r"^" + DELIVERY_HEADER + r"\s*:\s*([a-z0-9.]{3,40})\s*$", re.I | re.M)
_BOUNCE_SENDER: Final = re.compile(r"mailer-daemon|postmaster|mail delivery (system|subsystem)", re.I)
_BOUNCE_SUBJECT: Final = re.compile(
    r"undeliver|delivery (status notification|failure|has failed|problem)|mail delivery failed|returned mail"
    r"|failure notice|non[- ]?delivery|could not be delivered|delivery notification|mail system error"
    r"|returned to sender|message not delivered|rejected|delivery report",
    re.I,
)
_AUTO_SUBJECT: Final = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response|antwort)|auto:|out of (the )?office|away from|vacation|abwesen"
    r"|absence|i am (away|out)|réponse automatique)",
    re.I,
)
# Where a bounce's own words end and the returned message begins.
_RETURNED: Final = re.compile(
    r"^\s*-{2,}\s*(this is a copy of|below this line|original message|the original message|returned message"
    r"|forwarded message|message headers? follow)|^\s*(original message follows|message headers follow"
    r"|this is a copy of the message)",
    re.I | re.M,
)
_HEADER_LINE: Final = re.compile(r"^\s*[A-Za-z][A-Za-z-]{1,30}:")
_OWN_HEADERS: Final = ("From", "To", "Reply-To", "Sender", "Return-Path", "Cc")  # the bounce's own: never a failed one
_ROLE: Final = re.compile(r"(postmaster|mailer-daemon|hostmaster|abuse|support|no-?reply)@", re.I)  # a contact to ask
_JMRP_SUBJECT: Final = re.compile(r"^\s*complaint about message from", re.I)
_JMRP_RECIPIENT: Final = "X-HmXmrOriginalRecipient"
_FAILED_HEADERS: Final = ("X-Failed-Recipients",)
_KIND_ORDER: Final = {"hard": 0, "complaint": 1, "soft": 2, "auto-reply": 3, "unknown": 4}


@dataclass(frozen=True, slots=True)
class Bounce:
    """One recipient's verdict: ``kind`` hard, soft or complaint; ``status`` the DSN code; ``reason`` a word."""

    recipient: str | None
    kind: Kind
    status: str | None
    reason: str
    diagnostic: str


@dataclass(frozen=True, slots=True)
class Report:
    """What one message says: its kind, each recipient's verdict, and what names the delivery it is about."""

    kind: Kind
    bounces: tuple[Bounce, ...] = ()
    message_ids: tuple[str, ...] = ()
    tokens: tuple[str, ...] = ()  # from X-Digest-Delivery and the VERP address; unchecked
    note: str = ""  # for an unknown message: what it is, in words

    @property
    def recipients(self) -> list[str]:
        return [b.recipient for b in self.bounces if b.recipient]

    @property
    def status(self) -> str | None:
        return next((b.status for b in self.bounces if b.status), None)

    @property
    def reason(self) -> str | None:
        return self.bounces[0].reason if self.bounces else None


def judged(
    recipient: str | None,
    said: str,
    status: str | None,
    *,
    diagnostic: str | None = None,
    failed: bool = True,
    after_data: bool = False,
) -> Bounce:
    """One recipient's verdict on what was said of it (``classify``), with ``status`` as reported and
    ``diagnostic`` kept for the record (``said`` unless given)."""
    kind, reason = classify(status, said, failed=failed, after_data=after_data)
    return Bounce(recipient or None, kind, status, reason, said if diagnostic is None else diagnostic)


def read(raw: bytes) -> Report:
    """The report one message makes; never raises: what cannot be read is ``unknown``, with a note."""
    try:
        head = raw[:MAX_PARSED]
        message = email.message_from_bytes(head, policy=email.policy.compat32)
        return _read(message, head.decode("utf-8", "replace"))
    except Exception as e:  # a stranger's bytes: any failure of the parser is one unknown message
        return Report("unknown", note=f"cannot be read as an email ({type(e).__name__})")


def _read(message: Message, text: str) -> Report:
    ids, tokens = _references(message)
    feedback = _part(message, "message/feedback-report")
    if feedback is not None:
        found = _complaint(message, feedback)
        note = "" if found else "a feedback report that is no complaint (not-spam, or an authentication report)"
        return Report(_overall(found) if found else "unknown", tuple(found), ids, tokens, note=note)
    blocks = _dsn_blocks(message, text)
    if blocks:
        found = _dsn(message, blocks)
        note = "" if found else "a delivery report saying the message was delivered"
        return Report(_overall(found) if found else "unknown", tuple(found), ids, tokens, note=note)
    found = _jmrp(message) or _in_words(message)
    if found:
        return Report(_overall(found), tuple(found), ids, tokens)
    if _auto_reply(message):
        return Report("auto-reply", (), ids, tokens, note="an automatic reply")
    return Report("unknown", (), ids, tokens, note="not a bounce, a complaint or an automatic reply")


def _overall(bounces: list[Bounce]) -> Kind:
    return min((b.kind for b in bounces), key=_KIND_ORDER.__getitem__)


def _complaint(message: Message, report: Message) -> list[Bounce]:
    """An ARF report's complaint, for the recipient it names (Original-Rcpt-To, else the returned To)."""
    fields = _fields(report)
    feedback = (fields.get("feedback-type") or "abuse").strip().lower()
    if feedback in ("not-spam", "auth-failure"):  # a sender's mistake undone, or an authentication report
        return []
    recipient = _bare(fields.get("original-rcpt-to", ""))
    if not recipient:
        returned = _returned_headers(message)
        recipient = _bare(returned.get("To", "")) if returned is not None else ""
    return [Bounce(recipient or None, "complaint", None, "spam" if feedback == "abuse" else feedback, feedback)]


def _jmrp(message: Message) -> list[Bounce]:
    """Microsoft's complaint (JMRP), which is not ARF: "complaint about message from ...", the mail attached,
    its recipient in X-HmXmrOriginalRecipient."""
    returned = _returned_headers(message)
    if returned is None or not (_JMRP_SUBJECT.search(_subject(message)) or returned.get(_JMRP_RECIPIENT)):
        return []
    recipient = _bare(str(returned.get(_JMRP_RECIPIENT) or returned.get("To", "")))
    return [Bounce(recipient or None, "complaint", None, "spam", "abuse")]


def _dsn_blocks(message: Message, text: str) -> list[Message]:
    """The field blocks of an RFC 3464 report (none: not one)."""
    report = _part(message, "message/delivery-status")
    blocks = report.get_payload() if report is not None else None
    if not isinstance(blocks, list):
        blocks = _blocks_in_text(text)  # a report whose MIME structure did not parse (a lost boundary)
    return [b for b in blocks if isinstance(b, Message)]


def _dsn(message: Message, blocks: list[Message]) -> list[Bounce]:
    """An RFC 3464 report's recipients, each classified; none when every one was delivered."""
    fields = [{k.lower(): " ".join(str(v).split()) for k, v in b.items()} for b in blocks]
    recipients = [_bare(_after_type(f.get("final-recipient") or f.get("original-recipient", ""))) for f in fields]
    words = _own_words(message)
    found: list[Bounce] = []
    for block, recipient in zip(fields, recipients, strict=True):
        action = block.get("action", "failed").lower()
        if action in ("delivered", "relayed", "expanded") or not (recipient or block.get("status")):
            continue
        others = [r for r in recipients if r and r.lower() != recipient.lower()]
        near = _near(words, recipient, others)
        status = status_code(block.get("status", ""))
        diagnostic = _after_type(block.get("diagnostic-code", ""))
        said = diagnostic if len(diagnostic) > 12 else f"{diagnostic} {near}"
        failed, content = action != "delayed", said_after_data(near)
        found.append(judged(recipient, said, status, diagnostic=said.strip()[:500], failed=failed, after_data=content))
    return found


def _blocks_in_text(text: str) -> list[Message]:
    """DSN field blocks found in a message's text: for a report whose parts did not parse as parts."""
    if not re.search(r"^(Final|Original)-Recipient\s*:", text, re.I | re.M):
        return []
    blocks = re.split(r"\n\s*\n", text.replace("\r\n", "\n"))
    return [
        email.message_from_string(block.strip() + "\n", policy=email.policy.compat32)
        for block in blocks
        if re.search(r"^(Final|Original)-Recipient\s*:", block.strip(), re.I | re.M)
    ]


def _in_words(message: Message) -> list[Bounce]:
    """A bounce written for people only: each failed address with the lines after it."""
    looks_like = _BOUNCE_SENDER.search(str(message.get("From", ""))) or _BOUNCE_SUBJECT.search(_subject(message))
    if not looks_like and not message.get(_FAILED_HEADERS[0]):
        return []
    words = _own_words(message)
    listed = [a.strip() for h in _FAILED_HEADERS for a in str(message.get(h, "")).split(",") if a.strip()]
    recipients = listed or list(dict.fromkeys(m.group(1) for m in _ADDRESS.finditer(_without_headers(words))))
    ours = {a.lower() for _, a in getaddresses([str(message.get(h, "")) for h in _OWN_HEADERS])}
    recipients = [r for r in recipients if r.lower() not in ours and not _ROLE.match(r)][:20]
    if not words.strip():
        return []
    found: list[Bounce] = []
    for recipient in recipients or [""]:
        said = _near(words, recipient, [r for r in recipients if r != recipient]) if recipient else words
        if not said.strip():
            continue
        found.append(judged(recipient, said, status_code(said), diagnostic=" ".join(said.split())[:500]))
    return found


def _without_headers(words: str) -> str:
    """``words`` without header-like lines ("To: a@b", "From: ..."): a summary of the returned message."""
    return "\n".join(line for line in words.splitlines() if not _HEADER_LINE.match(line))


def _auto_reply(message: Message) -> bool:
    auto = str(message.get("Auto-Submitted", "no")).strip().lower()
    flagged = any(message.get(h) for h in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress"))
    precedence = str(message.get("Precedence", "")).strip().lower()
    return auto != "no" or flagged or precedence == "auto_reply" or bool(_AUTO_SUBJECT.search(_subject(message)))


def _references(message: Message) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The returned message's Message-IDs (and the bounce's In-Reply-To/References), and candidate tokens."""
    text = _returned_text(message)
    ids = [m.group(1) for m in _MESSAGE_ID.finditer(text)]
    for header in ("In-Reply-To", "References"):
        ids += re.findall(r"<[^>\s]{1,250}>", str(message.get(header, "")))
    tokens = [m.group(1).lower() for m in _DELIVERY.finditer(text)]
    for header in _ENVELOPE_HEADERS:
        for _, address in getaddresses([str(v) for v in message.get_all(header, [])]):
            local, _, _ = address.partition("@")
            if "+" in local:
                tokens.append(local.split("+", 1)[1].lower())
    return tuple(dict.fromkeys(ids)), tuple(dict.fromkeys(tokens))


def _returned_text(message: Message) -> str:
    """The text of what came back: a message/rfc822 or text/rfc822-headers part, else the bounce's own text."""
    pieces: list[str] = []
    for part in message.walk():
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/global"):
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                pieces.append(_header_text(inner[0]))
        elif kind in ("text/rfc822-headers", "text/plain"):
            pieces.append(_decoded(part))
    return "\n".join(pieces)


def _returned_headers(message: Message) -> Message | None:
    for part in message.walk():
        if part.get_content_type() in ("message/rfc822", "message/global"):
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return inner[0]
        if part.get_content_type() == "text/rfc822-headers":
            return email.message_from_string(_decoded(part), policy=email.policy.compat32)
    return None


def _own_words(message: Message) -> str:
    """The bounce's own text (its first text/plain part, or its body), up to where the returned message starts."""
    for part in message.walk():
        if part.get_content_type() == "text/plain" and not _inside_returned(message, part):
            text = _decoded(part)
            cut = _RETURNED.search(text)
            return text[: cut.start()] if cut else text
    return ""


def _inside_returned(message: Message, wanted: Message) -> bool:
    """Whether ``wanted`` belongs to a returned message (a message/rfc822 part) rather than to the bounce."""
    for part in message.walk():
        if part.get_content_type() in ("message/rfc822", "message/global"):
            inner = part.get_payload()
            if isinstance(inner, list) and any(wanted is p for m in inner if isinstance(m, Message) for p in m.walk()):
                return True
    return False


def _near(words: str, recipient: str, others: list[str]) -> str:
    """What ``words`` say about ``recipient``: all of them when it is the only one, else each stretch from a
    mention of it up to the next other recipient's (at most a few lines each)."""
    if not others:
        return words
    lowered = words.lower()
    starts = [m.start() for m in re.finditer(re.escape(recipient.lower()), lowered)] if recipient else []
    stretches: list[str] = []
    for at in starts[:5]:
        rest = lowered[at : at + 600]
        ends = [i for o in others if (i := rest.find(o.lower(), len(recipient))) > 0]
        stretches.append(words[at : at + (min(ends) if ends else 600)])
    return " ".join(stretches)


def _part(message: Message, content_type: str) -> Message | None:
    return next((p for p in message.walk() if p.get_content_type() == content_type), None)


def _fields(part: Message) -> dict[str, str]:
    """A message/feedback-report part's fields (lower-cased names), however the parser stored them."""
    payload = part.get_payload()
    blocks = payload if isinstance(payload, list) else [email.message_from_string(str(payload))]
    return {k.lower(): str(v) for block in blocks if isinstance(block, Message) for k, v in block.items()}


def _after_type(value: str) -> str:
    """``rfc822; a@b`` → ``a@b``; ``smtp; 550 ...`` → ``550 ...``."""
    kind, sep, rest = value.partition(";")
    return rest.strip() if sep and " " not in kind.strip() else value.strip()


def _bare(value: str) -> str:
    found = _ADDRESS.search(value)
    return found.group(1) if found else ""


def _subject(message: Message) -> str:
    return str(message.get("Subject", ""))


def _decoded(part: Message) -> str:
    data = part.get_payload(decode=True)
    if isinstance(data, bytes):
        try:
            return data.decode(part.get_content_charset() or "utf-8", "replace")
        except LookupError:  # a charset Python does not know
            return data.decode("utf-8", "replace")
    payload = part.get_payload()
    return payload if isinstance(payload, str) else ""


def _header_text(message: Message) -> str:
    return "".join(f"{name}: {value}\n" for name, value in message.items())
