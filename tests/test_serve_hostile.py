"""``digest serve`` against a hostile or clumsy client, through the real uvicorn: a 4xx with a message, never a
500; the loop never waits on the database; no request sends mail; one subscriber per address."""

from __future__ import annotations

import re
import select
import socket
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest import links
from digest.config import SMTPSettings, WebSettings
from digest.store import Store

from .deliverykit import World
from .servers import smtp_server
from .test_serve import confirmation_links, subscriber, token, world_with_links
from .webkit import client, local, web_server

FIELDS = {"keywords": "diffusion", "timezone": "UTC", "send_at": "07:00"}


def _web(world: World, **web: Any) -> World:
    world.settings = world.settings.model_copy(update={"web": WebSettings(signup=True, **web)})
    return world


def _form_token(http: httpx.Client, url: str) -> str:
    found = re.search(r'name="form" value="([^"]+)"', http.get(url).text)
    assert found is not None
    return found[1]


def _signups(world: World) -> list[tuple[str, str | None]]:
    with sqlite3.connect(world.settings.database.path) as db:
        return db.execute("SELECT email, subscriber FROM signups ORDER BY created_at, email").fetchall()


def test_the_loop_answers_while_a_handler_waits_for_the_database(tmp_path: Path) -> None:
    world = world_with_links(tmp_path, people=1)
    world.send()
    url = f"/u/{token(world, 'user000', links.UNSUBSCRIBE)}"
    with web_server(world.settings, clock=world.clock) as base, client(base) as http:
        holder = sqlite3.connect(world.settings.database.path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # another process writing: the unsubscribe must wait its turn
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(http.post, base + url, data={"List-Unsubscribe": "One-Click"})
            health = http.get(f"{base}/healthz")  # answered meanwhile: the loop is not the one waiting
            assert health.status_code == 200 and not waiting.done()
            holder.execute("COMMIT")
            holder.close()
            assert waiting.result(timeout=60).status_code == 200
    assert subscriber(world, "user000").status == "unsubscribed"


def test_a_sign_up_opens_no_smtp_connection_and_answers_alike_for_known_and_new(tmp_path: Path) -> None:
    silent = socket.socket()  # an SMTP server that accepts and never says a word
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    with silent:
        world = _web(world_with_links(tmp_path, people=1))
        world.send()
        port = silent.getsockname()[1]
        world.settings = world.settings.model_copy(
            update={"smtp": SMTPSettings(host="127.0.0.1", port=port, security="none", timeout_s=5)}
        )
        with web_server(world.settings, clock=world.clock) as base, client(base) as http:
            known = http.post(f"{base}/signup", data=FIELDS | {"email": "user000@example.org"})
            new = http.post(f"{base}/signup", data=FIELDS | {"email": "fresh@example.org"})
            health = http.get(f"{base}/healthz")
        assert (known.status_code, new.status_code, health.status_code) == (200, 200, 200)
        assert known.text == new.text
        assert select.select([silent], [], [], 0)[0] == []  # nobody connected to the SMTP server
    assert _signups(world) == [("fresh@example.org", None), ("user000@example.org", "user000")]


def test_x_forwarded_for_counts_only_from_a_trusted_proxy(tmp_path: Path) -> None:
    def tries(world: World) -> list[int]:
        with web_server(world.settings, clock=world.clock) as base, client(base) as http:
            return [
                http.post(
                    f"{base}/signup",
                    data=FIELDS | {"email": f"n{n}@example.org"},
                    headers={"X-Forwarded-For": f"10.0.0.{n}"},
                ).status_code
                for n in range(7)
            ]

    assert tries(_web(world_with_links(tmp_path / "a", people=0))) == [200] * 5 + [429] * 2  # one client: 127.0.0.1
    trusted = _web(world_with_links(tmp_path / "b", people=0), trusted_proxies=["127.0.0.1"])
    assert tries(trusted) == [200] * 7  # each forwarded client its own bucket


def test_addresses_are_checked_and_limited_however_they_are_spelled(tmp_path: Path) -> None:
    world = _web(world_with_links(tmp_path, people=0))
    with web_server(world.settings, clock=world.clock) as base, client(base) as http:
        for bad in (
            "victim@example.org(x1",
            'a"b@example.org',
            "jürgen@example.org",
            "x@localhost",
            "a" * 300 + "@x.org",
        ):
            refused = http.post(f"{base}/signup", data=FIELDS | {"email": bad})
            assert refused.status_code == 400 and "That email address cannot be used" in refused.text, bad
    assert _signups(world) == []
    world = _web(world_with_links(tmp_path / "b", people=0), trusted_proxies=["127.0.0.1"])
    with web_server(world.settings, clock=world.clock) as base, client(base) as http:
        spellings = ["Victim@example.org", "victim@EXAMPLE.org", "VICTIM@Example.Org", "victim@example.org"] * 2
        codes = [
            http.post(
                f"{base}/signup", data=FIELDS | {"email": e}, headers={"X-Forwarded-For": f"10.0.1.{n}"}
            ).status_code
            for n, e in enumerate(spellings)
        ]
    assert codes == [200] * 5 + [429] * 3  # five an hour for one mailbox, from any number of clients


def test_one_click_as_multipart_form_data_unsubscribes(tmp_path: Path) -> None:
    world = world_with_links(tmp_path, people=1)
    world.send()
    url = f"/u/{token(world, 'user000', links.UNSUBSCRIBE)}"
    with web_server(world.settings, clock=world.clock) as base, client(base) as http:
        done = http.post(base + url, files={"List-Unsubscribe": (None, "One-Click")})
    assert done.status_code == 200 and subscriber(world, "user000").status == "unsubscribed"


def test_confirm_never_overwrites_a_file_and_one_address_is_one_subscriber(tmp_path: Path) -> None:
    with smtp_server() as smtp:
        world = _web(world_with_links(tmp_path, people=0, smtp_port=smtp.port))
        folder = world.settings.subscribers.dir
        with web_server(world.settings, clock=world.clock) as base, client(base) as http:
            for _ in range(2):
                assert http.post(f"{base}/signup", data=FIELDS | {"email": "grace@example.org"}).status_code == 200
            world.send()
            first, second = (local(confirmation_links(m)[0], base) for m in smtp.box.messages)
            (folder / "grace.toml").write_text('# the operator\'s own\nemail = "g@example.org"\nkeywords = ["x"]\n')
            assert "You are subscribed" in http.post(first).text
            assert "You were already subscribed" in http.post(second).text  # the address has its subscriber
    assert (folder / "grace.toml").read_text().startswith("# the operator's own")
    with Store.open(world.settings.database.path) as store:
        mine = [s.name for s in store.subscribers.all() if "grace@example.org" in s.text]
    assert mine == ["grace-2"] and (folder / "grace-2.toml").is_file()


def test_unconfirmed_sign_ups_are_forgotten_after_48_hours(tmp_path: Path) -> None:
    world = _web(world_with_links(tmp_path, people=0))
    with web_server(world.settings, clock=world.clock) as base, client(base) as http:
        http.post(f"{base}/signup", data=FIELDS | {"email": "late@example.org"})
    world.send()
    assert len(_signups(world)) == 1
    world.clock.advance(49 * 3600)
    world.send()
    assert _signups(world) == []


def test_preferences_never_resubscribe_a_reader_who_unsubscribed(tmp_path: Path) -> None:
    world = world_with_links(tmp_path, people=1)
    world.send()
    prefs = f"/p/{token(world, 'user000', links.PREFERENCES)}"
    with web_server(world.settings, clock=world.clock) as base, client(base) as http:
        form = _form_token(http, base + prefs)
        http.post(f"{base}/u/{token(world, 'user000', links.UNSUBSCRIBE)}", data={"List-Unsubscribe": "One-Click"})
        for action in ("resume", "pause-week", "save"):
            answer = http.post(base + prefs, data={"form": form, "action": action, "keywords": "x"})
            assert answer.status_code == 409 and "You are unsubscribed" in answer.text
    assert subscriber(world, "user000").status == "unsubscribed"


def test_no_input_gives_a_500(tmp_path: Path) -> None:
    world = world_with_links(tmp_path, people=1)
    world.send()
    prefs = f"/p/{token(world, 'user000', links.PREFERENCES)}"
    with web_server(world.settings, clock=world.clock) as base, client(base) as http:
        form = _form_token(http, base + prefs)
        chunked = http.post(f"{base}/u/x", content=iter([b"a" * 40_000] * 3))  # no Content-Length
        assert chunked.status_code == 413
        no_day = http.post(base + prefs, data={"form": form, "frequency": "daily", "timezone": "Mars/Base"})
        assert no_day.status_code == 400 and "Choose a time zone by its place name" in no_day.text
        (world.settings.subscribers.dir / "user000.toml").write_text("keywords = [unclosed\n")
        broken = http.post(base + prefs, data={"form": form, "keywords": "x", "timezone": "UTC"})
        assert broken.status_code == 503 and "cannot be edited right now" in broken.text
        latin = http.post(
            base + prefs,
            content="form=é".encode("latin-1"),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert latin.status_code == 400


def test_a_token_altered_anywhere_is_404(tmp_path: Path) -> None:
    world = world_with_links(tmp_path, people=1)
    world.send()
    good = token(world, "user000", links.PREFERENCES)
    body, mac = good.split(".")
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    altered = [f"{body}.{mac[:-1]}{c}" for c in last if c != mac[-1]] + [f"{good}==", f"{body}=.{mac}"]
    with web_server(world.settings, clock=world.clock) as base, client(base) as http:
        assert http.get(f"{base}/p/{good}").status_code == 200
        assert {http.get(f"{base}/p/{t}").status_code for t in altered} == {404}


def test_serve_on_a_busy_port_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "digest", "serve", "--port", str(port)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"digest: error: 127.0.0.1:{port} is in use by another program; stop it, or use another port: --port N"
    )
    assert "listening" not in done.stdout + done.stderr


TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)
FORMS = st.fixed_dictionaries(
    {},
    optional=dict.fromkeys(
        ("email", "keywords", "timezone", "send_at", "frequency", "day", "exclude", "action", "website"), TEXT
    ),
)


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory: pytest.TempPathFactory) -> Any:
    world = _web(world_with_links(tmp_path_factory.mktemp("fuzz"), people=1), signups_per_hour=1000)
    world.send()
    with web_server(world.settings, clock=world.clock) as base, client(base) as http:
        yield world, base, http, f"/p/{token(world, 'user000', links.PREFERENCES)}"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(fields=FORMS)
