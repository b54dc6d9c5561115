"""Hugging Face's Daily Papers list over HTTP: one day, every page, politely. The only room that calls out.

``GET {base_url}/api/daily_papers?date=YYYY-MM-DD&p=N&limit=100``, page by page
until a short or empty one. At most one request per ``min_interval_s``; 429
and 5xx answers, timeouts and dropped connections are retried up to
``max_attempts`` times, waiting as ``Retry-After`` says or 2, 4, 8 … seconds;
any other 4xx is refused at once. An answer over ``max_size_mb`` is cut off and
refused. ``HF_TOKEN``, when set, goes in the Authorization header and nowhere
else. Waiting and the clock are passed in, so tests drive them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from digest import __version__
from digest.config import FetchSettings
from digest.errors import FetchError

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
    ) -> None:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._settings = settings
        self._http = httpx.Client(
            base_url=settings.base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(settings.timeout_s, connect=settings.timeout_s / 3),
            follow_redirects=False,
        )
        self._sleep, self._clock = sleep or time.sleep, clock or time.monotonic
        self._last: float | None = None

    @classmethod
    def from_environment(cls, settings: FetchSettings) -> Client:
        """A client with ``HF_TOKEN`` from the environment when it is set (the only place it is read)."""
        return cls(settings, token=os.environ.get("HF_TOKEN") or None)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def day(self, day: date, *, etag: str | None = None) -> DayList:
        """Every page of one day's list; ``items`` None when the first page is unchanged since ``etag``."""
        items: list[Any] = []
        first_etag: str | None = None
        page = 0
        while True:
            status, body, headers = self._get(day, page, etag if page == 0 else None)
            if status == 304:
                return DayList(None, b"", etag)
            batch = _json_list(body, day=day, page=page)
            first_etag = headers.get("etag") if page == 0 else first_etag
            items += batch
            if len(batch) < PAGE:
                break
            page += 1
        return DayList(items, json.dumps(items, ensure_ascii=False, indent=1).encode(), first_etag)

    def _get(self, day: date, page: int, etag: str | None) -> tuple[int, bytes, httpx.Headers]:
        """One page, with the retries; returns status, body and headers of the answer that counted."""
        params = {"date": day.isoformat(), "p": str(page), "limit": str(PAGE)}
        headers = {"If-None-Match": etag} if etag else {}
        attempts = self._settings.max_attempts
        for attempt in range(1, attempts + 1):
            self._pace()
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
                failure = f"the connection failed ({_said(e)})"
            if attempt == attempts:
                raise FetchError(f"{day}: {failure}, {attempts} times; check the network and [fetch] base_url")
            self._sleep(_backoff(attempt))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _body(self, answer: httpx.Response, day: date) -> bytes:
        """The answer's body, refused past ``max_size_mb``; a 4xx other than 429 refused with what it said."""
        limit = int(self._settings.max_size_mb * 1_048_576)
        if int(answer.headers.get("content-length") or 0) > limit:
            raise _too_large(day, self._settings.max_size_mb)
        body = bytearray()
        for chunk in answer.iter_bytes():
            body += chunk
            if len(body) > limit:
                raise _too_large(day, self._settings.max_size_mb)
        if 400 <= answer.status_code < 500:
            said = _said_in(bytes(body))
            hint = "check the date (YYYY-MM-DD)" if answer.status_code == 400 else "check [fetch] base_url and HF_TOKEN"
            raise FetchError(f"{day}: Hugging Face answered {answer.status_code}{said}; {hint}")
        if answer.status_code not in (200, 304):
            raise FetchError(f"{day}: unexpected answer {answer.status_code} from Hugging Face; check [fetch] base_url")
        return bytes(body)

    def _pace(self) -> None:
        """At most one request per ``min_interval_s``."""
        if self._last is not None:
            wait = self._last + self._settings.min_interval_s - self._clock()
            if wait > 0:
                self._sleep(wait)
        self._last = self._clock()


def _json_list(body: bytes, *, day: date, page: int) -> list[Any]:
    try:
        found = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise NotJSONError(f"{day}: page {page} is not JSON ({e}); kept in quarantine", body) from e
    if not isinstance(found, list):
        raise NotJSONError(f"{day}: page {page} is a JSON {type(found).__name__}, not a list; kept in quarantine", body)
    return found


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
