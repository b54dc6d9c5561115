"""Subscribers through the CLI: subscribe, the synced folder, pause/resume, check, rank and preview."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

from .conftest import DUMPS, ON_EACH_DATABASE, ROOT, Result

CLI = Callable[..., Result]
EXAMPLES = ROOT / "examples" / "subscribers"

pytestmark = [pytest.mark.usefixtures("on_each_database"), ON_EACH_DATABASE]


def test_subscribe_stores_and_describes(cli: CLI, workdir: Path) -> None:
    cli("ingest", DUMPS)
    result = cli("subscribe", EXAMPLES / "ada.toml")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == "ada: added"
    assert "  when:      daily at 07:30 Europe/Berlin (" in result.out
    assert "  where:     email ada@example.org" in result.out
    assert (
        "  keywords:  quantization ×1.5, pruning, model compression, sparsity ×0.5, knowledge distillation ×0.5"
        in result.out
    )
    assert "  seeds:     1 paper (1 found in the archive" in result.out
    assert cli("subscribe", EXAMPLES / "ada.toml").out.startswith("ada: already subscribed, unchanged")


def test_subscribe_a_bad_profile_is_one_line(cli: CLI, workdir: Path) -> None:
    (workdir / "bad.toml").write_text('timezone = "Mars/Olympus"\nkeywords = ["x"]\n')
    result = cli("subscribe", workdir / "bad.toml")
    assert result.code == 1
    assert result.err.strip().splitlines() == [
        f"digest: error: {workdir / 'bad.toml'}: key 'timezone': not an IANA time zone (got 'Mars/Olympus'); "
        'use an IANA zone name like "Europe/Berlin"'
    ]


def test_folder_sync_adds_updates_and_removes(cli: CLI, folder: Path) -> None:
    first = cli("subscribers", "--json")
    assert first.code == 0
    assert [json.loads(line)["name"] for line in first.out.splitlines()] == ["ada", "ben", "chen", "dora"]
    assert "subscribers: ada added (from subscribers)" in first.err
    (folder / "chen.toml").write_text((folder / "chen.toml").read_text().replace('"09:00"', '"10:00"'))
    (folder / "dora.toml").unlink()
    second = cli("subscribers")
    assert "subscribers: chen updated" in second.err
    assert "subscribers: dora unsubscribed (its file left subscribers)" in second.err
    assert "weekdays at 10:00 Asia/Shanghai" in second.out
    assert "dora" not in second.out
    assert "dora" in cli("subscribers", "--all").out


def test_a_broken_profile_keeps_its_last_good_version(cli: CLI, folder: Path) -> None:
    cli("subscribers")
    (folder / "ben.toml").write_text((folder / "ben.toml").read_text().replace('"08:00"', '"8 o\'clock"'))
    result = cli("subscribers", "--json")
    assert result.code == 1
    assert "ben.toml: key 'send_at': not a time of day" in result.err
    assert "(the last good version stays in force)" in result.err
    ben = next(json.loads(line) for line in result.out.splitlines() if '"ben"' in line)
    assert ben["status"] == "active"
    assert "08:00 America/Denver" in ben["schedule"]


def test_two_files_with_one_name_in_the_folder(cli: CLI, folder: Path) -> None:
    (folder / "zz-ada-again.toml").write_text('name = "ada"\nkeywords = ["x"]\n')
    result = cli("subscribers", "--json")
    assert result.code == 1
    assert "zz-ada-again.toml: key 'name': 'ada' is already used by" in result.err


def test_pause_resume_unsubscribe(cli: CLI, folder: Path) -> None:
    cli("subscribers")
    assert cli("pause", "ben", "--until", "2999-01-31").out.startswith("ben: paused until 2999-01-31")
    assert '"status": "paused", "paused_until": "2999-01-31"' in cli("subscribers", "--json").out
    assert cli("resume", "ben").out.strip() == "ben: active"
    assert cli("pause", "ben", "--until", "2001-01-01").code == 2
    assert cli("unsubscribe", "ghost").code == 2
    assert "no subscriber named 'ghost'" in cli("resume", "ghost").err
    cli("unsubscribe", "chen")
    (folder / "chen.toml").unlink()
    assert "chen" not in cli("subscribers").out


def test_an_unsubscribe_from_the_cli_sticks_until_resume(cli: CLI, folder: Path) -> None:
    cli("subscribers")
    assert cli("unsubscribe", "chen").code == 0
    synced = cli("subscribers")  # chen.toml is still in the folder
    assert "subscribers: chen stays unsubscribed (by the operator on " in synced.err
    assert '"digest resume chen" to undo' in synced.err
    assert "chen" not in synced.out
    assert "stays unsubscribed" not in cli("subscribers").err  # said once
    assert cli("resume", "chen").out.strip() == "chen: active"
    assert "chen" in cli("subscribers").out


def test_feedback_votes_from_the_cli(cli: CLI, folder: Path) -> None:
    cli("ingest", DUMPS)
    cli("subscribers")
    paper = json.loads(cli("papers", "--json", "-n", "1").out.splitlines()[0])["id"]
    assert cli("feedback", "ada", paper, "--up").out.strip() == "ada: more like 1 paper (1 changed)"
    assert cli("feedback", "ada", paper, "--up").out.strip() == "ada: more like 1 paper (0 changed)"
    [line] = cli("feedback", "ada", "--json").out.splitlines()
    assert json.loads(line)["vote"] == 1 and json.loads(line)["paper"] == paper
    assert cli("feedback", "ada", paper, "--down").code == 0
    assert cli("feedback", "ada").out.startswith(f"-1  {paper}")
    assert cli("feedback", "ada", paper, "--clear").code == 0
    assert cli("feedback", "ada").out.strip() == "ada: no votes yet"
    assert cli("feedback", "ada", paper).code == 2  # which way?
    assert cli("feedback", "ghost").code == 2


def test_rank_a_stored_subscriber_with_their_votes_and_say_what_stayed_under(cli: CLI, folder: Path) -> None:
    cli("ingest", DUMPS)
    cli("subscribers")
    result = cli("rank", "--subscriber", "dora")
    assert result.code == 0, result.err
    assert re.search(
        r"\n  \d+ more papers? matched under min_score 0\.05 \(best 0\.\d\d\); "
        r"digest rank --subscriber dora --all shows them\n",
        result.out,
    )
    top = _lines(cli("rank", "--subscriber", "dora", "--json").out)[0]["id"]
    assert cli("feedback", "dora", top, "--down").code == 0
    assert top not in {row["id"] for row in _lines(cli("rank", "--subscriber", "dora", "--all", "--json").out)}
    assert cli("rank", "--subscriber", "ghost").code == 2
    assert cli("rank").code == 2  # --profile or --subscriber


def _lines(out: str) -> list[dict[str, Any]]:
    """Machine output: one JSON object per line, every line."""
    return [json.loads(line) for line in out.splitlines()]


def test_check_validates_without_storing(cli: CLI, workdir: Path) -> None:
    (workdir / "bad.toml").write_text("[keywords]\nx = -2\n")
    result = cli("check", EXAMPLES / "chen.toml", workdir / "bad.toml")
    assert result.code == 1
    assert f"{EXAMPLES / 'chen.toml'}: ok (chen)" in result.out
    assert "bad.toml: key 'keywords.\"x\"': out of range" in result.err
    assert not (workdir / "var").exists()


def test_rank_json_on_a_seed_dump(cli: CLI) -> None:
    result = cli("rank", "--profile", EXAMPLES / "ada.toml", "--dump", DUMPS / "002_de1b89f38ace8a1e.txt", "--json")
    assert result.code == 0, result.err
    rows = _lines(result.out)
    assert 0 < len(rows) <= 8
    assert all(list(row) == ["rank", "id", "title", "score", "why"] and row["why"] for row in rows)
    assert [row["rank"] for row in rows] == list(range(1, len(rows) + 1))
    assert all("survey" not in row["title"].lower() for row in rows)
    assert rows[0]["why"][0]["kind"] == "keyword"
    everything = _lines(
        cli(
            "rank", "--profile", EXAMPLES / "ada.toml", "--dump", DUMPS / "002_de1b89f38ace8a1e.txt", "--json", "--all"
        ).out
    )
    papers = json.loads(cli("parse", "--json", DUMPS / "002_de1b89f38ace8a1e.txt").out)["papers"]
    kept = [p["id"] for p in papers if "survey" not in f"{p['title']} {p['abstract']}".lower()]
    assert len(kept) < 86
    assert sorted(r["id"] for r in everything) == sorted(kept)
    assert [r["score"] for r in everything] == sorted((r["score"] for r in everything), reverse=True)


def test_rank_new_needs_an_ingest_first(cli: CLI) -> None:
    result = cli("rank", "--profile", EXAMPLES / "ada.toml", "--new")
    assert result.code == 1
    assert "no dumps ingested yet" in result.err
    cli("ingest", DUMPS)
    text = cli("rank", "--profile", EXAMPLES / "ada.toml")
    assert text.code == 0
    assert re.match(r"ada: top \d+ of 63 papers in ", text.out)


def test_preview_shows_what_would_be_sent(cli: CLI, folder: Path) -> None:
    cli("ingest", DUMPS)
    result = cli("preview", "chen")
    assert result.code == 0, result.err
    assert result.out.startswith("chen: weekdays at 09:00 Asia/Shanghai")
    assert "10 papers for chen out of 429 new since " in result.out  # a first digest: all of today's papers
    assert "   1. " in result.out and "Image Generation" in result.out
    assert "“image generation” in the title" in result.out
    assert "trending today" in result.out
    weekly = cli("preview", "ben")
    assert "papers for ben out of 429 new since " in weekly.out and "Weather" in weekly.out
    assert cli("preview", "nobody").code == 2


@pytest.mark.parametrize("fmt", ["html", "text", "md", "slack", "discord", "teams", "mattermost", "webhook"])
def test_preview_in_every_format(cli: CLI, folder: Path, fmt: str) -> None:
    cli("ingest", DUMPS)
    result = cli("preview", "chen", "--format", fmt)
    assert result.code == 0, result.err
    if fmt in ("html",):
        assert result.out.startswith("<!DOCTYPE html>") and "Image Generation" in result.out
    elif fmt in ("text", "md"):
        assert "Your papers for" in result.out and "Image Generation" in result.out
    else:
        payload = json.loads(result.out)
        assert "Image Generation" in json.dumps(payload)


def test_preview_out_writes_a_file(cli: CLI, folder: Path, workdir: Path) -> None:
    cli("ingest", DUMPS)
    result = cli("preview", "chen", "--format", "md", "--out", workdir / "out" / "chen.md")
    assert result.code == 0
    assert result.out == ""
    assert "chen: their next digest, if it were made now, as md, written to " in result.err
    assert (workdir / "out" / "chen.md").read_text().startswith("# Your papers for")


@pytest.mark.slow
def test_preview_after_the_digest_went_out_shows_the_last_one_and_says_so(
    cli: CLI, folder: Path, workdir: Path
) -> None:
    """Right after a send nothing is new: preview shows what chen got, not a notice chen never receives."""
    cli("ingest", DUMPS)
    assert cli("send").code == 0
    shown = cli("preview", "chen")
    assert shown.code == 0, shown.err
    lines = shown.out.splitlines()
    assert lines[1].startswith("nothing new for chen since ") and lines[1].endswith("; their last digest:")
    assert lines[2].startswith("edition ") and "Your papers for" in lines[2]
    assert "   1. " in shown.out and "Image Generation" in shown.out
    assert "nothing matched" not in shown.out.lower()
    sent = next((workdir / "outbox" / "chen" / "new").glob("*.eml")).read_bytes()
    html = cli("preview", "chen", "--format", "html", "--out", workdir / "chen.html")
    assert "chen: nothing new for them yet; their last digest (edition " in html.err
    page = (workdir / "chen.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "Image Generation" in page
    text = cli("preview", "chen", "--format", "text")
    plain = message_from_bytes(sent, policy=policy.default).get_body(("plain",))
    assert plain is not None
    assert text.out.split() == plain.get_content().split()  # the frozen text, as it was sent (line ends aside)
    slack = cli("preview", "chen", "--format", "slack")
    assert "Image Generation" in slack.out  # chat formats made again from the frozen items


def test_preview_before_any_digest_with_nothing_new_shows_the_notice(cli: CLI, workdir: Path) -> None:
    (workdir / "subscribers").mkdir()
    (workdir / "subscribers" / "nora.toml").write_text('keywords = ["agents"]\nempty_day = "notice"\n')
    shown = cli("preview", "nora")
    assert shown.code == 0, shown.err
    assert "nothing scores 0.1 or more today; they would get a short 'nothing matched today' notice" in shown.out
    md = cli("preview", "nora", "--format", "md")
    assert md.out.startswith("# Nothing matched today") and "the notice they would get" in md.err


def test_preview_with_a_broken_user_template(
    cli: CLI, folder: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli("ingest", DUMPS)
    (workdir / "tpl").mkdir()
    (workdir / "tpl" / "digest.md.j2").write_text("{{ items | nosuchfilter }}")
    monkeypatch.setenv("DIGEST_RENDER__TEMPLATES_DIR", str(workdir / "tpl"))
    result = cli("preview", "chen", "--format", "md")
    assert result.code == 1
    [line] = result.err.strip().splitlines()[-1:]
    assert "digest.md.j2" in line and "template syntax error" in line


def test_email_without_an_smtp_host_is_said_where_it_matters(
    cli: CLI, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No [smtp] host: subscribers, send and status say that email goes to the outbox instead."""
    warning = "digest: warning: no [smtp] host: email for 2 subscribers goes to outbox/ instead; set [smtp] host"
    listed = cli("subscribers")
    assert warning in listed.err and "email ada@example.org (to outbox: no SMTP host)" in listed.out
    assert warning in cli("status").err and warning in cli("send", "--dry-run").err
    monkeypatch.setenv("DIGEST_SMTP__HOST", "mail.example.org")
    listed = cli("subscribers")
    assert "no [smtp] host" not in listed.err and "email ada@example.org " in listed.out and "outbox:" not in listed.out
    assert "no one-click unsubscribe" in listed.err  # real mail now, and no signed links to unsubscribe with


