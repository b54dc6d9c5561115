"""``digest serve`` end to end: a real uvicorn on 127.0.0.1, messages from a real send to aiosmtpd."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from digest import links, pipeline
from digest.cli import main
from digest.config import RenderSettings, Settings, WebSettings
from digest.models import Subscriber
from digest.store import Store

from .deliverykit import World, database_toml, make_world
from .servers import smtp_server
from .webkit import client, links_in, local, web_server

BASE = "https://digest.example.org"
SECRET = "s3cret-for-hmac-0123456789"

pytestmark = pytest.mark.usefixtures("on_each_world")


def world_with_links(root: Path, *, people: int, smtp_port: int | None = None, signup: bool = False) -> World:
    world = make_world(root, people=people, smtp_port=smtp_port, base_url=BASE, secret=SECRET)
    if signup:
        world.settings = world.settings.model_copy(update={"web": WebSettings(signup=True)})
    return world


def subscriber(world: World, name: str) -> Subscriber:
    with Store.open(world.settings.database.location) as store:
        found = store.subscribers.get(name)
    assert found is not None
    return found


def token(world: World, name: str, purpose: str, data: str = "") -> str:
    found = subscriber(world, name)
    return links.sign(SECRET, purpose, name=name, key=found.link_key, data=data)


def confirmation_links(mail: EmailMessage) -> list[str]:
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    return re.findall(rf"{BASE}/c/[A-Za-z0-9_.-]+", body.get_content())


def next_day(world: World) -> pipeline.SendReport:
    world.clock.advance(24 * 3600)
    return world.send()


def test_one_click_unsubscribe_from_a_received_email_sticks(tmp_path: Path) -> None:
    with smtp_server() as smtp:
        world = world_with_links(tmp_path, people=2, smtp_port=smtp.port)
        world.send()
        mail = next(m for m in smtp.box.messages if m["To"] == "user000@example.org")
        url = mail["List-Unsubscribe"].strip()[1:-1]
        assert url.startswith(f"{BASE}/u/") and mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        with web_server(world.settings, clock=world.clock) as base, client(base) as http:
            shown = http.get(local(url, base))  # what a mail scanner does
            assert shown.status_code == 200 and 'value="One-Click"' in shown.text
            assert subscriber(world, "user000").status == "active"
            for _ in range(2):  # idempotent: the second POST is a 200 too
                done = http.post(local(url, base), data={"List-Unsubscribe": "One-Click"})
                assert done.status_code == 200 and "You are unsubscribed" in done.text
                assert not done.cookies and "location" not in done.headers
        gone = subscriber(world, "user000")
        assert (gone.status, gone.unsubscribed_by) == ("unsubscribed", "reader")
        smtp.box.messages.clear()
        report = next_day(world)  # syncs the folder, where user000.toml still is
        assert [m["To"] for m in smtp.box.messages] == ["user001@example.org"]
    assert {name for name, _, _ in report.made} == {"user001"}
    assert subscriber(world, "user000").status == "unsubscribed"


def test_a_folder_sync_says_once_that_a_subscriber_stays_unsubscribed(tmp_path: Path) -> None:
    world = world_with_links(tmp_path, people=1)
    with Store.open(world.settings.database.location) as store:
        pipeline.sync_subscribers(store.subscribers, world.settings.subscribers.dir, at=world.clock())
        pipeline.set_state(store.subscribers, "user000", "unsubscribed", at=world.clock())  # `digest unsubscribe`
        first = pipeline.sync_subscribers(store.subscribers, world.settings.subscribers.dir, at=world.clock())
        second = pipeline.sync_subscribers(store.subscribers, world.settings.subscribers.dir, at=world.clock())
        assert [pipeline.held_line(s) for s in first.held] == [
            'user000 stays unsubscribed (by the operator on 2026-11-23); "digest resume user000" to undo'
        ]
        assert second.held == [] and second.changes == {}
    assert subscriber(world, "user000").status == "unsubscribed"
    with Store.open(world.settings.database.location) as store:
        pipeline.set_state(store.subscribers, "user000", "active", at=world.clock())  # `digest resume`
    assert subscriber(world, "user000").status == "active"


def test_a_feedback_link_from_an_email_records_a_vote_on_post_only(tmp_path: Path, workdir: Path, capsys) -> None:
    with smtp_server() as smtp:
        world = world_with_links(tmp_path, people=1, smtp_port=smtp.port)
        world.send()
    [mail] = smtp.box.messages
    more = links_in(mail, "f")[0]
    html = mail.get_body(preferencelist=("html",))
    assert html is not None and more in html.get_content()
    with web_server(world.settings, clock=world.clock) as base, client(base) as http:
        assert http.get(local(more, base)).status_code == 200
        assert _votes(world) == []
        assert "Thank you" in http.post(local(more, base)).text
        first = _votes(world)
        world.clock.advance(60)
        assert http.post(local(more, base)).status_code == 200
    assert len(first) == 1 and first[0].vote == 1 and _votes(world) == first  # a repeat changes nothing
    (workdir / "digest.toml").write_text(database_toml(world.settings))
    assert main(["feedback", "user000", "--json"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert json.loads(line) | {"at": None} == {
        "paper": first[0].paper,
        "title": first[0].title,
        "vote": 1,
        "edition": "2026-11-23",
        "at": None,
    }


def _votes(world: World):
    with Store.open(world.settings.database.location) as store:
        return store.feedback.votes("user000")


def test_bad_tokens_all_get_the_same_404_and_change_nothing(tmp_path: Path) -> None:
    world = world_with_links(tmp_path, people=2)
    world.send()
    good = token(world, "user000", links.UNSUBSCRIBE)
    body, mac = good.split(".")
    flipped = ("A" if mac[0] != "A" else "B") + mac[1:]
    bad = {
        "tampered": f"{body}.{flipped}",
        "truncated": good[:-3],
        "other subscriber": f"{token(world, 'user001', links.UNSUBSCRIBE).split('.')[0]}.{mac}",
        "other purpose": token(world, "user000", links.PREFERENCES),
        "garbage": "not-a-token",
    }
    with web_server(world.settings, clock=world.clock) as base, client(base) as http:
        answers = {what: http.post(f"{base}/u/{t}", data={"List-Unsubscribe": "One-Click"}) for what, t in bad.items()}
        answers["feedback as unsubscribe"] = http.post(f"{base}/f/{good}")
    assert {a.status_code for a in answers.values()} == {404}
    assert len({a.text for a in answers.values()}) == 1
    assert "user000" not in answers["tampered"].text
    assert subscriber(world, "user000").status == "active" and subscriber(world, "user001").status == "active"


def test_preferences_edit_the_profile_file_and_keep_its_comments(tmp_path: Path) -> None:
    world = world_with_links(tmp_path, people=0)
    path = world.settings.subscribers.dir / "ada.toml"
    path.write_text(
        "# Ada's digest: read by the operator.\n"
        'email = "ada@example.org"\n'
        'timezone = "Europe/Berlin"  # where Ada lives\n\n'
        "[keywords]\n"
        '"diffusion model" = 2  # the main thing\n'
        "quantization = 1\n"
    )
    world.send()
    url = f"/p/{token(world, 'ada', links.PREFERENCES)}"
    with web_server(world.settings, clock=world.clock) as base, client(base) as http:
        page = http.get(base + url)
        form = re.search(r'name="form" value="([^"]+)"', page.text)
        assert page.status_code == 200 and form is not None
        fields = {
            "form": form[1],
            "keywords": "diffusion model = 2\nspeculative decoding",
            "exclude": "survey",
            "send_at": "06:30",
            "timezone": "Europe/Berlin",
            "frequency": "daily",
            "day": "monday",
        }
        saved = http.post(base + url, data=fields)
        assert saved.status_code == 200 and "Saved" in saved.text
        text = path.read_text()
        assert "# Ada's digest: read by the operator." in text and "# where Ada lives" in text
        assert "# the main thing" in text and '"speculative decoding" = 1' in text and "quantization" not in text
        assert 'send_at = "06:30"' in text and 'exclude = ["survey"]' in text
        for field, value, said in [
            ("timezone", "Europe/Berlinn", "Choose a time zone by its place name, like Europe/Berlin"),
            ("keywords", "pruning = 300", "The weight for “pruning” must be more than 0 and at most 100."),
            ("send_at", "25:00", "Write the time as hours and minutes in 24-hour time, like 07:30."),
        ]:
            bad = http.post(base + url, data=fields | {field: value})
            assert bad.status_code == 400
            # The words sit next to their field; no file, path or TOML key reaches the reader.
            assert f'<p class="field-error" id="{field}-error">{said}' in bad.text.replace("&#34;", '"')
            assert f'aria-describedby="{field}-error"' in bad.text
            assert ".toml" not in bad.text and str(tmp_path) not in bad.text and "keywords." not in bad.text
        assert path.read_text() == text
        assert http.post(base + url, data={k: v for k, v in fields.items() if k != "form"}).status_code == 403
    assert path.read_text() == text
    with Store.open(world.settings.database.location) as store:
        synced = pipeline.sync_subscribers(store.subscribers, world.settings.subscribers.dir, at=world.clock())
        assert synced.changes == {}  # the file and the database agree: the edit stays
    assert "speculative decoding" in subscriber(world, "ada").text


def test_sign_up_needs_the_confirmation_link_within_48_hours(tmp_path: Path) -> None:
    with smtp_server() as smtp:
        world = world_with_links(tmp_path, people=0, smtp_port=smtp.port, signup=True)
        fields = {
            "email": "grace@example.org",
            "keywords": "speculative decoding",
            "timezone": "UTC",
            "send_at": "07:00",
            "website": "",
        }
        with web_server(world.settings, clock=world.clock) as base, client(base) as http:
            assert http.post(f"{base}/signup", data=fields).status_code == 200
            assert smtp.box.messages == []  # never mailed inside the request
            assert world.send().signup_mails == 1  # the sender mails it
            [mail] = smtp.box.messages
            [link] = confirmation_links(mail)
            assert http.get(local(link, base)).status_code == 200
            assert not (world.settings.subscribers.dir / "grace.toml").exists()
            world.clock.advance(49 * 3600)
            assert http.post(local(link, base)).status_code == 404  # expired
            smtp.box.messages.clear()
            assert http.post(f"{base}/signup", data=fields).status_code == 200
            world.send()
            [mail] = smtp.box.messages
            [link] = confirmation_links(mail)
            assert "You are subscribed" in http.post(local(link, base)).text
            assert http.post(local(link, base)).status_code == 404  # used once
    assert subscriber(world, "grace").status == "active"
    assert "keywords" in (world.settings.subscribers.dir / "grace.toml").read_text()


def test_a_new_reader_s_first_digest_is_their_next_send_time_never_a_past_edition(tmp_path: Path) -> None:
    # 07:30 UTC on Mon 23 Nov is 02:30 in New York: Sunday's 08:15 edition is past, Monday's is next.
    with smtp_server() as smtp:
        world = world_with_links(tmp_path, people=0, smtp_port=smtp.port, signup=True)
        fields = {"email": "grace@example.org", "keywords": "language model", "timezone": "America/New_York"}
        with web_server(world.settings, clock=world.clock) as base, client(base) as http:
            assert http.post(f"{base}/signup", data=fields | {"send_at": "08:15", "website": ""}).status_code == 200
            world.send()
            [link] = confirmation_links(smtp.box.messages.pop())
            asked = http.get(local(link, base)).text
            assert "Your first digest: Mon 23 Nov at 08:15 (America/New_York)" in asked
            done = http.post(local(link, base)).text
            assert "Your first digest: <strong>Mon 23 Nov at 08:15 (America/New_York)</strong>" in done
        assert world.send().made == [] and smtp.box.messages == []  # no digest for Sunday's edition
        world.clock.advance(5 * 3600 + 46 * 60)  # 08:16 in New York
        report = world.send()
        assert [(who, edition) for who, edition, _ in report.made] == [("grace", "2026-11-23")]
        [mail] = smtp.box.messages
        text = mail.get_body(preferencelist=("plain",))
        assert text is not None and "Mon 23 Nov" in mail["Subject"] and "Sun 22 Nov" not in text.get_content()


def test_sign_up_is_rate_limited_and_says_the_same_for_known_addresses(tmp_path: Path) -> None:
    with smtp_server() as smtp:
        world = world_with_links(tmp_path, people=1, smtp_port=smtp.port, signup=True)
        world.send()
        smtp.box.messages.clear()
        known = {"email": "user000@example.org", "keywords": "diffusion", "timezone": "UTC", "send_at": "07:00"}
        with web_server(world.settings, clock=world.clock) as base, client(base) as http:
            fresh = http.post(f"{base}/signup", data=known | {"email": "new@example.org"})
            same = http.post(f"{base}/signup", data=known | {"email": "User000@Example.ORG"})
            assert (fresh.status_code, same.status_code) == (200, 200) and fresh.text == same.text
            trap = http.post(f"{base}/signup", data=known | {"email": "bot@example.org", "website": "x"})
            assert trap.status_code == 200
            world.send()
            manage, confirm = sorted(smtp.box.messages, key=lambda m: str(m["To"]))  # "U" sorts before "n"
            assert confirm["To"] == "new@example.org" and confirm["Subject"] == "Confirm your paper-digest subscription"
            said = manage.get_body(preferencelist=("plain",))
            assert said is not None and manage["To"] == "User000@example.org"
            assert "subscribed already" in said.get_content()
            assert "/p/" in said.get_content()  # their preferences link, not a second subscriber
            codes = [http.post(f"{base}/signup", data=known | {"email": "x@example.org"}).status_code for _ in range(3)]
            assert codes == [200, 200, 429]  # five tries an hour from one address
            world.clock.advance(3601)
            assert http.post(f"{base}/signup", data=known | {"email": "y@example.org"}).status_code == 200


def test_headers_limits_health_and_the_signed_feed(tmp_path: Path) -> None:
    world = world_with_links(tmp_path, people=1)
    world.send()
    with web_server(world.settings, clock=world.clock) as base, client(base) as http:
        page = http.get(f"{base}/u/{token(world, 'user000', links.UNSUBSCRIBE)}")
        assert page.headers["content-security-policy"].startswith("default-src 'self'")
        assert page.headers["x-frame-options"] == "DENY" and page.headers["referrer-policy"] == "no-referrer"
        big = http.post(f"{base}/u/x", content=b"a" * (65 * 1024))
        assert big.status_code == 413
        health = http.get(f"{base}/healthz")
        assert health.status_code == 200 and health.json()["database"] == "ok"
        assert health.json()["failed_last_24h"] == 0
        feed = http.get(f"{base}/feeds/{token(world, 'user000', links.FEED)}.atom")
        assert feed.status_code == 200 and feed.headers["content-type"].startswith("application/atom+xml")
        assert 'rel="self"' in feed.text and 'rel="alternate"' in feed.text
        assert http.get(f"{base}/feeds/user000.atom").status_code == 404
        assert http.get(f"{base}/signup").status_code == 404  # off by default


@pytest.mark.slow
@pytest.mark.parametrize("route", ["u", "f", "p"])
def test_no_get_changes_anything(tmp_path: Path, route: str) -> None:
    world = world_with_links(tmp_path, people=1)
    world.send()
    purpose = {"u": links.UNSUBSCRIBE, "f": links.FEEDBACK, "p": links.PREFERENCES}[route]
    data = "+2026-11-23|2403.00001" if route == "f" else ""
    before = subscriber(world, "user000")
    with web_server(world.settings, clock=world.clock) as base, client(base) as http:
        for _ in range(3):
            assert http.get(f"{base}/{route}/{token(world, 'user000', purpose, data)}").status_code == 200
    assert subscriber(world, "user000") == before and _votes(world) == []


def test_settings_default_to_loopback() -> None:
    assert Settings().web.host == "127.0.0.1" and Settings().web.signup is False


def test_an_unsubscribe_cancels_what_was_not_sent_yet(tmp_path: Path) -> None:
    with smtp_server() as smtp:
        world = world_with_links(tmp_path, people=2, smtp_port=smtp.port)
        with Store.open(world.settings.database.location) as store:
            pipeline.sync_subscribers(store.subscribers, world.settings.subscribers.dir, at=world.clock())
            pipeline.make_digests(store, world.settings, now=world.clock())
        with web_server(world.settings, clock=world.clock) as base, client(base) as http:
            url = f"{base}/u/{token(world, 'user000', links.UNSUBSCRIBE)}"
            assert http.post(url, data={"List-Unsubscribe": "One-Click"}).status_code == 200
        world.send()
        assert [m["To"] for m in smtp.box.messages] == ["user001@example.org"]
    with Store.open(world.settings.database.location) as store:
        [cancelled] = store.ledger.deliveries(states=("failed",))
        assert cancelled.subscriber == "user000" and cancelled.last_error == "cancelled: unsubscribed by the reader"
        assert store.ledger.failed_since(world.clock() - timedelta(days=1)) == 0


def test_a_reader_s_feed_address_is_shown_to_them_and_to_the_operator(
    tmp_path: Path, workdir: Path, capsys, monkeypatch
) -> None:
    world = world_with_links(tmp_path, people=1)
    world.send()
    feed = links.links_for("user000", subscriber(world, "user000").link_key, world.settings.delivery)
    assert feed is not None
    with web_server(world.settings, clock=world.clock) as base, client(base) as http:
        page = http.get(f"{base}/p/{token(world, 'user000', links.PREFERENCES)}").text
        assert f'value="{feed.feed}"' in page  # the page shows the address ...
        assert http.get(local(feed.feed, base)).status_code == 200  # ... and it is served
    where = world.settings
    (workdir / "digest.toml").write_text(
        database_toml(where) + f'[subscribers]\ndir = "{where.subscribers.dir}"\n[delivery]\nbase_url = "{BASE}"\n'
    )
    monkeypatch.setenv("DIGEST_DELIVERY__SECRET", SECRET)
    assert main(["subscribers", "--json"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert json.loads(line)["feed"] == feed.feed
    assert main(["preview", "user000"]) == 0
    assert f"user000's feed: {feed.feed}" in capsys.readouterr().out
    monkeypatch.delenv("DIGEST_DELIVERY__SECRET")
    assert main(["subscribers", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["feed"] is None  # no secret: no signed address to give


def test_the_weekday_is_only_for_weekly_readers_and_buttons_are_44_px(tmp_path: Path) -> None:
    world = world_with_links(tmp_path, people=1)
    world.send()
    url = f"/p/{token(world, 'user000', links.PREFERENCES)}"
    with web_server(world.settings, clock=world.clock) as base, client(base) as http:
        page = http.get(base + url).text
        css = http.get(f"{base}/static/site.css").text
    # The day's field sits in .weekly-only, which CSS hides unless "weekly" is the chosen option: no script.
    assert re.search(r'<div class="weekly-only">\s*<label for="day">', page) and "<script" not in page
    assert 'form:not(:has(#frequency option[value="weekly"]:checked)) .weekly-only { display: none; }' in css
    assert "@supports selector(:has(a))" in css  # a browser without :has() shows the field rather than lose it
    assert re.search(r"^button \{ min-height: 44px;", css, re.MULTILINE)


def test_templates_dir_overrides_a_page_and_the_stylesheet_of_digest_serve(tmp_path: Path) -> None:
    mine = tmp_path / "my-templates" / "web"
    mine.mkdir(parents=True)
    (mine / "site.css").write_text("body { background: rebeccapurple; }\n")
    (mine / "home.html.j2").write_text(
        '{% extends "base.html.j2" %}{% block content %}<h1>Our lab\'s digest</h1>{% endblock %}'
    )
    world = world_with_links(tmp_path, people=0)
    world.settings = world.settings.model_copy(update={"render": RenderSettings(templates_dir=mine.parent)})
    with web_server(world.settings, clock=world.clock) as base, client(base) as http:
        assert http.get(f"{base}/static/site.css").text == "body { background: rebeccapurple; }\n"
        assert "/static/site.css" in http.get(f"{base}/").text
        home = http.get(f"{base}/").text
        assert "<h1>Our lab's digest</h1>" in home and "paper-digest: trending research papers" in home  # base kept


def test_the_static_folder_serves_the_stylesheet_and_script_and_nothing_else(tmp_path: Path) -> None:
    world = world_with_links(tmp_path, people=0)
    with web_server(world.settings, clock=world.clock) as base, client(base) as http:
        css = http.get(f"{base}/static/site.css")
        script = http.get(f"{base}/static/timezone.js")
        hidden = [http.get(f"{base}/static/{name}") for name in ("base.html.j2", "../web/base.html.j2", "missing.css")]
        again = http.get(f"{base}/static/site.css", headers={"If-None-Match": css.headers["etag"]})
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert (
        css.headers["cache-control"] == "public, max-age=3600"
        and "frame-ancestors 'none'" in css.headers["content-security-policy"]
    )
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert [r.status_code for r in hidden] == [404, 404, 404]  # a page template is no asset
    assert again.status_code == 304


def test_two_web_nodes_on_one_database_serve_the_same_readers(tmp_path: Path, on_each_world: str) -> None:
    """`digest serve` keeps nothing of its own: behind a proxy, any node answers any link. (On SQLite the two
    share one file on one host; on PostgreSQL they would be on different hosts.)"""
    with smtp_server() as smtp:
        world = world_with_links(tmp_path, people=2, smtp_port=smtp.port)
        world.send()
        mails = {m["To"]: m for m in smtp.box.messages}
        with (
            web_server(world.settings, clock=world.clock) as one,
            web_server(world.settings, clock=world.clock) as two,
            client(one) as http,
        ):
            more = links_in(mails["user000@example.org"], "f")[0]
            assert "Thank you" in http.post(local(more, one)).text
            assert "Thank you" in http.post(local(more, two)).text  # the same vote, on the other node: kept once
            url = mails["user001@example.org"]["List-Unsubscribe"].strip()[1:-1]
            assert http.post(local(url, two), data={"List-Unsubscribe": "One-Click"}).status_code == 200
            page = http.get(f"{one}/p/{token(world, 'user001', links.PREFERENCES)}").text
        assert len(_votes(world)) == 1
        assert subscriber(world, "user001").status == "unsubscribed"
        assert "unsubscribed" in page.lower()
