"""Guest accounts opened by a device, and session tokens issued outside allauth's flows."""

from __future__ import annotations

import re
import uuid

from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import errors
from accounts.models import (
    Agreement,
    AgreementKind,
    Device,
    User,
)
from accounts.selectors import (
    device_digest,
    device_digests,
)
from accounts.services.agreements import _accept, agreements_in_force
from accounts.sessions import user_changed
from core.api.errors import ApplicationError

DEVICE_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")


def session_token_issue(*, user: User) -> str:
    """A new app session token (an allauth headless session), as if the person had signed in."""
    from allauth.headless.internal.sessionkit import new_session

    session = new_session()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session["account_authentication_methods"] = [{"method": "guest", "at": timezone.now().timestamp()}]
    session.save()
    User.objects.filter(pk=user.pk).update(last_login=timezone.now())
    user_changed(user_ids=[user.pk])
    return session.session_key


def _check_device_id(device_id: str) -> None:
    if not isinstance(device_id, str) or not DEVICE_ID_PATTERN.match(device_id):
        raise ApplicationError(
            errors.DEVICE_ID_INVALID, fields={"device_id": [str(errors.DEVICE_ID_INVALID.message)]}
        )


def _current_agreements_matching(*, versions: dict[str, str]) -> list[Agreement]:
    current = agreements_in_force()
    if set(current) != {AgreementKind.USER_AGREEMENT, AgreementKind.PRIVACY_POLICY}:
        raise ApplicationError(errors.AGREEMENT_NOT_PUBLISHED)
    if any(versions.get(kind) != agreement.version for kind, agreement in current.items()):
        raise ApplicationError(
            errors.AGREEMENT_VERSION_NOT_CURRENT,
            fields={"current": {kind: agreement.version for kind, agreement in current.items()}},
        )
    return list(current.values())


def guest_open(*, device_id: str, versions: dict[str, str]) -> tuple[User, bool]:
    """Opens a guest account for a device, or gives back the device's existing guest account.

    `versions` are the agreement versions the person accepted (kind → version, as for
    `agreements_accept`); each kind in force must be there, at its current version.
    Returns (person, created). The consent to the versions shown is recorded either way. A
    device whose account was upgraded to a bank/WeChat identity (or merged, or closed) gets no
    guest session any more: the device id is not a secret, the identity now protecting the
    account is.

    Not one transaction but one per attempt: when the same device asks twice at once, the
    loser's insert fails on the unique device digest, and it reads the winner's account back.
    """
    _check_device_id(device_id)
    agreements = _current_agreements_matching(versions=versions)
    digest = device_digest(device_id)
    now = timezone.now()
    for _attempt in range(2):
        # Any blind index key still listed finds the device; a device found under an older key
        # moves to the current one (its id is never stored, so only its visits can move it).
        device = (
            Device.objects.select_related("user").filter(device_digest__in=device_digests(device_id)).first()
        )
        if device is not None:
            user = device.user
            if user.is_closed or not user.is_guest or not user.is_active:
                raise ApplicationError(errors.GUEST_DEVICE_UPGRADED)
            with transaction.atomic():
                Device.objects.filter(pk=device.pk).update(last_seen_at=now, device_digest=digest)
                _accept(user=user, agreements=agreements)
            return user, False
        try:
            with transaction.atomic():
                user = User(username=f"g-{uuid.uuid4().hex[:24]}", is_guest=True)
                user.set_unusable_password()
                user.save()
                Device.objects.create(user=user, device_digest=digest, created_at=now, last_seen_at=now)
                _accept(user=user, agreements=agreements)
            return user, True
        except IntegrityError:
            # The same device asked twice at once: the other request created it; read it back.
            continue
    raise ApplicationError(errors.DEVICE_ID_INVALID)
