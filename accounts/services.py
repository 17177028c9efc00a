"""Every change of state in the accounts app. Views, the admin, tasks and the demo call these."""

from __future__ import annotations

import io
import logging
import re
import secrets
import uuid
from collections.abc import Iterable
from typing import Any

from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from PIL import Image, ImageOps, UnidentifiedImageError

from accounts import crypto, errors
from accounts.models import (
    Agreement,
    AgreementAcceptance,
    AgreementKind,
    DataSource,
    DataSourceAuthorization,
    Device,
    District,
    Friendship,
    InviteCode,
    PersonalDetails,
    User,
)
from accounts.personal_data_registry import personal_data_modules
from accounts.selectors import (
    AGREEMENTS_CACHE_KEY,
    agreements_current,
    device_digest,
)
from config.api.errors import ApplicationError

logger = logging.getLogger(__name__)

DEVICE_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
INVITE_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed
INVITE_CODE_LENGTH = 8
AVATAR_FORMATS = {"JPEG", "PNG", "WEBP", "GIF"}


# --- Agreements ------------------------------------------------------------------------


@transaction.atomic
def agreement_publish(
    *,
    kind: AgreementKind | str,
    version: str,
    title: str,
    url: str = "",
    summary: str = "",
    effective_at=None,
) -> Agreement:
    """Publishes a version; from `effective_at` (default now) everyone must accept it to write."""
    agreement, _ = Agreement.objects.get_or_create(
        kind=kind,
        version=version,
        defaults={
            "title": title,
            "url": url,
            "summary": summary,
            "effective_at": effective_at or timezone.now(),
        },
    )
    # Now, and again after commit (a reader may have cached the old state in between).
    cache.delete(AGREEMENTS_CACHE_KEY)
    transaction.on_commit(lambda: cache.delete(AGREEMENTS_CACHE_KEY))
    return agreement


def _accept(*, user: User, agreements: Iterable[Agreement]) -> None:
    now = timezone.now()
    AgreementAcceptance.objects.bulk_create(
        [AgreementAcceptance(user=user, agreement=agreement, accepted_at=now) for agreement in agreements],
        ignore_conflicts=True,
    )


@transaction.atomic
def agreements_accept(*, user: User, versions: dict[str, str]) -> list[Agreement]:
    """Records that the person accepted the versions they were shown (kind → version).

    Each must be the version now in force: accepting an outdated text is refused, so the app
    reloads and shows the new one. Accepting again is harmless.
    """
    current = agreements_current()
    stale = {kind: version for kind, version in versions.items() if kind not in current}
    outdated = {
        kind: current[kind].version
        for kind, version in versions.items()
        if kind in current and current[kind].version != version
    }
    if stale or outdated:
        raise ApplicationError(
            errors.AGREEMENT_VERSION_NOT_CURRENT,
            fields={"current": {kind: agreement.version for kind, agreement in current.items()}},
        )
    accepted = [current[kind] for kind in versions]
    _accept(user=user, agreements=accepted)
    return accepted


@transaction.atomic
def agreements_accept_current(*, user: User) -> None:
    """Accepts every version in force for the person (the demo, operators' test accounts)."""
    _accept(user=user, agreements=agreements_current().values())


# --- Sessions and guests ---------------------------------------------------------------


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
    return session.session_key


def _check_device_id(device_id: str) -> None:
    if not isinstance(device_id, str) or not DEVICE_ID_PATTERN.match(device_id):
        raise ApplicationError(
            errors.DEVICE_ID_INVALID, fields={"device_id": [str(errors.DEVICE_ID_INVALID.message)]}
        )


def _current_agreements_matching(
    *, user_agreement_version: str, privacy_policy_version: str
) -> list[Agreement]:
    current = agreements_current()
    if set(current) != {AgreementKind.USER_AGREEMENT, AgreementKind.PRIVACY_POLICY}:
        raise ApplicationError(errors.AGREEMENT_NOT_PUBLISHED)
    shown = {
        AgreementKind.USER_AGREEMENT: user_agreement_version,
        AgreementKind.PRIVACY_POLICY: privacy_policy_version,
    }
    if any(current[kind].version != version for kind, version in shown.items()):
        raise ApplicationError(
            errors.AGREEMENT_VERSION_NOT_CURRENT,
            fields={"current": {kind: agreement.version for kind, agreement in current.items()}},
        )
    return list(current.values())


