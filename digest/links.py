"""Signed links into ``digest serve``: what each link may do, for whom, checked without a lookup table.

A token is ``BODY.MAC``: BODY is base64url of the purpose (one letter), the
subscriber's random link key (never their name or address) and what the link
is for (a paper and a direction, a sign-up, an expiry); MAC is HMAC-SHA256
with ``DIGEST_DELIVERY__SECRET`` over the purpose, the subscriber's name, the
key and that data. A token signed for one purpose or subscriber is worthless
for another; changing the secret invalidates every link already sent.

``PATHS`` is the one place a page's path is spelled: the web app names its
routes after it, and every signed URL in a message is built from it.

Pure: the secret and the base URL come in with the settings.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass, field

from digest.config import DeliverySettings

UNSUBSCRIBE = "u"
FEEDBACK = "f"
PREFERENCES = "p"
FEED = "a"
SIGNUP = "s"
CSRF = "c"  # a form's anti-CSRF token (a purpose inside a token; no page has a path for it)
RESUBSCRIBE = "r"  # undo the reader's own unsubscribe; its data is the time it expires
EMAIL_AGAIN = "e"  # mail a suspended (bounced) address again: signs a request's id, mailed to that address
ONBOARD = "o"  # a few archive papers to rate, teaching a new reader's ranking
PURPOSES = (UNSUBSCRIBE, FEEDBACK, PREFERENCES, FEED, SIGNUP, CSRF, RESUBSCRIBE, EMAIL_AGAIN, ONBOARD)
REQUESTS = (SIGNUP, EMAIL_AGAIN)  # tokens that sign a request's id, not a subscriber's key
# Each page a signed link opens: its route's name and path (the token is the last segment).
PATHS = {
    "unsubscribe": "/u/{token}",
    "resubscribe": "/r/{token}",
    "feedback": "/f/{token}",
    "preferences": "/p/{token}",
    "feed": "/feeds/{token}.atom",
    "confirm": "/c/{token}",  # a sign-up's confirmation
    "email_again": "/e/{token}",  # a bounced address confirming it takes mail again
    "onboard": "/o/{token}",  # papers to rate
}
RESUBSCRIBE_DAYS = 30
KEY_BYTES = 12
MAC_BYTES = 16


@dataclass(frozen=True, slots=True)
class Claim:
    """What a token says, before it is checked against the subscriber it names."""

    purpose: str
    key: str  # the subscriber's link key (hex), or "" for a sign-up
    data: str


def sign(secret: str, purpose: str, *, name: str, key: str, data: str = "") -> str:
    """A token for ``purpose``, for the subscriber ``name`` whose link key is ``key``."""
    body = purpose.encode() + binascii.unhexlify(key) + data.encode()
    return f"{_b64(body)}.{_b64(_mac(secret, purpose, name, key, data))}"


def read(token: str) -> Claim | None:
    """What a token claims (not yet checked), or None when it is not even shaped like one."""
    body_text, _, _ = token.partition(".")
    try:
        body = _unb64(body_text)
    except (binascii.Error, ValueError):
        return None
    if len(body) < 1 + KEY_BYTES or chr(body[0]) not in PURPOSES:
        return None
    key = body[1 : 1 + KEY_BYTES].hex() if chr(body[0]) not in REQUESTS else ""
    rest = body[1 + KEY_BYTES :] if key else body[1:]
    try:
        return Claim(chr(body[0]), key, rest.decode())
    except UnicodeDecodeError:
        return None


def check(secret: str, token: str, claim: Claim, *, name: str) -> bool:
    """Whether the token's MAC is right for this claim and subscriber (in constant time)."""
    _, _, mac_text = token.partition(".")
    try:
        mac = _unb64(mac_text)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(mac, _mac(secret, claim.purpose, name, claim.key, claim.data))


def sign_signup(secret: str, signup_id: str, *, purpose: str = SIGNUP) -> str:
    """A request's token (a sign-up's confirmation, a bounced address's way back): it signs the request's id."""
    body = purpose.encode() + signup_id.encode()
    return f"{_b64(body)}.{_b64(_mac(secret, purpose, '', '', signup_id))}"


def read_signup(secret: str, token: str, *, purpose: str = SIGNUP) -> str | None:
    """The request id of a good token for ``purpose``."""
    claim = read(token) if token.count(".") == 1 else None
    if claim is None or claim.purpose != purpose:
        return None
    return claim.data if check(secret, token, claim, name="") else None


BOUNCE = "bounce"  # a delivery's token in its envelope sender (VERP) and X-Digest-Delivery: no page opens it
BOUNCE_MAC_CHARS = 10  # hex: 40 bits, enough that a forged bounce cannot name a delivery by guessing


