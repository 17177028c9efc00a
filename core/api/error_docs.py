"""Renders docs/api-errors.md from the registry of error codes, so the list cannot drift."""

from __future__ import annotations

from importlib import import_module

from django.apps import apps
from django.utils import translation

from core.api.errors import REGISTRY

GROUP_TITLES = {
    "general": "General (any endpoint)",
    "accounts": "Accounts, sign-in and consent",
    "activities": "Activity capture and partner feeds",
    "rewards": "Wallet, settlement and donations",
    "merchants": "Offers, redemption and verification",
    "statements": "Signed carbon statements (docs/interop.md)",
    "registry": "Reduction registry (lots, proofs, operators' steps)",
}

HEADER = """# API errors

Every error the API returns, 4xx or 5xx, has the same shape:

```json
{"error": {"code": "step_count_decreased", "message": "…", "fields": {}}}
```

- `code` is stable: clients branch on it. It never changes meaning; new codes may be added.
- `message` is for people, in the request's language (`Accept-Language: zh-Hans` or `en`).
- `fields` carries details: per-field validation messages, `retry_after_seconds`, `request_id`.
- Every response carries an `X-Request-ID` header; quote it when reporting a problem.

This page is generated from the codes declared in the apps (`make errors`); a test fails when
it is out of date.
"""


def load_all_error_modules() -> None:
    for app_config in apps.get_app_configs():
        try:
            import_module(f"{app_config.name}.errors")
        except ModuleNotFoundError as error:
            if error.name != f"{app_config.name}.errors":
                raise


def render_error_docs() -> str:
    load_all_error_modules()
    lines = [HEADER]
    groups = list(GROUP_TITLES) + sorted({code.group for code in REGISTRY.values()} - set(GROUP_TITLES))
    with translation.override("en"):
        for group in groups:
            codes = sorted(
                (c for c in REGISTRY.values() if c.group == group), key=lambda c: (c.status, c.code)
            )
            if not codes:
                continue
            lines.append(f"\n## {GROUP_TITLES.get(group, group.title())}\n")
            lines.append("| code | status | message (en) | when |")
            lines.append("|---|---|---|---|")
            for code in codes:
                description = code.description.replace("|", "\\|")
                lines.append(f"| `{code.code}` | {code.status} | {code.message} | {description} |")
    return "\n".join(lines) + "\n"