def guest_open(
    *, device_id: str, user_agreement_version: str, privacy_policy_version: str
) -> tuple[User, bool]:
    """Opens a guest account for a device, or gives back the device's existing guest account.

    Returns (person, created). The consent to the versions shown is recorded either way. A
    device whose account was upgraded to a bank/WeChat identity (or merged, or closed) gets no
    guest session any more: the device id is not a secret, the identity now protecting the
    account is.
    """
    _check_device_id(device_id)
    agreements = _current_agreements_matching(
        user_agreement_version=user_agreement_version, privacy_policy_version=privacy_policy_version
    )
    digest = device_digest(device_id)
    now = timezone.now()
    for _attempt in range(2):
        device = Device.objects.select_related("user").filter(device_digest=digest).first()
        if device is not None:
            user = device.user
            if user.is_closed or not user.is_guest or not user.is_active:
                raise ApplicationError(errors.GUEST_DEVICE_UPGRADED)
            with transaction.atomic():
                Device.objects.filter(pk=device.pk).update(last_seen_at=now)
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


@transaction.atomic
def identity_linked(*, user: User, encrypted_details: dict[str, str]) -> None:
    """A bank or WeChat identity was linked to the account: a guest becomes a full account."""
    User.objects.filter(pk=user.pk, is_guest=True).update(is_guest=False)
    user.is_guest = False
    verified_details_record(user=user, encrypted=encrypted_details)


@transaction.atomic
def verified_details_record(*, user: User, encrypted: dict[str, str]) -> None:
    """Stores the phone and ID number a bank vouched for (already encrypted) with blind indexes."""
    if not encrypted:
        return
    values: dict[str, Any] = {"updated_at": timezone.now()}
    for kind, field in (("phone", "phone_number"), ("id_number", "id_number")):
        ciphertext = encrypted.get(kind)
        plaintext = crypto.decrypt(ciphertext) if ciphertext else None
        if plaintext is None:
            continue
        normalized = plaintext.decode().strip().upper().replace(" ", "")
        values[f"{field}_ciphertext"] = crypto.encrypt(normalized)
        values[f"{field}_digest"] = crypto.blind_index(normalized, purpose=field)
    PersonalDetails.objects.update_or_create(user=user, defaults=values)


# --- Identities ------------------------------------------------------------------------


@transaction.atomic
def identity_unlink(*, user: User, identity_id: int) -> None:
    """Unlinks a bank or WeChat identity from the person's account, unless it is the last way in.

    A guest's device is a way in only while the account is a guest; a full account needs at
    least one identity left.
    """
    account = SocialAccount.objects.select_for_update().filter(pk=identity_id, user=user).first()
    if account is None:
        raise ApplicationError(errors.IDENTITY_NOT_FOUND)
    others = SocialAccount.objects.filter(user=user).exclude(pk=account.pk).exists()
    if not others and not user.has_usable_password():
        raise ApplicationError(errors.IDENTITY_LAST_WAY_IN)
    account.delete()


# --- Data sources ----------------------------------------------------------------------


def _data_source(source: str) -> DataSource:
    try:
        return DataSource(source)
    except ValueError:
        raise ApplicationError(errors.DATA_SOURCE_UNKNOWN) from None


@transaction.atomic
def data_source_authorize(*, user: User, source: DataSource | str) -> DataSourceAuthorization:
    """Grants one data source. Already granted: the active grant is returned unchanged."""
    source = _data_source(source)
    active = DataSourceAuthorization.objects.filter(user=user, source=source, revoked_at__isnull=True).first()
    if active is not None:
        return active
    try:
        with transaction.atomic():
            return DataSourceAuthorization.objects.create(user=user, source=source, granted_at=timezone.now())
    except IntegrityError:
        # A concurrent grant won the partial unique index: the same outcome.
        return DataSourceAuthorization.objects.get(user=user, source=source, revoked_at__isnull=True)


@transaction.atomic
def data_source_revoke(*, user: User, source: DataSource | str) -> DataSourceAuthorization | None:
    """Revokes one data source: from now on nothing from it is accepted for the person.

    The grant row stays (history); the records already captured stay until the person asks for
    erasure. Revoking what is not granted changes nothing and returns None.
    """
    source = _data_source(source)
    now = timezone.now()
    updated = DataSourceAuthorization.objects.filter(
        user=user, source=source, revoked_at__isnull=True
    ).update(revoked_at=now)
    if not updated:
        return None
    return DataSourceAuthorization.objects.filter(user=user, source=source, revoked_at=now).first()


# --- Profile ---------------------------------------------------------------------------

_UNSET: Any = object()


