from pathlib import Path

from django.conf import settings

from core.api.error_docs import render_error_docs
from core.api.errors import REGISTRY


def test_docs_api_errors_lists_every_declared_code():
    """Regenerate with `make errors` when this fails."""
    documented = (Path(settings.BASE_DIR) / "docs" / "api-errors.md").read_text()
    assert documented == render_error_docs()


def test_every_code_has_a_message_a_status_and_a_description():
    render_error_docs()  # loads every app's errors module
    for code in REGISTRY.values():
        assert 400 <= code.status <= 599, code
        assert str(code.message), code
        assert code.description, code
        assert code.code == code.code.lower(), code
        assert " " not in code.code, code


def test_every_error_message_has_a_chinese_translation():
    from django.utils import translation

    render_error_docs()
    untranslated = []
    for code in REGISTRY.values():
        with translation.override("en"):
            english = str(code.message)
        with translation.override("zh-hans"):
            chinese = str(code.message)
        if chinese == english:
            untranslated.append(code.code)
    assert untranslated == []
