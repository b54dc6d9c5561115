"""Bounces and complaints: what each kind of returned message says, where they are read from, and what the
next day's send does about them."""

from __future__ import annotations

import io
import json
import mailbox
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
import time_machine
from hypothesis import given, settings
from hypothesis import strategies as st

from digest import bounces, events, links, passes, pipeline
from digest.bounces import Bounce, Report
from digest.config import BouncesSettings
from digest.mailboxes import open_mailbox
from digest.store import Store

from .deliverykit import World, digest_process, make_world, profile_text
from .servers import Hooks, Reply, http_server, smtp_server

CORPUS = Path(__file__).parent / "data" / "bounces"
SECRET = "s3cret-for-hmac-0123456789"

# Written from RFC 3464 and RFC 5965, RFC 3834, and the formats Postfix, Exim, qmail, Gmail and Exchange
# document or are widely seen to send; each with the verdict it must give: kind, reason, status, recipients.
VERDICTS = {
    "dsn-postfix-user-unknown.eml": ("hard", "user-unknown", "5.1.1", ["ada@example.com"]),
    "dsn-postfix-mailbox-full.eml": ("soft", "mailbox-full", "5.2.2", ["ben@example.com"]),
    "dsn-postfix-delayed.eml": ("soft", "delayed", "4.4.1", ["cy@example.com"]),
    "dsn-postfix-no-domain.eml": ("hard", "no-domain", "5.4.4", ["dee@nowhere.invalid"]),
    "dsn-postfix-spamhaus.eml": ("soft", "blocked", "5.7.1", ["eve@example.com"]),
    "dsn-postfix-content-after-data.eml": ("soft", "spam", "5.7.1", ["fay@example.com"]),
    "dsn-gmail-no-such-user.eml": ("hard", "user-unknown", "5.1.1", ["gus@gmail.com"]),
    "dsn-gmail-disabled.eml": ("hard", "disabled", "5.2.1", ["hal@gmail.com"]),
    "dsn-gmail-rate-limited.eml": ("soft", "spam", "5.7.28", ["ivy@gmail.com"]),
    "dsn-gmail-dmarc.eml": ("soft", "policy", "5.7.26", ["jay@gmail.com"]),
    "dsn-exchange-recipient-not-found.eml": ("hard", "user-unknown", "5.1.10", ["kim@contoso.example"]),
    "dsn-exchange-quota.eml": ("soft", "mailbox-full", "5.2.2", ["lee@contoso.example"]),
    "dsn-null-mx.eml": ("hard", "no-domain", "5.1.10", ["mo@nomail.example"]),
    "dsn-moved.eml": ("hard", "moved", "5.1.6", ["ned@example.com"]),
    "dsn-expired.eml": ("soft", "expired", "4.4.7", ["ola@example.com"]),
    "dsn-generic-code-full-words.eml": ("soft", "mailbox-full", "5.0.0", ["cal@example.com"]),
    "dsn-delivered.eml": ("unknown", None, None, []),
    "exim-user-unknown.eml": ("hard", "user-unknown", "5.1.1", ["quin@example.com"]),
    "exim-retry-timeout.eml": ("soft", "expired", None, ["ray@slow.example"]),
    "exim-blocked.eml": ("soft", "blocked", "5.7.1", ["sam@example.com"]),
    "qmail-no-mailbox.eml": ("hard", "user-unknown", "5.1.1", ["tom@example.net"]),
    "qmail-no-host.eml": ("hard", "no-domain", "5.1.2", ["uma@nohost.invalid"]),
    "exchange-legacy-text.eml": ("hard", "user-unknown", "5.1.1", ["val@corp.example"]),
    "arf-abuse.eml": ("complaint", "spam", None, ["wes@isp.example"]),
    "arf-auth-failure.eml": ("unknown", None, None, []),
    "jmrp-complaint.eml": ("complaint", "spam", None, ["yan@outlook.example"]),
    "auto-reply-rfc3834.eml": ("auto-reply", None, None, []),
    "auto-reply-vacation.eml": ("auto-reply", None, None, []),
    "human-reply.eml": ("unknown", None, None, []),
    "garbage.eml": ("unknown", None, None, []),
}


def test_the_corpus_is_the_table() -> None:
    assert sorted(p.name for p in CORPUS.glob("*.eml")) == sorted(VERDICTS)


