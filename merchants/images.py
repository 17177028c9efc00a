"""Offer pictures: checked with Pillow, re-encoded (no EXIF, no trailing payloads), with a thumbnail.

Re-encoding is the point: what we store and serve is a picture Pillow drew, never the uploaded
bytes, so a polyglot file or GPS metadata in EXIF never reaches a phone.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from django.core.files.base import ContentFile
from PIL import Image, ImageOps, UnidentifiedImageError

from config.api.errors import ApplicationError
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
    size = getattr(upload, "size", None)
    if size is not None and size > MAX_UPLOAD_BYTES:
        raise ApplicationError(errors.IMAGE_TOO_LARGE, fields={"max_bytes": MAX_UPLOAD_BYTES})
    data = upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise ApplicationError(errors.IMAGE_TOO_LARGE, fields={"max_bytes": MAX_UPLOAD_BYTES})

    try:
        with warnings.catch_warnings():
            # Pillow warns before it refuses: treat the warning as the refusal.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                if probe.format not in ACCEPTED_FORMATS:
                    raise ApplicationError(errors.IMAGE_INVALID)
                width, height = probe.size
                if width * height > MAX_PIXELS:
                    raise ApplicationError(errors.IMAGE_TOO_LARGE, fields={"max_pixels": MAX_PIXELS})
                probe.verify()
            # verify() leaves the image unusable: open it again to decode it fully.
            with Image.open(io.BytesIO(data)) as decoded:
                decoded.load()
                picture = ImageOps.exif_transpose(decoded)
    except ApplicationError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ApplicationError(errors.IMAGE_TOO_LARGE, fields={"max_pixels": MAX_PIXELS}) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ApplicationError(errors.IMAGE_INVALID) from None

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
