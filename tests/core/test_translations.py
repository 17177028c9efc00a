"""Every text the platform marks for translation has its Chinese: in the code (`_()`, `gettext`,
`pgettext` of a literal) and in the templates (`{% translate "…" %}`). The operators' admin, the
merchant console and the public pages are Chinese first; a text with no translation showed in English."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.utils import translation

APPS = ("accounts", "activities", "rewards", "merchants", "registry", "operations", "core", "config")
GETTEXT = {"_", "gettext", "gettext_lazy", "pgettext", "pgettext_lazy"}
TEMPLATE_TRANSLATE = re.compile(r'\{%\s*(?:translate|trans)\s+"([^"]+)"(?:\s+context\s+"([^"]+)")?')


def _code_texts(path: Path) -> Iterator[tuple[str | None, str]]:
    def literal(node: ast.expr) -> str | None:
        return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None

    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in GETTEXT):
            continue
        texts = [literal(argument) for argument in node.args[:2]]
        if node.func.id.startswith("pgettext"):
            if len(texts) == 2 and None not in texts:
                yield texts[0], texts[1]
        elif texts and texts[0] is not None:
            yield None, texts[0]


def marked_texts() -> Iterator[tuple[str, str | None, str]]:
    """(where, context, text) of every text marked for translation."""
    root = Path(settings.BASE_DIR)
    for app in APPS:
        for path in sorted((root / app).rglob("*")):
            where = str(path.relative_to(root))
            if "migrations" in path.parts:
                continue
            if path.suffix == ".py":
                for context, text in _code_texts(path):
                    yield where, context, text
            elif path.suffix == ".html":
                for text, context in TEMPLATE_TRANSLATE.findall(path.read_text()):
                    yield where, context or None, text


def test_every_text_marked_for_translation_has_its_chinese():
    texts = list(marked_texts())
    untranslated = set()
    with translation.override("zh-hans"):
        for where, context, text in texts:
            chinese = translation.pgettext(context, text) if context else translation.gettext(text)
            if chinese == text:
                untranslated.add(f"{where}: {text[:80]!r}")

    assert len(texts) > 500
    assert sorted(untranslated) == []
