"""Every change of the activities app: capture, partners, links, the review queue, the methodology.

Capture paths (phone steps, WeRun, partner batches, bulk imports) all end in `ingest.records_ingest`,
the one set-based path that applies consent, dedupe, plausibility and caps.
"""

from __future__ import annotations

import datetime
import secrets
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import DataSource, NotificationKind, User
from accounts.notifications.services import notification_raise
from accounts.selectors import wechat_session_key_for_user
from activities import errors, signing
from activities.cache_renewals import carbon_changed
from activities.capture_rules import CLOCK_SKEW
from activities.ingest import (
    DUPLICATE,
    DUPLICATE_ACROSS_SOURCES,
    REJECTED,
    Incoming,
    Outcome,
    apply_caps,
    record_authorization_check,
    records_ingest,
    rejections_count,
)
from activities.instances import instance_midnights_lock
from activities.methodology import MAX_INSTANCE_VALUE_LENGTH, factor_in_effect
from activities.models import (
    ActivityRecord,
    BehaviourDay,
    BehaviourMonth,
    Factor,
    MethodologyVersion,
    Partner,
    PartnerCustomerLink,
    RecordStatus,
    ReviewDecision,
    SignatureScheme,
)
from activities.sql_statements import capture as statements
from activities.statements.instances import imported_instances_release, instance_released_by
from activities.werun import WeRunError, werun_decrypt
from core.api.errors import NOT_FOUND, ApplicationError
from core.api.throttles import window_give_back, window_increment
from core.local_time import LOCAL_TZ, local_day_of


def step_sync_window_days() -> int:
    return int(getattr(settings, "ACTIVITIES_STEP_SYNC_WINDOW_DAYS", 30))


def partner_window_days() -> int:
    return int(getattr(settings, "ACTIVITIES_PARTNER_WINDOW_DAYS", 30))


def history_window_days() -> int:
    """How far back a history import reaches (days); older records need an operator's back-fill."""
    return int(getattr(settings, "ACTIVITIES_HISTORY_WINDOW_DAYS", 90))


# Yuan: far beyond any household payment, within what the staging columns hold exactly.
MAX_AMOUNT = Decimal(10**9)


def partner_batch_max() -> int:
    return int(getattr(settings, "ACTIVITIES_PARTNER_BATCH_MAX", 5000))


# --- Steps from the phone -----------------------------------------------------------------------


@dataclass(slots=True)
class StepDayOutcome:
    day: datetime.date
    steps: int
    status: str
    code: str = ""
    increase: int = 0
    credited_carbon_mg: int = 0
    hold_reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"day": self.day.isoformat(), "steps": self.steps, "status": self.status}
        if self.code:
            result["code"] = self.code
            result["message"] = str(errors.RECORD_CODES[self.code].message)
        result["increase"] = self.increase
        result["credited_carbon_mg"] = self.credited_carbon_mg
        if self.hold_reason:
            result["hold_reason"] = self.hold_reason
        return result


def _end_of_day(day: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(23, 59, 59), tzinfo=LOCAL_TZ)


@transaction.atomic
def steps_sync(
    *,
    user: User,
    steps_by_day: dict[datetime.date, int],
    device_id: str = "",
    now: datetime.datetime | None = None,
) -> list[StepDayOutcome]:
    """Credits the increase of each day's cumulative step count over what was already synced.

    A lower count than before, a day after today or a day older than the sync window is rejected.
    Two phones syncing at once serialize on the person's step-day row: only the increase counts.
    """
    now = now or timezone.now()
    today = local_day_of(now)
    oldest = today - datetime.timedelta(days=step_sync_window_days() - 1)
    outcomes: dict[datetime.date, StepDayOutcome] = {}
    valid: dict[datetime.date, int] = {}
    for day, steps in sorted(steps_by_day.items()):
        if day > today:
            outcomes[day] = StepDayOutcome(day, steps, REJECTED, errors.STEP_DAY_IN_FUTURE.code)
        elif day < oldest:
            outcomes[day] = StepDayOutcome(day, steps, REJECTED, errors.STEP_DAY_TOO_OLD.code)
        elif steps < 0:
            outcomes[day] = StepDayOutcome(day, steps, REJECTED, errors.INVALID_QUANTITY.code)
        else:
            valid[day] = steps

    # Consent and account state first, the person's row locked before their step days (as every
    # capture does): a person without consent leaves no trace of their steps.
    blocked = _person_blocked_code(user=user, source=DataSource.PHONE_STEPS)
    if blocked:
        for day, steps in valid.items():
            outcomes[day] = StepDayOutcome(day, steps, REJECTED, blocked)
        valid = {}

    printable_device_id = "".join(ch for ch in device_id if ch.isprintable())[:64]
    incoming: list[Incoming] = []
    increases: dict[datetime.date, int] = {}
    if valid:
        days = sorted(valid)
        with connection.cursor() as cursor:
            raised, stored = statements.step_days_raise(
                cursor, user.id, days, [valid[day] for day in days], now
            )
        for day in days:
            if day in raised:
                previous, steps = raised[day]
                if steps == previous:
                    outcomes[day] = StepDayOutcome(day, steps, DUPLICATE)
                    continue
                increases[day] = steps - previous
                incoming.append(
                    Incoming(
                        external_id=f"{user.public_id}:{day.isoformat()}:{steps}",
                        behaviour_code="walk",
                        quantity=Decimal(steps - previous),
                        occurred_at=min(now, _end_of_day(day)),
                        user_id=user.id,
                        device_id=printable_device_id,
                    )
                )
            elif stored.get(day, 0) > valid[day]:
                outcomes[day] = StepDayOutcome(day, valid[day], REJECTED, errors.STEP_COUNT_DECREASED.code)
            else:
                outcomes[day] = StepDayOutcome(day, valid[day], DUPLICATE)

    if incoming:
        results = records_ingest(source=DataSource.PHONE_STEPS, records=incoming, now=now)
        for record, result in zip(incoming, results, strict=True):
            day = local_day_of(record.occurred_at)
            outcomes[day] = StepDayOutcome(
                day,
                valid[day],
                result.status,
                result.code,
                increase=increases[day],
                credited_carbon_mg=result.credited_carbon_mg,
                hold_reason=result.hold_reason,
            )
    # Days refused here are counted here; a day whose increase `records_ingest` refused is counted there.
    rejections_count(
        source=DataSource.PHONE_STEPS,
        partner_code="",
        codes=Counter(o.code for o in outcomes.values() if o.status == REJECTED and not o.increase),
        now=now,
    )
    return [outcomes[day] for day in sorted(outcomes)]


