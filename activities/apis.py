"""Thin API views of the activities app: validate, call one service or selector, serialize.

People (session token): sync steps and WeRun data, see today and their history with receipts,
appeal a record under review, link a transit card or bank customer number.

Partners (no session; every request signed):
    X-Partner-Key:         the partner's API key
    X-Timestamp:           Unix seconds, within five minutes of the server clock
    X-Partner-Request-Id:  unique per request (a replayed id is refused)
    X-Signature:           method, path, timestamp, request id and body, signed in the
                           partner's scheme (`activities.partner_requests`) —
                           docs/partner-integration.md
`POST partner/records` takes up to 5,000 records and answers per record: accepted, duplicate,
rejected (with a code) or held_for_review. `POST partner/links` links a customer reference to the
person who got a one-time link code from the app.
"""

from __future__ import annotations

from decimal import Decimal

from django.utils import translation
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.sessions import person_cached
from activities import errors, selectors, services, signing
from activities.ingest import Incoming
from activities.models import ActivityRecord, RecordStatus, SignatureScheme
from activities.partner_requests import PARTNER_HEADERS, partner_authenticated, partner_signed_in
from activities.werun import MAX_STEPS_A_DAY
from core.api import dates
from core.api.errors import NOT_FOUND, ApplicationError
from core.api.pagination import CursorPagination
from core.api.views import SignedRequestApi

RECORDS_REQUIRED = "A list of records is required."
OUTCOME_STATUSES = ["accepted", "duplicate", "duplicate_across_sources", "rejected", "held_for_review"]


class StepDayOutcomeSerializer(serializers.Serializer):
    day = serializers.DateField()
    steps = serializers.IntegerField()
    status = serializers.ChoiceField(choices=OUTCOME_STATUSES)
    code = serializers.CharField(required=False)
    message = serializers.CharField(required=False)
    increase = serializers.IntegerField()
    credited_carbon_mg = serializers.IntegerField()
    hold_reason = serializers.CharField(required=False)


class StepSyncApi(APIView):
    """The app syncs each day's cumulative step count (Asia/Shanghai days); only the increase counts."""

    class Input(serializers.Serializer):
        class DaySerializer(serializers.Serializer):
            day = dates.DateField()
            steps = serializers.IntegerField(min_value=0, max_value=MAX_STEPS_A_DAY)

        days = DaySerializer(many=True, allow_empty=False, max_length=62)
        device_id = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")

    class Output(serializers.Serializer):
        days = StepDayOutcomeSerializer(many=True)

    @extend_schema(request=Input, responses=Output, operation_id="activities_steps_sync")
    def post(self, request: Request) -> Response:
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        steps_by_day: dict = {}
        for item in serializer.validated_data["days"]:
            steps_by_day[item["day"]] = max(steps_by_day.get(item["day"], 0), item["steps"])
        outcomes = services.steps_sync(
            user=request.user, steps_by_day=steps_by_day, device_id=serializer.validated_data["device_id"]
        )
        return Response({"days": [outcome.as_dict() for outcome in outcomes]})


class WeRunSyncApi(APIView):
    """The mini-program sends `wx.getWeRunData`'s encrypted payload as it is."""

    class Input(serializers.Serializer):
        encrypted_data = serializers.CharField(max_length=20_000)
        iv = serializers.CharField(max_length=64)
        device_id = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")

    @extend_schema(request=Input, responses=StepSyncApi.Output, operation_id="activities_werun_sync")
    def post(self, request: Request) -> Response:
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        outcomes = services.werun_sync(user=request.user, **serializer.validated_data)
        return Response({"days": [outcome.as_dict() for outcome in outcomes]})


_THOUSANDTH = Decimal("0.001")  # TodayApi's quantities: DecimalField(decimal_places=3)


class TodayApi(APIView):
    class Output(serializers.Serializer):
        class BehaviourSerializer(serializers.Serializer):
            behaviour = serializers.CharField(source="behaviour.code")
            name = serializers.SerializerMethodField()
            unit = serializers.CharField(source="behaviour.unit")
            quantity = serializers.DecimalField(max_digits=16, decimal_places=3)
            credited_carbon_mg = serializers.IntegerField()
            daily_cap_mg = serializers.IntegerField(allow_null=True)
            cap_left_mg = serializers.IntegerField(allow_null=True)
            under_review_count = serializers.IntegerField(source="held_count")

            def get_name(self, row) -> str:
                return selectors.behaviour_name(row.behaviour)

        day = serializers.DateField()
        credited_today_mg = serializers.IntegerField()
        pending_settlement_mg = serializers.IntegerField()
        under_review_count = serializers.IntegerField()
        behaviours = BehaviourSerializer(many=True)

    def person_cache_keys(self, request: Request, person_id: int) -> list[str]:
        return selectors.TODAY_READING.keys(person_id, translation.get_language())

    @extend_schema(responses=Output, operation_id="activities_today")
    def get(self, request: Request) -> Response:
        return Response(
            person_cached(
                request,
                selectors.TODAY_READING,
                lambda: _today_output(request.user),
                part=translation.get_language(),
            )
        )


