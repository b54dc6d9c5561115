"""Email providers' webhook events as ``Report``s, and each provider's way of proving a request is its own. Pure.

* SendGrid's Event Webhook: a JSON array of events (``bounce``, ``dropped``, ``spamreport``), signed with
  ECDSA P-256 over the timestamp header followed by the body; the verification key is base64 DER.
* Mailgun: one JSON event (``failed`` with severity permanent or temporary, ``complained``), with an
  HMAC-SHA256 of timestamp and token under the webhook signing key.
* Postmark: one JSON record (``Bounce`` with a Type, ``SpamComplaint``), behind HTTP basic auth.

A provider's own label ("hard", "permanent") is not trusted alone: the status code and the words it
reports are classified as a returned message's would be, so a spam block is never a dead address.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import replace
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from digest.bounces.classify import status_code
from digest.bounces.reports import Bounce, Report, judged

_POSTMARK_HARD = {"HardBounce", "BadEmailAddress", "ManuallyDeactivated"}
_POSTMARK_COMPLAINT = {"SpamComplaint", "SpamNotification"}
_POSTMARK_AUTO = {"AutoResponder", "OutOfOffice"}


def sendgrid_verified(key: str, *, signature: str, timestamp: str, body: bytes) -> bool:
    """Whether SendGrid signed ``timestamp`` + ``body`` (the verification key: base64 DER, or PEM)."""
    try:
        text = key.strip()
        if "BEGIN PUBLIC KEY" in text:
            public = serialization.load_pem_public_key(text.encode())
        else:
            public = serialization.load_der_public_key(base64.b64decode(text, validate=True))
        if not isinstance(public, ec.EllipticCurvePublicKey):
            return False
        public.verify(base64.b64decode(signature, validate=True), timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, binascii.Error, TypeError):
        return False
    return True


def mailgun_verified(key: str, *, timestamp: str, token: str, signature: str) -> bool:
    """Whether Mailgun made ``signature``: hex HMAC-SHA256 of timestamp + token under the signing key."""
    wanted = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(wanted, signature.strip().lower())


def sendgrid_reports(events: Any) -> list[Report]:
    """SendGrid's events, the ones about bounces and complaints (others are not reports: skipped)."""
    found = []
    for event in events if isinstance(events, list) else []:
        if not isinstance(event, dict):
            continue
        kind = _text(event.get("event"))
        address = _text(event.get("email")) or None
        ids = tuple(i for i in (_text(event.get("smtp-id")),) if i)
        if kind == "spamreport":
            found.append(Report("complaint", (Bounce(address, "complaint", None, "spam", "spamreport"),), ids))
        elif kind in ("bounce", "dropped", "deferred"):
            said = " ".join(filter(None, (_text(event.get("status")), _text(event.get("reason")))))
            bounce = judged(address, said or kind, status_code(said), diagnostic=said, failed=kind != "deferred")
            if kind == "bounce" and _text(event.get("type")) == "blocked":
                bounce = replace(bounce, kind="soft")  # SendGrid's "blocked": the server refused the sender
            found.append(Report(bounce.kind, (bounce,), ids))
    return found


def mailgun_reports(payload: Any) -> list[Report]:
    """Mailgun's event, when it is a failure or a complaint."""
    data = payload.get("event-data") if isinstance(payload, dict) else None
    if not isinstance(data, dict):
        return []
    address = _text(data.get("recipient")) or None
    message = data.get("message")
    headers = message.get("headers") if isinstance(message, dict) else None
    ids = tuple(i for i in (_text(headers.get("message-id")) if isinstance(headers, dict) else "",) if i)
    event = _text(data.get("event"))
    if event == "complained":
        return [Report("complaint", (Bounce(address, "complaint", None, "spam", "complained"),), ids)]
    if event != "failed":
        return []
    found = data.get("delivery-status")
    status: dict[str, Any] = found if isinstance(found, dict) else {}
    said = " ".join(
        _text(status.get(k)) for k in ("code", "enhanced-code", "message", "description") if status.get(k)
    ) or _text(data.get("reason"))
    bounce = judged(address, said or "failed", status_code(said), diagnostic=said)
    if _text(data.get("severity")) != "permanent":
        bounce = replace(bounce, kind="soft")
    return [Report(bounce.kind, (bounce,), ids)]


def postmark_reports(record: Any) -> list[Report]:
    """Postmark's record, when it is a bounce, a complaint or an auto-reply."""
    if not isinstance(record, dict):
        return []
    address = _text(record.get("Email")) or None
    kind, record_type = _text(record.get("Type")), _text(record.get("RecordType"))
    if record_type == "SpamComplaint" or kind in _POSTMARK_COMPLAINT:
        return [Report("complaint", (Bounce(address, "complaint", None, "spam", kind or record_type),))]
    if record_type != "Bounce":
        return []
    if kind in _POSTMARK_AUTO:
        return [Report("auto-reply", note="an automatic reply")]
    said = " ".join(filter(None, (_text(record.get("Details")), _text(record.get("Description")))))
    bounce = judged(address, said or kind, status_code(said), diagnostic=said)
    if kind not in _POSTMARK_HARD:
        bounce = replace(bounce, kind="soft")  # Postmark says the address is fine (a soft bounce, a block, …)
    elif bounce.reason == "unknown":  # no words to weigh: Postmark's HardBounce is an address it lost
        bounce = replace(bounce, kind="hard", reason="user-unknown")
    return [Report(bounce.kind, (bounce,))]


def _text(value: Any) -> str:
    return " ".join(str(value).split())[:500] if isinstance(value, (str, int)) else ""
