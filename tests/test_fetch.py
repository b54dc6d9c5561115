"""`digest fetch` against a local HTTP server on 127.0.0.1 that replays Hugging Face's daily_papers API.

The fixtures are written from the API's field list (tests/data/hf); waiting is
driven by the tests (a recorded sleep and a clock it advances), except where a
real timeout is the point.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine

from digest import events, schedule
from digest.config import FetchSettings, IngestSettings, Settings
from digest.errors import FetchError
from digest.fetch import USER_AGENT, Client
from digest.pipeline import fetch_day
from digest.store import Store

from .conftest import Result
from .servers import serving

HF = Path(__file__).parent / "data" / "hf"
DAY = date(2026, 11, 20)
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
ITEMS = json.loads((HF / "2026-11-20.json").read_text(encoding="utf-8"))


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"[]"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    cut: bool = False  # promise the whole body, send half of it and hang up
    length: bool = True  # send Content-Length (without it the body ends when the connection closes)
    drip: float = 0.0  # seconds between the body's bytes, sent one at a time


@dataclass
class API:
    """Scripted answers per (date, page); the last one repeats. Every request is kept."""

    answers: dict[tuple[str, int], list[Answer]] = field(default_factory=dict)
    requests: list[tuple[str, int, dict[str, str]]] = field(default_factory=list)

    def script(self, day: date, *answers: Answer, page: int = 0) -> None:
        self.answers[day.isoformat(), page] = list(answers)


@contextmanager
def replay(api: API) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            key = (query.get("date", ""), int(query.get("p", "0")))
            api.requests.append((*key, {k.lower(): v for k, v in self.headers.items()}))
            script = api.answers.get(key) or [Answer(body=b"[]")]
            answer = script.pop(0) if len(script) > 1 else script[0]
            if url.path != "/api/daily_papers":
                answer = Answer(404, b'{"error":"not found"}')
            if answer.delay:
                threading.Event().wait(answer.delay)
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            if answer.length:
                self.send_header("content-length", str(len(answer.body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client stopped reading
                if answer.drip:
                    for n in range(len(answer.body)):
                        self.wfile.write(answer.body[n : n + 1])
                        self.wfile.flush()
                        threading.Event().wait(answer.drip)
                else:
                    self.wfile.write(answer.body[: len(answer.body) // 2] if answer.cut else answer.body)
            if answer.cut or not answer.length:
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            return None

    with serving(Handler) as url:
        yield url


class Time:
    """A clock that only moves when the client sleeps: the waits it asked for, exactly."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(round(seconds, 3))
        self.now += seconds

    def clock(self) -> float:
        return self.now


@pytest.fixture
def api() -> Iterator[tuple[API, str]]:
    found = API()
    with replay(found) as url:
        yield found, url


def client(url: str, time: Time, **settings: Any) -> Client:
    return Client(FetchSettings(base_url=url, **settings), sleep=time.sleep, clock=time.clock)


def body(items: list[Any]) -> bytes:
    return json.dumps(items).encode()


def test_a_day_in_one_page_with_the_clients_name_and_no_token(api: tuple[API, str]) -> None:
    server, url = api
    server.script(DAY, Answer(body=body(ITEMS), headers={"ETag": '"v1"'}))
    time = Time()
    with client(url, time) as hf:
        got = hf.day(DAY)
    assert got.items == ITEMS and got.etag == '"v1"' and json.loads(got.body) == ITEMS
    [(day, page, headers)] = server.requests
    assert (day, page) == ("2026-11-20", 0) and headers["user-agent"] == USER_AGENT
    assert USER_AGENT.startswith("paper-digest/") and "authorization" not in headers and time.waits == []


def test_pages_until_a_short_one_one_request_a_second(api: tuple[API, str]) -> None:
    server, url = api
    full = [{"paper": {"id": f"2411.{n:05d}", "title": f"Paper {n}"}} for n in range(100)]
    server.script(DAY, Answer(body=body(full)), page=0)
    server.script(DAY, Answer(body=body(ITEMS)), page=1)
    time = Time()
    with Client(FetchSettings(base_url=url), token="hf_secret", sleep=time.sleep, clock=time.clock) as hf:
        got = hf.day(DAY)
    assert got.items is not None and len(got.items) == 103
    assert [(d, p) for d, p, _ in server.requests] == [("2026-11-20", 0), ("2026-11-20", 1)]
    assert time.waits == [1.0]  # the second request a second after the first
    assert all(h["authorization"] == "Bearer hf_secret" for _, _, h in server.requests)


def test_429_waits_as_retry_after_says_then_takes_the_200(api: tuple[API, str]) -> None:
    server, url = api
    server.script(
        DAY, Answer(429, b"", {"Retry-After": "7", "RateLimit": "limit=500, remaining=0"}), Answer(body=body(ITEMS))
    )
    time = Time()
    with client(url, time) as hf:
        assert hf.day(DAY).items == ITEMS
    assert time.waits == [7.0] and len(server.requests) == 2