def test_web_form_fuzz_never_gives_a_500(hostile_site: Any, fields: dict[str, str]) -> None:
    world, base, http, prefs = hostile_site
    form = _form_token(http, base + prefs)
    for url, data in ((f"{base}/signup", fields), (base + prefs, fields | {"form": form})):
        before = _signups(world)
        answer = http.post(url, data=data)
        assert answer.status_code < 500, (url, data, answer.text[:300])
        assert "Traceback" not in answer.text
        if answer.status_code >= 400:
            assert _signups(world) == before  # a refused form stores nothing


def test_a_reader_can_undo_their_own_unsubscribe_for_30_days(tmp_path: Path) -> None:
    world = world_with_links(tmp_path, people=2)
    world.send()
    with web_server(world.settings, clock=world.clock) as base, client(base) as http:
        one_click = {"List-Unsubscribe": "One-Click"}
        done = http.post(f"{base}/u/{token(world, 'user000', links.UNSUBSCRIBE)}", data=one_click)
        back = re.search(r'action="(/r/[^"]+)"', done.text)
        assert back is not None and "Unsubscribed by mistake?" in done.text
        prefs = http.get(f"{base}/p/{token(world, 'user000', links.PREFERENCES)}")
        assert "Resubscribe" in prefs.text and "/r/" in prefs.text
        assert http.get(base + back[1]).status_code == 200 and subscriber(world, "user000").status == "unsubscribed"
        assert "You are subscribed again" in http.post(base + back[1]).text
        assert subscriber(world, "user000").status == "active"
        http.post(f"{base}/u/{token(world, 'user000', links.UNSUBSCRIBE)}", data=one_click)
        world.clock.advance(31 * 24 * 3600)
        assert http.post(base + back[1]).status_code == 404  # 30 days at most
        assert subscriber(world, "user000").status == "unsubscribed"


