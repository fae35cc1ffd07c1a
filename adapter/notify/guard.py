"""No door into the network: which notification endpoints a subscription may name.

An endpoint must be `https` to a host whose every address is public. Plain `http`, or a
host resolving to a loopback, link-local, private, shared, multicast or reserved address,
is refused unless the operator lists that host in `ADAPTER_SUBSCRIPTION_ALLOWED_HOSTS`.
The check runs when a subscription is written and again before every delivery (a name may
resolve elsewhere later). Credentials go in `channel.header`, never in the URL.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from adapter.errors import EndpointRefused

Resolver = Callable[[str, int], Iterable[str]]
ENDPOINT = "Subscription.channel.endpoint"


def allowed_hosts(setting: str) -> frozenset[str]:
    """The hosts of `ADAPTER_SUBSCRIPTION_ALLOWED_HOSTS` (comma-separated), lower case."""
    return frozenset(
        part.strip().lower().strip("[]") for part in setting.split(",") if part.strip()
    )


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (IPv4 and IPv6)."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in found]


def check_endpoint(url: str, allowed: frozenset[str], resolver: Resolver = resolve) -> None:
    """Refuse (`EndpointRefused`, naming the element) an endpoint we must not call."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise EndpointRefused(f"{ENDPOINT} is not a URL") from exc
    if parts.scheme not in ("https", "http") or not host:
        raise EndpointRefused(f"{ENDPOINT} must be an https URL")
    if parts.username is not None or parts.password is not None:
        raise EndpointRefused(f"{ENDPOINT} must not carry credentials: use channel.header")
    if parts.fragment:
        raise EndpointRefused(f"{ENDPOINT} must not carry a fragment")
    if host.lower() in allowed:
        return
    if parts.scheme != "https":
        raise EndpointRefused(
            f"{ENDPOINT} must be https (plain http only to a host listed in "
            "ADAPTER_SUBSCRIPTION_ALLOWED_HOSTS)"
        )
    try:
        addresses = list(resolver(host, port or 443))
    except (OSError, UnicodeError) as exc:
        raise EndpointRefused(f"{ENDPOINT}: its host does not resolve") from exc
    if not addresses or not all(_is_public(address) for address in addresses):
        raise EndpointRefused(
            f"{ENDPOINT} resolves to a loopback, link-local or private address; an operator "
            "may list the host in ADAPTER_SUBSCRIPTION_ALLOWED_HOSTS"
        )


def _is_public(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast
