"""allauth routes this platform does not offer, answered as not found before allauth sees them.

allauth headless always routes its phone-number endpoints, but nobody signs in here by phone: the
adapter has no phone storage and no SMS sender, so allauth raised NotImplementedError (a 500) for
any signed-in caller. A phone number is profile data here (`PATCH /api/v1/me`).
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import re_path

from config.api import errors
from config.api.exceptions import error_json_response


def not_offered(request: HttpRequest, *args, **kwargs) -> JsonResponse:
    return error_json_response(errors.NOT_FOUND)


urlpatterns = [
    re_path(r"^_allauth/(?:app|browser)/v1/account/phone$", not_offered),
    re_path(r"^_allauth/(?:app|browser)/v1/auth/phone/", not_offered),
]