def test_an_operators_unsubscribe_is_not_the_readers_to_undo(tmp_path: Path) -> None:
    world = world_with_links(tmp_path, people=1)
    world.send()
    until = int(world.clock().timestamp()) + 3600
    way_back = token(world, "user000", links.RESUBSCRIBE, str(until))
    with Store.open(world.settings.database.path) as store:
        store.subscribers.set_status("user000", "unsubscribed", at=world.clock(), by="operator")
    with web_server(world.settings, clock=world.clock) as base, client(base) as http:
        refused = http.post(f"{base}/r/{way_back}")
        assert refused.status_code == 409 and "cannot be started again from here" in refused.text
        prefs = http.get(f"{base}/p/{token(world, 'user000', links.PREFERENCES)}")
        assert "/r/" not in prefs.text
    assert subscriber(world, "user000").status == "unsubscribed"


def test_the_confirm_page_says_what_is_confirmed_and_the_home_page_has_one_heading(tmp_path: Path) -> None:
    with smtp_server() as smtp:
        world = _web(world_with_links(tmp_path, people=0, smtp_port=smtp.port))
        with web_server(world.settings, clock=world.clock) as base, client(base) as http:
            http.post(
                f"{base}/signup", data=FIELDS | {"email": "grace@example.org", "keywords": "speculative decoding"}
            )
            world.send()
            [mail] = smtp.box.messages
            page = http.get(local(confirmation_links(mail)[0], base)).text
            assert "A daily digest for <strong>grace@example.org</strong>, following speculative decoding." in page
            home = http.get(f"{base}/").text
    assert home.count("<h1") == 1 and "<h1>paper-digest</h1>" not in home
