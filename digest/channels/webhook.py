"""Chat webhooks over httpx: what every platform shares, and the generic JSON webhook.

The URL is read from the environment variable the profile names, at send time,
and never appears in an error: a reason names the channel and the variable.
Success is a 2xx (and, where a platform answers 200 with an error in the body,
a body that says ok). 429 honours Retry-After; 5xx, timeouts and connection
errors are transient; other 4xx and any redirect (never followed) are permanent.
A digest that needs several messages records each accepted one, so a retry
resumes after the last message the platform took.

Each platform (``slack``, ``discord``, ``teams``, ``mattermost``) is a subclass
in a module of its own; its payloads are built when the digest is frozen, by
``digest.render.chat.<platform>``, and only carried here.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from digest.channels.base import Job, OneAtATime, Takes
from digest.channels.targets import UNSET, Target, channel_name, vet
from digest.config import Settings
from digest.errors import PermanentError, TransientError


class WebhookChannel(OneAtATime):
    """POST each frozen payload as JSON; a platform's subclass says what a good answer is."""

    kind: ClassVar[str] = "webhook"
    takes: ClassVar[Takes] = "parts"
    ok_statuses: ClassVar[range] = range(200, 300)

    def __init__(self, settings: Settings) -> None:
        delivery = settings.delivery
        self._timeout = httpx.Timeout(delivery.http_read_timeout_s, connect=delivery.http_connect_timeout_s)
        self._allow_private = delivery.allow_private_webhooks
        self._clients: dict[str, httpx.Client] = {}  # one per host name: a connection is never shared by two

    def _client(self, host: str) -> httpx.Client:
        if host not in self._clients:
            self._clients[host] = httpx.Client(timeout=self._timeout, follow_redirects=False)
        return self._clients[host]

    def problem(self, body: str) -> str | None:
        """What is wrong with a 2xx answer's body, if anything (most platforms: nothing)."""
        return None

    def send(self, job: Job) -> None:
        variable = job.delivery.target or ""
        url = os.environ.get(variable, "").strip()
        name = channel_name(self.kind, variable)
        if not url:
            raise PermanentError(f"{name}: {UNSET}")
        target = vet(url, name=name, allow_private=self._allow_private)
        client = self._client(target.url.host)
        for index in range(job.delivery.parts_sent, len(job.parts)):
            response = self._post(client, target, job.parts[index], name=name)
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
            problem = self.problem(response.text.strip())
            if problem:
                raise PermanentError(f"{name}: answered {status} but {_redact(problem, url)}")
            job.on_part(index + 1)

    def _post(self, client: httpx.Client, target: Target, payload: dict[str, Any], *, name: str) -> httpx.Response:
        """POST to the first of the target's addresses that takes the connection, as a browser would."""
        refused: httpx.TransportError | None = None
        for address in target.addresses:
            try:
                return client.post(
                    target.at(address), json=payload, headers=target.headers, extensions=target.extensions
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as e:
                refused = e  # the next address may answer
            except httpx.TimeoutException as e:
                raise TransientError(f"{name}: timed out") from e
            except httpx.TransportError as e:
                raise TransientError(f"{name}: cannot connect ({type(e).__name__})") from e
        if isinstance(refused, httpx.TimeoutException):
            raise TransientError(f"{name}: timed out") from refused
        raise TransientError(f"{name}: cannot connect ({type(refused).__name__})") from refused

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


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