@pytest.mark.parametrize("name", sorted(VERDICTS))
def test_each_message_gets_its_verdict(name: str) -> None:
    report = bounces.read((CORPUS / name).read_bytes())
    assert (report.kind, report.reason, report.status, report.recipients) == VERDICTS[name]


def test_the_delivery_is_named_by_the_returned_headers_and_the_verp_address() -> None:
    report = bounces.read((CORPUS / "dsn-postfix-user-unknown.eml").read_bytes())
    assert report.message_ids == ("<2026-11-23.5f1e2d3c4b.ada@digest.example.org>",)
    assert report.tokens == ("1k.0f3a9c2b7d",)  # X-Digest-Delivery and bounces+TOKEN@ agree: one token
    plain = bounces.read((CORPUS / "exim-user-unknown.eml").read_bytes())
    assert "<2026-11-23.5f1e2d3c4b.ada@digest.example.org>" in plain.message_ids


def test_a_bounce_token_names_its_delivery_only_under_its_secret() -> None:
    token = links.bounce_token(SECRET, 123_456)
    assert token == token.lower() and token.count(".") == 1 and len(token) < 20
    assert links.bounce_delivery(SECRET, token) == 123_456
    assert links.bounce_delivery(SECRET, token.upper()) == 123_456  # a server that folds case changes nothing
    ident, mac = token.split(".")
    assert links.bounce_delivery("another secret", token) is None
    assert links.bounce_delivery(SECRET, f"{links.bounce_token(SECRET, 7).split('.')[0]}.{mac}") is None
    tampered = mac[:-1] + ("0" if mac[-1] != "0" else "1")
    assert links.bounce_delivery(SECRET, f"{ident}.{tampered}") is None
    assert links.bounce_delivery(SECRET, "") is None and links.bounce_delivery("", token) is None
    assert links.verp("bounces@example.org", token) == f"bounces+{token}@example.org"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4000))
def test_no_bytes_make_the_reader_fail(raw: bytes) -> None:
    report = bounces.read(raw)
    assert report.kind in bounces.KINDS


def test_a_hostile_report_is_read_in_bounded_time_and_size() -> None:
    deep = (
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n"
        + b"--x\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n" * 5000
    )
    huge = (CORPUS / "dsn-postfix-user-unknown.eml").read_bytes() + b"A" * (8 << 20)
    assert bounces.read(deep).kind == "unknown"
    assert bounces.read(huge).kind == "hard"  # read up to MAX_PARSED: the report's parts come first


def _maildir(root: Path, names: list[str]) -> Path:
    box = root / "bounces"
    for sub in ("tmp", "new", "cur"):
        (box / sub).mkdir(parents=True, exist_ok=True)
    for n, name in enumerate(names):
        (box / "new" / f"1700000000.{n}.host").write_bytes((CORPUS / name).read_bytes())
    return box


def test_a_maildir_is_read_and_each_message_filed_once(tmp_path: Path) -> None:
    box = _maildir(tmp_path, ["dsn-moved.eml", "human-reply.eml", "arf-abuse.eml"])
    seen = []
    with open_mailbox(str(box), BouncesSettings()) as source:
        for name, raw in source.messages():
            report = bounces.read(raw)
            seen.append((name, report.kind))
            source.file(name, recognised=report.kind != "unknown")
    assert [kind for _, kind in seen] == ["hard", "unknown", "complaint"]
    assert not list((box / "new").iterdir())
    assert sorted(p.name for p in (box / ".Processed" / "cur").iterdir()) == ["1700000000.0.host", "1700000000.2.host"]
    assert [p.name for p in (box / ".Unknown" / "cur").iterdir()] == ["1700000000.1.host"]
    with open_mailbox(str(box), BouncesSettings()) as again:
        assert list(again.messages()) == []


def test_an_mbox_is_read_and_what_was_read_moves_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "bounces.mbox"
    box = mailbox.mbox(path)
    for name in ("qmail-no-mailbox.eml", "garbage.eml", "auto-reply-vacation.eml"):
        box.add((CORPUS / name).read_bytes())
    box.flush()
    box.close()
    kinds = []
    with open_mailbox(str(path), BouncesSettings()) as source:
        for key, raw in source.messages():
            kinds.append(bounces.read(raw).kind)
            source.file(key, recognised=kinds[-1] != "unknown")
    assert kinds == ["hard", "unknown", "auto-reply"]
    assert [_messages(tmp_path / f"bounces.mbox{end}") for end in ("", ".processed", ".unknown")] == [0, 2, 1]


