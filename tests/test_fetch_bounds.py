"""An endless, slow or lying API costs a bounded time, memory and number of requests, and never a bad dump file."""

from __future__ import annotations

import json
import re
import signal
import socket
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from digest.config import FetchSettings
from digest.errors import FetchError, UsageError
from digest.fetch import Client
from digest.pipeline import fetch_day, fetch_window
from digest.store import Store

from .conftest import DUMPS
from .deliverykit import digest_process
from .test_fetch import API, DAY, ITEMS, NOW, Answer, Time, api, body, client, settings
from .test_schedule import person, world_with

__all__ = ["api"]  # the fixture, used by name


def _page(start: int) -> list[dict[str, Any]]:
    return [{"paper": {"id": f"2411.{n:05d}", "title": f"Paper {n}"}} for n in range(start, start + 100)]


def test_a_server_that_repeats_the_same_full_page_is_read_once(api: tuple[API, str]) -> None:
    server, url = api
    server.script(DAY, Answer(body=body(_page(0))), page=0)
    for page in range(1, 20):
        server.script(DAY, Answer(body=body(_page(0))), page=page)
    with client(url, Time()) as hf:
        got = hf.day(DAY)
    assert got.items is not None and len(got.items) == 100
    assert len(server.requests) == 2  # the second page added nothing: paging stops there


def test_a_server_with_new_full_pages_for_ever_is_refused_after_max_pages(api: tuple[API, str]) -> None:
    server, url = api
    for page in range(30):
        server.script(DAY, Answer(body=body(_page(100 * page))), page=page)
    with client(url, Time(), max_pages=4) as hf, pytest.raises(FetchError) as failed:
        hf.day(DAY)
    assert len(server.requests) == 4
    assert str(failed.value).startswith("2026-11-20: still full pages after 4; a day's list is under 100 papers")
    assert str(failed.value).endswith("(raise [fetch] max_pages if it is real)")


def test_a_day_over_its_byte_cap_is_refused(api: tuple[API, str]) -> None:
    server, url = api
    for page in range(3):
        server.script(DAY, Answer(body=body(_page(100 * page))), page=page)
    size = len(body(_page(0)))
    with client(url, Time(), max_day_mb=1.5 * size / 1_048_576) as hf, pytest.raises(FetchError) as failed:
        hf.day(DAY)
    assert "the day's pages are over the" in str(failed.value) and "[fetch] max_day_mb" in str(failed.value)
    assert len(server.requests) == 2


def test_a_body_that_drips_is_cut_off_after_timeout_s_for_the_whole_answer(api: tuple[API, str]) -> None:
    server, url = api
    server.script(DAY, Answer(body=body(ITEMS), drip=0.05))  # a byte every 50 ms: each read is quick
    started = time.monotonic()
    with client(url, Time(), timeout_s=0.5, max_attempts=2) as hf, pytest.raises(FetchError) as failed:
        hf.day(DAY)
    took = time.monotonic() - started
    assert str(failed.value).startswith("2026-11-20: no answer within 0.5 s") and "2 times" in str(failed.value)
    assert took < 10  # two tries of about half a second each (plus the backoff, which Time skips)


def test_a_304_nobody_asked_for_is_an_error_not_a_crash(api: tuple[API, str]) -> None:
    server, url = api
    server.script(DAY, Answer(304, b""))
    with client(url, Time()) as hf, pytest.raises(FetchError) as failed:
        hf.day(DAY)  # no ETag was sent
    assert str(failed.value) == (
        "2026-11-20: page 0: Hugging Face answered 304 (not modified) to a request that did not ask; try again later"
    )


def test_a_name_that_does_not_resolve_is_tried_twice_then_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def no_dns(host: str, *args: object, **kwargs: object) -> list[Any]:
        asked.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    time_ = Time()
    with client("http://hf.example.invalid", time_) as hf, pytest.raises(FetchError) as failed:
        hf.day(DAY)
    assert asked == ["hf.example.invalid"] * 2 and time_.waits == [2.0]
    assert str(failed.value).startswith("2026-11-20: hf.example.invalid does not resolve (")
    assert str(failed.value).endswith("; check the network's DNS")


def test_a_stop_ends_the_fetch_before_its_next_request(api: tuple[API, str]) -> None:
    server, url = api
    server.script(DAY, Answer(503))
    stop = threading.Event()
    stop.set()  # as the daemon's first SIGTERM sets it
    with Client(FetchSettings(base_url=url), stop=stop) as hf, pytest.raises(FetchError, match="stopped before it"):
        hf.day(DAY)
    assert server.requests == []


