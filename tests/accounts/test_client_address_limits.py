"""A client that sends a different X-Forwarded-For on every request does not escape the limits per
address: guests need no identity and earn coins, so escaping guest creation's limit farms coins.
Behind the proxies named in TRUSTED_PROXIES, the address they forwarded is the one counted."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from tests.accounts.conftest import app_client

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_counts():
    cache.clear()


def open_guest(number: int, *, forwarded_for: str, peer: str = "127.0.0.1") -> int:
    client = app_client()
    client.defaults["REMOTE_ADDR"] = peer
    payload = {
        "device_id": f"device-{number:020d}",
        "user_agreement_version": "2026-01",
        "privacy_policy_version": "2026-01",
    }
    return client.post(
        "/api/v1/guests", payload, format="json", HTTP_X_FORWARDED_FOR=forwarded_for
    ).status_code


def test_a_spoofed_forwarded_for_does_not_escape_the_guest_limit(agreements, settings):
    settings.ACCOUNTS_RATE_LIMITS = {**settings.ACCOUNTS_RATE_LIMITS, "guest_ip": "2/hour"}
    answers = [open_guest(number, forwarded_for=f"198.51.100.{number}") for number in range(4)]

    assert answers == [201, 201, 429, 429]


def test_a_spoofed_forwarded_for_does_not_escape_the_sign_in_limit(db, settings):
    settings.ACCOUNTS_RATE_LIMITS = {**settings.ACCOUNTS_RATE_LIMITS, "sign_in_ip": "2/minute"}
    answers = [
        app_client()
        .post(
            "/_allauth/app/v1/auth/login",
            {"username": "someone", "password": "wrong-password"},
            format="json",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{number}",
        )
        .status_code
        for number in range(3)
    ]

    assert answers == [400, 400, 429]


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_guest_limit(agreements, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    settings.ACCOUNTS_RATE_LIMITS = {**settings.ACCOUNTS_RATE_LIMITS, "guest_ip": "1/hour"}

    first = open_guest(1, peer="10.0.0.2", forwarded_for="198.51.100.7")
    # The same client, claiming another address to the left of what our proxy appended.
    spoofed = open_guest(2, peer="10.0.0.2", forwarded_for="203.0.113.1, 198.51.100.7")
    another_client = open_guest(3, peer="10.0.0.2", forwarded_for="198.51.100.8")

    assert (first, spoofed, another_client) == (201, 429, 201)
