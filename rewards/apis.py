"""The rewards API: the person's wallet and its history, welfare projects, donations, certificates,
and statements of other platforms brought here (imported once, minting coins where the peer's policy says).

Thin views: validate, call one service or selector, serialize.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import translation
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.sessions import person_cached
from activities.selectors import receipt_of
from activities.statements.serializers import StandardOutput, StatementInput
from core.api.idempotency import IdempotentWrite
from core.api.pagination import CursorPagination
from core.api.renderers import PNGFileMixin
from core.api.serializers import represent, represent_many
from core.api.throttles import FixedWindowRateThrottle, UserRateThrottle
from rewards import selectors, services
from rewards.certificates import donation_certificate_png
from rewards.models import Donation, LedgerEntry, LedgerTransactionKind, Settlement, WelfareProject

BIGINT_MAX = 2**63 - 1


# --- Wallet ---------------------------------------------------------------------------------


class ExpiryOutput(serializers.Serializer):
    expires_on = serializers.DateField()
    coins = serializers.IntegerField()


class WalletOutput(serializers.Serializer):
    balance = serializers.IntegerField(help_text="Whole carbon coins.")
    pending_carbon_mg = serializers.IntegerField(
        help_text="Carbon credited but not yet settled into coins (mg CO2e), including grams carried over."
    )
    pending_coins_estimate = serializers.IntegerField(
        help_text="Coins the pending carbon makes at today's rate."
    )
    carbon_mg_per_coin = serializers.IntegerField()
    next_expiries = ExpiryOutput(many=True)
    coins_expiring_soon = serializers.IntegerField(help_text="Coins expiring within 30 days.")
    has_expiry_reminder = serializers.BooleanField()


class WalletApi(APIView):
    def person_cache_keys(self, request: Request, person_id: int) -> list[str]:
        return selectors.WALLET_READING.keys(person_id)

    @extend_schema(responses=WalletOutput, operation_id="wallet_retrieve")
    def get(self, request: Request) -> Response:
        return Response(
            person_cached(
                request,
                selectors.WALLET_READING,
                lambda: represent(WalletOutput, selectors.wallet_summary(user=request.user)),
            )
        )


class CauseOutput(serializers.Serializer):
    """Why the coins moved: which day's settlement, which coupon, which donation."""

    type = serializers.CharField()
    reference = serializers.CharField()
    settlement_day = serializers.DateField(required=False)
    carbon_mg = serializers.IntegerField(required=False)
    carbon_days = serializers.ListField(child=serializers.DateField(), required=False)
    donation_id = serializers.UUIDField(required=False)
    project_title = serializers.CharField(required=False)
    coupon_id = serializers.CharField(required=False)
    statement_id = serializers.UUIDField(
        required=False, help_text="For coins minted for another platform's statement: the imported statement."
    )


def _cause(entry: LedgerEntry, settlement: Settlement | None, donation: Donation | None) -> dict:
    ledger_transaction = entry.transaction
    cause: dict = {"type": ledger_transaction.kind, "reference": ledger_transaction.reference}
    if settlement is not None:
        cause |= {
            "settlement_day": settlement.day,
            "carbon_mg": settlement.carbon_mg,
            "carbon_days": settlement.carbon_days,
        }
    if donation is not None:
        cause |= {"donation_id": donation.public_id, "project_title": donation.project.title}
    prefix, _separator, identifier = ledger_transaction.reference.partition(":")
    if prefix == "coupon" and identifier:
        cause["coupon_id"] = identifier
    if prefix == "peer_statement" and identifier:
        cause["statement_id"] = identifier
    return cause


class HistoryEntryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    amount = serializers.IntegerField(help_text="Signed: coins in are positive, coins out negative.")
    kind = serializers.ChoiceField(choices=LedgerTransactionKind.choices)
    kind_display = serializers.CharField()
    created_at = serializers.DateTimeField()
    memo = serializers.CharField()
    cause = CauseOutput()


def _history_entry(entry: LedgerEntry, settlement: Settlement | None, donation: Donation | None) -> dict:
    return {
        "id": entry.pk,
        "amount": entry.amount,
        "kind": entry.transaction.kind,
        "kind_display": entry.transaction.get_kind_display(),
        "created_at": entry.transaction.created_at,
        "memo": entry.transaction.memo,
        "cause": _cause(entry, settlement, donation),
    }


class HistoryPagination(CursorPagination):
    ordering = "-id"


