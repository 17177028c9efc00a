"""The app's API for leaderboards, ratings, badges, reports and the green credit profile; and the
partner banks' signed endpoint for the profile. Thin views: validate, call one selector or service.
"""

from __future__ import annotations

import datetime

from django.http import Http404, HttpResponse
from django.utils import timezone
from django.utils.encoding import iri_to_uri
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors as account_selectors
from accounts.sessions import prefetched_values
from activities.partner_requests import ANSWER_SIGNATURE_HEADERS, PARTNER_HEADERS, partner_authenticated
from core.api.dates import MonthField, month_from_text, year_from_text
from core.api.errors import ApplicationError
from core.api.renderers import PNGFileMixin
from core.api.serializers import QuerySerializer
from core.api.views import SignedRequestApi
from rewards.errors import LEADERBOARD_DISTRICT_UNKNOWN, REPORT_PERIOD_INVALID
from rewards.gamification import badges, credit_profile, leaderboards, ratings, reports
from rewards.gamification.report_card import report_card_png
from rewards.models import CreditProfileAccess, LeaderboardPeriod, RatingLevel

# --- Leaderboards -----------------------------------------------------------------------------


class BoardEntryOutput(serializers.Serializer):
    rank = serializers.IntegerField()
    nickname = serializers.CharField()
    avatar_url = serializers.CharField(allow_null=True)
    district = serializers.CharField(allow_null=True)
    district_name = serializers.CharField(allow_null=True)
    carbon_mg = serializers.IntegerField()
    is_me = serializers.BooleanField()


class StandingOutput(serializers.Serializer):
    rank = serializers.IntegerField(allow_null=True, help_text="Null when not on the board.")
    carbon_mg = serializers.IntegerField()
    shows_on_leaderboards = serializers.BooleanField(help_text="False when the person opted out.")


class BoardOutput(serializers.Serializer):
    period = serializers.ChoiceField(choices=LeaderboardPeriod.choices)
    scope = serializers.ChoiceField(choices=leaderboards.Scope.CHOICES)
    district = serializers.CharField(allow_null=True)
    period_start = serializers.DateField()
    through_day = serializers.DateField(help_text="The last local day counted.")
    built_at = serializers.DateTimeField(allow_null=True)
    version = serializers.IntegerField(allow_null=True)
    entries = BoardEntryOutput(many=True, help_text="The top 50, best first; ties broken by account age.")
    me = StandingOutput()


def _media_urls(request: Request):
    """A function giving a stored file's absolute URL, as `request.build_absolute_uri` does, with
    the scheme, host and MEDIA_URL worked out once for the request (a board shows 50 avatars)."""
    from django.conf import settings

    prefix = request.build_absolute_uri(settings.MEDIA_URL)

    def media_url(name: str) -> str | None:
        if not name:
            return None
        if "/." in name:  # a path build_absolute_uri would normalize: let it
            return request.build_absolute_uri(f"{settings.MEDIA_URL}{name}")
        return prefix + iri_to_uri(name)

    return media_url


# A board's entries as answered, built once per list of entries the cache holds (it turns every few
# seconds) and media prefix; my own entry flagged per request. Holding the list keeps its id unique.
_ANSWERED_ENTRIES: dict[tuple[int, str], tuple[list[dict], list[dict]]] = {}
_ANSWERED_ENTRIES_BOUND = 64


def _answered_entries(entries: list[dict], request: Request, *, me: int) -> list[dict]:
    from django.conf import settings

    prefix = request.build_absolute_uri(settings.MEDIA_URL)
    held = _ANSWERED_ENTRIES.get((id(entries), prefix))
    if held is None or held[0] is not entries:
        if len(_ANSWERED_ENTRIES) >= _ANSWERED_ENTRIES_BOUND:
            _ANSWERED_ENTRIES.clear()
        media_url = _media_urls(request)
        answered = [
            {
                "rank": entry["rank"],
                "nickname": entry["nickname"],
                "avatar_url": media_url(entry["avatar"]),
                "district": entry["district"],
                "district_name": entry["district_name"],
                "carbon_mg": entry["carbon_mg"],
                "is_me": False,
            }
            for entry in entries
        ]
        held = _ANSWERED_ENTRIES[(id(entries), prefix)] = (entries, answered)
    answered = held[1]
    for position, entry in enumerate(entries):
        if entry["user_id"] == me:
            answered = answered.copy()
            answered[position] = {**answered[position], "is_me": True}
            break
    return answered


