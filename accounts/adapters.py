"""allauth's hooks into our services: who may open an account, and what happens when a bank or
WeChat identity signs in."""

from __future__ import annotations

import contextlib
import dataclasses
import uuid

from allauth.account.adapter import DefaultAccountAdapter
from allauth.headless.adapter import DefaultHeadlessAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialAccount
from allauth.socialaccount.providers.base import AuthProcess
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest

from accounts import errors
from accounts.provider import VERIFIED_DETAILS_STATE
from accounts.selectors import WECHAT_PROVIDER_ID
from core.api.client_address import client_address


def _error(code: errors.ErrorCode) -> ValidationError:
    return ValidationError(code.message, code=code.code)


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        """Nobody opens an account with a username and password: people come in as guests
        (`POST /api/v1/guests`), by the WeChat mini-program or by a bank (the social adapter below),
        and operators' and demo staff's password accounts are made by operators. Password sign-in
        (login) stays open to those accounts; allauth's sign-up flow is closed and not listed."""
        return False

    def get_client_ip(self, request: HttpRequest) -> str:
        # allauth's own rate limits count by the address every other limit counts by.
        return client_address(request)


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest, sociallogin) -> bool:
        # The banks' and the mini-program's identities open accounts (allauth would otherwise ask
        # the account adapter, which refuses password sign-ups).
        return True

    def populate_user(self, request: HttpRequest, sociallogin, data: dict):
        # A random username: a bank's preferred_username or a name must not become ours.
        user = sociallogin.user
        user.username = f"u-{uuid.uuid4().hex[:24]}"
        user.is_guest = False
        return user

    def pre_social_login(self, request: HttpRequest, sociallogin) -> None:
        from accounts import services

        encrypted = sociallogin.state.get(VERIFIED_DETAILS_STATE) or {}
        if sociallogin.state.get("process") == AuthProcess.CONNECT:
            user = request.user
            if (
                sociallogin.account.provider == WECHAT_PROVIDER_ID
                and not sociallogin.is_existing
                and SocialAccount.objects.filter(user=user, provider=WECHAT_PROVIDER_ID).exists()
            ):
                raise _error(errors.WECHAT_ALREADY_LINKED)
            if sociallogin.is_existing and sociallogin.user != user:
                raise _error(errors.IDENTITY_LINKED_ELSEWHERE)
            holder = _id_number_holder(encrypted)
            if holder is not None and holder != user:
                raise _error(errors.ID_NUMBER_LINKED_ELSEWHERE)
            return
        if sociallogin.is_existing:
            if sociallogin.user.is_closed:
                raise _error(errors.ACCOUNT_CLOSED)
            # Two accounts of one person from before ID numbers joined them: this one keeps its
            # details; the person merges the two (`POST /api/v1/me/merge`).
            with contextlib.suppress(services.IdNumberHeldElsewhereError):
                services.verified_details_record(user=sociallogin.user, encrypted=encrypted)
            return
        # A bank identity's first sign-in: the same ID number verified by another bank is the same
        # person, so the identity joins that account instead of opening a second one.
        holder = _id_number_holder(encrypted)
        if holder is not None:
            services.bank_identity_join(
                user=holder, identity=sociallogin.account, encrypted_details=encrypted
            )
            sociallogin.user = holder

    def save_user(self, request: HttpRequest, sociallogin, form=None):
        from accounts import services

        encrypted = sociallogin.state.get(VERIFIED_DETAILS_STATE) or {}
        try:
            with transaction.atomic():
                user = super().save_user(request, sociallogin, form)
                services.verified_details_record(user=user, encrypted=encrypted)
        except services.IdNumberHeldElsewhereError:
            # Another bank's first sign-in of the same person committed first (the unique index on
            # the ID number's digest decided): nothing of this new account was kept; join that one.
            holder = _id_number_holder(encrypted)
            if holder is None:
                raise
            sociallogin.account.pk = None
            services.bank_identity_join(
                user=holder, identity=sociallogin.account, encrypted_details=encrypted
            )
            sociallogin.user = holder
            return holder
        return user


def _id_number_holder(encrypted: dict[str, str]):
    from accounts import selectors, services

    id_number = services.bank_claimed_id_number(encrypted=encrypted)
    return selectors.person_with_id_number(id_number=id_number) if id_number else None


def on_social_account_added(sender, request: HttpRequest, sociallogin, **kwargs) -> None:
    """A guest (or anyone) linked a bank or WeChat identity: the same account, now upgraded."""
    from accounts import services

    # The account holding the ID number may have got it meanwhile (checked before linking): this
    # one is then linked without the ID number; the person merges the two.
    with contextlib.suppress(services.IdNumberHeldElsewhereError):
        services.identity_linked(
            user=sociallogin.user or sociallogin.account.user,
            encrypted_details=sociallogin.state.get(VERIFIED_DETAILS_STATE) or {},
        )


def _field(description: str, example: object = None) -> dataclasses.Field:
    return dataclasses.field(metadata={"description": description, "example": example})


# The person as allauth's responses show them (and as the sign-in OpenAPI specification describes
# them): our public id, never the integer id or the internal username. Built with real types, not
# annotations (this module's annotations are strings), because allauth reads them for its schema.
SignedInPerson = dataclasses.make_dataclass(
    "SignedInPerson",
    [
        ("id", str, _field("The person's public id.", "0b6f3c1e-8d2a-4f5b-9c7e-2a1d4e6f8a90")),
        ("display", str, _field("The nickname.", "绿色出行者")),
        ("is_guest", bool, _field("A guest: no bank or WeChat identity yet.", True)),
        ("has_usable_password", bool, _field("Whether the account has a password set.", False)),
    ],
)


class HeadlessAdapter(DefaultHeadlessAdapter):
    def get_user_dataclass(self) -> type:
        return SignedInPerson

    def user_as_dataclass(self, user):
        return SignedInPerson(
            id=str(user.public_id),
            display=user.nickname,
            is_guest=user.is_guest,
            has_usable_password=user.has_usable_password(),
        )

    def serialize_user(self, user) -> dict:
        return dataclasses.asdict(self.user_as_dataclass(user))
