"""The donation certificate: a PNG a donor can share (name, project, coins, date), drawn with Pillow.

Text is drawn with Noto Sans CJK SC (shipped as a pinned package, `core.fonts`), so Chinese names
and project titles render; if the font cannot be loaded, Pillow's built-in font is used instead
(Latin only) rather than failing the download.
"""

from __future__ import annotations

import io

from django.utils import timezone
from django.utils.translation import gettext as _
from PIL import Image, ImageDraw, ImageFont

from rewards.models import Donation

WIDTH, HEIGHT = 1200, 800
PAPER = (250, 247, 238)
GREEN = (34, 110, 64)
INK = (40, 40, 40)
MUTED = (110, 110, 110)


def certificate_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The certificates' font (the registry's offset certificate draws with it too)."""
    try:
        from core.fonts import cjk_font

        return cjk_font(size)
    except (ImportError, OSError):
        return ImageFont.load_default(size=size)


def draw_centered(
    draw: ImageDraw.ImageDraw, y: int, text: str, size: int, fill: tuple[int, int, int]
) -> None:
    """Draws one line of text centred across the image at height `y`."""
    font = certificate_font(size)
    left, _top, right, _bottom = draw.textbbox((0, 0), text, font=font)
    draw.text(((draw.im.size[0] - (right - left)) / 2, y), text, font=font, fill=fill)


def donation_certificate_png(*, donation: Donation) -> bytes:
    """Draws the certificate of one donation, in the active language."""
    image = Image.new("RGB", (WIDTH, HEIGHT), PAPER)
    draw = ImageDraw.Draw(image)
    draw.rectangle((30, 30, WIDTH - 30, HEIGHT - 30), outline=GREEN, width=8)
    draw.rectangle((50, 50, WIDTH - 50, HEIGHT - 50), outline=GREEN, width=2)
    draw_centered(draw, 110, _("Certificate of Donation"), 64, GREEN)
    draw_centered(draw, 240, donation.donor_name or _("A kind donor"), 56, INK)
    draw_centered(draw, 340, _("donated %(coins)s carbon coins to") % {"coins": donation.amount}, 36, MUTED)
    draw_centered(draw, 410, donation.project.title, 52, GREEN)
    draw_centered(draw, 520, _("Thank you for protecting our planet."), 34, INK)
    draw_centered(draw, 640, timezone.localtime(donation.created_at).date().isoformat(), 30, MUTED)
    draw_centered(draw, 690, str(donation.public_id), 18, MUTED)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