def _person_blocked_code(*, user: User, source: str) -> str:
    """The person rules for the phone's own sync (the person acting: no grant time applies), the
    person and their grant locked for the transaction as every capture locks them."""
    with connection.cursor() as cursor:
        is_open, is_authorized, _granted_at = statements.people_state(cursor, source, [user.id]).get(
            user.id, (False, False, None)
        )
    return record_authorization_check(
        is_open=is_open,
        is_authorized=is_authorized,
        granted_at=None,
        occurred_at=timezone.now(),
        from_partner=False,
    )


def werun_app_id() -> str:
    return str(getattr(settings, "WECHAT_MINIPROGRAM_APP_ID", "") or getattr(settings, "WECHAT_APP_ID", ""))


def werun_sync(
    *, user: User, encrypted_data: str, iv: str, device_id: str = "", now: datetime.datetime | None = None
) -> list[StepDayOutcome]:
    """Decrypts the mini-program's WeRun payload with the person's session key and syncs its steps.

    WeRun always carries the last 30 or so days; days older than the sync window are left out
    silently (the person did not ask for them).
    """
    session_key = wechat_session_key_for_user(user_id=user.id)
    if session_key is None:
        raise ApplicationError(errors.WECHAT_SESSION_MISSING)
    try:
        payload = werun_decrypt(session_key=session_key, encrypted_data=encrypted_data, iv=iv)
    except WeRunError as error:
        raise ApplicationError(errors.WERUN_PAYLOAD_INVALID) from error
    expected_app_id = werun_app_id()
    if not expected_app_id or not secrets.compare_digest(payload.app_id, expected_app_id):
        raise ApplicationError(errors.WERUN_WATERMARK_MISMATCH)
    now = now or timezone.now()
    oldest = local_day_of(now) - datetime.timedelta(days=step_sync_window_days() - 1)
    steps = {day: count for day, count in payload.steps_by_day.items() if day >= oldest}
    return steps_sync(user=user, steps_by_day=steps, device_id=device_id, now=now)


# --- Partners -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartnerWithSecret:
    partner: Partner
    signing_secret: str


@transaction.atomic
def partner_create(*, code: str, name: str, source: str, behaviour_codes: list[str]) -> PartnerWithSecret:
    """Creates a partner with fresh credentials. The signing secret is returned once, never shown again."""
    from activities.models import Behaviour

    secret = signing.new_secret()
    partner = Partner.objects.create(
        code=code,
        name=name,
        source=source,
        api_key=signing.new_api_key(),
        signing_secret_ciphertext=signing.seal(secret, partner_code=code),
    )
    partner.behaviours.set(Behaviour.objects.filter(code__in=behaviour_codes))
    return PartnerWithSecret(partner, secret)


@transaction.atomic
def partner_secret_rotate(*, partner: Partner, grace: datetime.timedelta | None = None) -> str:
    """Issues a new signing secret; the previous one keeps working for `grace` (24 hours by default)."""
    partner = Partner.objects.select_for_update().get(pk=partner.pk)
    secret = signing.new_secret()
    now = timezone.now()
    partner.previous_signing_secret_ciphertext = partner.signing_secret_ciphertext
    partner.previous_secret_valid_until = now + (grace if grace is not None else datetime.timedelta(hours=24))
    partner.signing_secret_ciphertext = signing.seal(secret, partner_code=partner.code)
    partner.secret_rotated_at = now
    partner.save(
        update_fields=[
            "previous_signing_secret_ciphertext",
            "previous_secret_valid_until",
            "signing_secret_ciphertext",
            "secret_rotated_at",
        ]
    )
    return secret


