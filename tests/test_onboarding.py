"""Onboarding and the daily question end to end: a real send to aiosmtpd, a real uvicorn, the command line."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from datetime import timedelta
from html import unescape
from pathlib import Path

import pytest

from digest import links, pipeline
from digest.cli import main
from digest.config import RankSettings
from digest.pipeline import onboarding
from digest.render.context import QUESTION
from digest.store import Store

from .conftest import DUMPS
from .deliverykit import World, make_world
from .servers import smtp_server
from .test_serve import BASE, SECRET, confirmation_links, subscriber, token, world_with_links
from .webkit import client, links_in, local, web_server

pytestmark = pytest.mark.usefixtures("on_each_world")


def _votes(world: World, name: str = "user000") -> dict[str, int]:
    with Store.open(world.settings.database.location) as store:
        return {v.paper: v.vote for v in store.feedback.votes(name)}


def test_a_new_reader_s_email_ends_with_the_question_and_its_answer_is_a_vote(tmp_path: Path) -> None:
    with smtp_server() as smtp:
        world = world_with_links(tmp_path, people=1, smtp_port=smtp.port)
        world.send()
    [mail] = smtp.box.messages
    text = mail.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert QUESTION in text
    asked = text[text.index(QUESTION) :]
    [yes, no] = re.findall(r"https://digest\.example\.org/f/[A-Za-z0-9_.-]+", asked)
    claim = links.read(yes.rsplit("/", 1)[1])
    assert claim is not None
    vote, edition, paper = links.parse_feedback(claim.data) or (0, "", "")
    assert vote == 1 and edition == "2026-11-23"
    with Store.open(world.settings.database.location) as store:
        [stored] = store.digests.recent("user000", limit=1)
        shown = {row[0] for row in store.digests.items(stored.id)}
    assert paper not in shown  # asked about, not counted among the papers
    assert f"{len(shown)} papers for you" in text
    with web_server(world.settings, clock=world.clock) as base, client(base) as http:
        assert http.get(local(no, base)).status_code == 200 and _votes(world) == {}
        assert "Thank you" in http.post(local(no, base)).text
    assert _votes(world) == {paper: -1}


@pytest.mark.parametrize("switch", ["ask_days = 0", "ask = false"])
def test_the_question_can_be_turned_off_for_everyone_or_for_one_reader(tmp_path: Path, switch: str) -> None:
    with smtp_server() as smtp:
        world = world_with_links(tmp_path, people=1, smtp_port=smtp.port)
        if switch == "ask_days = 0":
            world.settings = world.settings.model_copy(update={"rank": RankSettings(ask_days=0)})
        else:
            path = world.settings.subscribers.dir / "user000.toml"
            path.write_text("ask = false\n" + path.read_text())
        world.send()
    [mail] = smtp.box.messages
    assert QUESTION not in mail.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert links_in(mail, "f")  # the papers' own vote links are still there


def test_a_reader_s_question_stops_after_their_first_30_days(tmp_path: Path) -> None:
    first_day, *later_days = sorted(DUMPS.glob("*.txt"))
    with smtp_server() as smtp:
        world = make_world(tmp_path, people=1, smtp_port=smtp.port, dumps=[first_day], base_url=BASE, secret=SECRET)
        world.send()
        world.clock.advance(31 * 86400)
        with Store.open(world.settings.database.location) as store:
            for _ in pipeline.ingest_files(later_days, papers=store.papers, settings=world.settings, now=world.clock()):
                pass
        world.send()
    first, later = (m.get_body(preferencelist=("plain",)).get_content() for m in smtp.box.messages)  # type: ignore[union-attr]
    assert QUESTION in first and QUESTION not in later


def _offered(page: str) -> list[str]:
    return [unescape(name) for name in re.findall(r'<input type="radio" name="(paper:[^"]+)" value="yes"', page)]


def test_the_onboarding_page_offers_ten_papers_and_records_only_what_the_form_posts(tmp_path: Path) -> None:
    world = world_with_links(tmp_path, people=1)
    world.send()
    url = f"/o/{token(world, 'user000', links.ONBOARD)}"
    with web_server(world.settings, clock=world.clock) as base, client(base) as http:
        page = http.get(base + url)
        assert page.status_code == 200 and "<script" not in page.text and _votes(world) == {}
        offered = _offered(page.text)
        assert len(offered) == 10 and len(set(offered)) == 10
        form = re.search(r'name="form" value="([^"]+)"', page.text)
        assert form is not None
        answers = {offered[0]: "yes", offered[1]: "no", offered[2]: "skip", "paper:not-in-the-archive": "yes"}
        assert http.post(base + url, data={**answers, "form": "forged"}).status_code == 403
        assert _votes(world) == {}
        done = http.post(base + url, data={**answers, "form": form.group(1)})
        assert done.status_code == 200 and "2 answers noted" in done.text
        assert _votes(world) == {offered[0].removeprefix("paper:"): 1, offered[1].removeprefix("paper:"): -1}
        again = _offered(http.get(base + url).text)  # what was answered is not asked again
        assert not {offered[0], offered[1]} & set(again)
        other = f"/o/{token(world, 'user000', links.PREFERENCES)}"
        assert http.get(base + other).status_code == 404
        prefs = http.get(f"{base}/p/{token(world, 'user000', links.PREFERENCES)}").text
        assert f'href="{world.settings.delivery.base_url}{url}"' in prefs


def test_a_confirmed_sign_up_is_offered_the_onboarding_page(tmp_path: Path) -> None:
    with smtp_server() as smtp:
        world = world_with_links(tmp_path, people=0, smtp_port=smtp.port, signup=True)
        fields = {"email": "grace@example.org", "keywords": "diffusion model", "timezone": "UTC", "send_at": "07:00"}
        with web_server(world.settings, clock=world.clock) as base, client(base) as http:
            assert http.post(f"{base}/signup", data=fields | {"website": ""}).status_code == 200
            world.send()
            [link] = confirmation_links(smtp.box.messages[0])
            done = http.post(local(link, base)).text
            [onboard] = re.findall(r'href="(https://digest\.example\.org/o/[^"]+)"', done)
            assert "rate ten papers" in done
            assert len(_offered(http.get(local(onboard, base)).text)) == 10
    assert subscriber(world, "grace").status == "active"


def test_digest_onboard_lists_the_papers_or_prints_them_as_json(
    tmp_path: Path, workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    world = world_with_links(tmp_path, people=1)
    world.write_config(f'[delivery]\nbase_url = "{BASE}"\n')
    monkeypatch.setenv("DIGEST_DELIVERY__SECRET", SECRET)
    monkeypatch.chdir(world.root)
    assert main(["onboard", "user000", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 10 and {"best", "unsure", "apart"} == {r["kind"] for r in rows}
    assert main(["onboard", "user000"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("user000: 10 papers to rate, best match first")
    assert "digest feedback user000 PAPER_ID... --up (yes) or --down (no)" in out
    assert "https://digest.example.org/o/" in out
    assert main(["onboard", "nobody"]) == 2
    assert "no subscriber named 'nobody'" in capsys.readouterr().err


def test_digest_onboard_on_a_terminal_asks_each_paper_and_records_the_answers(tmp_path: Path) -> None:
    world = world_with_links(tmp_path, people=1)
    world.write_config()
    env = {**os.environ, "DIGEST_DELIVERY__SECRET": SECRET, "NO_COLOR": "1"}
    main_fd, other = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "digest", "onboard", "user000"],
        cwd=world.root, stdin=other, stdout=other, stderr=other, env=env, close_fds=True,
    )  # fmt: skip
    os.close(other)
    seen, replies = b"", iter([b"y\n", b"maybe\n", b"n\n", b"s\n"] + [b"\n"] * 7)
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        ready, _, _ = select.select([main_fd], [], [], 1.0)
        if not ready:
            continue
        try:
            chunk = os.read(main_fd, 4096)
        except OSError:
            break
        seen += chunk
        while seen.count(b"[s]kip: ") > 0:
            seen = seen.replace(b"[s]kip: ", b"[s]kip> ", 1)
            os.write(main_fd, next(replies, b"\n"))
    process.wait(timeout=30)
    os.close(main_fd)
    text = seen.decode(errors="replace")
    assert process.returncode == 0, text
    assert "please answer y, n or s" in text and "2 answers recorded as votes" in text
    assert sorted(_votes(world).values()) == [-1, 1]


def test_onboarding_ranks_only_the_latest_papers_and_none_voted_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    world = world_with_links(tmp_path, people=1)
    world.send()
    monkeypatch.setattr(onboarding, "ONBOARDING_PAPERS", 40)
    with Store.open(world.settings.database.location) as store:
        recent = [p.id for p in store.papers.since(world.clock() - timedelta(days=60))]
        profile = pipeline.stored_profile(subscriber(world, "user000"))
        first = pipeline.onboarding_offers(store, profile, settings=world.settings, now=world.clock())
        assert len(first) == 10 and {o.item.paper.id for o in first} <= set(recent[-40:])
        pipeline.record_answers(store.feedback, "user000", {first[0].item.paper.id: 1}, at=world.clock())
        again = pipeline.onboarding_offers(store, profile, settings=world.settings, now=world.clock())
    assert first[0].item.paper.id not in {o.item.paper.id for o in again}
    assert {o.item.paper.id for o in again} <= set(recent[-41:])  # the 40 latest not voted on
