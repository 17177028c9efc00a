"""Statement routes under /api/v1/ (the JWKS is at /.well-known/jwks.json, config/urls.py)."""

from django.urls import path

from activities.statements import apis

urlpatterns = [
    path("me/statements", apis.StatementIssueApi.as_view(), name="statements-issue"),
    path("me/statements/nonces", apis.StatementNonceApi.as_view(), name="statements-nonces"),
    path("statements/verify", apis.StatementVerifyApi.as_view(), name="statements-verify"),
]