def _messages(path: Path) -> int:
    box = mailbox.mbox(path, create=False)
    try:
        return len(box)
    finally:
        box.close()


def test_a_source_that_is_not_a_mailbox_is_one_line(tmp_path: Path, cli) -> None:
    (tmp_path / "folder").mkdir()
    done = cli("bounces", tmp_path / "folder")
    assert done.code == 1 and "not a Maildir" in done.err and "Traceback" not in done.err
    done = cli("bounces", tmp_path / "missing")
    assert done.code == 1 and "no such Maildir or mbox file" in done.err
    done = cli("bounces")
    assert done.code == 2 and "[bounces] source" in done.err


# End to end: digests through aiosmtpd, their bounces into a Maildir, `digest bounces`, the next day's send.

BOUNCE_ADDRESS = "bounces@digest.example.org"


def _world(root: Path, port: int, *, people: int, allow_private_webhooks: bool = False) -> World:
    world = make_world(
        root, people=people, smtp_port=port, base_url="https://digest.example.org", secret=SECRET,
        allow_private_webhooks=allow_private_webhooks,
    )  # fmt: skip
    smtp = world.settings.smtp.model_copy(update={"bounce_address": BOUNCE_ADDRESS})
    world.settings = world.settings.model_copy(update={"smtp": smtp})
    return world


def _returned(mail: EmailMessage, sender: str, *, status: str, said: str, complaint: bool = False) -> bytes:
    """A bounce (RFC 3464) or a complaint (RFC 5965) of one received digest, addressed as a real one would be:
    the bounce to the digest's envelope sender (its VERP address), the complaint to a feedback address."""
    headers = "".join(f"{k}: {v}\r\n" for k, v in mail.items() if k.lower() != "date")
    to = sender if not complaint else "fbl@digest.example.org"
    kind, part = (
        ("feedback-report",
         f"Feedback-Type: abuse\r\nUser-Agent: test/1\r\nVersion: 1\r\nOriginal-Rcpt-To: <{mail['To']}>\r\n")
        if complaint
        else ("delivery-status", f"Reporting-MTA: dns; mx.test\r\n\r\nFinal-Recipient: rfc822; {mail['To']}\r\n"
              f"Action: failed\r\nStatus: {status}\r\nDiagnostic-Code: smtp; {said}\r\n")
    )  # fmt: skip
    return (
        f"From: MAILER-DAEMON@mx.test\r\nTo: {to}\r\nSubject: Undelivered Mail\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type={kind}; boundary="b"\r\n\r\n'
        f"--b\r\nContent-Type: text/plain\r\n\r\nIt could not be delivered.\r\n"
        f"--b\r\nContent-Type: message/{kind}\r\n\r\n{part}\r\n"
        f"--b\r\nContent-Type: text/rfc822-headers\r\n\r\n{headers}\r\n--b--\r\n"
    ).encode()