class LeaderboardApi(APIView):
    """A board's top 50 and my rank and score. Today counts carbon credited so far (refreshed every
    few minutes); week, month and all time count the days up to yesterday (rebuilt nightly)."""

    class Query(QuerySerializer):
        scope = serializers.ChoiceField(
            choices=leaderboards.Scope.CHOICES, required=False, help_text="city (default)"
        )
        district = serializers.CharField(required=False, help_text="A district code; default: my district.")

    def person_cache_keys(self, request: Request, person_id: int) -> list[str]:
        """My row on the board being read (`leaderboards.STANDING_READING`) and the tag its top is kept
        under, beside my session."""
        period = (request.parser_context or {}).get("kwargs", {}).get("period")
        if period not in LeaderboardPeriod.values:
            return []
        summary = leaderboards.current_build(period=period)
        if summary is None:
            return []
        return [
            *leaderboards.STANDING_READING.keys(person_id, str(summary["id"])),
            leaderboards.people_shown_tag_key(),
        ]

    @extend_schema(parameters=[Query], responses=BoardOutput, operation_id="leaderboards_retrieve")
    def get(self, request: Request, period: str) -> Response:
        if period not in LeaderboardPeriod.values:
            raise Http404
        query = self.Query.validated(data=request.query_params)
        scope = query.get("scope", leaderboards.Scope.CITY)
        district = None
        if scope == leaderboards.Scope.DISTRICT and query.get("district"):
            district = account_selectors.district_of_code(code=query["district"])
            if district is None:
                raise ApplicationError(LEADERBOARD_DISTRICT_UNKNOWN)
        board = leaderboards.board_for(
            user=request.user,
            period=period,
            scope=scope,
            district=district,
            prefetched=prefetched_values(request),
        )
        # Built by hand: this is the hottest read of the app, and the entries come from the cache.
        return Response(
            {
                "period": board.period,
                "scope": board.scope,
                "district": board.district.code if board.district else None,
                "period_start": board.period_start,
                "through_day": board.through_day,
                "built_at": board.built_at,
                "version": board.version,
                "entries": _answered_entries(board.entries, request, me=request.user.pk),
                "me": {
                    "rank": board.me.rank,
                    "carbon_mg": board.me.carbon_mg,
                    "shows_on_leaderboards": board.shows_on_leaderboards,
                },
            }
        )


# --- Ratings ----------------------------------------------------------------------------------


class RatingOutput(serializers.Serializer):
    month = serializers.DateField(format="%Y-%m")
    level = serializers.ChoiceField(choices=RatingLevel.choices)
    level_display = serializers.CharField(source="get_level_display")
    carbon_mg = serializers.IntegerField()
    city_rank = serializers.IntegerField()
    share_above_percent = serializers.SerializerMethodField(
        help_text="The share of rated accounts that reduced more, in percent."
    )
    is_ambassador = serializers.BooleanField()
    is_final = serializers.SerializerMethodField()

    def get_share_above_percent(self, rating) -> str:
        return f"{rating.share_above_bp / 100:.2f}"

    def get_is_final(self, rating) -> bool:
        return self.context.get("final", {}).get(rating.month, False)


class RatingHistoryApi(APIView):
    class Output(serializers.Serializer):
        current = RatingOutput(allow_null=True)
        history = RatingOutput(many=True, help_text="The last 24 months rated, newest first.")

    @extend_schema(responses=Output, operation_id="ratings_mine")
    def get(self, request: Request) -> Response:
        history = ratings.rating_history_of(user=request.user)
        context = {"final": ratings.final_runs()}
        return Response(
            {
                "current": RatingOutput(history[0], context=context).data if history else None,
                "history": RatingOutput(history, many=True, context=context).data,
            }
        )


class AmbassadorsApi(APIView):
    """The month's carbon reduction ambassadors (dark greens who show on leaderboards), top 50."""

    class Output(serializers.Serializer):
        rank = serializers.IntegerField(source="city_rank")
        nickname = serializers.CharField(source="user.nickname")
        district = serializers.CharField(source="user.district.code", allow_null=True, default=None)
        carbon_mg = serializers.IntegerField()

    class Query(QuerySerializer):
        month = MonthField(required=False, help_text="YYYY-MM; default: this month")

    @extend_schema(parameters=[Query], responses=Output(many=True), operation_id="ratings_ambassadors")
    def get(self, request: Request) -> Response:
        query = self.Query(data=request.query_params)
        query.is_valid(raise_exception=True)
        month = query.validated_data.get("month") or timezone.localdate().replace(day=1)
        rows = ratings.ambassadors_of(month=month)[: leaderboards.TOP]
        return Response(self.Output(rows, many=True).data)


