"""Reads of the accounts app. Other apps call these; they never query accounts' tables directly."""

from __future__ import annotations

import base64
import binascii
import weakref
from dataclasses import dataclass

from allauth.socialaccount.models import SocialAccount
from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import QuerySet
from django.db.models.expressions import Col
from django.utils import timezone
from psycopg import sql

from accounts import crypto, statements
from accounts.masking import mask_id_number, mask_phone_number
from accounts.models import (
    REQUIRED_AGREEMENT_KINDS,
    Agreement,
    AgreementAcceptance,
    AgreementKind,
    DataSource,
    DataSourceAuthorization,
    District,
    Friendship,
    IdentityJoin,
    PersonalDetails,
    PoolingConsent,
    User,
)
from core.db import prepared_cursor

WECHAT_PROVIDER_ID = "wechat_miniprogram"
WECHAT_SESSION_KEY_FIELD = "session_key_ciphertext"
AGREEMENTS_CACHE_KEY = "accounts:agreements:current"
# Short: a version published with a future `effective_at` comes into force within this delay.
AGREEMENTS_CACHE_SECONDS = 30
# The shared tag (`core.person_cache`) of who may be shown to everyone (on the boards' cached tops):
# renewed when someone leaves them, by opting out or by closing their account (erasure, merge).
PEOPLE_SHOWN_SOURCE = "people-shown"


def districts() -> QuerySet[District]:
    """Every district (what a district code may name)."""
    return District.objects.all()


def district_of_code(*, code: str) -> District | None:
    """The district of this code, or None."""
    return District.objects.filter(code=code).first()


def agreements_in_force_query() -> dict[str, Agreement]:
    """The version in force of each required agreement kind (kind → Agreement), from the database."""
    current: dict[str, Agreement] = {}
    for agreement in Agreement.objects.filter(
        kind__in=REQUIRED_AGREEMENT_KINDS, effective_at__lte=timezone.now()
    ).order_by("-effective_at", "-id"):
        current.setdefault(agreement.kind, agreement)
    return current


def agreements_current(*, cached: dict[str, Agreement] | None = None) -> dict[str, Agreement]:
    """The version in force of each required agreement kind (kind → Agreement): the cached copy
    (`accounts.services.agreements_in_force` keeps it, briefly), else the database.

    `cached`: what the caller already read from AGREEMENTS_CACHE_KEY in a round trip of its own
    (with the session, say); None reads the key here.
    """
    if cached is None:
        cached = cache.get(AGREEMENTS_CACHE_KEY)
    return cached if cached is not None else agreements_in_force_query()


def pooling_agreement_current() -> Agreement | None:
    """The version of the pooling consent text in force, or None before one is published."""
    return (
        Agreement.objects.filter(kind=AgreementKind.POOLING_CONSENT, effective_at__lte=timezone.now())
        .order_by("-effective_at", "-id")
        .first()
    )


def pooling_consent_active(*, user: User) -> PoolingConsent | None:
    """The person's active pooling consent, or None."""
    return (
        PoolingConsent.objects.filter(user=user, revoked_at__isnull=True).select_related("agreement").first()
    )


def pooling_consents_of(*, user: User) -> QuerySet[PoolingConsent]:
    """Every grant and revocation of the person's pooling consent, newest first."""
    return PoolingConsent.objects.filter(user=user).select_related("agreement").order_by("-granted_at", "-id")


@dataclass(frozen=True)
class AgreementsPending:
    # The versions in force the person has not accepted (empty: they may write).
    pending: list[Agreement]
    # The person's copy of their acceptances misses a version they did accept: bring it up to
    # date (`accounts.services.accepted_agreements_copy_refresh`) so the next check costs no query.
    copy_behind: bool


def agreements_pending_check(*, user: User, current: dict[str, Agreement]) -> AgreementsPending:
    """The versions in `current` the person has not accepted yet, and whether their copy is behind.

    The person's copy of their acceptances answers without a query; a version in force it does
    not list is looked up in the acceptances themselves.
    """
    claimed = set(user.accepted_agreement_ids or ())
    unconfirmed = [agreement for agreement in current.values() if agreement.pk not in claimed]
    if not unconfirmed:
        return AgreementsPending(pending=[], copy_behind=False)
    accepted = set(
        AgreementAcceptance.objects.filter(
            user=user, agreement_id__in=[agreement.pk for agreement in unconfirmed]
        ).values_list("agreement_id", flat=True)
    )
    return AgreementsPending(
        pending=[agreement for agreement in unconfirmed if agreement.pk not in accepted],
        copy_behind=bool(accepted),
    )