@transaction.atomic
def profile_update(
    *,
    user: User,
    nickname: str = _UNSET,
    district_code: str | None = _UNSET,
    shows_on_leaderboards: bool = _UNSET,
) -> User:
    """Changes the person's nickname, district (by code, or None) and leaderboard visibility."""
    changed: list[str] = []
    if nickname is not _UNSET:
        user.nickname = nickname.strip()
        changed.append("nickname")
    if district_code is not _UNSET:
        if district_code is None:
            user.district = None
        else:
            district = District.objects.filter(code=district_code).first()
            if district is None:
                raise ApplicationError(
                    errors.DISTRICT_UNKNOWN, fields={"district": [str(errors.DISTRICT_UNKNOWN.message)]}
                )
            user.district = district
        changed.append("district")
    if shows_on_leaderboards is not _UNSET:
        user.shows_on_leaderboards = shows_on_leaderboards
        changed.append("shows_on_leaderboards")
    if changed:
        user.save(update_fields=changed)
    return user


def _avatar_thumbnail(upload: UploadedFile) -> bytes:
    """A square JPEG of the upload: decoded for real, size and pixels capped, EXIF dropped."""
    max_bytes = settings.ACCOUNTS_AVATAR_MAX_BYTES
    max_pixels = settings.ACCOUNTS_AVATAR_MAX_PIXELS
    if upload.size is not None and upload.size > max_bytes:
        raise ApplicationError(errors.AVATAR_TOO_LARGE, fields={"max_bytes": max_bytes})
    data = upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ApplicationError(errors.AVATAR_TOO_LARGE, fields={"max_bytes": max_bytes})
    try:
        # Opening reads only the header: the pixel count is checked before anything is decoded.
        with Image.open(io.BytesIO(data)) as probe:
            if probe.format not in AVATAR_FORMATS:
                raise ApplicationError(errors.AVATAR_INVALID)
            width, height = probe.size
            if width * height > max_pixels:
                raise ApplicationError(errors.AVATAR_TOO_LARGE, fields={"max_pixels": max_pixels})
            probe.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            upright = ImageOps.exif_transpose(image)
            side = settings.ACCOUNTS_AVATAR_SIZE
            square = ImageOps.fit(upright.convert("RGB"), (side, side), Image.Resampling.LANCZOS)
            output = io.BytesIO()
            # Saved without `exif=`: location, camera and time metadata are gone.
            square.save(output, format="JPEG", quality=85, optimize=True)
            return output.getvalue()
    except ApplicationError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
        raise ApplicationError(errors.AVATAR_INVALID) from exc


def _delete_file_after_commit(name: str) -> None:
    if not name:
        return
    from django.core.files.storage import default_storage

    transaction.on_commit(lambda: default_storage.delete(name))


@transaction.atomic
def avatar_set(*, user: User, upload: UploadedFile) -> User:
    """Replaces the person's avatar with a square thumbnail of the upload."""
    thumbnail = _avatar_thumbnail(upload)
    old_name = user.avatar.name
    user.avatar.save(f"{uuid.uuid4().hex}.jpg", ContentFile(thumbnail), save=False)
    user.save(update_fields=["avatar"])
    _delete_file_after_commit(old_name)
    return user


@transaction.atomic
def avatar_remove(*, user: User) -> User:
    old_name = user.avatar.name
    user.avatar = ""
    user.save(update_fields=["avatar"])
    _delete_file_after_commit(old_name)
    return user


# --- Friends ---------------------------------------------------------------------------


def _new_invite_code() -> str:
    return "".join(secrets.choice(INVITE_CODE_ALPHABET) for _ in range(INVITE_CODE_LENGTH))


@transaction.atomic
def invite_code_get_or_create(*, user: User) -> InviteCode:
    """The person's invite code, made on first use."""
    existing = InviteCode.objects.filter(user=user).first()
    if existing is not None:
        return existing
    return _invite_code_create(user=user)


def _invite_code_create(*, user: User) -> InviteCode:
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return InviteCode.objects.create(
                    user=user, code=_new_invite_code(), created_at=timezone.now()
                )
        except IntegrityError:
            existing = InviteCode.objects.filter(user=user).first()
            if existing is not None:
                return existing
    raise RuntimeError("could not find a free invite code")


@transaction.atomic
def invite_code_rotate(*, user: User) -> InviteCode:
    """A new code: links shared before stop working (friendships made through them stay)."""
    InviteCode.objects.filter(user=user).delete()
    return _invite_code_create(user=user)


