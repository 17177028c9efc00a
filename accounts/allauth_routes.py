"""allauth routes this platform does not offer, answered before allauth sees them.

allauth headless always routes its phone-number endpoints, but nobody signs in here by phone: the
adapter has no phone storage and no SMS sender, so allauth raised NotImplementedError (a 500) for
any signed-in caller. A phone number is profile data here (`PATCH /api/v1/me`).

Nobody signs up with a username and password either (`accounts.adapters.AccountAdapter` closes
allauth's sign-up flow): the sign-up route answers `sign_up_closed` (403, as allauth answers a
closed sign-up) in both allauth's error shape and ours, so the app can branch on a code.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import re_path

from accounts import errors as account_errors
from core.api import errors
from core.api.exceptions import envelope, error_json_response


def not_offered(request: HttpRequest, *args, **kwargs) -> JsonResponse:
    return error_json_response(errors.NOT_FOUND)


def sign_up_closed(request: HttpRequest, *args, **kwargs) -> JsonResponse:
    error = account_errors.SIGN_UP_CLOSED
    body = {
        "status": error.status,
        "errors": [{"code": error.code, "message": str(error.message)}],
        **envelope(error),
    }
    return JsonResponse(body, status=error.status, json_dumps_params={"ensure_ascii": False})


urlpatterns = [
    re_path(r"^_allauth/(?:app|browser)/v1/account/phone$", not_offered),
    re_path(r"^_allauth/(?:app|browser)/v1/auth/phone/", not_offered),
    # Nor through a provider's web redirect (the app posts the provider's token instead), nor by a
    # password reset (no e-mail is kept to send one to): allauth's views for them failed with a 500.
    re_path(r"^_allauth/(?:app|browser)/v1/auth/provider/redirect$", not_offered),
    re_path(r"^_allauth/(?:app|browser)/v1/auth/password/(?:request|reset)$", not_offered),
    re_path(r"^_allauth/(?:app|browser)/v1/auth/signup$", sign_up_closed),
]