def bounce_token(secret: str, delivery: int) -> str:
    """A delivery's short signed name, ``ID.MAC`` in lower-case letters and digits (a VERP local part survives
    servers that fold case): bounces come back to ``bounces+TOKEN@…`` and carry it in X-Digest-Delivery."""
    ident = _base36(delivery)
    return f"{ident}.{_mac(secret, BOUNCE, '', '', ident).hex()[:BOUNCE_MAC_CHARS]}"


def bounce_delivery(secret: str, token: str) -> int | None:
    """The delivery a good bounce token names; None for any other text."""
    ident, _, mac = token.strip().lower().partition(".")
    if not secret or not ident.isalnum() or not ident.isascii() or len(ident) > 13 or len(mac) != BOUNCE_MAC_CHARS:
        return None
    wanted = _mac(secret, BOUNCE, "", "", ident).hex()[:BOUNCE_MAC_CHARS]
    return int(ident, 36) if hmac.compare_digest(mac, wanted) else None


def verp(bounce_address: str, token: str) -> str:
    """``bounces@example.org`` and a token → ``bounces+TOKEN@example.org``."""
    local, _, domain = bounce_address.rpartition("@")
    return f"{local}+{token}@{domain}"


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, rest = divmod(number, 36)
        text = digits[rest] + text
        if number == 0:
            return text


@dataclass(frozen=True, slots=True)
class Links:
    """The signed URLs of one subscriber's messages (None each when no base URL and secret are set)."""

    base: str
    secret: str = field(repr=False)  # never in a log line or a traceback's locals
    name: str
    key: str

    def token(self, purpose: str, data: str = "") -> str:
        return sign(self.secret, purpose, name=self.name, key=self.key, data=data)

    def url(self, page: str, purpose: str, data: str = "") -> str:
        return url_of(self.base, page, self.token(purpose, data))

    @property
    def unsubscribe(self) -> str:
        return self.url("unsubscribe", UNSUBSCRIBE)

    @property
    def preferences(self) -> str:
        return self.url("preferences", PREFERENCES)

    @property
    def feed(self) -> str:
        return self.url("feed", FEED)

    @property
    def onboard(self) -> str:
        return self.url("onboard", ONBOARD)

    def resubscribe(self, *, until: int) -> str:
        """The way back after the reader's own unsubscribe, valid until ``until`` (a Unix time)."""
        return self.url("resubscribe", RESUBSCRIBE, str(until))

    def feedback(self, paper: str, vote: int, edition: str) -> str:
        return self.url("feedback", FEEDBACK, f"{'+' if vote > 0 else '-'}{edition}|{paper}")


def url_of(base: str, page: str, token: str) -> str:
    """The address of a page (``PATHS``) for a token, under the server's public ``base``."""
    return base + PATHS[page].format(token=token)


def links_for(name: str, key: str, settings: DeliverySettings) -> Links | None:
    """A subscriber's signed links, when ``[delivery] base_url`` and the secret are set."""
    secret = settings.secret.get_secret_value()
    base = settings.base_url.rstrip("/")
    if not base or not secret or not key:
        return None
    return Links(base, secret, name, key)


def feed_url(name: str, key: str, settings: DeliverySettings) -> str | None:
    """A subscriber's signed feed address (``digest serve`` serves it), when links can be signed."""
    signed = links_for(name, key, settings)
    return signed.feed if signed else None


def no_one_click(settings: DeliverySettings) -> str | None:
    """Why emails would carry no one-click unsubscribe link (no base URL, or no secret), for the operator; or None."""
    missing = [
        what
        for what, value in (
            ("[delivery] base_url", settings.base_url),
            ("DIGEST_DELIVERY__SECRET", settings.secret.get_secret_value()),
        )
        if not value
    ]
    if not missing:
        return None
    return (
        f"readers' emails carry no one-click unsubscribe ({' and '.join(missing)} not set); set both and run "
        "digest serve: Gmail and Yahoo require one-click unsubscribe for bulk mail"
    )


def parse_feedback(data: str) -> tuple[int, str, str] | None:
    """A feedback link's (vote, edition, paper id)."""
    if len(data) < 3 or data[0] not in "+-" or "|" not in data:
        return None
    edition, _, paper = data[1:].partition("|")
    return (1 if data[0] == "+" else -1), edition, paper


def _mac(secret: str, purpose: str, name: str, key: str, data: str) -> bytes:
    message = "\x1f".join(("paper-digest/1", purpose, name, key, data)).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()[:MAC_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    """The bytes of unpadded base64url, only in its one canonical spelling: a changed last character that
    decodes alike, padding, or any other character is refused (``ValueError``), so any altered token fails."""
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("not canonical base64url")
    return data
