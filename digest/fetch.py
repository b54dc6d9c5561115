"""Hugging Face's Daily Papers list over HTTP: one day, every page, politely and within bounds. The only room
that calls out.

``GET {base_url}/api/daily_papers?date=YYYY-MM-DD&p=N&limit=100``, page by page
until a short or empty one, a page that adds no paper not seen on an earlier page
(a server that ignores ``p``), or ``max_pages`` (then the day is refused: a real
day is one page). At most one request per ``min_interval_s``; 429 and 5xx
answers, timeouts and dropped connections are retried up to ``max_attempts``
times, waiting as ``Retry-After`` says or 2, 4, 8 … seconds; a host name that
does not resolve is tried twice; any other 4xx is refused at once. Each answer
must arrive whole within ``timeout_s`` and ``max_size_mb``, and a day's pages
within ``max_day_mb``. A whole pass (``deadline``) and a stop signal (``stop``)
end the work between two reads. ``HF_TOKEN``, when set, goes in the
Authorization header and nowhere else. Waiting and the clock are passed in, so
tests drive them.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from digest import __version__
from digest.config import FetchSettings
from digest.errors import FetchError, ParseError
from digest.ingest import safejson

PAGE = 100  # the API's largest page
USER_AGENT = f"paper-digest/{__version__}"
LONGEST_WAIT = 600.0  # seconds: a Retry-After beyond this is taken as this


@dataclass(frozen=True, slots=True)
class DayList:
    """One day's list: ``items`` as Hugging Face gave them (None: unchanged since ``etag``), and the body to keep."""

    items: list[Any] | None
    body: bytes
    etag: str | None


class NotJSONError(FetchError):
    """An answer that is not a JSON list; ``body`` is kept so it can be quarantined like any bad dump."""

    def __init__(self, message: str, body: bytes) -> None:
        super().__init__(message)
        self.body = body


class Client:
    """An HTTP client for the daily_papers API (close it, or use it as a context manager)."""

    def __init__(
        self,
        settings: FetchSettings,
        *,
        token: str | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
        stop: threading.Event | None = None,
        deadline: float | None = None,
    ) -> None:
        """``stop`` ends the work at the next read or wait; ``deadline`` (``time.monotonic``) ends it then."""
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._settings = settings
        # Each read may take a quarter of the answer's time; the whole answer is held to timeout_s (``_body``).
        self._http = httpx.Client(
            base_url=settings.base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(settings.timeout_s / 4, connect=settings.timeout_s / 3),
            follow_redirects=False,
        )
        self._stop = stop or threading.Event()
        self._sleep = sleep or self._wait
        self._clock = clock or time.monotonic
        self._deadline = deadline
        self._last: float | None = None

    @classmethod
    def from_environment(
        cls, settings: FetchSettings, *, stop: threading.Event | None = None, deadline: float | None = None
    ) -> Client:
        """A client with ``HF_TOKEN`` from the environment when it is set (the only place it is read)."""
        return cls(settings, token=os.environ.get("HF_TOKEN") or None, stop=stop, deadline=deadline)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def day(self, day: date, *, etag: str | None = None) -> DayList:
        """Every page of one day's list; ``items`` None when the first page is unchanged since ``etag``."""
        items: list[Any] = []
        seen: set[str] = set()
        first_etag: str | None = None
        size = 0
        for page in range(self._settings.max_pages):
            status, body, headers = self._get(day, page, etag if page == 0 else None)
            if status == 304:
                if page == 0 and etag:
                    return DayList(None, b"", etag)
                raise FetchError(
                    f"{day}: page {page}: Hugging Face answered 304 (not modified) to a request that did not ask; "
                    "try again later"
                )
            size += len(body)
            if size > self._settings.max_day_mb * 1_048_576:
                raise FetchError(
                    f"{day}: the day's pages are over the {self._settings.max_day_mb:g} MB limit; "
                    "raise [fetch] max_day_mb if it is real"
                )
            batch = _json_list(body, day=day, page=page)
            first_etag = headers.get("etag") if page == 0 else first_etag
            keys = {_key(item) for item in batch}
            if page and not keys - seen:
                break  # a page of papers already listed: the server does not page as asked
            seen |= keys
            items += batch
            if len(batch) < PAGE:
                break
        else:
            raise FetchError(
                f"{day}: still full pages after {self._settings.max_pages}; a day's list is under {PAGE} papers, so "
                f"{self._settings.base_url} is not paging as Hugging Face does (raise [fetch] max_pages if it is real)"
            )
        return DayList(items, json.dumps(items, ensure_ascii=False, indent=1).encode(), first_etag)

    def _get(self, day: date, page: int, etag: str | None) -> tuple[int, bytes, httpx.Headers]:
        """One page, with the retries; returns status, body and headers of the answer that counted."""
        params = {"date": day.isoformat(), "p": str(page), "limit": str(PAGE)}
        headers = {"If-None-Match": etag} if etag else {}
        attempts = self._settings.max_attempts
        for attempt in range(1, attempts + 1):
            self._pace(day)
            try:
                with self._http.stream("GET", "/api/daily_papers", params=params, headers=headers) as answer:
                    if answer.status_code == 429 or answer.status_code >= 500:
                        if attempt == attempts:
                            raise FetchError(
                                f"{day}: Hugging Face answered {answer.status_code} {attempts} times; "
                                "try again later (or raise [fetch] max_attempts)"
                            )
                        self._sleep(_retry_after(answer.headers, now=datetime.now(UTC)) or _backoff(attempt))
                        continue
                    return answer.status_code, self._body(answer, day), answer.headers
            except httpx.TimeoutException as e:
                failure = f"no answer within {self._settings.timeout_s:g} s ({type(e).__name__})"
            except httpx.TransportError as e:
                if _unresolved(e) and attempt >= 2:
                    host = self._http.base_url.host
                    raise FetchError(f"{day}: {host} does not resolve ({_said(e)}); check the network's DNS") from e
                failure = f"the connection failed ({_said(e)})"
            if attempt == attempts:
                raise FetchError(f"{day}: {failure}, {attempts} times; check the network and [fetch] base_url")
            self._sleep(_backoff(attempt))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _body(self, answer: httpx.Response, day: date) -> bytes:
        """The answer's body, whole within ``timeout_s`` and ``max_size_mb``; a 4xx other than 429 refused
        with what it said."""
        limit = int(self._settings.max_size_mb * 1_048_576)
        if int(answer.headers.get("content-length") or 0) > limit:
            raise _too_large(day, self._settings.max_size_mb)
        until = time.monotonic() + self._settings.timeout_s
        body = bytearray()
        for chunk in answer.iter_bytes():
            body += chunk
            if len(body) > limit:
                raise _too_large(day, self._settings.max_size_mb)
            self._check(day)
            if time.monotonic() > until:
                raise httpx.ReadTimeout("the whole answer took too long")
        if 400 <= answer.status_code < 500:
            said = _said_in(bytes(body))
            hint = "check the date (YYYY-MM-DD)" if answer.status_code == 400 else "check [fetch] base_url and HF_TOKEN"
            raise FetchError(f"{day}: Hugging Face answered {answer.status_code}{said}; {hint}")
        if answer.status_code not in (200, 304):
            raise FetchError(f"{day}: unexpected answer {answer.status_code} from Hugging Face; check [fetch] base_url")
        return bytes(body)

    def _check(self, day: date) -> None:
        """Stop here when asked to, or when the pass's deadline has come."""
        if self._stop.is_set():
            raise FetchError(f"{day}: stopped before it was fetched; it is fetched next time")
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise FetchError(f"{day}: the fetch ran out of its time ([fetch] run_deadline_s); it is fetched next time")

    def _wait(self, seconds: float) -> None:
        """Sleep, unless told to stop (then at once)."""
        self._stop.wait(seconds)

    def _pace(self, day: date) -> None:
        """At most one request per ``min_interval_s``; none once stopped or past the deadline."""
        self._check(day)
        if self._last is not None:
            wait = self._last + self._settings.min_interval_s - self._clock()
            if wait > 0:
                self._sleep(wait)
        self._check(day)
        self._last = self._clock()