@dataclass(frozen=True)
class PartnerSecretsRekeyed:
    rewritten: int
    changed_meanwhile: int
    unreadable: int
    left: int


def partner_secrets_rekey() -> PartnerSecretsRekeyed:
    """Re-seals every partner's signing secrets (current and previous) under the current key and suite.

    Partners are few: one conditional UPDATE each (its own transaction), changing the row only if
    its sealed secrets are still those read, so a rotation of the secret meanwhile is kept.
    """
    prefix = signing.current_seal_prefix()
    rewritten = changed = unreadable = 0
    stale = Partner.objects.exclude(
        signing_secret_ciphertext__startswith=prefix,
        previous_signing_secret_ciphertext__startswith=prefix,
    ).exclude(signing_secret_ciphertext__startswith=prefix, previous_signing_secret_ciphertext="")
    for partner in stale.only(
        "id", "code", "signing_secret_ciphertext", "previous_signing_secret_ciphertext"
    ):
        values = {}
        for field in ("signing_secret_ciphertext", "previous_signing_secret_ciphertext"):
            sealed = getattr(partner, field)
            if not sealed or sealed.startswith(prefix):
                continue
            secret = signing.unseal(sealed, partner_code=partner.code)
            if secret is None:
                unreadable += 1
                continue
            values[field] = signing.seal(secret, partner_code=partner.code)
        if not values:
            continue
        updated = Partner.objects.filter(
            pk=partner.pk,
            signing_secret_ciphertext=partner.signing_secret_ciphertext,
            previous_signing_secret_ciphertext=partner.previous_signing_secret_ciphertext,
        ).update(**values)
        rewritten += updated
        changed += 1 - updated
    return PartnerSecretsRekeyed(rewritten, changed, unreadable, partner_secrets_left_on_old_keys())


def partner_secrets_left_on_old_keys() -> int:
    """Sealed secrets (current or previous) not under the current key and suite."""
    prefix = signing.current_seal_prefix()
    return (
        Partner.objects.exclude(signing_secret_ciphertext__startswith=prefix).count()
        + Partner.objects.exclude(previous_signing_secret_ciphertext="")
        .exclude(previous_signing_secret_ciphertext__startswith=prefix)
        .count()
    )


@dataclass(frozen=True)
class PartnerSignedIn:
    """Who signed a partner request, and, when it was signed in the legacy form (without the method
    and path), until when that form is accepted."""

    partner: Partner
    legacy_signature_until: datetime.datetime | None = None

    @property
    def signed_form(self) -> str:
        """One of `signing.SIGNED_FORMS`."""
        return (
            signing.SIGNED_FORM_CURRENT if self.legacy_signature_until is None else signing.SIGNED_FORM_LEGACY
        )


# How often a partner's use of the legacy form is written down (Partner.legacy_signature_seen_at).
LEGACY_SIGNATURE_SEEN_EVERY = datetime.timedelta(minutes=1)


def partner_authenticate(
    *,
    api_key: str,
    timestamp: str,
    request_id: str,
    signature: str,
    method: str,
    path: str,
    body: bytes,
    now=None,
) -> PartnerSignedIn:
    """Checks a partner request: known key, fresh timestamp, valid signature of this method, path
    and body (`signing.request_message`, or the legacy form while the partner may still use it),
    request id never seen."""
    partner = Partner.objects.filter(api_key=api_key, is_active=True).first() if api_key else None
    if partner is None:
        raise ApplicationError(errors.PARTNER_CREDENTIALS_INVALID)
    now = now or timezone.now()
    try:
        sent_at = datetime.datetime.fromtimestamp(int(timestamp), tz=datetime.UTC)
    except (TypeError, ValueError, OverflowError, OSError) as error:
        raise ApplicationError(errors.PARTNER_TIMESTAMP_SKEWED) from error
    if abs(now - sent_at) > CLOCK_SKEW:
        raise ApplicationError(errors.PARTNER_TIMESTAMP_SKEWED)
    if not request_id or len(request_id) > 100:
        raise ApplicationError(errors.PARTNER_SIGNATURE_INVALID, fields={"X-Partner-Request-Id": "required"})
    signature = signature or ""
    signed = _partner_signature_valid(
        partner, signing.request_message(method, path, timestamp, request_id, body), signature, now=now
    )
    legacy_until = partner.legacy_signature_until
    legacy = (
        not signed
        and legacy_until is not None
        and legacy_until > now
        and _partner_signature_valid(
            partner, signing.legacy_request_message(timestamp, request_id, body), signature, now=now
        )
    )
    if not (signed or legacy):
        raise ApplicationError(errors.PARTNER_SIGNATURE_INVALID)
    # Replay protection: the id is remembered a little longer than a timestamp stays acceptable.
    if not cache.add(f"activities:partner-request:{partner.id}:{request_id}", 1, timeout=15 * 60):
        raise ApplicationError(errors.PARTNER_REQUEST_REPLAYED)
    if not legacy:
        return PartnerSignedIn(partner)
    Partner.objects.filter(pk=partner.pk).exclude(
        legacy_signature_seen_at__gt=now - LEGACY_SIGNATURE_SEEN_EVERY
    ).update(legacy_signature_seen_at=now)
    return PartnerSignedIn(partner, legacy_signature_until=legacy_until)


