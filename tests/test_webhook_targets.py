"""Where a webhook may point: checked after DNS resolution, and the request goes where the check looked.

Nothing here reaches past loopback: refused addresses are refused before any
connection, and the servers that answer listen on 127.0.0.1.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from digest.cli import main

from .deliverykit import World, make_world, profile_text
from .servers import Hooks, Reply, http_server

NAME = "slack ($TEAM_HOOK)"


def hooked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, *, allow_private: bool) -> World:
    world = make_world(tmp_path, people=0, allow_private_webhooks=allow_private)
    channels = '[[channels]]\nkind = "slack"\nurl_env = "TEAM_HOOK"\n'
    (tmp_path / "subscribers" / "team.toml").write_text(profile_text(1, channels=channels, extra="max_items = 3"))
    monkeypatch.setenv("TEAM_HOOK", url)
    return world


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # the cloud metadata service
        "https://169.254.169.254/latest/meta-data/",
        "http://2852039166/latest/meta-data/",  # the same address as one number: only resolving shows it
        "http://[::ffff:169.254.169.254]/latest/",  # and as an IPv4-mapped IPv6 address
        "https://[fe80::1]/hook",
    ],
)
def test_link_local_targets_are_refused_even_with_private_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    world = hooked(tmp_path, monkeypatch, url, allow_private=True)
    [(_, reason)] = world.send().failed  # failed for good at once: not retried
    assert reason.startswith(f"{NAME}: the URL's host resolves to ")
    assert "a link-local address (cloud metadata lives there); webhooks never go to one" in reason


@pytest.mark.parametrize(
    "url", ["https://224.0.0.1/hook", "https://0.0.0.0/hook", "https://[::]/hook", "https://255.255.255.255/"]
)
def test_multicast_and_unspecified_targets_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    world = hooked(tmp_path, monkeypatch, url, allow_private=True)
    [(_, reason)] = world.send().failed
    assert "a multicast, unspecified or reserved address; webhooks never go to one" in reason


def test_private_and_loopback_targets_need_the_switch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hooks = Hooks(replies={"/hook": [Reply(200, "ok")]})
    with http_server(hooks) as base:
        port = base.rsplit(":", 1)[1]
        world = hooked(tmp_path, monkeypatch, f"https://localhost:{port}/hook", allow_private=False)
        [(_, reason)] = world.send().failed
    assert reason.startswith(f"{NAME}: the URL's host resolves to ")  # localhost: 127.0.0.1 or ::1
    assert reason.endswith("a private or loopback address; set [delivery] allow_private_webhooks = true to allow it")
    assert hooks.received == []


def test_plain_http_needs_the_switch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = hooked(tmp_path, monkeypatch, "http://203.0.113.7/hook", allow_private=False)
    [(_, reason)] = world.send().failed
    assert reason == (
        f"{NAME}: plain http; use an https URL, or set [delivery] allow_private_webhooks = true to allow it"
    )


def test_with_the_switch_a_name_is_resolved_and_posted_to_with_its_host_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hooks = Hooks(replies={"/hook": [Reply(200, "ok")]})
    with http_server(hooks) as base:
        port = base.rsplit(":", 1)[1]
        world = hooked(tmp_path, monkeypatch, f"http://localhost:{port}/hook", allow_private=True)
        report = world.send()
    assert len(report.sent) == 1
    assert hooks.hosts == [f"localhost:{port}"]  # sent to the checked address, named as the URL names it


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_over_https_the_certificate_is_checked_against_the_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"]
    names = ["-addext", "subjectAltName=DNS:localhost"]
    files = ["-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")]
    subprocess.run(["openssl", *request, *names, *files], check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "cert.pem"))  # httpx trusts this certificate
    hooks = Hooks(replies={"/hook": [Reply(200, "ok")]})
    with http_server(hooks, tls=context) as base:
        port = base.rsplit(":", 1)[1]
        named = hooked(tmp_path / "named", monkeypatch, f"https://localhost:{port}/hook", allow_private=True)
        assert len(named.send().sent) == 1  # connected to the address, verified as localhost
        by_address = hooked(tmp_path / "address", monkeypatch, f"https://127.0.0.1:{port}/hook", allow_private=True)
        [(_, reason, _)] = by_address.send().retries  # the certificate names localhost, not 127.0.0.1
    assert reason == f"{NAME}: cannot connect (ConnectError)"
    assert hooks.hosts == [f"localhost:{port}"]


def test_check_says_where_each_webhook_may_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = tmp_path / "team.toml"
    channels = "".join(
        f'[[channels]]\nkind = "{kind}"\nurl_env = "{variable}"\n'
        for kind, variable in [("slack", "GOOD_HOOK"), ("discord", "META_HOOK"), ("teams", "UNSET_HOOK")]
    )
    profile.write_text(profile_text(1, channels=channels))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GOOD_HOOK", "https://127.0.0.1:9/hook")
    monkeypatch.setenv("META_HOOK", "http://169.254.169.254/latest/meta-data/")
    monkeypatch.delenv("UNSET_HOOK", raising=False)
    monkeypatch.setenv("DIGEST_DELIVERY__ALLOW_PRIVATE_WEBHOOKS", "true")
    assert main(["check", str(profile)]) == 1
    out = capsys.readouterr()
    assert "  webhooks:  slack ($GOOD_HOOK): https to 127.0.0.1" in out.out
    assert (
        "digest: error: discord ($META_HOOK): the URL's host resolves to 169.254.169.254, a link-local address"
        in out.err
    )
    assert "teams ($UNSET_HOOK): the variable is not set; export the webhook URL in it" in out.err
    assert "169.254.169.254/latest" not in out.out + out.err  # the URL itself is never shown
