"""The operators' side of activities: the methodology, partners, records, the review queue, counters."""

from __future__ import annotations

import datetime

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from activities import selectors, services
from activities.methodology import methodology_first_open_day, methodology_version_in_effect
from activities.models import (
    ActivityRecord,
    Behaviour,
    BehaviourDay,
    BehaviourMonth,
    DailyCarbon,
    DeviceAccount,
    Factor,
    HeldRecord,
    ImportedReduction,
    MethodologyVersion,
    Partner,
    PartnerCustomerLink,
    PeerPlatform,
    PeerStatement,
    RecordStatus,
    RejectionTally,
    ReviewDecision,
    SignatureScheme,
    StepDay,
)
from activities.statements.importing import peer_keys_refresh
from activities.statements.jws import key_in_jwks
from core import admin as core_admin
from core.admin import ReadOnlyAdmin
from core.api.errors import ApplicationError
from core.crypto import sm


@admin.register(Behaviour)
class BehaviourAdmin(core_admin.ModelAdmin):
    list_display = ["code", "name", "name_en", "unit", "is_trip", "standard_category", "standard_behaviour"]
    list_filter = ["unit", "is_trip", "standard_category"]
    search_fields = ["code", "name", "name_en"]
    ordering = ["sort_order", "code"]

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        # The code and unit are what records and factors mean; they never change once created.
        return ["code", "unit"] if obj else []

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


FACTOR_FIELDS = [
    "behaviour",
    "carbon_mg_per_unit",
    "daily_cap_mg",
    "monthly_cap_mg",
    "event_cap_mg",
    "review_above_daily_quantity",
    "minimum_payment_fen",
    "sources",
    "source_note",
    "instance_fields",
    "instance_time_tolerance_seconds",
    "source_precedence",
]


