"""Masked forms of personal identifiers: the only form the API, logs and admin show."""

from __future__ import annotations


def mask_phone_number(value: str) -> str:
    """`13812345678` → `138****5678`; keeps the country code of an international number."""
    digits = value.strip()
    if len(digits) <= 7:
        return "*" * len(digits)
    return f"{digits[:-8] if len(digits) >= 11 else digits[:3]}****{digits[-4:]}"


def mask_id_number(value: str) -> str:
    """A resident ID number shows its first 3 and last 4 characters: `330***********123X`."""
    text = value.strip()
    if len(text) <= 7:
        return "*" * len(text)
    return f"{text[:3]}{'*' * (len(text) - 7)}{text[-4:]}"


def mask_identifier(value: str) -> str:
    """An openid or a bank's subject: enough to tell two apart, not enough to use."""
    text = value.strip()
    if len(text) <= 8:
        return "*" * len(text)
    return f"{text[:4]}…{text[-4:]}"