class WalletHistoryApi(APIView):
    """The wallet's history, newest first. Its first page (no cursor, the default size), which the
    app opens beside the wallet, is cached per person and language (`WALLET_HISTORY_READING`), its
    links kept relative and made absolute for each request."""

    # Declared so the OpenAPI schema documents the page envelope the view returns.
    pagination_class = HistoryPagination

    def person_cache_keys(self, request: Request, person_id: int) -> list[str]:
        if not HistoryPagination().is_first_page(request):
            return []
        return selectors.WALLET_HISTORY_READING.keys(person_id, translation.get_language())

    @extend_schema(responses=HistoryEntryOutput(many=True), operation_id="wallet_history_list")
    def get(self, request: Request) -> Response:
        if not HistoryPagination().is_first_page(request):
            page = self._page(request)
        else:
            page = person_cached(
                request,
                selectors.WALLET_HISTORY_READING,
                lambda: self._page(request),
                part=translation.get_language(),
            )
        return Response(
            {
                **page,
                "next": _absolute(request, page["next"]),
                "previous": _absolute(request, page["previous"]),
            }
        )

    def _page(self, request: Request) -> dict:
        paginator = HistoryPagination()
        page = paginator.paginate_queryset(selectors.wallet_history(user=request.user), request, view=self)
        settlements = selectors.settlements_for_entries(user=request.user, entries=page)
        donations = selectors.donations_for_entries(entries=page)
        rows = [
            _history_entry(entry, settlements.get(entry.transaction_id), donations.get(entry.transaction_id))
            for entry in page
        ]
        data = paginator.get_paginated_response(represent_many(HistoryEntryOutput, rows)).data
        return {**data, "next": _relative(data["next"]), "previous": _relative(data["previous"])}


def _relative(link: str | None) -> str | None:
    """A page link without its scheme and host (a cached page serves requests to any of them)."""
    if link is None:
        return None
    parts = urlsplit(link)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _absolute(request: Request, link: str | None) -> str | None:
    return request.build_absolute_uri(link) if link is not None else None


class ActivityRecordOutput(serializers.Serializer):
    id = serializers.IntegerField()
    local_day = serializers.DateField()
    behaviour = serializers.CharField(source="behaviour.code")
    credited_carbon_mg = serializers.IntegerField()
    receipt = serializers.SerializerMethodField()

    def get_receipt(self, record) -> str:
        return receipt_of(record)


class HistoryEntryDetailOutput(HistoryEntryOutput):
    activity_records = ActivityRecordOutput(
        many=True, help_text="For a settlement: the records it converted."
    )


class WalletHistoryEntryApi(APIView):
    @extend_schema(responses=HistoryEntryDetailOutput, operation_id="wallet_history_retrieve")
    def get(self, request: Request, entry_id: int) -> Response:
        if entry_id > BIGINT_MAX:
            raise Http404
        entry = get_object_or_404(selectors.wallet_history(user=request.user), pk=entry_id)
        settlement = selectors.settlement_of(user=request.user, entry=entry)
        donation = selectors.donations_for_entries(entries=[entry]).get(entry.transaction_id)
        row = _history_entry(entry, settlement, donation)
        row["activity_records"] = (
            selectors.activity_records_settled(user=request.user, settlement=settlement) if settlement else []
        )
        return Response(HistoryEntryDetailOutput(row).data)


# --- Welfare projects and donations ---------------------------------------------------------------


