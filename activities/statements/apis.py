"""Thin views of signed statements: issue mine, hand me a nonce, verify one of ours, our public keys.

The import of a peer's statement mints coins, so its view lives in rewards (rewards/apis.py).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from activities.statements import importing, issuing
from activities.statements.serializers import StandardOutput, StatementInput
from core.api.serializers import QuerySerializer
from core.api.throttles import FixedWindowRateThrottle
from core.crypto import platform_keys

# --- Shapes -----------------------------------------------------------------------------------


class InstanceOutput(serializers.Serializer):
    key = serializers.CharField(help_text="Pairwise instance key (docs/interop.md).")
    carbon_mg = serializers.IntegerField()


class ReductionOutput(serializers.Serializer):
    behaviour = serializers.CharField()
    name = serializers.CharField(required=False)
    name_en = serializers.CharField(required=False)
    unit = serializers.CharField(required=False)
    quantity = serializers.CharField(required=False, help_text="A decimal, as text.")
    carbon_mg = serializers.IntegerField(help_text="Milligrams of CO2e (grams × 1000).")
    methodology_versions = serializers.ListField(child=serializers.IntegerField())
    standard = StandardOutput(allow_null=True)
    instances = InstanceOutput(many=True, required=False)


class PeriodOutput(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()


class ClaimsOutput(serializers.Serializer):
    """The statement's claims (docs/interop.md gives their JSON Schema)."""

    iss = serializers.CharField()
    sub = serializers.CharField(
        help_text="Pairwise: the same person has another subject at another audience."
    )
    aud = serializers.CharField()
    iat = serializers.IntegerField()
    exp = serializers.IntegerField()
    jti = serializers.CharField()
    version = serializers.IntegerField(required=False, help_text="The statement format (2; absent: 1).")
    nonce = serializers.CharField(required=False)
    period = PeriodOutput()
    total_carbon_mg = serializers.IntegerField()
    reductions = ReductionOutput(many=True)


# --- Views ------------------------------------------------------------------------------------


class StatementIssueApi(APIView):
    """My verified reductions of an ended month, signed by the platform for one receiving platform."""

    class Output(serializers.Serializer):
        statement = serializers.CharField(
            help_text="The compact JWS (Ed25519) to hand the receiving platform."
        )
        key_id = serializers.CharField()
        claims = ClaimsOutput()

    class Query(QuerySerializer):
        period = serializers.CharField(max_length=7)
        audience = serializers.URLField(max_length=200)
        nonce = serializers.CharField(max_length=64, required=False)

    @extend_schema(
        responses=Output,
        parameters=[
            OpenApiParameter(
                "period",
                {"type": "string", "pattern": r"^\d{4}-\d{2}$"},
                required=True,
                description="A calendar month that has ended, `2026-11`.",
            ),
            OpenApiParameter(
                "audience",
                {"type": "string", "format": "uri", "maxLength": 200},
                required=True,
                description="The receiving platform's issuer identifier (its `aud`).",
            ),
            OpenApiParameter(
                "nonce",
                {"type": "string", "maxLength": 64},
                description="The receiving platform's one-time nonce, when it gave one.",
            ),
        ],
        operation_id="statements_issue",
    )
    def get(self, request: Request) -> Response:
        query = self.Query(data=request.query_params)
        query.is_valid(raise_exception=True)
        issued = issuing.statement_issue(
            user=request.user,
            month=issuing.statement_month(query.validated_data["period"]),
            audience=query.validated_data["audience"],
            nonce=query.validated_data.get("nonce"),
        )
        return Response({"statement": issued.token, "key_id": issued.key_id, "claims": issued.claims})


class StatementNonceApi(APIView):
    """A one-time nonce to hand a peer platform: its statement for us must carry it (an hour)."""

    class Output(serializers.Serializer):
        nonce = serializers.CharField()
        audience = serializers.CharField(help_text="Our issuer identifier: the `aud` the peer must sign for.")
        expires_at = serializers.DateTimeField()

    @extend_schema(request=None, responses={201: Output}, operation_id="statements_nonce_issue")
    def post(self, request: Request) -> Response:
        issued = importing.statement_nonce_issue(user=request.user)
        return Response(self.Output(issued).data, status=status.HTTP_201_CREATED)


class StatementVerifyThrottle(FixedWindowRateThrottle):
    scope = "statement_verify"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class StatementVerifyApi(APIView):
    """Anyone checks a statement we issued: 200 with its claims when valid, else the code of why not."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [StatementVerifyThrottle]

    class Output(serializers.Serializer):
        valid = serializers.BooleanField()
        key_id = serializers.CharField()
        claims = ClaimsOutput()

    @extend_schema(request=StatementInput, responses=Output, auth=[], operation_id="statements_verify")
    def post(self, request: Request) -> Response:
        body = StatementInput(data=request.data)
        body.is_valid(raise_exception=True)
        verified = issuing.statement_verify(token=body.validated_data["statement"])
        return Response({"valid": True, "key_id": verified.key_id, "claims": verified.claims})


class JwksApi(APIView):
    """The platform's public keys for statements, as a JWK Set: the signing key and the older ones."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    class Output(serializers.Serializer):
        class KeySerializer(serializers.Serializer):
            kty = serializers.CharField()
            crv = serializers.CharField()
            x = serializers.CharField()
            kid = serializers.CharField()
            use = serializers.CharField()
            alg = serializers.CharField()

        keys = KeySerializer(many=True)

    @extend_schema(responses=Output, auth=[], operation_id="statements_jwks")
    def get(self, request: Request) -> Response:
        response = Response(platform_keys.ed25519_jwks())
        response["Cache-Control"] = "public, max-age=300"
        return response
