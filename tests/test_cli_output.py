"""What the CLI prints on long work: progress bars on a terminal only, counted summaries, JSON lines everywhere."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from digest.cli import show

from .conftest import DUMPS, ROOT, Result

CLI = Callable[..., Result]
EXAMPLES = ROOT / "examples" / "subscribers"


def _lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


@pytest.fixture
def crowd(workdir: Path, cli: CLI) -> Path:
    """The dumps ingested and twelve subscribers: the four examples and eight copies of chen."""
    folder = workdir / "subscribers"
    shutil.copytree(EXAMPLES, folder)
    for n in range(8):
        text = (EXAMPLES / "chen.toml").read_text().replace('name = "chen"', "")
        (folder / f"reader{n}.toml").write_text(text)
    assert cli("ingest", DUMPS).code == 0
    return folder


@pytest.mark.slow
def test_send_draws_progress_bars_on_a_terminal(cli: CLI, crowd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = io.StringIO()
    monkeypatch.setattr(show, "err", Console(file=terminal, force_terminal=True, width=100))
    result = cli("send")
    assert result.code == 0, result.err
    drawn = terminal.getvalue()
    assert "making digests" in drawn and "12/12" in drawn
    assert "delivering" in drawn
    assert "\x1b[" in drawn  # drawn with terminal controls, and wiped when done (transient)


@pytest.mark.slow
def test_without_a_terminal_there_is_no_bar_and_the_summary_is_counted(cli: CLI, crowd: Path) -> None:
    result = cli("send")
    assert result.code == 0, result.err
    assert "making digests" not in result.err and "\x1b[" not in result.err + result.out
    first, sent = result.out.splitlines()[:2]
    assert first.startswith("made 12 digests: ")
    assert first.endswith(", … and 7 more)")  # five names, then how many more
    assert first.count(",") <= 8
    assert sent == "sent 12 messages"


@pytest.mark.slow
def test_send_json_is_one_object_per_line_with_a_summary(cli: CLI, crowd: Path) -> None:
    result = cli("send", "--json")
    assert result.code == 0, result.err
    events = _lines(result.out)
    made = [e for e in events if e["event"] == "made"]
    sent = [e for e in events if e["event"] == "sent"]
    assert len(made) == 12 and len(sent) == 12
    summary = events[-1]
    assert summary["event"] == "summary" and summary["made"] == 12 and summary["sent"] == 12
    assert summary["papers"] == sum(e["papers"] for e in made)


def test_check_subscribe_and_feedback_speak_json(cli: CLI, workdir: Path) -> None:
    (workdir / "bad.toml").write_text('emial = "x@example.org"\ntimezone = "PST"\nkeywords = ["x"]\n')
    checked = cli("check", EXAMPLES / "ben.toml", workdir / "bad.toml", "--json")
    assert checked.code == 1
    by_file = {row["file"]: row for row in _lines(checked.out)}
    ok, bad = by_file[str(EXAMPLES / "ben.toml")], by_file[str(workdir / "bad.toml")]
    assert ok["status"] == "ok" and ok["name"] == "ben" and ok["channels"] == ["atom"] and ok["webhooks"] == []
    assert bad["status"] == "error" and len(bad["errors"]) == 2
    assert checked.err == ""  # with --json the errors are in the output, once
    assert cli("ingest", DUMPS).code == 0
    [subscribed] = _lines(cli("subscribe", EXAMPLES / "ada.toml", "--json").out)
    assert subscribed["outcome"] == "added" and subscribed["seeds"] == 1 and subscribed["seeds_found"] == 1
    assert subscribed["targets"] == [{"kind": "email", "address": "ada@example.org", "url_env": None}]
    [again] = _lines(cli("subscribe", EXAMPLES / "ada.toml", "--json").out)
    assert again["outcome"] == "unchanged"
    paper = _lines(cli("papers", "--json", "--limit", "1").out)[0]["id"]
    [voted] = _lines(cli("feedback", "ada", paper, "--up", "--json").out)
    assert voted == {"subscriber": "ada", "vote": 1, "papers": [paper], "changed": 1}
    [listed] = _lines(cli("feedback", "ada", "--json").out)
    assert listed["paper"] == paper and listed["vote"] == 1


def test_a_utc_subscriber_is_not_told_utc_twice_and_counts_are_plural_right(cli: CLI, workdir: Path) -> None:
    (workdir / "subscribers").mkdir()
    (workdir / "subscribers" / "una.toml").write_text('keywords = ["agents"]\nmax_items = 1\n')
    (workdir / "subscribers" / "lon.toml").write_text('timezone = "Europe/London"\nkeywords = ["agents"]\n')
    listed = cli("subscribers")
    assert "daily at 07:00 UTC " in listed.out + " " and "07:00 UTC (07:00 UTC)" not in listed.out
    assert "daily at 07:00 Europe/London (" in listed.out  # a zone with summer time keeps its UTC time
    status = cli("status")
    [una_next] = [line for line in status.out.splitlines() if line.startswith("  una ")]
    assert una_next.endswith(" 07:00 UTC")
    assert "pending:     0 deliveries" in status.out
    [una] = [row for row in _lines(cli("subscribers", "--json").out) if row["name"] == "una"]
    assert una["schedule"] == "daily at 07:00 UTC" and una["max_items"] == 1
    described = cli("check", workdir / "subscribers" / "una.toml").out
    assert "up to 1 paper scoring" in described


@pytest.mark.slow
def test_run_once_and_ingest_draw_bars_on_a_terminal(cli: CLI, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = io.StringIO()
    monkeypatch.setattr(show, "err", Console(file=terminal, force_terminal=True, width=100))
    copies = workdir / "many"
    copies.mkdir()
    for n, dump in enumerate(sorted(DUMPS.glob("*.txt")) * 2):
        (copies / f"{n:02d}-{dump.name}").write_bytes(dump.read_bytes() + b"\n" * n)
    assert cli("ingest", copies).code == 0
    assert "ingesting" in terminal.getvalue() and "8/8" in terminal.getvalue()
    shutil.copytree(EXAMPLES, workdir / "subscribers")
    terminal.seek(0)
    terminal.truncate()
    result = cli("run", "--once")
    assert result.code == 0, result.err
    assert "making digests" in terminal.getvalue() and "delivering" in terminal.getvalue()
    assert " done " in terminal.getvalue()  # the log lines still come, printed above the bars


@pytest.mark.slow
def test_deliveries_says_how_many_more_there_are_past_the_limit(cli: CLI, crowd: Path) -> None:
    assert cli("send").code == 0
    capped = cli("deliveries", "--limit", "5").out.splitlines()
    assert len(capped) == 1 + 5 + 1 and capped[-1] == "… and 7 more (--limit 0 for all)"
    whole = cli("deliveries", "--limit", "0").out.splitlines()
    assert len(whole) == 1 + 12 and "more" not in whole[-1]
    assert cli("deliveries").out.splitlines()[-1] != "… and 0 more (--limit 0 for all)"


def test_send_for_one_subscriber_whose_profile_was_just_added(cli: CLI, crowd: Path) -> None:
    text = (EXAMPLES / "chen.toml").read_text().replace('name = "chen"', 'name = "newcomer"')
    (crowd / "newcomer.toml").write_text(text)
    result = cli("send", "--subscriber", "newcomer")
    assert result.code == 0, result.err
    assert result.out.startswith("made 1 digest: ") and "newcomer" in result.out


@pytest.mark.slow
def test_an_smtp_server_that_refuses_is_one_line_with_the_count(cli: CLI, crowd: Path, workdir: Path) -> None:
    from .servers import free_port

    port = free_port()  # nothing listens there
    (workdir / "digest.toml").write_text(f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n')
    result = cli("send")
    assert result.code == 1
    retries = [line for line in result.out.splitlines() if line.startswith("retry:")]
    assert len(retries) == 1
    assert retries[0].startswith(f"retry:   127.0.0.1:{port} refused the connection: 10 emails wait for a retry (")


@pytest.mark.slow
def test_operators_hear_when_readers_get_no_one_click_unsubscribe(cli: CLI, crowd: Path, workdir: Path) -> None:
    from .servers import smtp_server

    with smtp_server() as smtp:
        smtp_config = f'[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\nsecurity = "none"\n'
        (workdir / "digest.toml").write_text(smtp_config + '[delivery]\nbase_url = "https://digest.example.org"\n')
        said = {command: cli(command, *extra).err for command, *extra in (["send"], ["status"], ["check", crowd])}
        for command, err in said.items():
            [line] = [line for line in err.splitlines() if "one-click" in line]
            assert line == (
                "digest: warning: readers' emails carry no one-click unsubscribe (DIGEST_DELIVERY__SECRET not set); "
                "set both and run digest serve: Gmail and Yahoo require one-click unsubscribe for bulk mail"
            ), command
        (workdir / "digest.toml").write_text(smtp_config)
        assert "(DIGEST_DELIVERY__SECRET" not in cli("status").err
        assert "([delivery] base_url and DIGEST_DELIVERY__SECRET not set)" in cli("status").err