def test_a_profile_lists_all_its_mistakes_at_once_with_the_toml_scope_hint(cli: CLI, workdir: Path) -> None:
    bad = workdir / "bob.toml"
    bad.write_text(
        'emial = "bob@example.org"\nkeyword = ["x"]\n[keywords]\n"agents" = 1.0\nemail = "bob@example.org"\n'
    )
    result = cli("subscribe", bad)
    assert result.code == 1
    assert result.err.strip().splitlines() == [
        f"digest: error: {bad}: key 'emial': unknown key; did you mean 'email'?",
        f"digest: error: {bad}: key 'keyword': unknown key; did you mean 'keywords'?",
        f"digest: error: {bad}: key 'keywords.email': 'email' is written below [keywords], so TOML puts it in "
        "that table; move it above the [keywords] line",
    ]


@pytest.mark.parametrize(
    ("file", "text", "said"),
    [
        (
            "x.toml",
            'timezone = "PST"\n',
            "key 'timezone': an abbreviation, not a zone (it does not follow daylight "
            "saving) (got 'PST'); write the place's zone, like \"America/Los_Angeles\"",
        ),
        ("x.toml", 'timezone = "europe/berlin"\n', "did you mean 'Europe/Berlin'?"),
        ("x.toml", 'name = "Zoë"\n', "key 'name': 'ë' is not allowed in a name (use letters a-z and A-Z"),
        ("x.toml", 'name = ".hidden"\n', "key 'name': a name starts with a letter or digit, not '.'; change name"),
        ("Jane Doe.toml", "", "the file name 'Jane Doe' (the subscriber's name): a space is not allowed in a name"),
        ("feeds.toml", "", "'feeds' is the outbox's own folder (its Atom feeds); pick another name"),
        ("x.toml", 'name = "FEEDS"\n', "'FEEDS' is the outbox's own folder"),
    ],
)
def test_names_and_zones_say_what_is_wrong(cli: CLI, workdir: Path, file: str, text: str, said: str) -> None:
    (workdir / file).write_text(text + 'keywords = ["x"]\n')
    result = cli("check", workdir / file)
    assert result.code == 1
    assert said in result.err


