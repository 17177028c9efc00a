"""The offset certificate: a PNG of a retirement (on whose behalf, the event, the tonnes, the serial
numbers, the lot), drawn with Pillow in Noto Sans CJK SC (`core.fonts`) as the donation certificate
is; Pillow's built-in font (Latin only) if the font cannot be loaded.

What the operator typed (a beneficiary of up to 200 characters, a reason of up to 500, a lot's title
of 120) is drawn in a box of its own inside the frame: smaller, then over several lines, and cut
short with an ellipsis only when even the smallest size cannot hold it all."""

from __future__ import annotations

import io

from django.utils import timezone
from django.utils.translation import gettext as _
from PIL import Image, ImageDraw, ImageFont

from registry.models import LotRetirement
from rewards.certificates import certificate_font, draw_centered

WIDTH, HEIGHT = 1200, 850
PAPER = (246, 250, 245)
GREEN = (31, 122, 77)
INK = (40, 40, 40)
MUTED = (110, 110, 110)
# The width a line may take: the inner frame (50 px from each edge) less a margin on each side.
LINE_WIDTH = WIDTH - 2 * 80
SMALLEST_SIZE = 16
ELLIPSIS = "…"


def _line_height(size: int) -> int:
    return size * 5 // 4


def _wrapped(
    draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont
) -> list[str]:
    """`text` in lines no wider than LINE_WIDTH: broken at a space in the line's second half where it
    has one (Latin words stay whole), else between any two characters (Chinese has no spaces)."""
    lines: list[str] = []
    line = ""
    for character in text:
        if not line or draw.textlength(line + character, font=font) <= LINE_WIDTH:
            line += character
            continue
        space = line.rfind(" ")
        rest = line[space + 1 :] + character if space > 0 else ""
        # Only a space past the line's middle: a short prefix ("用于抵消 …") stays with its text.
        if rest and draw.textlength(line[:space], font=font) >= LINE_WIDTH // 2:
            lines.append(line[:space].rstrip())
            line = rest
        else:
            lines.append(line.rstrip())
            line = character.lstrip()
    lines.append(line)
    return lines


def _draw_fitted(
    draw: ImageDraw.ImageDraw, box: tuple[int, int], text: str, size: int, fill: tuple[int, int, int]
) -> None:
    """Draws `text` centred in the band `box` (top, bottom) of the certificate: at `size` on one line
    if it fits, else at the largest size down to SMALLEST_SIZE whose lines fit the band; at the
    smallest, the lines that fit, the last ending in an ellipsis."""
    top, bottom = box
    for current in range(size, SMALLEST_SIZE - 1, -2):
        font = certificate_font(current)
        lines = _wrapped(draw, text, font)
        if len(lines) * _line_height(current) <= bottom - top:
            break
    else:
        lines = lines[: max(1, (bottom - top) // _line_height(current))]
        last = lines[-1]
        while last and draw.textlength(last + ELLIPSIS, font=font) > LINE_WIDTH:
            last = last[:-1]
        lines[-1] = last + ELLIPSIS
    y = top + (bottom - top - len(lines) * _line_height(current)) // 2
    for index, line in enumerate(lines):
        draw_centered(draw, y + index * _line_height(current), line, current, fill)


def retirement_certificate_png(*, retirement: LotRetirement) -> bytes:
    """Draws the certificate of one retirement, in the active language."""
    image = Image.new("RGB", (WIDTH, HEIGHT), PAPER)
    draw = ImageDraw.Draw(image)
    draw.rectangle((30, 30, WIDTH - 30, HEIGHT - 30), outline=GREEN, width=8)
    draw.rectangle((50, 50, WIDTH - 50, HEIGHT - 50), outline=GREEN, width=2)
    draw_centered(draw, 100, _("Certificate of Carbon Offset"), 60, GREEN)
    _draw_fitted(draw, (190, 300), retirement.beneficiary, 54, INK)
    draw_centered(
        draw,
        310,
        # "CO2e", not "CO₂e": the font has no subscript two (it drew a box).
        _("retired %(tonnes)s t CO2e of pooled citizens' reductions") % {"tonnes": retirement.tonnes},
        30,
        MUTED,
    )
    if retirement.event_name:
        _draw_fitted(draw, (360, 450), _("to offset %(event)s") % {"event": retirement.event_name}, 44, GREEN)
    _draw_fitted(draw, (460, 550), retirement.reason, 30, INK)
    draw_centered(draw, 560, f"{retirement.serial_first} … {retirement.serial_last}", 30, INK)
    _draw_fitted(draw, (610, 680), retirement.lot.title, 28, MUTED)
    draw_centered(draw, 690, timezone.localtime(retirement.retired_at).date().isoformat(), 28, MUTED)
    draw_centered(draw, 740, str(retirement.public_id), 18, MUTED)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