def agreements_pending_for(*, user: User, cached: dict[str, Agreement] | None = None) -> list[Agreement]:
    """The versions in force that the person has not accepted yet (empty: they may write).

    `cached` is as for `agreements_current`.
    """
    return agreements_pending_check(user=user, current=agreements_current(cached=cached)).pending


def agreement_acceptances_of(*, user: User) -> QuerySet[AgreementAcceptance]:
    return (
        AgreementAcceptance.objects.filter(user=user)
        .select_related("agreement")
        .order_by("-accepted_at", "-id")
    )


def device_digest(device_id: str) -> str:
    """The digest a new device row stores (the current blind index key's)."""
    return crypto.blind_index(device_id, purpose="device")


def device_digests(device_id: str) -> list[str]:
    """Every digest the device may be stored under while blind index keys rotate."""
    return crypto.blind_indexes(device_id, purpose="device")


def identities_of(*, user: User) -> QuerySet[SocialAccount]:
    """The bank and WeChat identities linked to the person's account."""
    return SocialAccount.objects.filter(user=user).order_by("date_joined", "id")


def verified_details_masked(*, user: User) -> dict[str, str]:
    """The bank-supplied phone and ID number, masked (`138****5678`); empty strings when absent."""
    details = PersonalDetails.objects.filter(user=user).first()
    masked = {"phone_number": "", "id_number": ""}
    if details is None:
        return masked
    for field, mask in (("phone_number", mask_phone_number), ("id_number", mask_id_number)):
        ciphertext = getattr(details, f"{field}_ciphertext")
        context = crypto.personal_details_context(field, details.pk)
        plaintext = crypto.decrypt(ciphertext, context=context) if ciphertext else None
        if plaintext is not None:
            masked[field] = mask(plaintext.decode())
    return masked


def identifier_normalized(value: str) -> str:
    """A phone or ID number as its blind index is computed: no spaces, letters in upper case."""
    return value.strip().upper().replace(" ", "")


def users_with_phone_number(*, phone_number: str) -> QuerySet[User]:
    """People whose bank-verified phone number is this one, found through the blind index."""
    digests = crypto.blind_indexes(identifier_normalized(phone_number), purpose="phone_number")
    return User.objects.filter(personal_details__phone_number_digest__in=digests)


def person_with_id_number(*, id_number: str) -> User | None:
    """The open account holding this bank-verified ID number (the blind index), if any: one at most.

    The only thing two bank identities are joined on; a phone number or a name never is.
    """
    digests = crypto.blind_indexes(identifier_normalized(id_number), purpose="id_number")
    return User.objects.filter(personal_details__id_number_digest__in=digests, closed_at__isnull=True).first()


def bank_name(provider_id: str) -> str:
    """A bank's name as configured (BANK_IDENTITY_PROVIDERS), or its id."""
    for bank in getattr(settings, "BANK_IDENTITY_PROVIDERS", []):
        if bank.get("id") == provider_id:
            return bank.get("name") or provider_id
    return provider_id


def identity_joins_unseen(*, user: User) -> QuerySet[IdentityJoin]:
    """Bank identities that joined the person's account by its ID number and they have not seen yet."""
    return IdentityJoin.objects.filter(user=user, seen_at__isnull=True).order_by("joined_at", "id")


def friends_of(*, user: User) -> QuerySet[User]:
    return User.objects.filter(
        pk__in=Friendship.objects.filter(user=user).values("friend_id"), closed_at__isnull=True
    ).order_by("nickname", "id")


def data_source_is_authorized(*, user_id: int, source: DataSource | str) -> bool:
    """Whether the person has an active (granted, not revoked) authorization for this data source.

    Capture calls this before accepting a record; set-based ingest joins on
    `DataSourceAuthorization` with `revoked_at IS NULL` instead (see `data_source_authorized_user_ids`).
    """
    return DataSourceAuthorization.objects.filter(
        user_id=user_id, source=source, revoked_at__isnull=True
    ).exists()


def data_source_authorized_user_ids(*, source: DataSource | str) -> QuerySet:
    """The ids of everyone who currently authorizes this source, as a subquery for bulk paths."""
    return DataSourceAuthorization.objects.filter(source=source, revoked_at__isnull=True).values("user_id")


