"""Screenshots for the README, taken by the browser tests when DOCS_SCREENSHOTS=1.

    DOCS_SCREENSHOTS=1 .venv/bin/python tests/services.py -m browser \
        tests/config tests/operations tests/merchants

Chromium on a bare server has no Chinese fonts; the Noto Sans CJK face that the platform already
ships as a Python package (see core/fonts.py) is handed to it through fontconfig, before the
session's browser starts. Ordinary test runs change nothing here and write no files to docs/.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

DOCS_IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"
ENABLED = bool(os.environ.get("DOCS_SCREENSHOTS"))


def _chinese_fonts_for_chromium() -> None:
    from noto_cjk_sans_otc import FONT_PATH

    config = Path(tempfile.mkdtemp(prefix="docs-fonts-")) / "fonts.conf"
    config.write_text(
        '<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig>'
        '<include ignore_missing="yes">/etc/fonts/fonts.conf</include>'
        f"<dir>{Path(FONT_PATH).parent}</dir></fontconfig>"
    )
    os.environ.setdefault("FONTCONFIG_FILE", str(config))


if ENABLED:
    _chinese_fonts_for_chromium()


def save(page, name: str) -> None:
    """Saves the page as docs/images/<name>.png when screenshots for the docs were asked for."""
    if ENABLED:
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_IMAGES / f"{name}.png"), full_page=True)
