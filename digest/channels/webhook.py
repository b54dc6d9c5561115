"""Chat webhooks over httpx: Slack, Discord, Microsoft Teams, Mattermost and generic JSON.

The URL is read from the environment variable the profile names, at send time,
and never appears in an error: a reason names the channel and the variable.
Success is a 2xx (and, where a platform answers 200 with an error in the body,
a body that says ok). 429 honours Retry-After; 5xx, timeouts and connection
errors are transient; other 4xx and any redirect (never followed) are permanent.
A digest that needs several messages records each accepted one, so a retry
resumes after the last message the platform took.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import ClassVar
from urllib.parse import urlsplit

import httpx

from digest.channels.base import Job
from digest.config import DeliverySettings
from digest.errors import PermanentError, TransientError


class WebhookChannel:
    """POST each frozen payload as JSON; subclasses say what a good answer looks like."""

    kind: ClassVar[str] = "webhook"
    ok_statuses: ClassVar[range] = range(200, 300)

    def __init__(self, settings: DeliverySettings, *, client: httpx.Client | None = None) -> None:
        timeout = httpx.Timeout(settings.http_read_timeout, connect=settings.http_connect_timeout)
        self._client = client or httpx.Client(timeout=timeout, follow_redirects=False)

    def problem(self, response: httpx.Response) -> str | None:
        """What is wrong with a 2xx answer, if anything (most platforms: nothing)."""
        return None

    def send(self, job: Job) -> None:
        variable = job.delivery.target or ""
        url = os.environ.get(variable, "").strip()
        name = f"{self.kind} (${variable})"
        if not url:
            raise PermanentError(f"{name}: the variable is not set; export the webhook URL in it")
        if urlsplit(url).scheme not in ("http", "https"):
            raise PermanentError(f"{name}: the variable does not hold an http(s) URL; check its value")
        for index in range(job.delivery.parts_sent, len(job.parts)):
            try:
                response = self._client.post(url, json=job.parts[index])
            except httpx.TimeoutException as e:
                raise TransientError(f"{name}: timed out") from e
            except httpx.TransportError as e:
                raise TransientError(f"{name}: cannot connect ({type(e).__name__})") from e
            status = response.status_code
            body = _redact(" ".join(response.text.split())[:200], url)
            if 300 <= status < 400:
                raise PermanentError(f"{name}: answered {status} (a redirect, not followed); check the URL")
            if status == 429:
                raise TransientError(f"{name}: rate limited (429)", retry_after=_retry_after(response))
            if status >= 500:
                raise TransientError(f"{name}: server error {status}", retry_after=_retry_after(response))
            if status not in self.ok_statuses:
                raise PermanentError(f"{name}: rejected with {status}" + (f": {body}" if body else ""))
            problem = self.problem(response)
            if problem:
                raise PermanentError(f"{name}: answered {status} but {_redact(problem, url)}")
            job.on_part(index + 1)

    def close(self) -> None:
        self._client.close()


class GenericWebhookChannel(WebhookChannel):
    kind: ClassVar[str] = "webhook"


class SlackChannel(WebhookChannel):
    kind: ClassVar[str] = "slack"

    def problem(self, response: httpx.Response) -> str | None:
        body = response.text.strip()
        return None if body in ("", "ok") else f"said {body[:100]!r}"


class DiscordChannel(WebhookChannel):
    kind: ClassVar[str] = "discord"


class MattermostChannel(WebhookChannel):
    kind: ClassVar[str] = "mattermost"


class TeamsChannel(WebhookChannel):
    kind: ClassVar[str] = "teams"

    def problem(self, response: httpx.Response) -> str | None:
        # Teams connectors have answered 200 with "... returned HTTP error 429" in the body.
        body = response.text.strip()
        return f"said {body[:100]!r}" if re.search(r"error", body, re.I) else None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.replace(".", "", 1).isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _redact(text: str, url: str) -> str:
    """Remove the URL, and any long piece of its path (tokens), from text a server sent back."""
    text = text.replace(url, "<webhook URL>")
    for piece in re.split(r"[/?&=]", urlsplit(url).path + "?" + urlsplit(url).query):
        if len(piece) >= 8:
            text = text.replace(piece, "…")
    return text
