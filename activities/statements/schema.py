"""The JSON Schema of a carbon statement's claims (the JWS payload), shown as is in docs/interop.md.

Amounts are integer milligrams of CO2e (grams × 1000), so no platform rounds another's figures.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from activities.models import StandardCategory

# The JWS header's `typ` (RFC 8725 explicit typing): a statement is never mistaken for another JWT.
STATEMENT_TYPE = "carbon-statement+jwt"
ALGORITHM = "Ed25519"

# The format this platform issues. Format 1 (no `version` claim) lists no instances; both verify.
STATEMENT_VERSION = 2
MAX_INSTANCES = 5000

STATEMENT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "urn:carbon-account:statement:2",
    "title": "Carbon statement (claims of the JWS payload)",
    "type": "object",
    "required": ["iss", "sub", "aud", "iat", "exp", "jti", "period", "total_carbon_mg", "reductions"],
    "properties": {
        "iss": {"type": "string", "minLength": 1, "maxLength": 200, "description": "The issuing platform."},
        "sub": {
            "type": "string",
            "minLength": 1,
            "maxLength": 128,
            "description": "The person, pseudonymous and different for every audience.",
        },
        "aud": {"type": "string", "minLength": 1, "maxLength": 200, "description": "The receiving platform."},
        "iat": {"type": "integer", "minimum": 0, "description": "Issued at (Unix seconds)."},
        "exp": {"type": "integer", "minimum": 0, "description": "Expires at (Unix seconds)."},
        "jti": {"type": "string", "minLength": 1, "maxLength": 128, "description": "Unique per issuer."},
        "version": {
            "enum": [1, 2],
            "description": "The statement format: 2 lists instances; absent, the format is 1.",
        },
        "nonce": {
            "type": "string",
            "minLength": 1,
            "maxLength": 64,
            "description": "The receiving platform's one-time nonce, when it asked for one.",
        },
        "period": {
            "type": "object",
            "required": ["start", "end"],
            "properties": {
                "start": {"type": "string", "format": "date"},
                "end": {"type": "string", "format": "date"},
            },
            "additionalProperties": False,
            "description": "The calendar month covered, first and last day (local days of the issuer).",
        },
        "total_carbon_mg": {"type": "integer", "minimum": 0, "description": "The sum of the reductions."},
        "reductions": {
            "type": "array",
            "maxItems": 100,
            "items": {
                "type": "object",
                "required": ["behaviour", "carbon_mg", "methodology_versions", "standard"],
                "properties": {
                    "behaviour": {"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"},
                    "name": {"type": "string", "maxLength": 100},
                    "name_en": {"type": "string", "maxLength": 100},
                    "unit": {"type": "string", "maxLength": 16},
                    "quantity": {"type": "string", "pattern": "^[0-9]{1,15}(\\.[0-9]{1,3})?$"},
                    "carbon_mg": {"type": "integer", "minimum": 1, "maximum": 1_000_000_000_000},
                    "methodology_versions": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": "integer", "minimum": 1},
                    },
                    "instances": {
                        "type": "array",
                        "maxItems": MAX_INSTANCES,
                        "description": "Format 2: the instances behind the carbon, under pairwise keys.",
                        "items": {
                            "type": "object",
                            "required": ["key", "carbon_mg"],
                            "properties": {
                                "key": {"type": "string", "pattern": "^[A-Za-z0-9_-]{22}$"},
                                "carbon_mg": {"type": "integer", "minimum": 1, "maximum": 1_000_000_000_000},
                            },
                            "additionalProperties": False,
                        },
                    },
                    "standard": {
                        "type": ["object", "null"],
                        "required": ["id", "category"],
                        "properties": {
                            "id": {"type": "string", "minLength": 1, "maxLength": 40},
                            "category": {"enum": [choice.value for choice in StandardCategory]},
                            "behaviour": {"type": "string", "maxLength": 64},
                        },
                    },
                },
            },
        },
    },
}

_VALIDATOR = Draft202012Validator(STATEMENT_SCHEMA, format_checker=FormatChecker())


def schema_errors(claims: Any) -> dict[str, list[str]]:
    """Where `claims` breaks the schema: JSON path → messages (empty when it follows it)."""
    problems: dict[str, list[str]] = {}
    for error in sorted(_VALIDATOR.iter_errors(claims), key=lambda error: list(error.absolute_path)):
        path = "/".join(str(part) for part in error.absolute_path) or "claims"
        problems.setdefault(path, []).append(error.message[:200])
    return problems