def _partner_signature_valid(
    partner: Partner, message: bytes, signature: str, *, now: datetime.datetime
) -> bool:
    """The partner's signature of `message` under its scheme: its SM2 public key, or its HMAC
    secret(s)."""
    if partner.signature_scheme == SignatureScheme.SM2_SM3:
        return signing.sm2_signature_matches(partner, message, signature)
    secrets_to_try = [signing.unseal(partner.signing_secret_ciphertext, partner_code=partner.code)]
    if partner.previous_secret_valid_until and partner.previous_secret_valid_until > now:
        secrets_to_try.append(
            signing.unseal(partner.previous_signing_secret_ciphertext, partner_code=partner.code)
        )
    # Every candidate is compared (no early exit), each in constant time.
    matches = [
        signing.signature_matches(secret, message, signature, scheme=partner.signature_scheme)
        for secret in secrets_to_try
        if secret
    ]
    return any(matches)


def _parse_moment(value: Any) -> datetime.datetime:
    if not isinstance(value, str):
        raise ValueError("not a string")
    moment = datetime.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("no time zone")
    return moment


def partner_record_parse(partner: Partner, raw: Any) -> Incoming:
    """One partner record (a dict of the JSON batch, or an import line) as an `Incoming`."""
    if not isinstance(raw, dict):
        return Incoming(
            "", "", Decimal(0), timezone.now(), invalid_code="invalid_record", invalid_detail="record"
        )
    record_id = raw.get("id")
    external_id = f"{partner.code}:{record_id}" if isinstance(record_id, str | int) and str(record_id) else ""
    problem = ""
    # Ids and references are printable text: control characters never reach the database.
    if not external_id or len(str(record_id)) > 100 or not external_id.isprintable():
        problem = "id"
    reference = raw.get("customer_reference")
    if not problem and (
        not isinstance(reference, str) or not reference or len(reference) > 64 or not reference.isprintable()
    ):
        problem = "customer_reference"
    behaviour = raw.get("behaviour")
    if not problem and not isinstance(behaviour, str):
        problem = "behaviour"
    occurred_at = ended_at = None
    if not problem:
        try:
            occurred_at = _parse_moment(raw.get("occurred_at"))
        except ValueError:
            problem = "occurred_at"
    if not problem and raw.get("ended_at") is not None:
        try:
            ended_at = _parse_moment(raw.get("ended_at"))
        except ValueError:
            problem = "ended_at"
    amount = None
    if not problem and raw.get("amount") is not None:
        try:
            amount = Decimal(str(raw["amount"]))
        except (InvalidOperation, ValueError):
            problem = "amount"
        else:
            # Yuan and fen, never negative.
            exponent = amount.as_tuple().exponent
            if not amount.is_finite() or amount < 0 or amount > MAX_AMOUNT or exponent < -2:  # type: ignore[operator]
                problem = "amount"
    instance = None
    if not problem:
        instance = _instance_parse(raw)
        if instance is False:
            problem, instance = "instance", None
    quantity = Decimal(0)
    if not problem:
        try:
            quantity = Decimal(str(raw.get("quantity")))
        except (InvalidOperation, ValueError):
            return Incoming(
                external_id, str(behaviour), Decimal(0), occurred_at, invalid_code="invalid_quantity"
            )
    if problem:
        return Incoming(
            external_id or str(record_id or ""),
            "",
            Decimal(0),
            occurred_at or timezone.now(),
            invalid_code=errors.INVALID_RECORD.code,
            invalid_detail=problem,
        )
    return Incoming(
        external_id=external_id,
        behaviour_code=behaviour,
        quantity=quantity,
        occurred_at=occurred_at,
        ended_at=ended_at,
        customer_reference=reference,
        amount=amount,
        instance=instance,
    )


def _instance_parse(raw: dict) -> dict[str, str] | None | bool:
    """A record's `instance` (the JSON object, or an import's `instance.<field>` columns): the fields
    that identify the real-world instance across sources. False when it is not text values."""
    instance = raw.get("instance")
    if instance is None:
        instance = {
            name.removeprefix("instance."): value
            for name, value in raw.items()
            if isinstance(name, str) and name.startswith("instance.") and value not in ("", None)
        }
    if not isinstance(instance, dict):
        return False
    parsed: dict[str, str] = {}
    for name, value in instance.items():
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if (
            not isinstance(value, str)
            or len(value) > MAX_INSTANCE_VALUE_LENGTH
            or not value.isprintable()
            or not isinstance(name, str)
        ):
            return False
        parsed[name] = value
    return parsed or None


