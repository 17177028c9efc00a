"""The offset certificate: a PNG of a retirement (on whose behalf, the event, the tonnes, the serial
numbers, the lot), drawn with Pillow in Noto Sans CJK SC (`core.fonts`) as the donation certificate
is; Pillow's built-in font (Latin only) if the font cannot be loaded."""

from __future__ import annotations

import io

from django.utils import timezone
from django.utils.translation import gettext as _
from PIL import Image, ImageDraw

from registry.models import LotRetirement
from rewards.certificates import draw_centered

WIDTH, HEIGHT = 1200, 850
PAPER = (246, 250, 245)
GREEN = (31, 122, 77)
INK = (40, 40, 40)
MUTED = (110, 110, 110)


def retirement_certificate_png(*, retirement: LotRetirement) -> bytes:
    """Draws the certificate of one retirement, in the active language."""
    image = Image.new("RGB", (WIDTH, HEIGHT), PAPER)
    draw = ImageDraw.Draw(image)
    draw.rectangle((30, 30, WIDTH - 30, HEIGHT - 30), outline=GREEN, width=8)
    draw.rectangle((50, 50, WIDTH - 50, HEIGHT - 50), outline=GREEN, width=2)
    draw_centered(draw, 100, _("Certificate of Carbon Offset"), 60, GREEN)
    draw_centered(draw, 220, retirement.beneficiary, 54, INK)
    draw_centered(
        draw,
        310,
        _("retired %(tonnes)s t CO2e of citizens' verified reductions") % {"tonnes": retirement.tonnes},
        34,
        MUTED,
    )
    if retirement.event_name:
        draw_centered(draw, 380, _("to offset %(event)s") % {"event": retirement.event_name}, 44, GREEN)
    draw_centered(draw, 470, retirement.reason, 30, INK)
    draw_centered(draw, 560, f"{retirement.serial_first} … {retirement.serial_last}", 30, INK)
    draw_centered(draw, 620, retirement.lot.title, 28, MUTED)
    draw_centered(draw, 690, timezone.localtime(retirement.retired_at).date().isoformat(), 28, MUTED)
    draw_centered(draw, 740, str(retirement.public_id), 18, MUTED)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
