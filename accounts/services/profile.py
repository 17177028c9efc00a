"""Nickname, district, leaderboard visibility and the avatar."""

from __future__ import annotations

import io
import uuid
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from PIL import Image, ImageOps

from accounts import errors
from accounts.models import (
    District,
    User,
)
from accounts.selectors import PEOPLE_SHOWN_SOURCE
from core.api.errors import ApplicationError
from core.images import image_upload_decode
from core.person_cache import renew_everyone

AVATAR_FORMATS = {"JPEG", "PNG", "WEBP", "GIF"}


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
    if shows_on_leaderboards is False:
        # Off the boards at once: every process's cached tops are retired at the commit.
        renew_everyone(PEOPLE_SHOWN_SOURCE)
    return user


def _avatar_thumbnail(upload: UploadedFile) -> bytes:
    """A square JPEG of the upload: decoded for real, size and pixels capped, EXIF dropped."""
    upright = image_upload_decode(
        upload=upload,
        formats=AVATAR_FORMATS,
        max_bytes=settings.ACCOUNTS_AVATAR_MAX_BYTES,
        max_pixels=settings.ACCOUNTS_AVATAR_MAX_PIXELS,
        invalid=errors.AVATAR_INVALID,
        too_large=errors.AVATAR_TOO_LARGE,
    )
    side = settings.ACCOUNTS_AVATAR_SIZE
    square = ImageOps.fit(upright.convert("RGB"), (side, side), Image.Resampling.LANCZOS)
    output = io.BytesIO()
    # Saved without `exif=`: location, camera and time metadata are gone.
    square.save(output, format="JPEG", quality=85, optimize=True)
    return output.getvalue()


def delete_file_after_commit(name: str) -> None:
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
    delete_file_after_commit(old_name)
    return user


@transaction.atomic
def avatar_remove(*, user: User) -> User:
    old_name = user.avatar.name
    user.avatar = ""
    user.save(update_fields=["avatar"])
    delete_file_after_commit(old_name)
    return user