def partner_records_ingest(
    *, partner: Partner, records: list[Any], is_history: bool = False, is_backfill: bool = False, now=None
) -> list[Outcome]:
    """Ingests a partner batch: one outcome per record, in order, with the ids the partner sent.

    The age window: the API takes the last `partner_window_days()`; a history import the last
    `history_window_days()` (`occurred_before_history_window` beyond); an operator's back-fill
    (`is_backfill`, audited by its command) any age the methodology has factors for.
    """
    partner_batch_size_check(len(records))
    return partner_incoming_ingest(
        partner=partner,
        incoming=[partner_record_parse(partner, raw) for raw in records],
        is_history=is_history,
        is_backfill=is_backfill,
        now=now,
    )


def partner_batch_size_check(count: int) -> None:
    """A partner batch holds at most `partner_batch_max()` records."""
    if count > partner_batch_max():
        raise ApplicationError(errors.PARTNER_BATCH_TOO_LARGE, fields={"max": partner_batch_max()})


def partner_incoming_ingest(
    *,
    partner: Partner,
    incoming: list[Incoming],
    is_history: bool = False,
    is_backfill: bool = False,
    now=None,
) -> list[Outcome]:
    """`partner_records_ingest` of records already parsed by `partner_record_parse` (the partner
    API's input serializer parses them)."""
    allowed = frozenset(partner.behaviours.values_list("id", flat=True))
    outcomes = records_ingest(
        source=partner.source,
        records=incoming,
        partner_id=partner.id,
        partner_code=partner.code,
        allowed_behaviour_ids=allowed,
        window_days=None if is_backfill else history_window_days() if is_history else partner_window_days(),
        window_code=(
            errors.OCCURRED_BEFORE_HISTORY_WINDOW.code if is_history else errors.OCCURRED_TOO_LONG_AGO.code
        ),
        now=now,
    )
    prefix = len(partner.code) + 1
    for outcome in outcomes:
        if outcome.external_id.startswith(f"{partner.code}:"):
            outcome.external_id = outcome.external_id[prefix:]
    _credited_receipts_attach(outcomes)
    return outcomes


def _credited_receipts_attach(outcomes: list[Outcome]) -> None:
    """A second report of an instance points at the receipt of the report that holds its credit."""
    from activities.selectors import receipt_of
    from activities.statements.selectors import imported_instance_receipts

    ids = {o.credited_record_id for o in outcomes if o.status == DUPLICATE_ACROSS_SOURCES}
    if not ids:
        return
    records = ActivityRecord.objects.select_related("behaviour", "factor__version").in_bulk(ids)
    imported = imported_instance_receipts(
        instance_ids={o.imported_instance_id for o in outcomes if o.imported_instance_id}
    )
    for outcome in outcomes:
        if outcome.status == DUPLICATE_ACROSS_SOURCES and outcome.imported_instance_id:
            # Another platform's statement counts the instance here: its receipt says which.
            outcome.credited_receipt = imported[outcome.imported_instance_id]
        elif outcome.status == DUPLICATE_ACROSS_SOURCES:
            outcome.credited_receipt = receipt_of(records[outcome.credited_record_id])


# --- Links between partner customers and people -------------------------------------------------

LINK_CODE_TTL = 10 * 60
# A partner's link codes tried and not linked within LINK_CODE_TTL: more would be guessing.
DEFAULT_LINK_CODE_FAILURES_ALLOWED = 100


def link_code_failures_allowed() -> int:
    return int(getattr(settings, "ACTIVITIES_LINK_CODE_FAILURES_ALLOWED", DEFAULT_LINK_CODE_FAILURES_ALLOWED))


def partner_link_code_issue(*, user: User) -> str:
    """A one-time code the app shows and the person gives the partner at sign-up (valid 10 minutes)."""
    code = f"{secrets.randbelow(10**8):08d}"
    cache.set(f"activities:link-code:{code}", user.id, timeout=LINK_CODE_TTL)
    return code