@transaction.atomic
def friendship_accept(*, user: User, code: str) -> User:
    """Accepts the invitation behind a code: the two people become friends, both ways."""
    invite = (
        InviteCode.objects.select_related("user")
        .filter(code=code.strip().upper(), user__closed_at__isnull=True, user__is_active=True)
        .first()
    )
    if invite is None:
        raise ApplicationError(errors.INVITE_CODE_UNKNOWN)
    inviter = invite.user
    if inviter.pk == user.pk:
        raise ApplicationError(errors.FRIEND_SELF)
    if Friendship.objects.filter(user=user, friend=inviter).exists():
        raise ApplicationError(errors.ALREADY_FRIENDS)
    now = timezone.now()
    # Both directions at once; a concurrent accept of the same pair becomes a harmless conflict.
    Friendship.objects.bulk_create(
        [
            Friendship(user=user, friend=inviter, created_at=now),
            Friendship(user=inviter, friend=user, created_at=now),
        ],
        ignore_conflicts=True,
    )
    return inviter


@transaction.atomic
def friendship_remove(*, user: User, friend_public_id: uuid.UUID | str) -> None:
    """Ends a friendship, both ways."""
    friend = User.objects.filter(public_id=friend_public_id).only("pk").first()
    if friend is None or not Friendship.objects.filter(user=user, friend=friend).exists():
        raise ApplicationError(errors.FRIEND_NOT_FOUND)
    Friendship.objects.filter(user=user, friend=friend).delete()
    Friendship.objects.filter(user=friend, friend=user).delete()


# --- Merge, export, erasure -------------------------------------------------------------


def _close(*, user: User, merged_into: User | None = None) -> None:
    """Closes an account: every session token of it stops working at once."""
    user.closed_at = timezone.now()
    user.is_active = False
    user.merged_into = merged_into
    # A new password hash changes the session auth hash: every stored session is dead.
    user.set_unusable_password()
    user.save(update_fields=["closed_at", "is_active", "merged_into", "password"])


@transaction.atomic
def account_merge(*, source_user: User, target_user: User) -> User:
    """Moves everything of `source_user` into `target_user` and closes the source.

    Each app's `personal_data.accounts_merge` moves its own rows (activity records, wallets through
    ledger transfers, coupons …), left to right in the dependency order, counting nothing twice.
    Both accounts are locked (in id order) for the whole merge.
    """
    if source_user.pk == target_user.pk:
        raise ApplicationError(errors.MERGE_SAME_ACCOUNT)
    locked = {
        user.pk: user
        for user in User.objects.select_for_update()
        .filter(pk__in=[source_user.pk, target_user.pk])
        .order_by("pk")
    }
    source, target = locked[source_user.pk], locked[target_user.pk]
    if source.is_closed or target.is_closed:
        raise ApplicationError(errors.MERGE_SOURCE_INVALID)
    for module in personal_data_modules():
        module.accounts_merge(source_user=source, target_user=target)
    _close(user=source, merged_into=target)
    logger.info("accounts merged", extra={"source_user_id": source.pk, "target_user_id": target.pk})
    return target


def account_export(*, user: User) -> dict[str, Any]:
    """Everything held about the person, as JSON-safe data, one section per app."""
    return {
        "exported_at": timezone.now().isoformat(),
        "account": str(user.public_id),
        **{
            module.__name__.split(".")[0]: module.personal_data_export(user=user)
            for module in personal_data_modules()
        },
    }


@transaction.atomic
def account_erase(*, user: User) -> User:
    """Closes the account and removes the person's personal data, everywhere.

    Apps erase right to left (merchants first); ledger rows stay, pointing to the same account
    row, which keeps no name, contact, identity, device or picture: it is pseudonymous.
    """
    user = User.objects.select_for_update().get(pk=user.pk)
    for module in reversed(personal_data_modules()):
        module.personal_data_erase(user=user)
    _close(user=user)
    return user


def erase_accounts_data(*, user: User) -> None:
    """The accounts app's own part of erasure (called through accounts.personal_data)."""
    device_digests = list(Device.objects.filter(user=user).values_list("device_digest", flat=True))
    SocialAccount.objects.filter(user=user).delete()
    EmailAddress.objects.filter(user=user).delete()
    Device.objects.filter(user=user).delete()
    PersonalDetails.objects.filter(user=user).delete()
    InviteCode.objects.filter(user=user).delete()
    Friendship.objects.filter(user=user).delete()
    Friendship.objects.filter(friend=user).delete()
    DataSourceAuthorization.objects.filter(user=user).delete()
    _delete_file_after_commit(user.avatar.name)
    user.avatar = ""
    user.username = f"erased-{uuid.uuid4().hex[:24]}"
    user.public_id = uuid.uuid4()
    user.nickname = ""
    user.first_name = user.last_name = user.email = ""
    user.district = None
    user.shows_on_leaderboards = False
    user.last_login = None
    user.save()
    keys = [f"throttle_guest_device_{digest}" for digest in device_digests]
    transaction.on_commit(lambda: cache.delete_many(keys) if keys else None)
