"""The client's address is believed from X-Forwarded-For only as far as our own proxies wrote it
(core/api/client_address.py), and every reader of the address gets the same answer. The limits
that count by it: tests/accounts/test_client_address_limits.py."""

from __future__ import annotations

import ipaddress

import pytest
from allauth.account.adapter import get_adapter as get_account_adapter
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from django.test import RequestFactory
from rest_framework.throttling import BaseThrottle

from accounts.throttles import GuestIpThrottle
from core.api.client_address import ClientAddressMiddleware, resolve_client_address, trusted_networks
from core.api.throttles import AnonRateThrottle
from merchants.console import ratelimit

PROXIES = ("10.0.0.0/8", "2001:db8:cafe::/48")


def resolved(peer: str, forwarded_for: str = "", proxies: tuple[str, ...] = PROXIES) -> str:
    return resolve_client_address(peer=peer, forwarded_for=forwarded_for, networks=trusted_networks(proxies))


def test_without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says():
    assert resolved("203.0.113.9", "198.51.100.1", proxies=()) == "203.0.113.9"


def test_a_header_from_a_peer_that_is_not_our_proxy_is_ignored():
    assert resolved("203.0.113.9", "198.51.100.1, 10.0.0.5") == "203.0.113.9"


def test_behind_our_proxy_the_address_it_appended_is_the_client():
    assert resolved("10.0.0.2", "198.51.100.7") == "198.51.100.7"


def test_what_the_client_wrote_left_of_our_proxys_entry_is_never_read():
    assert resolved("10.0.0.2", "1.2.3.4, 10.9.9.9, 198.51.100.7") == "198.51.100.7"
    assert resolved("10.0.0.2", "not-an-address, 198.51.100.7") == "198.51.100.7"


def test_a_chain_of_our_proxies_is_walked_to_the_first_address_that_is_not_ours():
    assert resolved("10.0.0.2", "198.51.100.7, 10.1.1.1, 10.2.2.2") == "198.51.100.7"
    assert resolved("2001:db8:cafe::1", "2001:db8:1::42") == "2001:db8:1::42"
    assert resolved("::ffff:10.0.0.2", "198.51.100.7") == "198.51.100.7"


def test_a_chain_that_ends_in_something_unreadable_stops_at_our_last_proxy():
    assert resolved("10.0.0.2", "") == "10.0.0.2"
    assert resolved("10.0.0.2", "10.0.0.3, garbage") == "10.0.0.2"
    assert resolved("10.0.0.2", "10.0.0.4, 10.0.0.3") == "10.0.0.4"


def test_a_mistyped_trusted_proxy_stops_the_start(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "proxy.internal"]
    with pytest.raises(ImproperlyConfigured, match="proxy.internal"):
        ClientAddressMiddleware(lambda request: HttpResponse())


@pytest.mark.parametrize(
    ("proxies", "peer", "forwarded_for", "client"),
    [
        ([], "203.0.113.9", "198.51.100.1", "203.0.113.9"),
        (list(PROXIES), "203.0.113.9", "198.51.100.1", "203.0.113.9"),
        (list(PROXIES), "10.0.0.2", "1.2.3.4, 198.51.100.7", "198.51.100.7"),
    ],
)
def test_every_reader_of_the_address_gets_the_same_answer(settings, proxies, peer, forwarded_for, client):
    """Our throttles, DRF's own get_ident, allauth's rate limits and the console's limits agree."""
    settings.TRUSTED_PROXIES = proxies
    request = RequestFactory().post("/api/v1/guests", REMOTE_ADDR=peer, HTTP_X_FORWARDED_FOR=forwarded_for)
    seen = []
    ClientAddressMiddleware(lambda request: seen.append(request) or HttpResponse())(request)
    request = seen[0]

    answers = {
        "REMOTE_ADDR": request.META["REMOTE_ADDR"],
        "drf": BaseThrottle().get_ident(request),
        "api": AnonRateThrottle().get_ident(request),
        "guests": GuestIpThrottle().get_ident(request),
        "allauth": get_account_adapter(request).get_client_ip(request),
        "console": ratelimit.client_address(request),
    }

    assert answers == dict.fromkeys(answers, client)
    ipaddress.ip_address(client)