class ProjectOutput(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id")
    image = serializers.SerializerMethodField()
    donated_coins = serializers.IntegerField(help_text="The project account's balance.")
    donors = serializers.IntegerField()
    progress_percent = serializers.SerializerMethodField()

    class Meta:
        model = WelfareProject
        fields = [
            "id",
            "title",
            "description",
            "image",
            "goal_coins",
            "donated_coins",
            "donors",
            "progress_percent",
            "is_open",
        ]

    def get_image(self, project) -> str | None:
        if not project.image:
            return None
        request = self.context.get("request")
        return request.build_absolute_uri(project.image.url) if request else project.image.url

    def get_progress_percent(self, project) -> int:
        return min(100, project.donated_coins * 100 // project.goal_coins)


class ProjectPagination(CursorPagination):
    ordering = "-created_at"


class ProjectListApi(APIView):
    # Declared so the OpenAPI schema documents the page envelope the view returns.
    pagination_class = ProjectPagination

    @extend_schema(responses=ProjectOutput(many=True), operation_id="welfare_projects_list")
    def get(self, request: Request) -> Response:
        paginator = ProjectPagination()
        page = paginator.paginate_queryset(selectors.welfare_projects(), request, view=self)
        return paginator.get_paginated_response(
            ProjectOutput(page, many=True, context={"request": request}).data
        )


class ProjectDetailApi(APIView):
    @extend_schema(responses=ProjectOutput, operation_id="welfare_projects_retrieve")
    def get(self, request: Request, project_id) -> Response:
        project = get_object_or_404(selectors.welfare_projects(), public_id=project_id)
        return Response(ProjectOutput(project, context={"request": request}).data)


class DonationOutput(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id")
    project_id = serializers.UUIDField(source="project.public_id")
    project_title = serializers.CharField(source="project.title")
    certificate_url = serializers.SerializerMethodField()

    class Meta:
        model = Donation
        fields = [
            "id",
            "project_id",
            "project_title",
            "amount",
            "donor_name",
            "created_at",
            "certificate_url",
        ]

    def get_certificate_url(self, donation) -> str:
        return f"/api/v1/welfare/donations/{donation.public_id}/certificate.png"


class ProjectDonateApi(IdempotentWrite, APIView):
    # Coins move: the Idempotency-Key is required (IdempotentWrite); a retry with the same key
    # returns the donation.
    class Input(serializers.Serializer):
        amount = serializers.IntegerField(min_value=1, max_value=10_000_000)

    @extend_schema(
        request=Input,
        responses={201: DonationOutput, 200: DonationOutput},
        operation_id="welfare_projects_donate",
    )
    def post(self, request: Request, project_id) -> Response:
        body = self.Input(data=request.data)
        body.is_valid(raise_exception=True)
        project = selectors.welfare_project_row(public_id=project_id)
        if project is None:
            raise Http404
        donation = services.donation_make(
            user=request.user,
            project=project,
            amount=body.validated_data["amount"],
            idempotency_key=request.idempotency_key,
        )
        return Response(
            DonationOutput(donation).data,
            status=status.HTTP_200_OK if donation.replayed else status.HTTP_201_CREATED,
            headers={"Idempotent-Replayed": "true"} if donation.replayed else {},
        )


class DonationPagination(CursorPagination):
    ordering = "-id"


class DonationListApi(APIView):
    # Declared so the OpenAPI schema documents the page envelope the view returns.
    pagination_class = DonationPagination

    @extend_schema(responses=DonationOutput(many=True), operation_id="welfare_donations_list")
    def get(self, request: Request) -> Response:
        paginator = DonationPagination()
        page = paginator.paginate_queryset(selectors.donations_of(user=request.user), request, view=self)
        return paginator.get_paginated_response(DonationOutput(page, many=True).data)


class DonationDetailApi(APIView):
    @extend_schema(responses=DonationOutput, operation_id="welfare_donations_retrieve")
    def get(self, request: Request, donation_id) -> Response:
        donation = get_object_or_404(selectors.donations_of(user=request.user), public_id=donation_id)
        return Response(DonationOutput(donation).data)


class DonationCertificateApi(PNGFileMixin, APIView):
    @extend_schema(
        responses={(200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY, description="The certificate.")},
        operation_id="welfare_donations_certificate",
    )
    def get(self, request: Request, donation_id) -> HttpResponse:
        donation = get_object_or_404(selectors.donations_of(user=request.user), public_id=donation_id)
        response = HttpResponse(donation_certificate_png(donation=donation), content_type="image/png")
        response["Content-Disposition"] = f'inline; filename="donation-{donation.public_id}.png"'
        response["Cache-Control"] = "private, max-age=86400"
        return response


# --- Statements from other platforms ---------------------------------------------------------------


class ImportedReductionOutput(serializers.Serializer):
    behaviour = serializers.CharField(help_text="The issuing platform's behaviour code.")
    name = serializers.CharField()
    carbon_mg = serializers.IntegerField()
    methodology_versions = serializers.ListField(child=serializers.IntegerField())
    standard = serializers.SerializerMethodField()

    @extend_schema_field(StandardOutput(allow_null=True))
    def get_standard(self, reduction) -> dict | None:
        if not reduction.standard:
            return None
        return {
            "id": reduction.standard,
            "category": reduction.standard_category,
            "behaviour": reduction.standard_behaviour,
        }


class PeerStatementOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    issuer = serializers.CharField(source="peer.issuer")
    platform = serializers.CharField(source="peer.name")
    statement_id = serializers.CharField(help_text="The issuer's `jti`.")
    month = serializers.DateField(format="%Y-%m")
    total_carbon_mg = serializers.IntegerField()
    reductions = ImportedReductionOutput(many=True)
    imported_at = serializers.DateTimeField()
    coins_minted = serializers.IntegerField(
        help_text="Coins minted for it: at import, and for carbon handed back to it since."
    )


class StatementImportThrottle(FixedWindowRateThrottle):
    scope = "statement_import"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class PeerStatementListApi(APIView):
    """Statements of other platforms I brought here; bringing one (with a nonce of `me/statements/nonces`)."""

    def get_throttles(self):
        if self.request.method == "POST":
            return [UserRateThrottle(), StatementImportThrottle()]
        return super().get_throttles()

    @extend_schema(responses=PeerStatementOutput(many=True), operation_id="statements_imports_list")
    def get(self, request: Request) -> Response:
        statements = selectors.peer_statements_with_mints_of(user=request.user)
        return Response(PeerStatementOutput(statements, many=True).data)

    @extend_schema(
        request=StatementInput, responses={201: PeerStatementOutput}, operation_id="statements_imports_create"
    )
    def post(self, request: Request) -> Response:
        body = StatementInput(data=request.data)
        body.is_valid(raise_exception=True)
        accepted = services.peer_statement_accept(user=request.user, token=body.validated_data["statement"])
        statement = selectors.peer_statements_with_mints_of(user=request.user).get(pk=accepted.statement.pk)
        return Response(PeerStatementOutput(statement).data, status=status.HTTP_201_CREATED)
