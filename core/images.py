"""Uploaded pictures, checked one way for every upload (avatars, offer pictures).

The bytes are capped before they are read whole, the pixel count is read from the header before
anything is decoded, and Pillow's decompression-bomb warning is the refusal it announces (above its
own limit Pillow only warns, and decodes on). Then the picture is decoded for real and turned
upright by its EXIF orientation. Each app says which of its error codes a refusal carries; what it
stores is drawn again from the decoded picture, never the uploaded bytes.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Collection

from PIL import Image, ImageOps, UnidentifiedImageError

from core.api.errors import ApplicationError, ErrorCode


def image_upload_decode(
    *,
    upload,
    formats: Collection[str],
    max_bytes: int,
    max_pixels: int,
    invalid: ErrorCode,
    too_large: ErrorCode,
) -> Image.Image:
    """The uploaded picture, decoded and upright, or `too_large` (with `max_bytes` or `max_pixels`
    in its fields) or `invalid` (not a picture, a format not in `formats`, truncated or corrupt)."""
    size = getattr(upload, "size", None)
    if size is not None and size > max_bytes:
        raise ApplicationError(too_large, fields={"max_bytes": max_bytes})
    data = upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ApplicationError(too_large, fields={"max_bytes": max_bytes})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # Opening reads only the header: the pixel count is checked before anything is decoded.
            with Image.open(io.BytesIO(data)) as probe:
                if probe.format not in formats:
                    raise ApplicationError(invalid)
                width, height = probe.size
                if width * height > max_pixels:
                    raise ApplicationError(too_large, fields={"max_pixels": max_pixels})
                probe.verify()
            # verify() leaves the image unusable: open it again to decode it fully.
            with Image.open(io.BytesIO(data)) as decoded:
                decoded.load()
                return ImageOps.exif_transpose(decoded)
    except ApplicationError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ApplicationError(too_large, fields={"max_pixels": max_pixels}) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ApplicationError(invalid) from None