def test_a_poisoned_answer_goes_to_quarantine_and_never_into_the_dumps_folder(
    api: tuple[API, str], tmp_path: Path
) -> None:
    server, url = api
    poisoned = json.dumps([{"paper": {"id": "2411.00001", "title": "A", "upvotes": 2**63}}]).encode()
    server.script(DAY, Answer(body=poisoned))
    config = settings(tmp_path, url)
    with Store.open(config.database.path) as store, client(url, Time()) as hf:
        done = fetch_day(DAY, store=store, settings=config, client=hf, now=NOW)
    assert done.error is not None and "too large" in str(done.error)
    assert [p.name for p in (tmp_path / "dumps").iterdir()] == ["quarantine"]
    assert (tmp_path / "dumps" / "quarantine" / "hf-2026-11-20.json").read_bytes() == poisoned


def test_a_list_of_the_wrong_shape_is_checked_before_it_is_written(api: tuple[API, str], tmp_path: Path) -> None:
    server, url = api
    server.script(DAY, Answer(body=b'[{"paper": {"id": "2411.00001"}}]'))  # no title
    config = settings(tmp_path, url)
    with Store.open(config.database.path) as store, client(url, Time()) as hf:
        done = fetch_day(DAY, store=store, settings=config, client=hf, now=NOW)
    assert done.error is not None and "[0].paper.title: missing" in str(done.error)
    assert [p.name for p in (tmp_path / "dumps").iterdir()] == ["quarantine"]


TODAY = date(2026, 12, 3)


@pytest.mark.parametrize(
    ("since", "on", "force", "said"),
    [
        (None, date(1, 1, 1), False, "0001-01-01: before 2020-01-01, when Daily Papers began; give a later date"),
        (date(2019, 12, 31), None, True, "2019-12-31: before 2020-01-01, when Daily Papers began; give a later date"),
        (None, TODAY + timedelta(days=2), False, "2026-12-05 is in the future; Hugging Face lists days up to today"),
        (TODAY - timedelta(days=63), None, False, "--since 2026-10-01 is 63 days back, over 62 (one request"),
    ],
)
def test_fetch_dates_are_bounded(since: date | None, on: date | None, force: bool, said: str) -> None:
    with pytest.raises(UsageError) as refused:
        fetch_window(since=since, on=on, today=TODAY, force=force)
    assert str(refused.value).startswith(said)


def test_fetch_dates_within_bounds() -> None:
    assert fetch_window(since=None, on=None, today=TODAY) == [TODAY]
    assert fetch_window(since=None, on=TODAY + timedelta(days=1), today=TODAY) == [TODAY + timedelta(days=1)]
    assert len(fetch_window(since=TODAY - timedelta(days=62), on=None, today=TODAY)) == 63
    assert (
        len(fetch_window(since=date(2020, 1, 1), on=None, today=TODAY, force=True))
        == (TODAY - date(2020, 1, 1)).days + 1
    )


@pytest.mark.slow
def test_the_daemon_sends_while_a_slow_fetch_drips_and_sigterm_ends_both(api: tuple[API, str], tmp_path: Path) -> None:
    server, url = api
    slow = Answer(body=body(ITEMS), drip=0.5)  # about four minutes for the whole answer
    for day in range(20, 32):
        server.script(date(2026, 11, day) if day <= 30 else date(2026, 12, day - 30), slow)
    for day in range(1, 8):
        server.script(date(2026, 12, day), slow)
    world = world_with(tmp_path, {"ada": person("ada", "UTC", "00:00")}, dumps=[DUMPS / "003_7a5f3204ee6361bf.txt"])
    world.write_config(
        f'[ingest]\ndumps_dir = "{tmp_path / "dumps"}"\n[delivery]\noutbox_dir = "{tmp_path / "outbox"}"\n'
        f'[fetch]\nenabled = true\nbase_url = "{url}"\ntimeout_s = 600\nmax_attempts = 1\n'
    )
    daemon = digest_process(tmp_path, "run")
    try:
        deadline = time.monotonic() + 120
        while not list((tmp_path / "outbox").glob("ada/new/*.eml")):  # the digest goes out while fetching
            assert daemon.poll() is None and time.monotonic() < deadline, "no digest while the fetch dripped"
            time.sleep(0.05)
        assert server.requests  # the fetch is under way, its answer still dripping
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=60)
    assert daemon.returncode == 143, err
    # No day was fetched (its event line is "… fetched day=…"); days the stop cut off say "stopped before it
    # was fetched", which is why the event is matched, not the word.
    assert not re.search(r"Z fetched day=", err) and "stopped signal=SIGTERM" in err, err
