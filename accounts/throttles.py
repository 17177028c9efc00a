"""Abuse limits on the ways in: guest creation (per IP and per device), sign-in, merge.

Rates come from settings.ACCOUNTS_RATE_LIMITS; counters live in the shared cache (Redis), so
every worker counts together. A throttled request gets 429 with the error envelope.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from accounts.selectors import device_digest
from accounts.services import DEVICE_ID_PATTERN
from core.api.client_address import client_address


class _AccountsRateThrottle(SimpleRateThrottle):
    def get_rate(self) -> str:
        return settings.ACCOUNTS_RATE_LIMITS[self.scope]

    def get_ident(self, request) -> str:
        return client_address(request)


class GuestIpThrottle(_AccountsRateThrottle):
    scope = "guest_ip"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class GuestDeviceThrottle(_AccountsRateThrottle):
    scope = "guest_device"

    def get_cache_key(self, request, view) -> str | None:
        device_id = request.data.get("device_id") if hasattr(request.data, "get") else None
        if not isinstance(device_id, str) or not DEVICE_ID_PATTERN.match(device_id):
            return None
        # Keyed by the device's digest: the raw id never reaches the cache.
        return self.cache_format % {"scope": self.scope, "ident": device_digest(device_id)}


class MergeThrottle(_AccountsRateThrottle):
    scope = "merge"

    def get_cache_key(self, request, view) -> str:
        ident = request.user.pk if request.user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}
