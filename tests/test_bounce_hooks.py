"""Provider webhooks (SendGrid, Mailgun, Postmark) through the real app under uvicorn, signed as each provider
signs; and the reader's way back from a suspension, by a link mailed to the address that bounced."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr

from digest import links, pipeline
from digest.config import BouncesSettings
from digest.store import Store

from .deliverykit import World, make_world
from .servers import smtp_server
from .webkit import client, local, web_server

BASE = "https://digest.example.org"
SECRET = "s3cret-for-hmac-0123456789"
MAILGUN_KEY = "key-mailgun-signing-0123"
POSTMARK = ("postmark-hook", "pm-password-0123")


def _world(root: Path, port: int, sendgrid_public: str = "") -> World:
    world = make_world(root, people=4, smtp_port=port, base_url=BASE, secret=SECRET)
    hooks = BouncesSettings(
        sendgrid_key=SecretStr(sendgrid_public), mailgun_key=SecretStr(MAILGUN_KEY),
        postmark_username=POSTMARK[0], postmark_password=SecretStr(POSTMARK[1]),
    )  # fmt: skip
    world.settings = world.settings.model_copy(update={"bounces": hooks})
    return world


def _sendgrid_keys() -> tuple[ec.EllipticCurvePrivateKey, str]:
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, base64.b64encode(der).decode()


def _suspended(world: World) -> set[str]:
    with Store.open(world.settings.database.path) as store:
        return store.bounces.suspended()


def _message_id(world: World, address: str) -> str:
    with Store.open(world.settings.database.path) as store:
        return next(d.message_id for d in store.ledger.deliveries() if d.target == address)


def test_each_provider_is_heard_only_with_its_signature(tmp_path: Path) -> None:
    private, public = _sendgrid_keys()
    with smtp_server() as smtp:
        world = _world(tmp_path, smtp.port, public)
        world.send()
        events = json.dumps([
            {"event": "bounce", "email": "user000@example.org", "type": "bounce", "status": "5.1.1",
             "reason": "550 5.1.1 The email account that you tried to reach does not exist",
             "smtp-id": _message_id(world, "user000@example.org")},
            {"event": "bounce", "email": "user003@example.org", "type": "blocked", "status": "5.7.1",
             "reason": "550 5.7.1 blocked using zen.spamhaus.org"},
            {"event": "open", "email": "user003@example.org"},
        ]).encode()  # fmt: skip
        stamp = str(int(time.time()))
        signature = base64.b64encode(private.sign(stamp.encode() + events, ec.ECDSA(hashes.SHA256()))).decode()
        mailgun_token = "a" * 50
        mailgun = {
            "signature": {"timestamp": stamp, "token": mailgun_token, "signature": hmac.new(
                MAILGUN_KEY.encode(), (stamp + mailgun_token).encode(), hashlib.sha256).hexdigest()},
            "event-data": {"event": "failed", "severity": "permanent", "recipient": "user001@example.org",
                           "delivery-status": {"code": 550, "message": "5.1.1 user unknown"},
                           "message": {"headers": {"message-id": _message_id(world, "user001@example.org")[1:-1]}}},
        }  # fmt: skip
        postmark = {"RecordType": "SpamComplaint", "Type": "SpamComplaint", "Email": "user002@example.org"}
        with web_server(world.settings, clock=world.clock) as base, client(base) as http:
            headers = {
                "X-Twilio-Email-Event-Webhook-Signature": signature,
                "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
            }
            forged = http.post("/hooks/sendgrid", content=events.replace(b"user000", b"user009"), headers=headers)
            assert forged.status_code == 403 and _suspended(world) == set()
            heard = http.post("/hooks/sendgrid", content=events, headers=headers)
            assert heard.status_code == 200 and heard.json()["read"] == 2  # the open is not a report
            assert _suspended(world) == {"user000@example.org"}  # the block (a soft bounce) suspends no one
            wrong = json.loads(json.dumps(mailgun))
            wrong["signature"]["signature"] = "0" * 64
            assert http.post("/hooks/mailgun", json=wrong).status_code == 403
            assert http.post("/hooks/mailgun", json=mailgun).status_code == 200
            assert _suspended(world) == {"user000@example.org", "user001@example.org"}
            assert http.post("/hooks/postmark", json=postmark, auth=("postmark-hook", "guess")).status_code == 403
            assert http.post("/hooks/postmark", json=postmark).status_code == 403
            assert http.post("/hooks/postmark", json=postmark, auth=POSTMARK).status_code == 200
            again = http.post("/hooks/postmark", json=postmark, auth=POSTMARK)  # a provider's retry changes nothing
            assert again.status_code == 200 and again.json()["actions"] == ["read before"]
            assert http.post("/hooks/postmark", content=b"{not json", auth=POSTMARK).status_code == 400
            health = http.get("/healthz").json()
            assert health["email_sent_30d"] == 4 and health["complaint_rate_30d"] == 0.25  # 1 of 4
            assert health["bounce_rate_30d"] == 0.75  # user000, user001 (hard) and user003 (soft) of 4
        with Store.open(world.settings.database.path) as store:
            complainer = store.subscribers.get("user002")
            assert complainer is not None and complainer.unsubscribed_by == "complaint"
            records = store.bounces.newest()
        assert sorted((r.source, r.kind, r.address) for r in records) == [
            ("mailgun", "hard", "user001@example.org"),
            ("postmark", "complaint", "user002@example.org"),
            ("sendgrid", "hard", "user000@example.org"),
            ("sendgrid", "soft", "user003@example.org"),
        ]


def test_a_hook_without_its_key_is_not_served(tmp_path: Path) -> None:
    world = make_world(tmp_path, people=1, base_url=BASE, secret=SECRET)
    with web_server(world.settings, clock=world.clock) as base, client(base) as http:
        for path in ("/hooks/sendgrid", "/hooks/mailgun", "/hooks/postmark"):
            assert http.post(path, content=b"[]").status_code == 404
        assert http.get("/hooks/sendgrid").status_code == 405


def test_a_suspended_reader_starts_email_again_from_a_mailed_link(tmp_path: Path) -> None:
    with smtp_server() as smtp:
        smtp.box.rcpt_replies["user001@example.org"].append("550 5.1.1 <user001@example.org>: User unknown")
        world = _world(tmp_path, smtp.port)
        world.send()
        assert _suspended(world) == {"user001@example.org"}
        with Store.open(world.settings.database.path) as store:
            reader = store.subscribers.get("user001")
            assert reader is not None
            key = reader.link_key
        preferences = f"{BASE}/p/" + links.sign(SECRET, links.PREFERENCES, name="user001", key=key)
        with web_server(world.settings, clock=world.clock) as base, client(base) as http:
            page = http.get(local(preferences, base))
            assert page.status_code == 200 and "We stopped emailing" in page.text and "user001@example.org" in page.text
            form = re.search(r'name="form" value="([^"]+)"', page.text)
            assert form is not None
            asked = http.post(local(preferences, base), data={"form": form.group(1), "action": "email-again"})
            assert asked.status_code == 200 and "We are sending a link to user001@example.org" in asked.text
            smtp.box.messages.clear()
            with Store.open(world.settings.database.path) as store:
                pipeline.signups.mail_signups(store, world.settings, now=world.clock.now)  # the sender's pass
            (mail,) = smtp.box.messages
            assert mail["To"] == "user001@example.org" and mail["Subject"] == "Start your paper-digest emails again"
            body = mail.get_body(preferencelist=("plain",))
            assert body is not None
            (link,) = re.findall(rf"{BASE}/e/[A-Za-z0-9_.-]+", body.get_content())
            shown = http.get(local(link, base))  # a mail scanner's GET changes nothing
            assert shown.status_code == 200 and "Yes, email me again" in shown.text
            assert _suspended(world) == {"user001@example.org"}
            done = http.post(local(link, base))
            assert done.status_code == 200 and "Your emails are back on" in done.text
            assert http.post(local(link, base)).status_code == 404  # used once
        assert _suspended(world) == set()
        smtp.box.messages.clear()
        world.clock.advance(24 * 3600)
        world.send()
        assert "user001@example.org" in {m["To"] for m in smtp.box.messages}