def _json_list(body: bytes, *, day: date, page: int) -> list[Any]:
    try:
        found = safejson.loads(body.decode("utf-8"), source=f"{day}: page {page}")
    except UnicodeDecodeError as e:
        said = f"{day}: page {page} is not UTF-8 JSON ({e.reason} at byte {e.start}); kept in quarantine"
        raise NotJSONError(said, body) from e
    except ParseError as e:
        raise NotJSONError(f"{e}; kept in quarantine", body) from e
    if not isinstance(found, list):
        raise NotJSONError(f"{day}: page {page} is a JSON {type(found).__name__}, not a list; kept in quarantine", body)
    return found


def _key(item: object) -> str:
    """What tells one listed paper from another: its arXiv id, else the item as written."""
    paper = item.get("paper") if isinstance(item, dict) else None
    found = paper.get("id") if isinstance(paper, dict) else None
    return found if isinstance(found, str) else json.dumps(item, sort_keys=True, default=str)


def _unresolved(error: BaseException) -> bool:
    """Whether a connection failed because the host name did not resolve (DNS), however httpx wrapped it."""
    seen: BaseException | None = error
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, socket.gaierror):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _retry_after(headers: httpx.Headers, *, now: datetime) -> float | None:
    """Seconds to wait as ``Retry-After`` says (a number or an HTTP date), at most ``LONGEST_WAIT``."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - now).total_seconds()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), LONGEST_WAIT)


def _backoff(attempt: int) -> float:
    return float(min(2**attempt, 60))


def _too_large(day: date, limit_mb: float) -> FetchError:
    return FetchError(f"{day}: the answer is over the {limit_mb:g} MB limit; raise [fetch] max_size_mb if it is real")


def _said(error: Exception) -> str:
    return str(error).splitlines()[0][:120] if str(error) else type(error).__name__


def _said_in(body: bytes) -> str:
    """What an error answer says, briefly: its JSON ``error`` field, or nothing."""
    try:
        found = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return ""
    message = found.get("error") if isinstance(found, dict) else None
    return f" ({' '.join(str(message).split())[:160]})" if message else ""
