"""Email providers' webhooks on ``digest serve``: SendGrid, Mailgun and Postmark report bounces and complaints.

Each request is proved the provider's way before anything is read from it, and refused with 403
otherwise: SendGrid's ECDSA signature (``[bounces] sendgrid_key``), Mailgun's HMAC
(``mailgun_key``), Postmark's basic auth (``postmark_username`` and ``postmark_password``). A hook
whose key is not set is not served (404). Its events are applied as a mailbox's bounces are
(``pipeline.apply_reports``): the same matching, policy and record; an event read twice changes
nothing. The answer is 200 with what was read, so the provider does not send it again.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from digest import pipeline
from digest.bounces import Report, providers
from digest.errors import ParseError
from digest.ingest.safejson import loads
from digest.web.site import Site, log

PATHS = {"sendgrid": "/hooks/sendgrid", "mailgun": "/hooks/mailgun", "postmark": "/hooks/postmark"}
SENDGRID_SIGNATURE = "x-twilio-email-event-webhook-signature"
SENDGRID_TIMESTAMP = "x-twilio-email-event-webhook-timestamp"


@dataclass(frozen=True)
class HookCall:
    """A webhook request as its handler sees it: the raw body (signatures cover its bytes) and the headers."""

    body: bytes
    headers: dict[str, str]  # lower-case names


HookHandler = Callable[[Site, HookCall], Response]


def hooked(handler: HookHandler) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint: the body and headers read on the loop, the handler run in the thread pool."""

    async def endpoint(request: Request) -> Response:
        call = HookCall(await request.body(), {k.lower(): v for k, v in request.headers.items()})
        return await run_in_threadpool(handler, request.app.state.site, call)

    endpoint.__name__ = handler.__name__
    return endpoint


def sendgrid(site: Site, call: HookCall) -> Response:
    key = site.settings.bounces.sendgrid_key.get_secret_value()
    if not key:
        return _not_served()
    signature, stamp = call.headers.get(SENDGRID_SIGNATURE, ""), call.headers.get(SENDGRID_TIMESTAMP, "")
    if not providers.sendgrid_verified(key, signature=signature, timestamp=stamp, body=call.body):
        return _refused("sendgrid")
    return _applied(site, "sendgrid", call.body, providers.sendgrid_reports)


def mailgun(site: Site, call: HookCall) -> Response:
    key = site.settings.bounces.mailgun_key.get_secret_value()
    if not key:
        return _not_served()
    payload = _json(call.body)
    signed = payload.get("signature") if isinstance(payload, dict) else None
    if not isinstance(signed, dict) or not all(
        isinstance(signed.get(k), str) for k in ("timestamp", "token", "signature")
    ):
        return _refused("mailgun")
    if not providers.mailgun_verified(
        key, timestamp=signed["timestamp"], token=signed["token"], signature=signed["signature"]
    ):
        return _refused("mailgun")
    return _applied(site, "mailgun", call.body, providers.mailgun_reports)


def postmark(site: Site, call: HookCall) -> Response:
    user, password = site.settings.bounces.postmark_username, site.settings.bounces.postmark_password.get_secret_value()
    if not (user and password):
        return _not_served()
    if not _basic_auth(call.headers.get("authorization", ""), user, password):
        return _refused("postmark", basic=True)
    return _applied(site, "postmark", call.body, providers.postmark_reports)


def _applied(site: Site, source: str, body: bytes, read: Callable[[object], list[Report]]) -> Response:
    """The provider's events applied; 200 with how many were read and what they led to."""
    payload = _json(body)
    if payload is None:
        return PlainTextResponse("the body is not JSON this hook can read", status_code=400)
    store = site.stores.here()
    outcomes = list(
        pipeline.apply_reports(
            store.bounces, store.subscribers, [(source, r) for r in read(payload)], site.settings,
            now=site.clock(), source=source,
        )
    )  # fmt: skip
    for change in (change for outcome in outcomes for change in outcome.changes):
        log.info("%s webhook: %s", source, change)
    return JSONResponse({"read": len(outcomes), "actions": [a for outcome in outcomes for a in outcome.actions]})


def _json(body: bytes) -> object | None:
    try:
        found: object = loads(body.decode("utf-8"), source="webhook body")
        return found
    except (UnicodeDecodeError, ParseError, json.JSONDecodeError, RecursionError):
        return None


def _basic_auth(header: str, user: str, password: str) -> bool:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    name, _, secret = given.partition(":")
    return hmac.compare_digest(name.encode(), user.encode()) & hmac.compare_digest(secret.encode(), password.encode())


def _refused(source: str, *, basic: bool = False) -> Response:
    log.warning("%s webhook: a request without a valid signature was refused", source)
    headers = {"WWW-Authenticate": 'Basic realm="paper-digest"'} if basic else None
    return PlainTextResponse("refused: the signature or credentials do not match", status_code=403, headers=headers)


def _not_served() -> Response:
    return PlainTextResponse("not found", status_code=404)