def data_source_authorizations_of(*, user: User) -> QuerySet[DataSourceAuthorization]:
    """Every grant and revocation of the person, newest first: their consent history."""
    return DataSourceAuthorization.objects.filter(user=user).order_by("-granted_at", "-id")


def data_source_authorizations_active_of(*, user: User) -> dict[str, DataSourceAuthorization]:
    """The person's active authorizations, by source."""
    return {
        authorization.source: authorization
        for authorization in data_source_authorizations_of(user=user).filter(revoked_at__isnull=True)
    }


def friend_ids_of(*, user_id: int) -> set[int]:
    """The ids of the person's friends (for friends' leaderboards). Closed accounts are left out."""
    return set(
        Friendship.objects.filter(user_id=user_id, friend__closed_at__isnull=True).values_list(
            "friend_id", flat=True
        )
    )


def wechat_session_key_for_user(*, user_id: int) -> bytes | None:
    """The person's latest mini-program session key (raw 16 bytes), or None.

    WeRun data from `wx.getWeRunData` is encrypted with it (AES-128-CBC). The key is refreshed at
    each mini-program sign-in and stored encrypted; it is None when the person never signed in
    through the mini-program or when the stored key can't be opened.
    """
    account = (
        SocialAccount.objects.filter(user_id=user_id, provider=WECHAT_PROVIDER_ID)
        .only("uid", "extra_data")
        .first()
    )
    if account is None:
        return None
    ciphertext = (account.extra_data or {}).get(WECHAT_SESSION_KEY_FIELD)
    if not ciphertext:
        return None
    encoded = crypto.decrypt(ciphertext, context=crypto.wechat_session_key_context(account.uid))
    if encoded is None:
        return None
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None


def inviter_for_code(*, code: str) -> User | None:
    """The open account whose invite code this is."""
    return (
        User.objects.filter(invite_code__code=code.strip().upper(), closed_at__isnull=True, is_active=True)
        .only("public_id", "nickname")
        .first()
    )


def user_for_session_token(*, token: str) -> User | None:
    """The active person an app session token signs in, or None (unknown, expired, closed)."""
    from allauth.headless.internal.sessionkit import authenticate_by_x_session_token

    if not token or len(token) > 128:
        return None
    result = authenticate_by_x_session_token(token)
    if result is None:
        return None
    user = result[0]
    return user if user.is_active and not user.is_closed else None


@dataclass(frozen=True)
class _UserSelect:
    sql: str
    attnames: list[str]
    # (position, column, converters) for the columns the database hands back in another form.
    conversions: list[tuple[int, Col, list]]


# One statement and its converters per database connection (connections are per thread and
# long-lived; the converters are the connection's own, so they are not shared between them).
_USER_SELECTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _user_select(wrapper) -> _UserSelect:
    prepared = _USER_SELECTS.get(wrapper)
    if prepared is None:
        fields = User._meta.concrete_fields
        conversions = []
        for position, field in enumerate(fields):
            column = field.get_col(User._meta.db_table)
            converters = wrapper.ops.get_db_converters(column) + column.get_db_converters(wrapper)
            if converters:
                conversions.append((position, column, converters))
        statement = statements.USER_BY_ID.format(
            columns=sql.SQL(", ").join(sql.Identifier(field.column) for field in fields),
            table=sql.Identifier(User._meta.db_table),
            pk=sql.Identifier(User._meta.pk.column),
        )
        prepared = _UserSelect(
            # Rendered once per connection wrapper: this runs on every signed-in request.
            sql=statement.as_string(wrapper.connection),
            attnames=[field.attname for field in fields],
            conversions=conversions,
        )
        _USER_SELECTS[wrapper] = prepared
    return prepared


def user_by_id(user_id) -> User | None:
    """A person by primary key, read by one plain SELECT of every column of the model.

    What `User.objects.filter(pk=…).first()` returns (the fields go through the database's own
    converters, e.g. the JSON field's), without compiling the query, nor looking up
    the converters, each time: session authentication calls this on every signed-in request.
    """
    try:
        user_id = int(user_id)
    except (TypeError, ValueError):
        return None
    wrapper = connections[DEFAULT_DB_ALIAS]
    prepared = _user_select(wrapper)
    with prepared_cursor() as cursor:
        cursor.execute(prepared.sql, [user_id])
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    for position, column, converters in prepared.conversions:
        for converter in converters:
            values[position] = converter(values[position], column, wrapper)
    return User.from_db(wrapper.alias, prepared.attnames, values)