def test_a_name_owned_by_another_file_is_refused_both_ways(cli: CLI, folder: Path, workdir: Path) -> None:
    assert cli("subscribers").code == 0
    elsewhere = workdir / "elsewhere" / "ada-copy.toml"
    elsewhere.parent.mkdir()
    elsewhere.write_text('name = "ada"\nemail = "other@example.org"\nkeywords = ["x"]\n')
    result = cli("subscribe", elsewhere)
    assert result.code == 1
    assert result.err.strip() == (
        f"digest: error: {elsewhere}: name 'ada' belongs to subscribers/ada.toml; give this profile another name "
        '(name = "…" or rename the file), or edit subscribers/ada.toml instead'
    )
    listed = [json.loads(line) for line in cli("subscribers", "--json").out.splitlines()]
    assert [row["source"] for row in listed if row["name"] == "ada"] == ["subscribers/ada.toml"]
    # The other way round: a name subscribed from outside the folder, then a folder file claims it.
    outside = workdir / "elsewhere" / "erin.toml"
    outside.write_text('email = "erin@example.org"\nkeywords = ["x"]\n')
    assert cli("subscribe", outside).code == 0
    (folder / "erin.toml").write_text('email = "impostor@example.org"\nkeywords = ["y"]\n')
    synced = cli("subscribers", "--json")
    assert f"digest: error: subscribers/erin.toml: name 'erin' belongs to {outside}" in synced.err
    rows = [json.loads(line) for line in synced.out.splitlines()]
    assert [row["source"] for row in rows if row["name"] == "erin"] == [str(outside)]


