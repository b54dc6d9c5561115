"""Where a webhook may point: its URL checked (``vet``) and pinned to the addresses that were checked.

The host is resolved first and every address it resolves to is checked;
link-local (cloud metadata at 169.254.169.254, fe80::/10), multicast and
unspecified addresses are refused always, private and loopback ones unless
``[delivery] allow_private_webhooks``, and so is plain http. The request then
goes to the address that was checked (the name kept for the Host header and the
TLS certificate), so a second DNS answer cannot send it elsewhere.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field

import httpx

from digest.errors import PermanentError, TransientError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")  # "this host": Linux connects it to the machine itself


@dataclass(frozen=True, slots=True)
class Target:
    """A webhook URL that passed ``vet``, with every address its host resolved to (each checked)."""

    url: httpx.URL = field(repr=False)  # a webhook URL is its own secret
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