@transaction.atomic
def partner_customer_link(
    *, partner: Partner, customer_reference: str, user: User, by_partner: bool = False
) -> PartnerCustomerLink:
    """Links a partner customer reference to a person. Linking it again to the same person is
    harmless, at once too (a double tap): the insert that finds the reference taken reads who has it.

    A link the partner makes (`by_partner`: its own customer, named by the code the person gave it)
    takes over one made from the app without it: anyone can type a card number, only the card's
    holder can have the partner vouch for it. The records credited before stay where they were.
    """
    PartnerCustomerLink.objects.bulk_create(
        [
            PartnerCustomerLink(
                partner=partner,
                customer_reference=customer_reference,
                user=user,
                linked_by_partner=by_partner,
            )
        ],
        ignore_conflicts=True,  # its one unique key: one person per partner and customer reference
    )
    if by_partner:
        PartnerCustomerLink.objects.filter(
            partner=partner, customer_reference=customer_reference, linked_by_partner=False
        ).update(user=user, linked_by_partner=True, linked_at=timezone.now())
    link = PartnerCustomerLink.objects.get(partner=partner, customer_reference=customer_reference)
    if link.user_id != user.id:
        raise ApplicationError(errors.CUSTOMER_REFERENCE_TAKEN)
    return link


def partner_link_by_code(*, partner: Partner, link_code: str, customer_reference: str) -> PartnerCustomerLink:
    """The partner's side of sign-up: the one-time code the person gave it links its customer to them.

    Every attempt is counted against the partner first (one atomic increment, so a burst cannot
    pass the count together) and an attempt that links is given back: a partner whose codes do not
    link more than `link_code_failures_allowed()` times in ten minutes is refused until the window
    ends, so codes of eight digits cannot be guessed.
    """
    attempts = f"activities:link-code-attempts:{partner.pk}"  # a window opened by its first attempt
    if window_increment(attempts, LINK_CODE_TTL) > link_code_failures_allowed():
        raise ApplicationError(errors.LINK_CODE_ATTEMPTS_EXCEEDED)
    user_id = cache.get(f"activities:link-code:{link_code}") if link_code else None
    if user_id is None or not cache.delete(f"activities:link-code:{link_code}"):
        raise ApplicationError(errors.LINK_CODE_INVALID)
    # The account may have been closed (erased, or merged into another) since it asked for the code.
    user = User.objects.filter(pk=user_id, closed_at__isnull=True, is_active=True).first()
    if user is None:
        raise ApplicationError(errors.LINK_CODE_INVALID)
    link = partner_customer_link(
        partner=partner, customer_reference=customer_reference, user=user, by_partner=True
    )
    window_give_back(attempts)
    return link


def partner_link_remove(*, user: User, link_id: int) -> None:
    """The person unlinks a card or customer number; records already credited stay."""
    deleted, _ = PartnerCustomerLink.objects.filter(pk=link_id, user=user).delete()
    if not deleted:
        raise ApplicationError(NOT_FOUND)


# --- The review queue -------------------------------------------------------------------------


def _locked_held_record(record_id: int) -> ActivityRecord:
    record = ActivityRecord.objects.select_for_update().filter(pk=record_id).first()
    if record is None or record.status != RecordStatus.HELD:
        raise ApplicationError(errors.RECORD_NOT_UNDER_REVIEW)
    return record


@transaction.atomic
def record_approve(*, record_id: int, reviewer: User | None, note: str = "") -> ActivityRecord:
    """Credits a held record, applying the caps as they stand now, and raises its day's DailyCarbon.

    If that day was already settled, the raised credit is what the next settlement picks up.
    """
    record = _locked_held_record(record_id)
    factor = factor_in_effect(Factor.objects.select_related("version").get(pk=record.factor_id))
    day = BehaviourDay.objects.select_for_update().get(
        user_id=record.user_id, behaviour_id=record.behaviour_id, day=record.local_day
    )
    month = None
    if factor.monthly_cap_mg is not None:
        month, _ = BehaviourMonth.objects.select_for_update().get_or_create(
            user_id=record.user_id, behaviour_id=record.behaviour_id, month=record.local_day.replace(day=1)
        )
    credited, capped_by = apply_caps(
        record.gross_carbon_mg, factor, day.credited_carbon_mg, month.credited_carbon_mg if month else None
    )
    now = timezone.now()
    BehaviourDay.objects.filter(pk=day.pk).update(
        credited_carbon_mg=F("credited_carbon_mg") + credited, held_count=F("held_count") - 1
    )
    if month is not None:
        BehaviourMonth.objects.filter(pk=month.pk).update(
            credited_carbon_mg=F("credited_carbon_mg") + credited
        )
    if credited:
        daily_carbon_raise(user_id=record.user_id, day=record.local_day, carbon_mg=credited)
    record.status = RecordStatus.CREDITED
    record.credited_carbon_mg = credited
    record.capped_by = capped_by
    record.credited_at = record.approved_at = now
    record.save(update_fields=["status", "credited_carbon_mg", "capped_by", "credited_at", "approved_at"])
    ReviewDecision.objects.create(
        record=record,
        decision=ReviewDecision.Decision.APPROVED,
        reviewer=reviewer,
        note=note,
        credited_carbon_mg=credited,
        decided_at=now,
    )
    _decision_notify(record, decision="approved")
    return record


