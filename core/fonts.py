"""Fonts for the images the platform draws (certificates, report cards) in Chinese and English.

Noto Sans CJK ships as a pip package (requirements.txt), so drawing needs no system fonts.
Index 2 of the collection is the Simplified Chinese face (SC).
"""

from __future__ import annotations

from functools import lru_cache

from noto_cjk_sans_otc import FONT_PATH
from PIL import ImageFont

SIMPLIFIED_CHINESE_FACE_INDEX = 2


@lru_cache(maxsize=16)
def cjk_font(size: int) -> ImageFont.FreeTypeFont:
    """A Noto Sans CJK SC font of the given pixel size, cached."""
    return ImageFont.truetype(str(FONT_PATH), size=size, index=SIMPLIFIED_CHINESE_FACE_INDEX)