def test_preview_of_paused_and_unsubscribed_subscribers_says_which_they_are(cli: CLI, folder: Path) -> None:
    cli("ingest", DUMPS)
    cli("subscribers")
    assert cli("pause", "chen").code == 0
    paused = cli("preview", "chen")
    assert paused.code == 0, paused.err
    assert "chen is paused: nothing is sent to them now; this is what they would get" in paused.out
    assert "Image Generation" in paused.out
    assert cli("unsubscribe", "ada").code == 0
    gone = cli("preview", "ada", "--format", "text")
    assert gone.code == 0 and "(they are unsubscribed: nothing is sent to them now)" in gone.err and gone.out


@pytest.mark.slow
def test_preview_as_markdown_of_an_email_only_digest_is_never_empty(cli: CLI, folder: Path, workdir: Path) -> None:
    from .servers import smtp_server

    cli("ingest", DUMPS)
    with smtp_server() as smtp:
        (workdir / "digest.toml").write_text(f'[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\nsecurity = "none"\n')
        assert cli("send").code == 0  # chen's digest went by SMTP only: no Markdown was kept with it
        assert smtp.box.to("chen@example.org")
    shown = cli("preview", "chen", "--format", "md")
    assert shown.code == 0 and shown.out.startswith("# Your papers for") and "Image Generation" in shown.out
