"""What a bounce says about the address: dead (hard) or not (soft), and a short reason word.

Hard means the address cannot take mail: the user or the domain does not exist,
the mailbox is disabled, or it has moved. Everything else a bounce can say (a
full mailbox, a spam or policy block, a rate limit, an expired retry, a network
error) is about this message or this sender, and is soft: it may pass.

The verdict reads the DSN status code (RFC 3463) and the words the receiving
server or the reporting MTA used; the words decide where the code is generic
(5.0.0, 5.5.x, none at all), and a plain non-hard wording (full, spam, blocked)
overrides a 5.1.x code that some servers give to everything. Pure.
"""

from __future__ import annotations

import re
from typing import Final, Literal

Verdict = Literal["hard", "soft"]
HARD_REASONS: Final = ("user-unknown", "no-domain", "disabled", "moved")

# Checked in this order; the first that matches names the reason. Non-hard wordings come first:
# "mailbox full" and "blocked as spam" must win over the "550 5.1.1" a server puts on every refusal.
_SOFT_WORDS: Final = (
    (
        "mailbox-full",
        r"mailbox (is )?full|over ?quota|quota exceeded|exceeded (the |its |storage )*quota"
        r"|insufficient (system )?storage|mailbox size limit|not enough (disk )?space|out of storage|is full",
    ),
    ("spam", r"\bspam\b|junk mail|unsolicited|bulk mail|\buce\b"),
    (
        "blocked",
        r"\bblock(ed|list)|black ?list|\bdenylist|\brbl\b|spamhaus|barracuda|spamcop|sorbs"
        r"|\bbanned\b|reputation|(?<!not )listed (at|on|by)\b|client host .* rejected",
    ),
    (
        "rate-limit",
        r"rate limit|too many (messages|connections|recipients|emails)|rate[ -]?limited"
        r"|temporarily deferred|try (again )?later|throttl|receiving mail at a rate|exceeded .* limit",
    ),
    (
        "filtered",
        r"content (was )?rejected|message (was )?(rejected|refused|filtered)|\bfilter(ed)?\b"
        r"|virus|malware|message size|(message|mail) (is )?too (large|big|long)|size limit|recipient preferences",
    ),
    (
        "policy",
        r"\bpolicy\b|\bdmarc\b|\bspf\b|\bdkim\b|not authorized|not permitted|relay(ing)? (access )?denied"
        r"|unauthenticated|authentication required|reverse dns|\bptr\b|\brdns\b|starttls|tls required",
    ),
    (
        "expired",
        r"expired|retry time(out)?|delivery time|could not be delivered (with)?in"
        r"|has been delayed|not yet been delivered|will (retry|continue)|in the queue too long",
    ),
    ("system", r"procmail|maildrop|mailer error|couldn't create|local delivery|disk (full|quota)"),
    (
        "network",
        r"connection (refused|timed out|reset|lost)|timed? ?out|network (is )?unreachable"
        r"|host unreachable|temporary (failure|lookup)|dns (failure|error)|lost connection|servfail",
    ),
)
_HARD_WORDS: Final = (
    (
        "moved",
        r"has moved|user (has )?moved|no longer (with|at|employed|works)|left the (company|organi[sz]ation)"
        r"|changed (his|her|their) (e-?mail )?address",
    ),
    (
        "disabled",
        r"(account|mailbox|address|user)( is| has been)? (disabled|deactivated|suspended|inactive"
        r"|terminated|closed|discontinued|locked|expired)|\b(is|has been) (disabled|deactivated|suspended|inactive"
        r"|frozen)|(disabled|inactive|suspended|deactivated) (account|mailbox|user|recipient)|not (an )?active"
        r"|no longer active|account (has been )?blocked",
    ),
    (
        "no-domain",
        r"no such domain|domain (name )?(not found|does not exist|doesn't exist|unknown)|host unknown"
        r"|unknown (host|domain)|host (or domain )?not found|unrouteable (mail )?(address|domain)|nxdomain"
        r"|no mx|null mx|does not accept mail|domain .* (not|never) (exist|receive)|name or service not known"
        r"|no valid (mx|hosts)|unroutable address|domain is not configured|invalid domain"
        r"|(doesn't|does not) receive (e-?)?mail|no smtp service",
    ),
    (
        "user-unknown",
        r"user ?(unknown|not found|doesn't exist|does not exist|invalid)|unknown (user|recipient"
        r"|address|mailbox|local ?part|account)|no such (user|mailbox|recipient|address|account|person|local)"
        r"|(mailbox|recipient|address|account|user|e-?mail address)( name)? (is )?(not found|unknown|invalid"
        r"|does not exist|doesn't exist|not exist|unavailable|not valid)|does(n't| not) exist"
        r"|invalid (recipient|address|mailbox|user)|recip(ient)?notfound|no mailbox here|not a valid (mailbox|user)"
        r"|address (couldn.t|could not|wasn.t|was not) (be )?found|mailbox not available|not our customer"
        r"|bad destination mailbox"
        r"|no (account|mailbox) (by|with) th(at|is) name|addressee unknown|undeliverable address|not listed in"
        r"|unable to receive mail|user (doesn't|does not) have an? \S+ account|invalid (final delivery )?userid"
        r"|recipient address rejected: access denied|recipient name is not recognized",
    ),
)
# Wordings that name a dead address so plainly that they win over any softer word beside them
# ("DNS lookup failure: host x not found"; "... is disabled. Please try again later").
_DEFINITE: Final = (
    (
        "no-domain",
        r"(doesn't|does not) receive (e-?)?mail|null mx|no smtp service|couldn't find (a mail exchanger"
        r"|any host named)|host \S+ not found|no such domain|domain (name )?not found",
    ),
    ("disabled", r"\b(is|has been) (disabled|deactivated|inactive|frozen)\b|disabled recipient"),
)
_COMPILED: Final = {name: re.compile(pattern, re.IGNORECASE) for name, pattern in (*_SOFT_WORDS, *_HARD_WORDS)}
_NULL_MX: Final = re.compile(r"null mx", re.IGNORECASE)  # RFC 7505: the domain takes no mail, for good
_COMPILED_DEFINITE: Final = {name: re.compile(pattern, re.IGNORECASE) for name, pattern in _DEFINITE}
# RFC 3463 subject.detail codes that name the address itself.
_HARD_CODES: Final = {
    "1.1": "user-unknown",  # bad destination mailbox address
    "1.2": "no-domain",  # bad destination system address
    "1.3": "user-unknown",  # bad destination mailbox address syntax
    "1.6": "moved",  # destination mailbox has moved
    "1.10": "no-domain",  # recipient address has null MX (RFC 7505)
}
_SOFT_CODES: Final = {
    "2.2": "mailbox-full",
    "2.3": "filtered",  # message too long for the mailbox
    "3.4": "filtered",  # message too big for the system
    "4.1": "network",
    "4.2": "network",
    "4.3": "network",
    "4.4": "network",
    "4.6": "network",
    "4.7": "expired",
    "7.1": "policy",
    "7.26": "policy",
    "7.23": "policy",
    "7.25": "policy",
}
# A refusal after the message was sent (to DATA) is of its content, whatever words it uses.
# Sendmail's transcript shows it as ">>> DATA" before the reply. KDDI's au (ezweb.ne.jp) answers a message its
# receiving filter refused with exactly "550 : User unknown", the local part left out.
_CONTENT: Final = re.compile(
    r"(after|in reply to) (the )?(end of )?data\b|smtp command:? data\b|\b550:? : user unknown", re.IGNORECASE
)
# Sendmail shows pipelined commands together (">>> RCPT To:<a> >>> DATA <<< 550 ..."): the reply is then RCPT's.
_NEED_RCPT: Final = re.compile(r"<<< ?503|need rcpt|no valid recipients", re.IGNORECASE)  # DATA refused: RCPT was
_TRANSCRIPT_DATA: Final = re.compile(r"(>>> ?rcpt to:?\s*\S*\s*)?>>> ?data\s*<<< ?5", re.IGNORECASE)
_SENDER: Final = re.compile(
    r"after mail from|sender address rejected|sender (domain|address) (is )?(invalid"
    r"|unknown|not)|bad sender|sender verify failed",
    re.IGNORECASE,
)
_ADDRESSES: Final = re.compile(r"[^\s<>\[\]()\"',;:]+@[A-Za-z0-9.-]+")
_LINKS: Final = re.compile(r"https?://\S+", re.IGNORECASE)
STATUS: Final = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
REPLY: Final = re.compile(r"\b([245])\d\d\b")