def _today_output(user) -> dict:
    """`TodayApi.Output` of the person's day, built by hand as it would (a test keeps them equal):
    the app opens on it."""
    today = selectors.today_for(user=user)
    return {
        "day": today.day.isoformat(),
        "credited_today_mg": today.credited_today_mg,
        "pending_settlement_mg": today.pending_settlement_mg,
        "under_review_count": today.under_review_count,
        "behaviours": [
            {
                "behaviour": row.behaviour.code,
                "name": selectors.behaviour_name(row.behaviour),
                "unit": row.behaviour.unit,
                "quantity": f"{row.quantity.quantize(_THOUSANDTH):f}",
                "credited_carbon_mg": row.credited_carbon_mg,
                "daily_cap_mg": row.daily_cap_mg,
                "cap_left_mg": row.cap_left_mg,
                "under_review_count": row.held_count,
            }
            for row in today.behaviours
        ],
    }


class RecordOutput(serializers.ModelSerializer):
    behaviour = serializers.CharField(source="behaviour.code")
    behaviour_name = serializers.SerializerMethodField()
    unit = serializers.CharField(source="behaviour.unit")
    methodology_version = serializers.IntegerField(source="factor.version.number")
    carbon_mg_per_unit = serializers.IntegerField(source="factor.carbon_mg_per_unit")
    partner = serializers.CharField(source="partner.name", default=None)
    receipt = serializers.SerializerMethodField()
    can_appeal = serializers.SerializerMethodField()
    credited_record = serializers.IntegerField(
        source="duplicate_of_id",
        allow_null=True,
        help_text="On a second report of an instance (status `duplicate`): the record holding its credit.",
    )
    other_reports = serializers.SerializerMethodField(
        help_text="On a credited record: the other sources' reports of the same instance, crediting nothing."
    )

    class Meta:
        model = ActivityRecord
        fields = [
            "id",
            "behaviour",
            "behaviour_name",
            "unit",
            "source",
            "partner",
            "quantity",
            "occurred_at",
            "ended_at",
            "local_day",
            "methodology_version",
            "carbon_mg_per_unit",
            "gross_carbon_mg",
            "credited_carbon_mg",
            "capped_by",
            "capped_at_merge_mg",
            "status",
            "hold_reason",
            "appeal_note",
            "appealed_at",
            "can_appeal",
            "receipt",
            "credited_record",
            "other_reports",
        ]

    def get_behaviour_name(self, record: ActivityRecord) -> str:
        return selectors.behaviour_name(record.behaviour)

    def get_receipt(self, record: ActivityRecord) -> str:
        return selectors.receipt_of(record)

    def get_can_appeal(self, record: ActivityRecord) -> bool:
        return (
            record.status in (RecordStatus.HELD, RecordStatus.REJECTED)
            and record.appealed_at is None
            and record.duplicate_of_id is None
        )

    @extend_schema_field(
        inline_serializer(
            "OtherReport",
            {"id": serializers.IntegerField(), "source": serializers.CharField(),
             "partner": serializers.CharField(allow_null=True)},
            many=True,
        )
    )  # fmt: skip
    def get_other_reports(self, record: ActivityRecord) -> list[dict]:
        return [
            {"id": other.id, "source": other.source, "partner": other.partner.name if other.partner else None}
            for other in sorted(record.duplicates.all(), key=lambda other: other.id)
        ]


class RecordListApi(APIView):
    """The person's records, newest first, cursor-paginated; each with its receipt."""

    # Declared so the OpenAPI schema documents the page envelope the view returns.
    pagination_class = CursorPagination

    @extend_schema(
        responses=RecordOutput(many=True),
        parameters=[OpenApiParameter("cursor", str), OpenApiParameter("page_size", int)],
        operation_id="activities_records_list",
    )
    def get(self, request: Request) -> Response:
        paginator = CursorPagination()
        page = paginator.paginate_queryset(selectors.records_of(user=request.user), request, view=self)
        return paginator.get_paginated_response(RecordOutput(page, many=True).data)


class RecordDetailApi(APIView):
    @extend_schema(responses=RecordOutput, operation_id="activities_records_detail")
    def get(self, request: Request, record_id: int) -> Response:
        record = selectors.record_of(user=request.user, record_id=record_id)
        if record is None:
            raise ApplicationError(NOT_FOUND)
        return Response(RecordOutput(record).data)


