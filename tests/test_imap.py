"""The bounce mailbox over IMAP, against Dovecot started by the test on 127.0.0.1 (TLS, its own certificate)."""

from __future__ import annotations

import imaplib
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.store import Store

from .deliverykit import World
from .servers import IMAPServer, imap_server, smtp_server
from .test_bounces import CORPUS, SECRET, _returned, _world


@pytest.fixture
def imap() -> Iterator[IMAPServer]:
    with imap_server() as server:
        yield server


def _session(server: IMAPServer) -> imaplib.IMAP4_SSL:
    context = ssl.create_default_context(cafile=str(server.cert))
    session = imaplib.IMAP4_SSL("127.0.0.1", server.port, ssl_context=context, timeout=10)
    session.login(server.user, server.password)
    return session


def _count(server: IMAPServer, folder: str) -> int:
    session = _session(server)
    try:
        kind, data = session.select(f'"{folder}"', readonly=True)
        return int(data[0] or 0) if kind == "OK" else -1
    finally:
        session.logout()


def _config(world: World, server: IMAPServer, *, ca: bool = True) -> None:
    trust = f'ca_file = "{server.cert}"\n' if ca else ""
    world.write_config(
        f'[bounces]\nsource = "imap"\nhost = "127.0.0.1"\nport = {server.port}\nusername = "{server.user}"\n{trust}'
        f'[delivery]\nbase_url = "https://digest.example.org"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {world.settings.smtp.port}\nsecurity = "none"\n'
        'bounce_address = "bounces@digest.example.org"\n'
    )


def test_bounces_are_read_from_imap_and_moved_to_their_folders(
    imap: IMAPServer, tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    with smtp_server() as smtp:
        world = _world(tmp_path, smtp.port, people=2)
        world.send()
        mail, sender = smtp.box.messages[0], smtp.box.senders[0]
    session = _session(imap)
    for raw in (
        _returned(mail, sender, status="5.1.1", said="550 5.1.1 user unknown"),
        (CORPUS / "human-reply.eml").read_bytes(),
        (CORPUS / "auto-reply-vacation.eml").read_bytes(),
    ):
        assert session.append("INBOX", None, None, raw)[0] == "OK"
    session.logout()
    _config(world, imap)
    monkeypatch.setenv("DIGEST_BOUNCES__PASSWORD", imap.password)
    monkeypatch.setenv("DIGEST_DELIVERY__SECRET", SECRET)
    dry = cli("bounces", "--dry-run")
    assert dry.code == 0 and "read 3 messages" in dry.out and _count(imap, "INBOX") == 3
    done = cli("bounces")
    assert done.code == 0, done.err
    assert f"hard 5.1.1 user-unknown: {mail['To']}" in done.out and "suspended email to" in done.out
    assert (_count(imap, "INBOX"), _count(imap, "Processed"), _count(imap, "Unknown")) == (0, 2, 1)
    with Store.open(world.settings.database.path) as store:
        assert store.bounces.suspended() == {mail["To"]}
    assert cli("bounces").out.startswith("read 0 messages")


def test_a_wrong_password_or_an_untrusted_certificate_is_one_line(
    imap: IMAPServer, tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    with smtp_server() as smtp:
        world = _world(tmp_path, smtp.port, people=1)
    _config(world, imap)
    monkeypatch.setenv("DIGEST_BOUNCES__PASSWORD", "not-the-password-4711")
    wrong = cli("bounces")
    assert wrong.code == 1 and f"IMAP 127.0.0.1:{imap.port} INBOX: could not connect" in wrong.err
    assert "DIGEST_BOUNCES__PASSWORD" in wrong.err and "4711" not in wrong.err + wrong.out
    assert "Traceback" not in wrong.err
    _config(world, imap, ca=False)
    monkeypatch.setenv("DIGEST_BOUNCES__PASSWORD", imap.password)
    untrusted = cli("bounces")
    assert untrusted.code == 1 and "certificate not trusted" in untrusted.err and "ca_file" in untrusted.err
