"""Offer pictures: checked with Pillow, re-encoded (no EXIF, no trailing payloads), with a thumbnail.

Re-encoding is the point: what we store and serve is a picture Pillow drew, never the uploaded
bytes, so a polyglot file or GPS metadata in EXIF never reaches a phone.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from django.core.files.base import ContentFile
from PIL import Image, ImageOps

from core.api.errors import ApplicationError
from core.images import image_upload_decode
from merchants import errors

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 24_000_000  # ~ a 6000×4000 photo; beyond that decoding alone is a memory risk
MIN_SIDE = 200
MAIN_MAX_SIDE = 1600
THUMBNAIL_SIZE = (400, 400)
ACCEPTED_FORMATS = {"JPEG", "PNG", "WEBP"}


@dataclass(frozen=True)
class ProcessedImage:
    main: ContentFile
    thumbnail: ContentFile


def _encode(image: Image.Image, name: str) -> ContentFile:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85, optimize=True, progressive=True)
    return ContentFile(buffer.getvalue(), name=name)


def image_process(*, upload, name_stem: str) -> ProcessedImage:
    """Checks an uploaded picture and returns the re-encoded main picture and its 400×400 thumbnail."""
    picture = image_upload_decode(
        upload=upload,
        formats=ACCEPTED_FORMATS,
        max_bytes=MAX_UPLOAD_BYTES,
        max_pixels=MAX_PIXELS,
        invalid=errors.IMAGE_INVALID,
        too_large=errors.IMAGE_TOO_LARGE,
    )
    if min(picture.size) < MIN_SIDE:
        raise ApplicationError(errors.IMAGE_TOO_SMALL, fields={"min_side": MIN_SIDE})

    if picture.mode in ("RGBA", "LA", "P"):
        rgba = picture.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        picture = background
    elif picture.mode != "RGB":
        picture = picture.convert("RGB")

    main = picture.copy()
    main.thumbnail((MAIN_MAX_SIDE, MAIN_MAX_SIDE), Image.Resampling.LANCZOS)
    thumbnail = ImageOps.fit(picture, THUMBNAIL_SIZE, Image.Resampling.LANCZOS)
    return ProcessedImage(
        main=_encode(main, f"{name_stem}.jpg"),
        thumbnail=_encode(thumbnail, f"{name_stem}-thumb.jpg"),
    )
