"""The client's address: one answer, for every per-address limit and log line.

Behind a reverse proxy the TCP peer (`REMOTE_ADDR`) is the proxy, and the client's address is the
one the proxy appended to `X-Forwarded-For`. But a client writes that header too: taken as sent,
a client that changes it on every request escapes every per-address limit (guest creation, sign-in
attempts, the merchant console's limits, the signed-out API rate), and guests need no identity and
earn coins.

So forwarding headers are believed only as far as the proxies we run wrote them: the networks in
`settings.TRUSTED_PROXIES` (the environment's `TRUSTED_PROXIES`, addresses or CIDR networks of the
proxies in front of gunicorn). Starting from the peer, each hop that is a trusted proxy hands over
to the address it appended (the right-most entry of `X-Forwarded-For` not yet read); the first
address that is not a trusted proxy is the client. Whatever a client wrote further left is never
read. With no trusted proxies (the default), the peer is the client and the header is ignored.

`ClientAddressMiddleware` (first in the stack) resolves it once per request and puts it in
`REMOTE_ADDR`, so whatever reads the address later reads this answer: our throttles and limits
(through `client_address`), DRF's own `get_ident` (`NUM_PROXIES = 0`: it takes `REMOTE_ADDR`) and
allauth's (`ALLAUTH_TRUSTED_PROXY_COUNT` unset: it takes `REMOTE_ADDR` too).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Where the resolved address is kept on the request (the peer's own address is kept beside it).
RESOLVED_KEY = "carbon.client_address"
PEER_KEY = "carbon.peer_address"


@lru_cache(maxsize=8)
def trusted_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """The networks of `TRUSTED_PROXIES` (a bare address is a network of one)."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as error:
            raise ImproperlyConfigured(f"TRUSTED_PROXIES: {entry!r} is not an address or network") from error
    return tuple(networks)


def _address(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _is_trusted(address: Address, networks: Iterable[Network]) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == network.version and address in network for network in networks)


def resolve_client_address(*, peer: str, forwarded_for: str, networks: tuple[Network, ...]) -> str:
    """The client's address, from the TCP peer and the X-Forwarded-For header as received."""
    if not networks:
        return peer
    current = _address(peer)
    if current is None or not _is_trusted(current, networks):
        return peer
    hops = [hop for hop in forwarded_for.split(",") if hop.strip()] if forwarded_for else []
    while hops:
        previous = _address(hops.pop())
        if previous is None:
            # A trusted proxy writes addresses; anything else was written by the client (or the
            # proxy was told to keep a header it should have replaced): the last trusted hop
            # is as far as the chain can be believed.
            break
        current = previous
        if not _is_trusted(current, networks):
            break
    return str(current)


def client_address(request: HttpRequest) -> str:
    """The client's address for this request: what every per-address limit counts by."""
    resolved = request.META.get(RESOLVED_KEY)
    if resolved is None:
        peer = request.META.get("REMOTE_ADDR") or ""
        resolved = resolve_client_address(
            peer=peer,
            forwarded_for=request.META.get("HTTP_X_FORWARDED_FOR", ""),
            networks=trusted_networks(tuple(settings.TRUSTED_PROXIES)),
        )
        request.META[PEER_KEY] = peer
        request.META[RESOLVED_KEY] = resolved
    return resolved


class ClientAddressMiddleware:
    """Puts the client's address (`client_address`) in `REMOTE_ADDR`, before anything reads it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        trusted_networks(tuple(settings.TRUSTED_PROXIES))  # a mistyped entry stops the start

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.META["REMOTE_ADDR"] = client_address(request)
        return self.get_response(request)