class RecordAppealApi(APIView):
    class Input(serializers.Serializer):
        note = serializers.CharField(max_length=1000)

    @extend_schema(request=Input, responses=RecordOutput, operation_id="activities_records_appeal")
    def post(self, request: Request, record_id: int) -> Response:
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.record_appeal(user=request.user, record_id=record_id, note=serializer.validated_data["note"])
        record = selectors.record_of(user=request.user, record_id=record_id)
        return Response(RecordOutput(record).data)


class MethodologyApi(APIView):
    """The behaviours and the factors in effect today: what every receipt is computed with."""

    class Output(serializers.Serializer):
        behaviour = serializers.CharField()
        name = serializers.CharField()
        unit = serializers.CharField()
        methodology_version = serializers.IntegerField()
        carbon_mg_per_unit = serializers.IntegerField()
        daily_cap_mg = serializers.IntegerField(allow_null=True)
        monthly_cap_mg = serializers.IntegerField(allow_null=True)
        event_cap_mg = serializers.IntegerField(allow_null=True)
        sources = serializers.ListField(child=serializers.CharField())

    @extend_schema(responses=Output(many=True), operation_id="activities_methodology")
    def get(self, request: Request) -> Response:
        rows = [
            {
                "behaviour": behaviour.code,
                "name": selectors.behaviour_name(behaviour),
                "unit": behaviour.unit,
                "methodology_version": factor.version_number,
                "carbon_mg_per_unit": factor.carbon_mg_per_unit,
                "daily_cap_mg": factor.daily_cap_mg,
                "monthly_cap_mg": factor.monthly_cap_mg,
                "event_cap_mg": factor.event_cap_mg,
                "sources": sorted(factor.sources),
            }
            for behaviour, factor in selectors.methodology_today()
        ]
        return Response(self.Output(rows, many=True).data)


class LinkOutput(serializers.Serializer):
    id = serializers.IntegerField()
    partner = serializers.CharField(source="partner.code")
    partner_name = serializers.CharField(source="partner.name")
    customer_reference = serializers.CharField()
    linked_at = serializers.DateTimeField()


class PartnerLinkListApi(APIView):
    """The person's linked cards and customer numbers; linking one, e.g. a transit card."""

    class Input(serializers.Serializer):
        partner = serializers.SlugField()
        customer_reference = serializers.CharField(max_length=64)

    @extend_schema(responses=LinkOutput(many=True), operation_id="activities_partner_links_list")
    def get(self, request: Request) -> Response:
        links = selectors.partner_links_of(user=request.user)
        return Response(LinkOutput(links, many=True).data)

    @extend_schema(
        request=Input,
        responses={201: LinkOutput},
        operation_id="activities_partner_links_create",
    )
    def post(self, request: Request) -> Response:
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        partner = selectors.partner_active(code=serializer.validated_data["partner"])
        if partner is None:
            raise ApplicationError(errors.PARTNER_NOT_FOUND)
        link = services.partner_customer_link(
            partner=partner,
            customer_reference=serializer.validated_data["customer_reference"],
            user=request.user,
        )
        return Response(LinkOutput(link).data, status=status.HTTP_201_CREATED)