def test_three_hard_two_soft_one_complaint_then_the_next_send(tmp_path: Path, cli) -> None:
    with smtp_server() as smtp:
        world = _world(tmp_path, smtp.port, people=20)
        world.send()
        assert len(smtp.box.messages) == 20
        sent = {m["To"]: (m, sender) for m, sender in zip(smtp.box.messages, smtp.box.senders, strict=True)}
        for mail, sender in sent.values():  # each envelope sender names its delivery, signed
            token = sender.removeprefix("bounces+").removesuffix("@digest.example.org")
            assert sender.startswith("bounces+") and links.bounce_delivery(SECRET, token) is not None
            assert mail["X-Digest-Delivery"] == token and mail["Feedback-ID"] == "2026-11-23:digest:localhost"
        box = tmp_path / "Maildir"
        for sub in ("tmp", "new", "cur"):
            (box / sub).mkdir(parents=True)
        plan = {
            "user001@example.org": ("5.1.1", "550 5.1.1 <user001@example.org>: User unknown", False),
            "user002@example.org": ("5.1.1", "550-5.1.1 The email account you tried to reach does not exist", False),
            "user003@example.org": ("5.2.1", "550 5.2.1 The email account that you tried to reach is disabled", False),
            "user004@example.org": ("5.2.2", "552 5.2.2 Mailbox full", False),
            "user005@example.org": ("4.4.7", "451 4.4.7 delivery time expired", False),
            "user006@example.org": ("", "", True),
        }  # fmt: skip
        for n, (address, (status, said, complaint)) in enumerate(plan.items()):
            mail, sender = sent[address]
            raw = _returned(mail, sender, status=status, said=said, complaint=complaint)
            (box / "new" / f"17000000{n:02d}.M1.host").write_bytes(raw)
        world.write_config(f'[bounces]\nsource = "{box}"\n')
        done = cli("bounces", "--json")
        assert done.code == 0, done.err
        lines = [json.loads(line) for line in done.out.splitlines()]
        assert [(line["kind"], line["recipients"]) for line in lines] == [
            ("hard", ["user001@example.org"]), ("hard", ["user002@example.org"]),
            ("hard", ["user003@example.org"]), ("soft", ["user004@example.org"]),
            ("soft", ["user005@example.org"]), ("complaint", ["user006@example.org"]),
        ]  # fmt: skip
        assert all(line["matched"] is not None for line in lines)
        assert not list((box / "new").iterdir())  # each filed away: a second read finds none
        smtp.box.messages.clear()
        world.clock.advance(24 * 3600)
        report = world.send()
        mailed = sorted(m["To"] for m in smtp.box.messages)
    skipped = {"user001@example.org", "user002@example.org", "user003@example.org", "user006@example.org"}
    assert mailed == sorted(a for a in sent if a not in skipped)  # the two soft ones are mailed
    assert sorted(report.suspended) == ["user001", "user002", "user003"]
    with Store.open(world.settings.database.path) as store:
        complainer = store.subscribers.get("user006")
        assert complainer is not None and complainer.unsubscribed_by == "complaint"
        rates = store.bounces.rates(since=world.clock.now - timedelta(days=30))
    assert (rates.bounced, rates.complaints) == (5, 1)
    listed = cli("subscribers")
    assert "bounced" in next(line for line in listed.out.splitlines() if line.startswith("user001"))
    with time_machine.travel(world.clock.now, tick=False):  # the status of the world's day, whatever today is
        status = cli("status")
    assert "36 messages sent in 30 days; bounces 13.89%, complaints 2.78%" in status.out  # 5 and 1 of 36
    assert "complaint rate 2.78% is at or over 0.3%" in status.err and "bounce rate 13.89%" in status.err


def test_a_recipient_refused_while_sending_is_suspended_at_once(tmp_path: Path, cli) -> None:
    with smtp_server() as smtp:
        smtp.box.rcpt_replies["user001@example.org"].append("550 5.1.1 <user001@example.org>: User unknown")
        smtp.box.rcpt_replies["user002@example.org"].append(
            "550 5.7.1 Service unavailable; blocked using zen.spamhaus.org"
        )
        world = _world(tmp_path, smtp.port, people=3)
        first = world.send()
        assert any("user001@example.org refused (hard, user-unknown)" in line for line in first.bounced)
        world.clock.advance(24 * 3600)
        smtp.box.messages.clear()
        second = world.send()
        assert sorted(m["To"] for m in smtp.box.messages) == ["user000@example.org", "user002@example.org"]
    assert second.suspended == ["user001"]
    world.write_config()
    resumed = cli("resume", "user001")
    assert resumed.code == 0 and "user001@example.org resumes" in resumed.out
    with Store.open(world.settings.database.path) as store:
        assert store.bounces.suspended() == set()


def test_soft_bounces_suspend_only_at_the_limit_within_the_days(tmp_path: Path) -> None:
    with smtp_server() as smtp:
        world = _world(tmp_path, smtp.port, people=1)
        for day in range(4):
            world.send()
            with Store.open(world.settings.database.path) as store:
                delivery = store.ledger.deliveries(limit=1)[0]
                soft = Report("soft", (Bounce("user000@example.org", "soft", "4.2.2", "mailbox-full", "452 full"),),
                              tokens=(links.bounce_token(SECRET, delivery.id),))  # fmt: skip
                outcome = next(iter(pipeline.apply_reports(
                    store.bounces, store.subscribers, [("m", soft)], world.settings, now=world.clock.now,
                    source="mailbox",
                )))  # fmt: skip
                suspended = store.bounces.suspended()
            assert (suspended == {"user000@example.org"}) is (day == 2), (day, outcome.actions)
            if day == 2:
                with Store.open(world.settings.database.path) as store:
                    store.bounces.lift(["user000@example.org"])
                world.clock.advance(15 * 24 * 3600)  # the old ones fall out of soft_days
            world.clock.advance(24 * 3600)