def test_500s_are_retried_with_backoff_then_given_up_after_max_attempts(api: tuple[API, str]) -> None:
    server, url = api
    server.script(DAY, Answer(500), Answer(503), Answer(body=body(ITEMS)))
    time = Time()
    with client(url, time) as hf:
        assert hf.day(DAY).items == ITEMS
    assert time.waits == [2.0, 4.0]
    server.script(DAY, Answer(502))
    with client(url, Time(), max_attempts=3) as hf, pytest.raises(FetchError) as failed:
        hf.day(DAY)
    assert str(failed.value) == (
        "2026-11-20: Hugging Face answered 502 3 times; try again later (or raise [fetch] max_attempts)"
    )


def test_no_answer_in_time_is_a_clear_error(api: tuple[API, str]) -> None:
    server, url = api
    server.script(DAY, Answer(body=body(ITEMS), delay=2.0))
    with client(url, Time(), timeout_s=0.3, max_attempts=2) as hf, pytest.raises(FetchError) as failed:
        hf.day(DAY)
    assert str(failed.value).startswith("2026-11-20: no answer within 0.3 s (ReadTimeout), 2 times; check the network")


def test_a_truncated_body_is_retried_and_refused_if_it_stays_cut(api: tuple[API, str]) -> None:
    server, url = api
    server.script(DAY, Answer(body=body(ITEMS), cut=True), Answer(body=body(ITEMS)))
    with client(url, Time()) as hf:
        assert hf.day(DAY).items == ITEMS
    server.script(DAY, Answer(body=body(ITEMS), cut=True))
    with client(url, Time(), max_attempts=2) as hf, pytest.raises(FetchError) as failed:
        hf.day(DAY)
    assert str(failed.value).startswith("2026-11-20: the connection failed (") and "2 times" in str(failed.value)


@pytest.mark.parametrize("length", [True, False])
def test_a_30_mb_answer_is_refused(api: tuple[API, str], length: bool) -> None:
    server, url = api
    server.script(DAY, Answer(body=b"[" + b" " * (30 << 20) + b"]", length=length))
    with client(url, Time()) as hf, pytest.raises(FetchError) as failed:
        hf.day(DAY)
    assert (
        str(failed.value) == "2026-11-20: the answer is over the 10 MB limit; raise [fetch] max_size_mb if it is real"
    )


def test_a_bad_date_is_refused_naming_it(api: tuple[API, str]) -> None:
    server, url = api
    server.script(DAY, Answer(400, b'{"error":"Invalid date"}'))
    with client(url, Time()) as hf, pytest.raises(FetchError) as failed:
        hf.day(DAY)
    assert str(failed.value) == "2026-11-20: Hugging Face answered 400 (Invalid date); check the date (YYYY-MM-DD)"
    assert len(server.requests) == 1  # a 4xx is not retried


def settings(tmp_path: Path, url: str) -> Settings:
    return Settings(
        database={"path": tmp_path / "d.sqlite3"},
        ingest=IngestSettings(dumps_dir=tmp_path / "dumps"),
        fetch=FetchSettings(base_url=url),
    )


def test_a_day_is_written_ingested_and_not_again_when_unchanged(api: tuple[API, str], tmp_path: Path) -> None:
    server, url = api
    server.script(DAY, Answer(body=body(ITEMS), headers={"ETag": '"v1"'}))
    config = settings(tmp_path, url)
    with Store.open(config.database.path) as store, client(url, Time()) as hf:
        first = fetch_day(DAY, store=store, settings=config, client=hf, now=NOW)
        assert first.error is None and first.record.outcome == "new" and first.record.detail == "hf-2026-11-20.json"
        assert first.file is not None and first.file.ingested is not None
        assert (first.file.ingested.record.papers, first.file.ingested.record.new) == (3, 3)
        assert json.loads((tmp_path / "dumps" / "hf-2026-11-20.json").read_text(encoding="utf-8")) == ITEMS
        server.script(DAY, Answer(304, b""))
        again = fetch_day(DAY, store=store, settings=config, client=hf, now=NOW)
        assert again.record.outcome == "unchanged" and again.file is None and again.record.items == 3
        assert server.requests[-1][2]["if-none-match"] == '"v1"'
        server.script(DAY, Answer(body=body(ITEMS)))  # no ETag this time: the same bytes are not written again
        third = fetch_day(DAY, store=store, settings=config, client=hf, now=NOW)
        assert third.record.outcome == "unchanged" and store.papers.status().dumps == 1
        assert store.fetches.last() == third.record


def test_a_weekend_is_no_papers_listed_not_an_error(api: tuple[API, str], tmp_path: Path) -> None:
    server, url = api
    saturday = date(2026, 11, 21)
    server.script(saturday, Answer(body=b"[]"))
    config = settings(tmp_path, url)
    with Store.open(config.database.path) as store, client(url, Time()) as hf:
        done = fetch_day(saturday, store=store, settings=config, client=hf, now=NOW)
    assert done.error is None and done.record.outcome == "empty" and not (tmp_path / "dumps").exists()