class FactorForm(forms.ModelForm):
    sources = forms.MultipleChoiceField(
        choices=ActivityRecord._meta.get_field("source").choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = Factor
        fields = [*FACTOR_FIELDS]

    def clean_instance_fields(self) -> list[str]:
        fields = self.cleaned_data.get("instance_fields") or []
        if not isinstance(fields, list) or not all(isinstance(f, str) and f.isidentifier() for f in fields):
            raise forms.ValidationError(_('A list of field names, e.g. ["issuer", "invoice_number"].'))
        if len(set(fields)) != len(fields):
            raise forms.ValidationError(_("Each field once."))
        return fields

    def clean_source_precedence(self) -> list[str]:
        precedence = self.cleaned_data.get("source_precedence") or []
        known = {value for value, _label in ActivityRecord._meta.get_field("source").choices}
        if (
            not isinstance(precedence, list)
            or not set(precedence) <= known
            or len(set(precedence)) != len(precedence)
        ):
            raise forms.ValidationError(_("A list of data source codes, each once, the preferred first."))
        return precedence


class FactorInline(admin.TabularInline):
    model = Factor
    form = FactorForm
    extra = 0
    fields = FACTOR_FIELDS

    def _in_effect(self, obj) -> bool:
        return obj is not None and obj.pk is not None and methodology_version_in_effect(obj.effective_from)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return not self._in_effect(obj)

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return not self._in_effect(obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return not self._in_effect(obj)


@admin.register(MethodologyVersion)
class MethodologyVersionAdmin(core_admin.ModelAdmin):
    """A version can be prepared until capture may price a record with it (its first day, less the
    few minutes ahead of now capture accepts: `methodology_first_open_day`); from then on it is
    history and read-only.

    To revise factors, copy the current version ("Start a new version from the selected one"), adjust
    the copy and let it take effect on a future day.
    """

    list_display = ["number", "effective_from", "is_in_effect", "factor_count", "created_by", "created_at"]
    ordering = ["-effective_from"]
    inlines = [FactorInline]
    actions = ["copy_as_new_version"]
    readonly_fields = ["created_by", "created_at"]

    @admin.display(boolean=True, description=_("in effect"))
    def is_in_effect(self, version: MethodologyVersion) -> bool:
        return methodology_version_in_effect(version.effective_from)

    @admin.display(description=_("factors"))
    def factor_count(self, version: MethodologyVersion) -> int:
        return version.factors.count()

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        if obj is not None and self.is_in_effect(obj):
            return ["number", "effective_from", "notes", "created_by", "created_at"]
        return self.readonly_fields

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return obj is not None and not self.is_in_effect(obj)

    def save_model(self, request, obj, form, change) -> None:
        if methodology_version_in_effect(obj.effective_from):
            # A version starting today or earlier, new or a prepared one moved, would re-price
            # records already credited under the version in effect.
            obj.effective_from = methodology_first_open_day()
            messages.warning(request, _("A new version takes effect tomorrow at the earliest."))
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.action(description=_("Start a new version from the selected one (takes effect tomorrow)"))
    def copy_as_new_version(self, request: HttpRequest, queryset: QuerySet) -> None:
        if queryset.count() != 1:
            self.message_user(request, _("Select exactly one version to copy."), messages.ERROR)
            return
        latest = MethodologyVersion.objects.order_by("-effective_from").first()
        starts = max(methodology_first_open_day(), latest.effective_from + datetime.timedelta(days=1))
        version = services.methodology_version_copy(
            source=queryset.get(), effective_from=starts, created_by=request.user
        )
        self.message_user(
            request,
            _("Version %(number)s created; edit it before %(day)s.")
            % {"number": version.number, "day": starts},
        )


@admin.register(Factor)
class FactorAdmin(ReadOnlyAdmin):
    list_display = [
        "behaviour",
        "version",
        "carbon_mg_per_unit",
        "daily_cap_mg",
        "monthly_cap_mg",
        "event_cap_mg",
        "review_above_daily_quantity",
        "sources",
    ]
    list_filter = ["version", "behaviour"]


class PartnerForm(forms.ModelForm):
    class Meta:
        model = Partner
        fields = [
            "code",
            "name",
            "source",
            "behaviours",
            "is_active",
            "signature_scheme",
            "sm2_public_key",
            "sm2_signer_id",
            "legacy_signature_until",
        ]
        help_texts = {
            "signature_scheme": _(
                "How the partner signs its requests. With HMAC-SM3 or SM2, our answers that disclose "
                "something (the credit profile) carry our SM2 signature."
            ),
            "sm2_public_key": _("For SM2: the partner's public key, hex (04‖x‖y, x‖y or compressed)."),
            "sm2_signer_id": _("For SM2: the signer id the partner signs with (the standard default)."),
        }

    def clean_sm2_public_key(self) -> str:
        text = self.cleaned_data.get("sm2_public_key", "").strip()
        if not text:
            return ""
        try:
            return sm.sm2_public_key_normalized(text).hex()
        except ValueError as error:
            raise forms.ValidationError(
                _("This is not an SM2 public key (a point of the SM2 curve).")
            ) from error

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("signature_scheme") == SignatureScheme.SM2_SM3 and not cleaned.get("sm2_public_key"):
            self.add_error("sm2_public_key", _("An SM2 partner needs its public key."))
        return cleaned


@admin.register(Partner)
class PartnerAdmin(core_admin.ModelAdmin):
    """Partners' credentials: the signing secret is shown once, when created or rotated."""

    form = PartnerForm
    list_display = [
        "code",
        "name",
        "source",
        "signature_scheme",
        "is_active",
        "api_key",
        "secret_rotated_at",
        "legacy_signature_until",
        "legacy_signature_seen_at",
        "created_at",
    ]
    list_filter = ["source", "signature_scheme", "is_active"]
    search_fields = ["code", "name", "api_key"]
    filter_horizontal = ["behaviours"]
    actions = ["rotate_signing_secret"]

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        # The code and the source name the partner's records (`<code>:<id>`, unique per source) and
        # the consent they need: changed, a record sent again would be another record, credited again.
        return ["code", "source", "api_key", "secret_rotated_at", "legacy_signature_seen_at"] if obj else []

    def get_fields(self, request: HttpRequest, obj=None):
        fields = [
            "code",
            "name",
            "source",
            "behaviours",
            "is_active",
            "signature_scheme",
            "sm2_public_key",
            "sm2_signer_id",
            "legacy_signature_until",
        ]
        return [*fields, "legacy_signature_seen_at", "api_key", "secret_rotated_at"] if obj else fields

    def save_model(self, request, obj, form, change) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        created = services.partner_create(code=obj.code, name=obj.name, source=obj.source, behaviour_codes=[])
        obj.pk = created.partner.pk
        obj.api_key = created.partner.api_key
        obj.signing_secret_ciphertext = created.partner.signing_secret_ciphertext
        obj.is_active = form.cleaned_data.get("is_active", True)
        obj.save(
            update_fields=[
                "is_active",
                "signature_scheme",
                "sm2_public_key",
                "sm2_signer_id",
                "legacy_signature_until",
            ]
        )
        messages.warning(
            request,
            _("API key %(key)s, signing secret %(secret)s — copy the secret now, it is not shown again.")
            % {"key": created.partner.api_key, "secret": created.signing_secret},
        )

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.action(description=_("Rotate the signing secret (the old one works 24 more hours)"))
    def rotate_signing_secret(self, request: HttpRequest, queryset: QuerySet) -> None:
        for partner in queryset:
            secret = services.partner_secret_rotate(partner=partner)
            messages.warning(
                request,
                _("%(partner)s: new signing secret %(secret)s — copy it now, it is not shown again.")
                % {"partner": partner.code, "secret": secret},
            )


@admin.register(PartnerCustomerLink)
class PartnerCustomerLinkAdmin(core_admin.ModelAdmin):
    list_display = ["partner", "customer_reference", "user", "linked_by_partner", "linked_at"]
    list_filter = ["partner", "linked_by_partner"]
    search_fields = ["customer_reference", "user__username", "user__public_id"]
    raw_id_fields = ["user"]
    readonly_fields = ["linked_at"]


class RecordAdminMixin:
    list_display = [
        "id",
        "user",
        "behaviour",
        "source",
        "partner",
        "quantity",
        "local_day",
        "gross_carbon_mg",
        "credited_carbon_mg",
        "capped_by",
        "status",
        "hold_reason",
        "methodology_version",
    ]
    list_select_related = ["user", "behaviour", "partner", "factor__version"]
    # No date hierarchy and no full count: the table holds tens of millions of rows.
    search_fields = ["=external_id", "=user__username", "=user__public_id", "=device_id"]
    show_full_result_count = False

    @admin.display(description=_("receipt"))
    def receipt(self, record: ActivityRecord) -> str:
        return selectors.receipt_of(record)

    @admin.display(description=_("methodology version"), ordering="factor__version__number")
    def methodology_version(self, record: ActivityRecord) -> str:
        return f"v{record.factor.version.number}"


@admin.register(ActivityRecord)
class ActivityRecordAdmin(RecordAdminMixin, ReadOnlyAdmin):
    list_filter = ["status", "source", "behaviour", "capped_by", "hold_reason", "partner", "factor__version"]
    readonly_fields = ["receipt"]


@admin.register(HeldRecord)
class HeldRecordAdmin(RecordAdminMixin, core_admin.ModelAdmin):
    """The review queue: approve credits (caps applied now), reject drops; both are audited."""

    list_display = [*RecordAdminMixin.list_display, "appeal_note", "created_at"]
    list_filter = ["hold_reason", "behaviour", "source", "partner"]
    actions = ["approve_selected", "reject_selected"]
    ordering = ["id"]
    readonly_fields = [field.name for field in ActivityRecord._meta.fields] + ["receipt"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).filter(status=RecordStatus.HELD)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def _decide(self, request: HttpRequest, queryset: QuerySet, service, verb: str) -> None:
        done = failed = 0
        for record_id in queryset.order_by("id").values_list("id", flat=True):
            try:
                service(record_id=record_id, reviewer=request.user, note="")
                done += 1
            except ApplicationError:
                failed += 1
        self.message_user(request, _("%(done)s record(s) %(verb)s.") % {"done": done, "verb": verb})
        if failed:
            self.message_user(
                request,
                _("%(failed)s record(s) were already decided.") % {"failed": failed},
                messages.WARNING,
            )

    @admin.action(description=_("Approve: credit the selected records"), permissions=["change"])
    def approve_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._decide(request, queryset, services.record_approve, str(_("approved")))

    @admin.action(description=_("Reject: credit nothing for the selected records"), permissions=["change"])
    def reject_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._decide(request, queryset, services.record_reject, str(_("rejected")))


@admin.register(ReviewDecision)
class ReviewDecisionAdmin(ReadOnlyAdmin):
    list_display = ["record", "decision", "reviewer", "credited_carbon_mg", "note", "decided_at"]
    list_filter = ["decision"]
    search_fields = ["record__external_id", "reviewer__username", "note"]
    list_select_related = ["record", "reviewer"]


@admin.register(RejectionTally)
class RejectionTallyAdmin(ReadOnlyAdmin):
    list_display = ["day", "source", "partner_code", "code", "count"]
    list_filter = ["code", "source", "partner_code"]
    date_hierarchy = "day"


@admin.register(DailyCarbon)
class DailyCarbonAdmin(ReadOnlyAdmin):
    list_display = ["user", "day", "credited_carbon_mg", "settled_carbon_mg", "updated_at"]
    search_fields = ["user__username", "user__public_id"]
    date_hierarchy = "day"
    list_select_related = ["user"]


@admin.register(BehaviourDay)
class BehaviourDayAdmin(ReadOnlyAdmin):
    list_display = [
        "user",
        "behaviour",
        "day",
        "quantity",
        "record_count",
        "held_count",
        "credited_carbon_mg",
    ]
    list_filter = ["behaviour"]
    search_fields = ["user__username", "user__public_id"]
    date_hierarchy = "day"
    list_select_related = ["user", "behaviour"]


@admin.register(BehaviourMonth)
class BehaviourMonthAdmin(ReadOnlyAdmin):
    list_display = ["user", "behaviour", "month", "credited_carbon_mg"]
    list_filter = ["behaviour"]
    search_fields = ["user__username", "user__public_id"]


@admin.register(StepDay)
class StepDayAdmin(ReadOnlyAdmin):
    list_display = ["user", "day", "steps", "updated_at"]
    search_fields = ["user__username", "user__public_id"]
    date_hierarchy = "day"


@admin.register(DeviceAccount)
class DeviceAccountAdmin(ReadOnlyAdmin):
    list_display = ["device_id", "user", "first_seen_at"]
    search_fields = ["device_id", "user__username"]


# --- Statements from other platforms -----------------------------------------------------------


class PeerPlatformForm(forms.ModelForm):
    class Meta:
        model = PeerPlatform
        fields = [
            "name",
            "issuer",
            "jwks_url",
            "jwks",
            "is_active",
            "counts_in_report",
            "counts_in_rating",
            "counts_in_credit_profile",
            "mints_coins",
            "coin_share_percent",
        ]

    def clean_jwks(self):
        jwks = self.cleaned_data.get("jwks") or {}
        keys = jwks.get("keys") if isinstance(jwks, dict) else None
        if not isinstance(keys, list):
            raise forms.ValidationError(_('A JWK Set: {"keys": [ … ]}.'))
        for key in keys:
            if not isinstance(key, dict) or not isinstance(key.get("kid"), str):
                raise forms.ValidationError(_("Every key needs its key id (kid)."))
            if "d" in key:
                raise forms.ValidationError(_("This is a private key: paste only the public keys."))
            if (
                key.get("kty") != "OKP"
                or key.get("crv") != "Ed25519"
                or key_in_jwks(jwks, key["kid"]) is None
            ):
                raise forms.ValidationError(
                    _("The key %(kid)s is not an Ed25519 public key.") % {"kid": key["kid"]}
                )
        return jwks

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("jwks_url") and not (cleaned.get("jwks") or {}).get("keys"):
            self.add_error("jwks", _("Give the peer's public keys, or the URL where it publishes them."))
        share = cleaned.get("coin_share_percent")
        if share is not None and not 1 <= share <= 100:
            self.add_error("coin_share_percent", _("A share from 1 to 100 percent."))
        return cleaned


@admin.register(PeerPlatform)
class PeerPlatformAdmin(core_admin.ModelAdmin):
    """Platforms whose statements people may bring: their keys, what they count in, their coin policy."""

    form = PeerPlatformForm
    list_display = [
        "name",
        "issuer",
        "is_active",
        "counts_in_report",
        "counts_in_rating",
        "counts_in_credit_profile",
        "mints_coins",
        "coin_share_percent",
        "jwks_fetched_at",
    ]
    list_filter = ["is_active", "mints_coins"]
    search_fields = ["name", "issuer"]
    readonly_fields = ["jwks_fetched_at", "created_at"]
    actions = ["fetch_keys"]

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.action(description=_("Fetch the public keys from the JWKS URL now"))
    def fetch_keys(self, request: HttpRequest, queryset: QuerySet) -> None:
        for peer in queryset:
            # An operator's fetch is not held back by the refresh interval.
            PeerPlatform.objects.filter(pk=peer.pk).update(jwks_fetched_at=None)
            if peer_keys_refresh(peer=peer):
                messages.success(
                    request,
                    _("%(peer)s: %(count)d keys fetched.")
                    % {"peer": peer.name, "count": len(peer.jwks["keys"])},
                )
            else:
                messages.error(request, _("%(peer)s: the keys could not be fetched.") % {"peer": peer.name})


class ImportedReductionInline(admin.TabularInline):
    model = ImportedReduction
    extra = 0
    can_delete = False
    fields = [
        "behaviour", "name", "standard", "standard_category", "standard_behaviour",
        "stated_carbon_mg", "carbon_mg",
    ]  # fmt: skip
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(PeerStatement)
class PeerStatementAdmin(ReadOnlyAdmin):
    list_display = [
        "peer", "user", "month", "stated_carbon_mg", "total_carbon_mg", "statement_id", "imported_at",
    ]  # fmt: skip
    list_filter = ["peer"]
    search_fields = ["=statement_id", "=user__username", "=user__public_id"]
    exclude = ["nonce"]
    inlines = [ImportedReductionInline]