def _last_status(text: str) -> str | None:
    found = STATUS.findall(text)
    return ".".join(found[-1]) if found else None


def status_code(text: str) -> str | None:
    """The first RFC 3463 status code in ``text`` (``5.1.1``), or None."""
    found = STATUS.search(text)
    return ".".join(found.groups()) if found else None


def classify(
    status: str | None, diagnostic: str, *, failed: bool = True, after_data: bool = False
) -> tuple[Verdict, str]:
    """(kind, reason) for one recipient: kind ``hard`` or ``soft``; reason a short word.

    ``status`` is the DSN's Status field (or None); ``diagnostic`` its Diagnostic-Code
    with whatever the MTA said in words. ``failed`` is False for a DSN whose action
    is ``delayed``: the message is still queued, which is never hard. ``after_data`` is True
    when the report says elsewhere that the refusal came after the message was sent (DATA).
    """
    # An address may read "spam@" or "full@", a link "?reason=blocked": neither is what the server said.
    words = _LINKS.sub("<link>", _ADDRESSES.sub("<address>", " ".join(diagnostic.split())))
    # The remote server's own code (the last in what it said) is more precise than the reporting MTA's Status.
    own = _last_status(words)
    status = own or status
    if not failed:
        return "soft", "delayed"
    if _about_sender(status, words):
        return "soft", "policy"
    definite = next((name for name, pattern in _COMPILED_DEFINITE.items() if pattern.search(words)), None)
    if definite is not None and (_permanent(status, words) or _NULL_MX.search(words)):
        return "hard", definite
    soft = _first(_SOFT_WORDS, words)
    hard = _first(_HARD_WORDS, words)
    if hard == "user-unknown" and (after_data or said_after_data(words)):
        return "soft", soft or "filtered"  # "user unknown" to the message itself: a filter's wording
    klass, _, detail = (status or "").partition(".")
    if own is not None and detail.startswith("7."):  # the server itself says: not authorised, a policy (X.7.X)
        return "soft", soft or "policy"
    if soft is None and _permanent(status, words):
        by_code = _HARD_CODES.get(detail) if klass == "5" else None
        if hard is not None or by_code is not None:
            return "hard", hard or by_code or "user-unknown"
    if soft is not None:
        return "soft", soft
    return "soft", _SOFT_CODES.get(detail) or hard or "unknown"


def said_after_data(words: str) -> bool:
    """Whether ``words`` say the refusal came after the message was sent (to DATA): then it is of its content."""
    words = " ".join(words.split())
    transcript = _TRANSCRIPT_DATA.search(words)
    pipelined = transcript is not None and (transcript.group(1) is not None or _NEED_RCPT.search(words) is not None)
    return bool(_CONTENT.search(words)) or (transcript is not None and not pipelined)


def _about_sender(status: str | None, words: str) -> bool:
    """Whether the refusal is of the sender (MAIL FROM), not of the recipient's address."""
    return (status or "").endswith((".1.7", ".1.8")) or bool(_SENDER.search(words))


def _permanent(status: str | None, words: str) -> bool:
    """Whether the failure is permanent: a 5.x.x status, else a 5xx reply, else no 4xx said at all."""
    if status is not None:
        return status.startswith("5")
    reply = REPLY.search(words)
    return reply is None or reply.group(1) == "5"


def _first(table: tuple[tuple[str, str], ...], words: str) -> str | None:
    for name, _ in table:
        if _COMPILED[name].search(words):
            return name
    return None
