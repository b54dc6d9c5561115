"""Chat webhooks over httpx: Slack, Discord, Microsoft Teams, Mattermost and generic JSON.

The URL is read from the environment variable the profile names, at send time,
and never appears in an error: a reason names the channel and the variable.
Success is a 2xx (and, where a platform answers 200 with an error in the body,
a body that says ok). 429 honours Retry-After; 5xx, timeouts and connection
errors are transient; other 4xx and any redirect (never followed) are permanent.
A digest that needs several messages records each accepted one, so a retry
resumes after the last message the platform took.

Where a webhook may point (``vet``): the host is resolved first and every
address it resolves to is checked; link-local (cloud metadata at
169.254.169.254, fe80::/10), multicast and unspecified addresses are refused
always, private and loopback ones unless ``[delivery] allow_private_webhooks``,
and so is plain http. The request then goes to the address that was checked
(the name kept for the Host header and the TLS certificate), so a second DNS
answer cannot send it elsewhere.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from digest.channels.base import Job
from digest.config import DeliverySettings
from digest.errors import PermanentError, TransientError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")  # "this host": Linux connects it to the machine itself


@dataclass(frozen=True, slots=True)
class Target:
    """A webhook URL that passed ``vet``, with every address its host resolved to (each checked)."""

    url: httpx.URL
    addresses: tuple[str, ...]

    def at(self, address: str) -> httpx.URL:
        """The URL with ``address`` in place of the name (the request goes where the check looked)."""
        return self.url.copy_with(host=address)

    @property
    def headers(self) -> dict[str, str]:
        return {"Host": self.url.netloc.decode()}

    @property
    def extensions(self) -> dict[str, str]:
        # Over https the certificate is checked against the name, not the address connected to.
        return {"sni_hostname": self.url.host} if self.url.scheme == "https" else {}


UNSET = "the variable is not set; export the webhook URL in it"


def channel_name(kind: str, variable: str) -> str:
    """How errors name a webhook channel: its kind and variable, never the URL (it holds the token)."""
    return f"{kind} (${variable})"


def refusal(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why a webhook may not go to this address, or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_link_local:
        return "a link-local address (cloud metadata lives there); webhooks never go to one"
    if address.is_multicast or address.is_unspecified or address in _THIS_NETWORK or address.is_reserved:
        return "a multicast, unspecified or reserved address; webhooks never go to one"
    if not address.is_global and not allow_private:
        return "a private or loopback address; set [delivery] allow_private_webhooks = true to allow it"
    return None


def vet(url: str, *, name: str, allow_private: bool) -> Target:
    """Resolve the URL's host and check every address; raises ``PermanentError`` naming ``name``, never the URL."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as e:
        raise PermanentError(f"{name}: the variable does not hold a valid URL; check its value") from e
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise PermanentError(f"{name}: the variable does not hold an http(s) URL; check its value")
    if parsed.scheme == "http" and not allow_private:
        raise PermanentError(
            f"{name}: plain http; use an https URL, or set [delivery] allow_private_webhooks = true to allow it"
        )
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        found = socket.getaddrinfo(parsed.host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise TransientError(f"{name}: cannot resolve the URL's host ({e})") from e
    addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found))
    for address in addresses:
        why = refusal(address, allow_private=allow_private)
        if why:
            raise PermanentError(f"{name}: the URL's host resolves to {address}, {why}")
    return Target(parsed, tuple(map(str, addresses)))


class WebhookChannel:
    """POST each frozen payload as JSON; subclasses say what a good answer looks like."""

    kind: ClassVar[str] = "webhook"
    ok_statuses: ClassVar[range] = range(200, 300)

    def __init__(self, settings: DeliverySettings) -> None:
        self._timeout = httpx.Timeout(settings.http_read_timeout, connect=settings.http_connect_timeout)
        self._allow_private = settings.allow_private_webhooks
        self._clients: dict[str, httpx.Client] = {}  # one per host name: a connection is never shared by two

    def _client(self, host: str) -> httpx.Client:
        if host not in self._clients:
            self._clients[host] = httpx.Client(timeout=self._timeout, follow_redirects=False)
        return self._clients[host]

    def problem(self, response: httpx.Response) -> str | None:
        """What is wrong with a 2xx answer, if anything (most platforms: nothing)."""
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
            problem = self.problem(response)
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