def test_an_answer_that_is_not_json_is_quarantined(api: tuple[API, str], tmp_path: Path) -> None:
    server, url = api
    server.script(DAY, Answer(body=b"<html>Service Unavailable</html>"))
    config = settings(tmp_path, url)
    with Store.open(config.database.path) as store, client(url, Time()) as hf:
        done = fetch_day(DAY, store=store, settings=config, client=hf, now=NOW)
        assert done.error is not None and str(done.error).startswith("2026-11-20: page 0: not valid JSON")
        assert store.fetches.get(DAY) is not None and store.fetches.get(DAY).outcome == "failed"  # type: ignore[union-attr]
    kept = tmp_path / "dumps" / "quarantine" / "hf-2026-11-20.json"
    assert kept.read_bytes() == b"<html>Service Unavailable</html>"
    assert "not valid JSON" in kept.with_name(kept.name + ".error").read_text(encoding="utf-8")
    assert not (tmp_path / "dumps" / "hf-2026-11-20.json").exists()


@time_machine.travel("2026-11-26 09:00:00+00:00")
def test_digest_fetch_prints_what_ingest_prints_and_keeps_the_token_to_itself(
    api: tuple[API, str], cli: Callable[..., Result], workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, url = api
    server.script(DAY, Answer(body=body(ITEMS), headers={"ETag": '"v1"'}))
    server.script(date(2026, 11, 21), Answer(body=b"[]"))
    monkeypatch.setenv("DIGEST_FETCH__BASE_URL", url)
    monkeypatch.setenv("DIGEST_FETCH__MIN_INTERVAL_S", "0")
    monkeypatch.setenv("HF_TOKEN", "hf_do_not_print_me")
    first = cli("fetch", "--date", "2026-11-20")
    assert first.code == 0, first.err
    assert "hf-2026-11-20.json: hf-json, 2026-11-20: 3 papers, 3 new, 0 already seen" in first.out
    second = cli("fetch", "--date", "2026-11-20", "--json")
    assert json.loads(second.out.splitlines()[0]) == {"day": "2026-11-20", "outcome": "unchanged", "items": 3}
    weekend = cli("fetch", "--date", "2026-11-21")
    assert "2026-11-21: no papers listed for 2026-11-21" in weekend.out
    span = cli("fetch", "--since", "2026-11-24", "--json")  # to today: unscripted days answer []
    assert [json.loads(line)["day"] for line in span.out.splitlines()] == ["2026-11-24", "2026-11-25", "2026-11-26"]
    status = cli("status")
    assert "last fetch:  2026-11-26 at 2026-11-26 09:00 UTC: no papers listed" in status.out
    everything = first.out + first.err + second.out + second.err + weekend.out + weekend.err
    assert "hf_do_not_print_me" not in everything
    assert all(h["authorization"] == "Bearer hf_do_not_print_me" for _, _, h in server.requests)
    future = cli("fetch", "--date", "2999-01-01")
    assert future.code == 2 and "is in the future" in future.err
    assert os.environ["HF_TOKEN"] == "hf_do_not_print_me"


def test_the_daemon_fetches_the_missed_days_first_then_only_what_is_not_fetched_yet(
    api: tuple[API, str], tmp_path: Path
) -> None:
    server, url = api
    today = date(2026, 11, 22)
    server.script(date(2026, 11, 20), Answer(body=body(ITEMS)))
    server.script(date(2026, 11, 21), Answer(503), Answer(body=b"[]"))  # a hiccup, retried
    server.script(today, Answer(body=b"[]"))
    config = Settings(
        database={"path": tmp_path / "d.sqlite3"},
        ingest=IngestSettings(dumps_dir=tmp_path / "dumps"),
        fetch=FetchSettings(base_url=url, enabled=True, backfill_days=2, min_interval_s=0),
        schedule={"poll_s": 5},
    )
    lines = io.StringIO()
    clock = lambda: datetime(2026, 11, 22, 6, 0, tzinfo=UTC)  # noqa: E731 - a fixed clock
    daemon = schedule.Daemon(config, log=events.EventLog(stream=lines, clock=clock), clock=clock)
    waits: list[float] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("digest.fetch.Client._wait", lambda self, seconds: waits.append(seconds))
        assert daemon.once(look_twice_after=0) == 0
    log = lines.getvalue().splitlines()
    fetched = [line for line in log if " fetched " in line]
    assert [line.split(" day=")[1].split(" ")[0] for line in fetched] == ["2026-11-20", "2026-11-21", "2026-11-22"]
    assert "file=hf-2026-11-20.json papers=3 new=3 seen=0" in fetched[0] and "outcome=empty" in fetched[1]
    assert log.index(fetched[-1]) < next(i for i, line in enumerate(log) if " done " in line)
    assert [w for w in waits if w] == [2.0]  # the 503's backoff, and no pause between requests
    asked = len(server.requests)
    lines.truncate(0)
    assert daemon.fetch() == 0  # later the same day: only today again
    assert len(server.requests) == asked + 1 and server.requests[-1][0] == "2026-11-22"
