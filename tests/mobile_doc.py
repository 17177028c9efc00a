"""The request/response examples of docs/mobile-integration.md, recorded from the running API.

Each test that owns some of the document's examples records its exchanges with a `Recorder`,
replacing what changes from run to run (tokens, ids, codes, times) with placeholders, then calls
`examples_check`: the document must hold exactly the examples it owns, as recorded. To refresh the
document: `UPDATE_DOCS=1 make test` (or run the owning test file with UPDATE_DOCS=1).
"""

from __future__ import annotations

import datetime
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

from django.utils import timezone

DOC = Path(__file__).resolve().parents[1] / "docs" / "mobile-integration.md"
BLOCK = re.compile(r"<!-- example: (?P<name>[\w-]+) -->\n(?P<body>.*?)<!-- /example -->\n", re.DOTALL)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Days are shown as the same distance from this "today" as they were from the run's local today.
SHOWN_TODAY = datetime.date(2026, 11, 24)
DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
PLACEHOLDER_KEYS = {
    "session_token": "<session token>",
    "source_session_token": "<guest session token>",
    "id_token": "<the bank's ID token>",
}
# The invite code (8 characters) and the coupon's code (12, shown in groups of four).
INVITE_CODE = re.compile(r"[A-Z2-9]{8}")
COUPON_CODE = re.compile(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}")
# A coupon's signed token, as its QR code carries it: the coupon's id, a timestamp, a signature.
COUPON_TOKEN = re.compile(r"[0-9a-f]{32}:[0-9A-Za-z]+:[\w-]+")
# Response headers shown on every example that has them; `call(show=...)` adds others.
SHOWN_HEADERS = ("Retry-After", "Idempotent-Replayed")


def _normalize(value, key: str = ""):
    if key in PLACEHOLDER_KEYS and isinstance(value, str):
        return PLACEHOLDER_KEYS[key]
    if key == "id" and isinstance(value, int):
        return 1
    if key in ("code", "invite_code") and isinstance(value, str):
        if INVITE_CODE.fullmatch(value):
            return "K7Q2M9XA"
        if COUPON_CODE.fullmatch(value):
            return "7KQ2-M9XA-4HTW"
    if isinstance(value, dict):
        return {name: _normalize(item, name) for name, item in value.items()}
    if isinstance(value, list):
        return [_normalize(item, key) for item in value]
    if key == "retry_after_seconds" and isinstance(value, int):
        return 3600
    if isinstance(value, str) and DATE.fullmatch(value):
        return (SHOWN_TODAY + (datetime.date.fromisoformat(value) - timezone.localdate())).isoformat()
    if isinstance(value, str) and COUPON_TOKEN.fullmatch(value):
        return "<the QR code's token>"
    if isinstance(value, str):
        value = re.sub(r"\b([ug])-[0-9a-f]{24}\b", r"\1-5f2c8e1a9b7d4c3e6f0a1b2c", value)
        value = UUID.sub("3f6c1a2e-8d4b-4c1f-9a7e-2b5d8c9e0f1a", value)
        value = DATETIME.sub("2026-11-24T15:04:05.123456+08:00", value)
        value = re.sub(r"code=[A-Z2-9]{8}", "code=K7Q2M9XA", value)
        return value
    if key in {"at", "last_authenticated_at"} and isinstance(value, int | float):
        return 1795503845
    return value


class Recorder:
    def __init__(self) -> None:
        self.examples: dict[str, str] = {}

    def call(
        self,
        name: str,
        client,
        method: str,
        path: str,
        body=None,
        headers: dict | None = None,
        show: tuple[str, ...] = (),
    ):
        headers = headers or {}
        extra = {f"HTTP_{header.upper().replace('-', '_')}": value for header, value in headers.items()}
        response = (
            getattr(client, method)(path, body, format="json", **extra)
            if body is not None
            else getattr(client, method)(path, **extra)
        )
        lines = [f"{method.upper()} {_normalize(path)}"]
        if client._credentials.get("HTTP_X_SESSION_TOKEN"):
            lines.append("X-Session-Token: <session token>")
        lines += [f"{header}: {value}" for header, value in headers.items()]
        if body is not None:
            lines += [
                "Content-Type: application/json",
                "",
                json.dumps(_normalize(body), ensure_ascii=False, indent=2),
            ]
        answer = [f"HTTP {response.status_code}"]
        for header in (*SHOWN_HEADERS, *show):
            if response.get(header) is None:
                continue
            value = response[header]
            if header == "Retry-After":
                value = "3600" if int(value) > 60 else "60"
            answer.append(f"{header}: {value}")
        if response.content:
            answer += ["", json.dumps(_normalize(response.json()), ensure_ascii=False, indent=2)]
        self.examples[name] = (
            "```http\n" + "\n".join(lines) + "\n```\n\n```http\n" + "\n".join(answer) + "\n```\n"
        )
        return response


def is_redemption_example(name: str) -> bool:
    """The catalog, redemption and coupon examples (tests/merchants/test_mobile_integration_doc.py)."""
    return name.startswith("coins-")


def is_carbon_example(name: str) -> bool:
    """The steps, today's carbon and wallet examples (tests/rewards/test_mobile_integration_doc.py)."""
    return name.startswith("carbon-")


def is_together_example(name: str) -> bool:
    """The groups, inbox and subscription examples (tests/groups/test_mobile_integration_doc.py)."""
    return name.startswith("together-")


def is_sign_in_example(name: str) -> bool:
    """The sign-in and consent examples (tests/accounts/test_mobile_integration_doc.py): the rest."""
    return not (is_redemption_example(name) or is_carbon_example(name) or is_together_example(name))


def examples_check(recorder: Recorder, *, owns: Callable[[str], bool]) -> None:
    """The document's examples that `owns` names are exactly the recorded ones (UPDATE_DOCS writes them)."""
    text = DOC.read_text()
    if os.environ.get("UPDATE_DOCS"):
        text = BLOCK.sub(
            lambda match: (
                f"<!-- example: {match['name']} -->\n{recorder.examples[match['name']]}<!-- /example -->\n"
                if owns(match["name"]) and match["name"] in recorder.examples
                else match[0]
            ),
            text,
        )
        DOC.write_text(text)
    documented = {match["name"]: match["body"] for match in BLOCK.finditer(text) if owns(match["name"])}
    assert set(documented) == set(recorder.examples), "every recorded exchange has its place in the document"
    for name, example in recorder.examples.items():
        assert documented[name] == example, (
            f"docs/mobile-integration.md example {name!r} is stale: UPDATE_DOCS=1"
        )