# --- Badges -----------------------------------------------------------------------------------


class BadgesApi(APIView):
    class Output(serializers.Serializer):
        class BadgeSerializer(serializers.Serializer):
            key = serializers.CharField()
            name = serializers.CharField()
            description = serializers.CharField()
            parameters = serializers.DictField()
            earned = serializers.BooleanField()
            awarded_at = serializers.DateTimeField(allow_null=True)

        current_streak_days = serializers.IntegerField()
        longest_streak_days = serializers.IntegerField()
        last_active_day = serializers.DateField(allow_null=True)
        badges = BadgeSerializer(many=True)

    @extend_schema(responses=Output, operation_id="badges_mine")
    def get(self, request: Request) -> Response:
        from django.utils import translation

        chinese = (translation.get_language() or "").startswith("zh")
        streaks = badges.streaks_of(user=request.user)
        rows = [
            {
                "key": badge.key,
                "name": badge.name if chinese else badge.name_en,
                "description": badge.description if chinese else badge.description_en,
                "parameters": badge.parameters,
                "earned": awarded_at is not None,
                "awarded_at": awarded_at,
            }
            for badge, awarded_at in badges.badges_of(user=request.user)
        ]
        return Response(
            self.Output(
                {
                    "current_streak_days": streaks.current_days,
                    "longest_streak_days": streaks.longest_days,
                    "last_active_day": streaks.last_active_day,
                    "badges": rows,
                }
            ).data
        )


# --- Reports ----------------------------------------------------------------------------------


class ReportOutput(serializers.Serializer):
    class BehaviourSerializer(serializers.Serializer):
        behaviour = serializers.CharField()
        name = serializers.CharField()
        unit = serializers.CharField()
        quantity = serializers.DecimalField(
            max_digits=18,
            decimal_places=3,
            allow_null=True,
            help_text="Null when another platform did not say.",
        )
        carbon_mg = serializers.IntegerField()
        issuer = serializers.CharField(
            allow_null=True,
            help_text="Null when measured here; else the platform whose statement it came from.",
        )
        platform = serializers.CharField(allow_null=True, help_text="That platform's name.")

    class RatingSerializer(serializers.Serializer):
        month = serializers.DateField(format="%Y-%m")
        level = serializers.ChoiceField(choices=RatingLevel.choices)
        is_ambassador = serializers.BooleanField()
        is_final = serializers.BooleanField()
        dark_green_months = serializers.IntegerField()

    class BadgeSerializer(serializers.Serializer):
        key = serializers.CharField()
        name = serializers.CharField()
        name_en = serializers.CharField()
        awarded_at = serializers.DateTimeField()

    class CoinsSerializer(serializers.Serializer):
        earned = serializers.IntegerField()
        spent = serializers.IntegerField()
        expired = serializers.IntegerField()

    class EquivalentsSerializer(serializers.Serializer):
        trees_yearly_absorption = serializers.DecimalField(max_digits=20, decimal_places=2)
        tree_co2_mg_per_year = serializers.IntegerField()
        tree_factor_source = serializers.CharField()
        car_km_avoided = serializers.DecimalField(max_digits=20, decimal_places=1)
        car_co2_mg_per_km = serializers.IntegerField()
        car_factor_source = serializers.CharField()

    period = serializers.ChoiceField(choices=reports.ReportPeriod.CHOICES)
    label = serializers.CharField()
    first_day = serializers.DateField()
    last_day = serializers.DateField()
    total_carbon_mg = serializers.IntegerField()
    previous_total_carbon_mg = serializers.IntegerField()
    change_carbon_mg = serializers.IntegerField()
    change_percent = serializers.DecimalField(max_digits=12, decimal_places=1, allow_null=True)
    behaviours = BehaviourSerializer(many=True)
    imported_carbon_mg = serializers.IntegerField(help_text="Of the total: from other platforms' statements.")
    city_average_carbon_mg = serializers.IntegerField(allow_null=True)
    district = serializers.CharField(source="district_code", allow_null=True)
    district_average_carbon_mg = serializers.IntegerField(allow_null=True)
    rating = RatingSerializer(allow_null=True)
    badges_earned = BadgeSerializer(many=True)
    badges_total = serializers.IntegerField()
    coins = CoinsSerializer()
    equivalents = EquivalentsSerializer()
    card_url = serializers.SerializerMethodField()

    def get_card_url(self, report) -> str:
        return f"/api/v1/reports/{report.period}/{report.label}.png"


