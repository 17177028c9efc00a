"""The shareable report card: a phone-sized PNG (750 × 1334) drawn with Pillow.

The rating colour heads the card; the total, the trend, the equivalents and a bar chart of the
behaviours follow, in the request's language (Noto Sans CJK SC draws Chinese and Latin alike).
Sizes are chosen to be read on a phone screen: nothing below 26 px.
"""

from __future__ import annotations

import io

from django.utils.translation import gettext as _
from PIL import Image, ImageDraw, ImageFont

from rewards.gamification.reports import CarbonReport
from rewards.models import RatingLevel

WIDTH, HEIGHT = 750, 1334
PAPER = (247, 250, 245)
INK = (33, 37, 41)
MUTED = (100, 110, 105)
BAR_BACK = (225, 233, 226)
RATING_COLOURS = {
    RatingLevel.DARK_GREEN: (22, 96, 52),
    RatingLevel.MEDIUM_GREEN: (56, 150, 86),
    RatingLevel.LIGHT_GREEN: (132, 196, 120),
    None: (120, 140, 128),
}
MAX_BARS = 5


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        from core.fonts import cjk_font

        return cjk_font(size)
    except (ImportError, OSError):
        return ImageFont.load_default(size=size)


def kilograms(carbon_mg: int) -> str:
    return f"{carbon_mg / 1_000_000:,.2f} kg"


def _rating_label(level: str | None) -> str:
    return {
        RatingLevel.DARK_GREEN: _("Dark green · carbon ambassador"),
        RatingLevel.MEDIUM_GREEN: _("Medium green"),
        RatingLevel.LIGHT_GREEN: _("Light green"),
    }.get(level, _("Not rated yet"))


def _fit(draw: ImageDraw.ImageDraw, text: str, size: int, width: int) -> ImageFont.ImageFont:
    """The largest font up to `size` (not below 26 px) in which the text fits the width."""
    while size > 26 and draw.textlength(text, font=_font(size)) > width:
        size -= 2
    return _font(size)


def report_card_png(*, report: CarbonReport, nickname: str) -> bytes:
    """Draws the card of one report in the active language."""
    level = report.rating["level"] if report.rating else None
    colour = RATING_COLOURS.get(level, RATING_COLOURS[None])
    image = Image.new("RGB", (WIDTH, HEIGHT), PAPER)
    draw = ImageDraw.Draw(image)
    margin = 48

    # Header in the rating colour.
    draw.rectangle((0, 0, WIDTH, 330), fill=colour)
    title = _("My carbon report · %(label)s") % {"label": report.label}
    draw.text((margin, 48), title, font=_fit(draw, title, 40, WIDTH - 2 * margin), fill="white")
    draw.text((margin, 110), nickname or _("A low-carbon citizen"), font=_font(30), fill="white")
    draw.text((margin, 168), kilograms(report.total_carbon_mg), font=_font(72), fill="white")
    draw.text((margin, 262), _rating_label(level), font=_font(30), fill="white")

    # Trend and comparisons.
    y = 370
    if report.change_percent is None:
        trend = _("First report period")
    else:
        sign = "+" if report.change_carbon_mg >= 0 else ""
        trend = _("%(change)s vs previous period") % {"change": f"{sign}{report.change_percent}%"}
    draw.text((margin, y), trend, font=_font(32), fill=INK)
    y += 56
    lines = []
    if report.city_average_carbon_mg is not None:
        lines.append(_("City average: %(kg)s") % {"kg": kilograms(report.city_average_carbon_mg)})
    if report.district_average_carbon_mg is not None:
        lines.append(_("District average: %(kg)s") % {"kg": kilograms(report.district_average_carbon_mg)})
    trees = report.equivalents["trees_yearly_absorption"]
    km = report.equivalents["car_km_avoided"]
    lines.append(_("= %(trees)s trees' yearly absorption") % {"trees": trees})
    lines.append(_("= %(km)s km not driven by car") % {"km": km})
    for line in lines:
        draw.text((margin, y), line, font=_fit(draw, line, 30, WIDTH - 2 * margin), fill=MUTED)
        y += 48

    # Bar chart of the behaviours.
    y += 24
    draw.text((margin, y), _("By behaviour"), font=_font(34), fill=INK)
    y += 64
    bars = report.behaviours[:MAX_BARS]
    largest = max((row["carbon_mg"] for row in bars), default=0)
    bar_width = WIDTH - 2 * margin
    for row in bars:
        draw.text((margin, y), row["name"], font=_font(28), fill=INK)
        value = kilograms(row["carbon_mg"])
        value_font = _font(28)
        draw.text(
            (WIDTH - margin - draw.textlength(value, font=value_font), y), value, font=value_font, fill=INK
        )
        y += 40
        draw.rounded_rectangle((margin, y, margin + bar_width, y + 24), radius=12, fill=BAR_BACK)
        filled = int(bar_width * row["carbon_mg"] / largest) if largest else 0
        if filled > 0:
            draw.rounded_rectangle((margin, y, margin + max(filled, 24), y + 24), radius=12, fill=colour)
        y += 52
    if not bars:
        draw.text((margin, y), _("No low-carbon activity in this period yet."), font=_font(28), fill=MUTED)

    # Footer: coins and badges.
    footer = _("Coins earned %(earned)s · spent %(spent)s · badges %(badges)s") % {
        "earned": report.coins["earned"],
        "spent": report.coins["spent"],
        "badges": report.badges_total,
    }
    draw.line((margin, HEIGHT - 130, WIDTH - margin, HEIGHT - 130), fill=BAR_BACK, width=2)
    draw.text((margin, HEIGHT - 110), footer, font=_fit(draw, footer, 28, WIDTH - 2 * margin), fill=MUTED)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