class PartnerLinkDetailApi(APIView):
    @extend_schema(responses={204: None}, operation_id="activities_partner_links_delete")
    def delete(self, request: Request, link_id: int) -> Response:
        services.partner_link_remove(user=request.user, link_id=link_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PartnerLinkCodeApi(APIView):
    """A one-time code (10 minutes) the person gives a partner at sign-up to link their customer account."""

    @extend_schema(
        request=None,
        responses={
            201: inline_serializer(
                "LinkCode", {"code": serializers.CharField(), "expires_in": serializers.IntegerField()}
            )
        },
        operation_id="activities_partner_link_code",
    )
    def post(self, request: Request) -> Response:
        code = services.partner_link_code_issue(user=request.user)
        return Response({"code": code, "expires_in": services.LINK_CODE_TTL}, status=status.HTTP_201_CREATED)


# --- The partner API (signed requests, no session) ---------------------------------------------


class PartnerRecordsApi(SignedRequestApi):
    """A batch of up to 5,000 records; the answer says per record what happened."""

    # The batch: `records` a list of at most `partner_batch_max()` records, each parsed by the one
    # parser of partner records (`services.partner_record_parse`, the history import's too), which
    # needs the partner in the context. A record it cannot read does not refuse the batch: it is
    # answered `rejected` with its code, beside the partner's other records.
    class Input(serializers.Serializer):
        class RecordSerializer(serializers.Serializer):
            id = serializers.CharField(max_length=100)
            customer_reference = serializers.CharField(max_length=64)
            behaviour = serializers.CharField()
            quantity = serializers.DecimalField(max_digits=14, decimal_places=3)
            occurred_at = serializers.DateTimeField()
            ended_at = serializers.DateTimeField(required=False, allow_null=True)
            amount = serializers.DecimalField(
                max_digits=11,
                decimal_places=2,
                required=False,
                allow_null=True,
                help_text="Yuan paid; required for payments counted from a minimum amount (utility: ¥1).",
            )
            instance = serializers.DictField(
                child=serializers.CharField(max_length=100),
                required=False,
                help_text="The fields that identify the real-world instance across sources, as the "
                "methodology declares them per behaviour (e-invoice: issuer, invoice_number).",
            )

            def run_validation(self, data=serializers.empty) -> Incoming:
                # The fields above document the shape; the parser reads it, record by record.
                return services.partner_record_parse(self.context["partner"], data)

        class RecordsField(serializers.ListField):
            def to_internal_value(self, data) -> list[Incoming]:
                if isinstance(data, list):
                    services.partner_batch_size_check(len(data))
                return super().to_internal_value(data)

        records = RecordsField(
            child=RecordSerializer(),
            error_messages=dict.fromkeys(("required", "null", "not_a_list"), RECORDS_REQUIRED),
        )

    class Output(serializers.Serializer):
        class OutcomeSerializer(serializers.Serializer):
            id = serializers.CharField()
            status = serializers.ChoiceField(choices=OUTCOME_STATUSES)
            code = serializers.CharField(required=False)
            message = serializers.CharField(required=False)
            detail = serializers.CharField(required=False)
            credited_carbon_mg = serializers.IntegerField(required=False)
            capped_by = serializers.CharField(required=False)
            hold_reason = serializers.CharField(required=False)
            credited_receipt = serializers.CharField(
                required=False, help_text="`duplicate_across_sources`: the credited record's receipt."
            )

        accepted = serializers.IntegerField()
        duplicate = serializers.IntegerField()
        duplicate_across_sources = serializers.IntegerField()
        rejected = serializers.IntegerField()
        held_for_review = serializers.IntegerField()
        records = OutcomeSerializer(many=True)

    @extend_schema(
        request=Input,
        responses=Output,
        parameters=PARTNER_HEADERS,
        auth=[],
        operation_id="partner_records_ingest",
    )
    def post(self, request: Request) -> Response:
        partner = partner_authenticated(self, request)
        serializer = self.Input(data=self.json_body(request), context={"partner": partner})
        serializer.is_valid(raise_exception=True)
        outcomes = services.partner_incoming_ingest(
            partner=partner, incoming=serializer.validated_data["records"]
        )
        counts = dict.fromkeys(OUTCOME_STATUSES, 0)
        for outcome in outcomes:
            counts[outcome.status] += 1
        # Built by hand, not through the serializer: batches are thousands of records.
        return Response({**counts, "records": [outcome.as_dict() for outcome in outcomes]})


class PartnerSignatureCheckApi(SignedRequestApi):
    """A partner checks its signing before it relies on it (a new signer, a rotated secret, the move
    from the legacy form): whom we took the request for, in which scheme, in which form it was
    signed, and until when the legacy form is accepted from it. Changes nothing; the request id is
    used up as any other's."""

    class Output(serializers.Serializer):
        partner = serializers.CharField(source="partner.code")
        signature_scheme = serializers.ChoiceField(
            choices=SignatureScheme.choices, source="partner.signature_scheme"
        )
        signed_form = serializers.ChoiceField(
            choices=signing.SIGNED_FORMS,
            help_text="`method_and_path`: the form to sign in; `legacy`: accepted until"
            " `legacy_signature_until`",
        )
        legacy_signature_until = serializers.DateTimeField(
            allow_null=True,
            source="partner.legacy_signature_until",
            help_text="until when the legacy form is accepted from this partner; null: it is not",
        )

    @extend_schema(
        responses=Output, parameters=PARTNER_HEADERS, auth=[], operation_id="partner_signature_check"
    )
    def get(self, request: Request) -> Response:
        return Response(self.Output(partner_signed_in(self, request)).data)


class PartnerLinksApi(SignedRequestApi):
    """The partner links its customer to a person at sign-up, with the one-time code the app showed."""

    class Input(serializers.Serializer):
        link_code = serializers.CharField(max_length=16)
        customer_reference = serializers.CharField(max_length=64)

    @extend_schema(
        request=Input,
        responses={201: inline_serializer("PartnerLink", {"customer_reference": serializers.CharField()})},
        parameters=PARTNER_HEADERS,
        auth=[],
        operation_id="partner_links_create",
    )
    def post(self, request: Request) -> Response:
        partner = partner_authenticated(self, request)
        serializer = self.Input(data=self.json_body(request))
        serializer.is_valid(raise_exception=True)
        link = services.partner_link_by_code(partner=partner, **serializer.validated_data)
        return Response({"customer_reference": link.customer_reference}, status=status.HTTP_201_CREATED)