def test_an_mta_pipe_hands_one_message_on_stdin(tmp_path: Path) -> None:
    with smtp_server() as smtp:
        world = _world(tmp_path, smtp.port, people=2)
        world.send()
        mail, sender = smtp.box.messages[0], smtp.box.senders[0]
    world.write_config()
    process = digest_process(tmp_path, "bounces", "-", "--json", stdin=True)
    raw = _returned(mail, sender, status="5.1.1", said="550 5.1.1 user unknown")
    out, err = process.communicate(raw.decode(), timeout=60)
    assert process.returncode == 0, err
    line = json.loads(out)
    assert (line["source"], line["kind"], line["recipients"]) == ("stdin", "hard", [mail["To"]])
    assert line["matched"] is not None  # by its Message-ID: the child has no secret to read the VERP token with
    with Store.open(world.settings.database.path) as store:
        assert store.bounces.suspended() == {mail["To"]}


def test_the_daemon_reads_the_bounce_mailbox_each_pass_and_logs_a_suspension(tmp_path: Path) -> None:
    with smtp_server() as smtp:
        world = _world(tmp_path, smtp.port, people=2)
        world.send()
        mail, sender = smtp.box.messages[0], smtp.box.senders[0]
        box = _maildir(tmp_path, ["human-reply.eml"])
        (box / "new" / "1700000009.M9.host").write_bytes(
            _returned(mail, sender, status="5.1.1", said="550 5.1.1 user unknown")
        )
        settings = world.settings.model_copy(update={"bounces": BouncesSettings(source=str(box))})
        lines = io.StringIO()
        watcher = pipeline.DumpWatcher(tmp_path / "dumps", settle_seconds=0)
        (tmp_path / "dumps").mkdir()
        done = passes.tick(
            settings, clock=world.clock, log=events.EventLog(stream=lines, clock=world.clock), watcher=watcher
        )
    assert done.bounces == 2
    said = lines.getvalue()
    assert "bounce_unknown message=1700000000.0.host" in said
    assert f'bounce message=1700000009.M9.host kind=hard action="suspended email to {mail["To"]}"' in said
    broken = world.settings.model_copy(update={"bounces": BouncesSettings(source=str(tmp_path / "gone"))})
    lines = io.StringIO()
    passes.tick(broken, clock=world.clock, log=events.EventLog(stream=lines, clock=world.clock), watcher=watcher)
    assert "bounces_unreadable error=" in lines.getvalue()  # one line; the pass went on


def test_a_suspended_reader_still_gets_their_chat_channel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hooks = Hooks(replies={"/hook": [Reply(200, "ok")]})
    with smtp_server() as smtp, http_server(hooks) as base:
        smtp.box.rcpt_replies["user001@example.org"].append("550 5.1.1 <user001@example.org>: User unknown")
        world = _world(tmp_path, smtp.port, people=1, allow_private_webhooks=True)
        channels = '[[channels]]\nkind = "email"\n[[channels]]\nkind = "slack"\nurl_env = "TEAM_HOOK"\n'
        (tmp_path / "subscribers" / "user001.toml").write_text(profile_text(1, channels=channels))
        monkeypatch.setenv("TEAM_HOOK", f"{base}/hook")
        world.send()
        assert _suspended(world) == {"user001@example.org"} and len(hooks.accepted("/hook")) == 1
        smtp.box.messages.clear()
        world.clock.advance(24 * 3600)
        report = world.send()
        assert {m["To"] for m in smtp.box.messages} == {"user000@example.org"}
    assert len(hooks.accepted("/hook")) == 2  # the second day's digest was posted to the chat
    assert {name for name, _, _ in report.made} == {"user000", "user001"} and report.suspended == []


def _suspended(world: World) -> set[str]:
    with Store.open(world.settings.database.path) as store:
        return store.bounces.suspended()