def _decision_notify(record: ActivityRecord, *, decision: str) -> None:
    """Tells the person their held (or appealed) record was decided, once per decision."""
    appealed = record.appealed_at is not None
    notification_raise(
        user_id=record.user_id,
        kind=NotificationKind.APPEAL_DECIDED if appealed else NotificationKind.REVIEW_DECIDED,
        event_key=f"record_decided:{record.pk}:{'appeal' if appealed else 'review'}",
        params={"record": record.pk, "day": record.local_day.isoformat(), "decision": decision},
    )


@transaction.atomic
def record_reject(*, record_id: int, reviewer: User | None, note: str = "") -> ActivityRecord:
    """Drops a held record: it credits nothing and no longer counts towards the day's quantity."""
    record = _locked_held_record(record_id)
    BehaviourDay.objects.filter(
        user_id=record.user_id, behaviour_id=record.behaviour_id, day=record.local_day
    ).update(held_count=F("held_count") - 1, quantity=F("quantity") - record.quantity)
    record.status = RecordStatus.REJECTED
    record.save(update_fields=["status"])
    successor = instance_credit_hand_over(record=record)
    imported_instances_release(record=record, successor=successor)
    ReviewDecision.objects.create(
        record=record,
        decision=ReviewDecision.Decision.REJECTED,
        reviewer=reviewer,
        note=note,
        decided_at=timezone.now(),
    )
    _decision_notify(record, decision="rejected")
    return record


@transaction.atomic
def record_appeal(*, user: User, record_id: int, note: str) -> ActivityRecord:
    """The person appeals a held or rejected record, once, with a note; a rejected one returns to review."""
    record = ActivityRecord.objects.select_for_update().filter(pk=record_id, user=user).first()
    if record is None:
        raise ApplicationError(NOT_FOUND)
    if record.status not in (RecordStatus.HELD, RecordStatus.REJECTED) or record.duplicate_of_id:
        # A rejected report whose instance's credit went to another report has nothing to win back.
        raise ApplicationError(errors.RECORD_NOT_APPEALABLE)
    if record.appealed_at is not None:
        raise ApplicationError(errors.APPEAL_ALREADY_MADE)
    if record.status == RecordStatus.REJECTED and (
        _instance_held_since(record) or instance_released_by(record)
    ):
        # A report of its instance came after the rejection and holds it now, or the rejection handed
        # it back to an imported statement that counts it.
        raise ApplicationError(errors.RECORD_NOT_APPEALABLE)
    now = timezone.now()
    if record.status == RecordStatus.REJECTED:
        record.status = RecordStatus.HELD
        BehaviourDay.objects.filter(
            user_id=record.user_id, behaviour_id=record.behaviour_id, day=record.local_day
        ).update(held_count=F("held_count") + 1, quantity=F("quantity") + record.quantity)
    record.appeal_note = note
    record.appealed_at = now
    record.save(update_fields=["status", "appeal_note", "appealed_at"])
    ReviewDecision.objects.create(
        record=record, decision=ReviewDecision.Decision.APPEALED, reviewer=user, note=note, decided_at=now
    )
    return record


def _instance_held_since(record: ActivityRecord) -> bool:
    """Whether a live report (not rejected) holds the instance of a rejected one. Capture's locks are
    taken first, in capture's order (the instance's midnights, then the day's counter), so a report
    of the instance being captured now is either committed and seen, or waits for the appeal."""
    if record.instance_key is None:
        return False
    factors = Factor.objects.values_list("instance_time_tolerance_seconds", flat=True)
    tolerance = factors.get(pk=record.factor_id)
    instance = (record.user_id, record.behaviour_id, record.instance_key, record.occurred_at, tolerance)
    with connection.cursor() as cursor:
        instance_midnights_lock(cursor, [instance])
    BehaviourDay.objects.select_for_update().filter(
        user_id=record.user_id, behaviour_id=record.behaviour_id, day=record.local_day
    ).first()
    holders = (
        ActivityRecord.objects.filter(
            user_id=record.user_id,
            behaviour_id=record.behaviour_id,
            instance_key=record.instance_key,
            duplicate_of__isnull=True,
        )
        .exclude(pk=record.pk)
        .exclude(status=RecordStatus.REJECTED)
    )
    if not tolerance:
        return holders.filter(instance_bucket=record.instance_bucket).exists()
    window = datetime.timedelta(seconds=tolerance)
    return holders.filter(
        instance_bucket__range=(record.instance_bucket - 1, record.instance_bucket + 1),
        occurred_at__range=(record.occurred_at - window, record.occurred_at + window),
    ).exists()