def _report_start(period: str, label: str) -> datetime.date:
    if period not in reports.ReportPeriod.CHOICES:
        raise ApplicationError(REPORT_PERIOD_INVALID)
    try:
        if period == reports.ReportPeriod.MONTH:
            start = month_from_text(label)
        else:
            start = datetime.date(year_from_text(label), 1, 1)
    except serializers.ValidationError as error:
        raise ApplicationError(REPORT_PERIOD_INVALID) from error
    if start > timezone.localdate():
        raise ApplicationError(REPORT_PERIOD_INVALID)
    return start


REPORT_PATH_PARAMETERS = [
    OpenApiParameter(
        "period", {"type": "string", "enum": list(reports.ReportPeriod.CHOICES)}, OpenApiParameter.PATH
    ),
    OpenApiParameter(
        "label",
        {"type": "string", "pattern": r"^\d{4}(-\d{2})?$"},
        OpenApiParameter.PATH,
        description="`2026-11` for a month, `2026` for a year; one that has begun.",
    ),
]


class ReportApi(APIView):
    """The personal carbon report of a month (`month/2026-11`) or a year (`year/2026`)."""

    @extend_schema(responses=ReportOutput, parameters=REPORT_PATH_PARAMETERS, operation_id="reports_retrieve")
    def get(self, request: Request, period: str, label: str) -> Response:
        report = reports.carbon_report(user=request.user, period=period, start=_report_start(period, label))
        return Response(ReportOutput(report).data)


class ReportCardApi(PNGFileMixin, APIView):
    """The same report as a shareable phone-sized PNG card, in the request's language."""

    @extend_schema(
        responses={(200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY, description="750 × 1334 PNG")},
        parameters=REPORT_PATH_PARAMETERS,
        operation_id="reports_card",
    )
    def get(self, request: Request, period: str, label: str) -> HttpResponse:
        report = reports.carbon_report(user=request.user, period=period, start=_report_start(period, label))
        response = HttpResponse(
            report_card_png(report=report, nickname=request.user.nickname), content_type="image/png"
        )
        response["Content-Disposition"] = f'inline; filename="carbon-report-{report.label}.png"'
        response["Cache-Control"] = "private, max-age=600"
        return response


# --- The green credit profile -----------------------------------------------------------------


class ConsentOutput(serializers.Serializer):
    partner = serializers.CharField(source="partner.code")
    partner_name = serializers.CharField(source="partner.name")
    granted_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)
    is_active = serializers.BooleanField()


class CreditConsentListApi(APIView):
    """The banks I can let read my green credit profile, and my grants (active and past)."""

    class Input(serializers.Serializer):
        partner = serializers.SlugField(help_text="The bank's partner code.")

    class Output(serializers.Serializer):
        class BankSerializer(serializers.Serializer):
            partner = serializers.CharField(source="code")
            name = serializers.CharField()
            is_granted = serializers.BooleanField()

        banks = BankSerializer(many=True)
        consents = ConsentOutput(many=True)

    @extend_schema(responses=Output, operation_id="credit_profile_consents_list")
    def get(self, request: Request) -> Response:
        consents = list(credit_profile.credit_consents_of(user=request.user))
        active = {consent.partner_id for consent in consents if consent.is_active}
        banks = [
            {"code": bank.code, "name": bank.name, "is_granted": bank.pk in active}
            for bank in credit_profile.credit_partners()
        ]
        return Response(self.Output({"banks": banks, "consents": consents}).data)

    @extend_schema(
        request=Input, responses={201: ConsentOutput}, operation_id="credit_profile_consents_grant"
    )
    def post(self, request: Request) -> Response:
        body = self.Input(data=request.data)
        body.is_valid(raise_exception=True)
        consent = credit_profile.credit_consent_grant(
            user=request.user, partner_code=body.validated_data["partner"]
        )
        return Response(ConsentOutput(consent).data, status=status.HTTP_201_CREATED)


class CreditConsentDetailApi(APIView):
    # Taking a consent back is always possible, even before accepting new terms.
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={204: None}, operation_id="credit_profile_consents_revoke")
    def delete(self, request: Request, partner: str) -> Response:
        credit_profile.credit_consent_revoke(user=request.user, partner_code=partner)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CreditAccessListApi(APIView):
    """Every time a bank asked for my profile, and whether it was given (newest first, last 200)."""

    class Output(serializers.Serializer):
        partner = serializers.CharField(source="partner.code")
        partner_name = serializers.CharField(source="partner.name")
        outcome = serializers.ChoiceField(choices=CreditProfileAccess.Outcome.choices)
        outcome_display = serializers.CharField(source="get_outcome_display")
        accessed_at = serializers.DateTimeField()

    @extend_schema(responses=Output(many=True), operation_id="credit_profile_accesses_list")
    def get(self, request: Request) -> Response:
        rows = credit_profile.credit_accesses_of(user=request.user)[:200]
        return Response(self.Output(rows, many=True).data)


class CreditProfileOutput(serializers.Serializer):
    class CurrentSerializer(serializers.Serializer):
        month = serializers.DateField(format="%Y-%m")
        level = serializers.ChoiceField(choices=RatingLevel.choices)
        is_ambassador = serializers.BooleanField()

    class HistorySerializer(serializers.Serializer):
        month = serializers.DateField(format="%Y-%m")
        level = serializers.ChoiceField(choices=RatingLevel.choices, allow_null=True)

    class TwelveMonthsSerializer(serializers.Serializer):
        class MonthSerializer(serializers.Serializer):
            month = serializers.DateField(format="%Y-%m")
            carbon_mg = serializers.IntegerField(help_text="Measured here and imported.")
            imported_carbon_mg = serializers.IntegerField(
                help_text="Of which from other platforms' statements."
            )

        class ImportedSerializer(serializers.Serializer):
            month = serializers.DateField(format="%Y-%m")
            issuer = serializers.CharField(help_text="The platform that signed the statement.")
            platform = serializers.CharField()
            carbon_mg = serializers.IntegerField()

        # "from" is a Python keyword: declared through the class namespace.
        locals()["from"] = serializers.DateField()
        through = serializers.DateField()
        carbon_mg = serializers.IntegerField()
        imported_carbon_mg = serializers.IntegerField()
        active_months = serializers.IntegerField()
        dark_green_months = serializers.IntegerField()
        per_month = MonthSerializer(many=True)
        imported = ImportedSerializer(
            many=True, help_text="Statements of other platforms counted, by issuer."
        )

    person = serializers.UUIDField()
    as_of = serializers.DateField()
    current_rating = CurrentSerializer(allow_null=True)
    rating_history = HistorySerializer(many=True)
    twelve_months = TwelveMonthsSerializer()


class MyCreditProfileApi(APIView):
    """My profile exactly as a bank I allowed would receive it."""

    @extend_schema(responses=CreditProfileOutput, operation_id="credit_profile_mine")
    def get(self, request: Request) -> Response:
        return Response(CreditProfileOutput(credit_profile.credit_profile_of(user=request.user)).data)


class PartnerCreditProfileApi(SignedRequestApi):
    """A partner bank reads its customer's green credit profile; refused without the person's consent.

    A bank of an SM scheme gets the answer signed with our SM2 key (X-Platform-Signature).
    """

    signs_answers = True

    class Input(serializers.Serializer):
        customer_reference = serializers.CharField(max_length=64)

    @extend_schema(
        request=Input,
        responses=CreditProfileOutput,
        parameters=[*PARTNER_HEADERS, *ANSWER_SIGNATURE_HEADERS],
        auth=[],
        operation_id="partner_credit_profile",
    )
    def post(self, request: Request) -> Response:
        partner = partner_authenticated(self, request)
        body = self.Input(data=self.json_body(request))
        body.is_valid(raise_exception=True)
        profile = credit_profile.credit_profile_fetch(
            partner=partner,
            customer_reference=body.validated_data["customer_reference"],
            request_id=request.headers.get("X-Partner-Request-Id", ""),
        )
        return Response(CreditProfileOutput(profile).data)