@transaction.atomic
def instance_credit_hand_over(*, record: ActivityRecord) -> ActivityRecord | None:
    """Hands the instance of a report just rejected to its best second report; returns that report.

    A report holding an instance (held for review, or credited) keeps the other sources' reports of
    it as second reports, crediting nothing. Once it is rejected, the instance is credited through
    the best of them: the preferred source (the factor's `source_precedence`), then the earliest.
    It is credited as capture would credit it now — the caps of its day and month as they stand,
    its counters and its day's carbon raised — and the other reports, the rejected one among them,
    point at it. Call it in the rejecting transaction, with `record` locked and already rejected:
    the lock makes it happen once, and the conditional update of the second report (still a second
    report of this record) and the unique index on credited reports make sure of it.
    """
    if record.instance_key is None or record.duplicate_of_id is not None:
        return None
    reports = list(
        ActivityRecord.objects.select_for_update()
        .filter(duplicate_of=record, status=RecordStatus.DUPLICATE)
        .order_by("id")
    )
    if not reports:
        return None
    factors = {
        factor.id: factor_in_effect(factor)
        for factor in Factor.objects.select_related("version").filter(pk__in={r.factor_id for r in reports})
    }
    best = min(reports, key=lambda r: (factors[r.factor_id].source_rank(r.source), r.occurred_at, r.id))
    factor = factors[best.factor_id]
    day, _ = BehaviourDay.objects.get_or_create(
        user_id=best.user_id, behaviour_id=best.behaviour_id, day=best.local_day,
        defaults={"quantity": 0, "record_count": 0, "held_count": 0, "credited_carbon_mg": 0},
    )  # fmt: skip
    day = BehaviourDay.objects.select_for_update().get(pk=day.pk)
    month = None
    if factor.monthly_cap_mg is not None:
        month, _ = BehaviourMonth.objects.get_or_create(
            user_id=best.user_id, behaviour_id=best.behaviour_id, month=best.local_day.replace(day=1)
        )
        month = BehaviourMonth.objects.select_for_update().get(pk=month.pk)
    credited, capped_by = apply_caps(
        best.gross_carbon_mg, factor, day.credited_carbon_mg, month.credited_carbon_mg if month else None
    )
    now = timezone.now()
    # The rejected report leaves the instance's one credited place before the second report takes it.
    ActivityRecord.objects.filter(pk=record.pk).update(duplicate_of=best)
    record.duplicate_of = best
    if not ActivityRecord.objects.filter(
        pk=best.pk, status=RecordStatus.DUPLICATE, duplicate_of=record
    ).update(
        status=RecordStatus.CREDITED, credited_carbon_mg=credited, capped_by=capped_by, credited_at=now,
        duplicate_of=None,
    ):  # fmt: skip
        raise AssertionError("a locked second report changed")
    ActivityRecord.objects.filter(duplicate_of=record).exclude(pk=best.pk).update(duplicate_of=best)
    BehaviourDay.objects.filter(pk=day.pk).update(
        quantity=F("quantity") + best.quantity,
        record_count=F("record_count") + 1,
        credited_carbon_mg=F("credited_carbon_mg") + credited,
    )
    if month is not None:
        BehaviourMonth.objects.filter(pk=month.pk).update(
            credited_carbon_mg=F("credited_carbon_mg") + credited
        )
    if credited:
        daily_carbon_raise(user_id=best.user_id, day=best.local_day, carbon_mg=credited)
    best.refresh_from_db()
    carbon_changed(user_ids=[record.user_id, best.user_id])
    return best


def daily_carbon_raise(*, user_id: int, day: datetime.date, carbon_mg: int) -> None:
    """Raises the credited carbon of a person's day (the contract with rewards), creating the row."""
    with connection.cursor() as cursor:
        statements.daily_carbon_raise(cursor, user_id, day, carbon_mg, timezone.now())
    carbon_changed(user_ids=[user_id])


# --- The methodology --------------------------------------------------------------------------


@transaction.atomic
def methodology_version_copy(
    *,
    source: MethodologyVersion,
    effective_from: datetime.date,
    created_by: User | None = None,
    notes: str = "",
) -> MethodologyVersion:
    """Starts a new methodology version from an existing one (same factors), taking effect later.

    Versions are never edited once in effect; an operator revises the copy before its day comes.
    """
    number = (
        MethodologyVersion.objects.order_by("-number").values_list("number", flat=True).first() or 0
    ) + 1
    version = MethodologyVersion.objects.create(
        number=number,
        effective_from=effective_from,
        notes=notes or f"Copied from v{source.number}.",
        created_by=created_by,
    )
    Factor.objects.bulk_create(
        [
            Factor(
                version=version,
                behaviour_id=factor.behaviour_id,
                carbon_mg_per_unit=factor.carbon_mg_per_unit,
                daily_cap_mg=factor.daily_cap_mg,
                monthly_cap_mg=factor.monthly_cap_mg,
                event_cap_mg=factor.event_cap_mg,
                sources=factor.sources,
                review_above_daily_quantity=factor.review_above_daily_quantity,
                instance_fields=factor.instance_fields,
                instance_time_tolerance_seconds=factor.instance_time_tolerance_seconds,
                source_precedence=factor.source_precedence,
                minimum_payment_fen=factor.minimum_payment_fen,
                source_note=factor.source_note,
            )
            for factor in source.factors.all()
        ]
    )
    return version
