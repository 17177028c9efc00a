"""Moving personal data to the current keys and suite (`manage.py rotate_keys`), online.

Each batch is a keyset page (`id > last id`, in id order) of the rows not yet under the current
key and suite, re-encrypted in Python and written back by one `UPDATE … FROM unnest(…)` that is its
own short transaction and changes a row only if it still holds what was read: a concurrent write
(a bank sign-in storing a new phone number, already under the current key) is never overwritten.
A run that stops is resumed by running it again: rows already moved are no longer selected.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection

from accounts import crypto, statements
from accounts.selectors import WECHAT_PROVIDER_ID, WECHAT_SESSION_KEY_FIELD

PERSONAL_FIELDS = ("phone_number", "id_number")


@dataclass
class Batch:
    """One batch's outcome: where the next one starts, and what happened to the rows it read."""

    last_id: int
    read: int = 0
    rewritten: int = 0
    changed_meanwhile: int = 0
    unreadable: int = 0


def personal_details_rekey_batch(*, after_id: int, limit: int) -> Batch:
    """Re-encrypts (and re-indexes) up to `limit` rows of verified details not yet on the current key."""
    cipher, digest = crypto.current_ciphertext_prefix(), crypto.current_digest_prefix()
    with connection.cursor() as cursor:
        cursor.execute(
            statements.DETAILS_STALE, {"after": after_id, "cipher": cipher, "digest": digest, "limit": limit}
        )
        rows = cursor.fetchall()
    batch = Batch(last_id=rows[-1][0] if rows else after_id, read=len(rows))
    columns: list[list] = [[] for _ in range(9)]
    for row_id, *old in rows:
        new = _details_rekeyed(row_id, old)
        if new is None:
            batch.unreadable += 1
            continue
        for column, value in zip(columns, [row_id, *old, *new], strict=True):
            column.append(value)
    if columns[0]:
        with connection.cursor() as cursor:
            cursor.execute(statements.DETAILS_REWRITE, columns)
            batch.rewritten = cursor.rowcount
        batch.changed_meanwhile = len(columns[0]) - batch.rewritten
    return batch


def _details_rekeyed(row_id: int, old: list[str]) -> list[str] | None:
    """[phone ciphertext, phone digest, id ciphertext, id digest] under the current key and suite."""
    new: list[str] = []
    for field, (ciphertext, _digest) in zip(PERSONAL_FIELDS, (old[0:2], old[2:4]), strict=True):
        if not ciphertext:
            new += ["", ""]
            continue
        context = crypto.personal_details_context(field, row_id)
        plaintext = crypto.decrypt(ciphertext, context=context)
        if plaintext is None:
            return None
        value = plaintext.decode()
        new += [crypto.encrypt(value, context=context), crypto.blind_index(value, purpose=field)]
    return new


def wechat_session_keys_rekey_batch(*, after_id: int, limit: int) -> Batch:
    """Re-encrypts up to `limit` stored WeChat session keys not yet on the current key."""
    with connection.cursor() as cursor:
        cursor.execute(
            statements.WECHAT_STALE,
            {
                "field": WECHAT_SESSION_KEY_FIELD,
                "after": after_id,
                "provider": WECHAT_PROVIDER_ID,
                "cipher": crypto.current_ciphertext_prefix(),
                "limit": limit,
            },
        )
        rows = cursor.fetchall()
    batch = Batch(last_id=rows[-1][0] if rows else after_id, read=len(rows))
    ids, olds, news = [], [], []
    for row_id, uid, ciphertext in rows:
        context = crypto.wechat_session_key_context(uid)
        plaintext = crypto.decrypt(ciphertext, context=context)
        if plaintext is None:
            batch.unreadable += 1
            continue
        ids.append(row_id)
        olds.append(ciphertext)
        news.append(crypto.encrypt(plaintext, context=context))
    if ids:
        with connection.cursor() as cursor:
            cursor.execute(
                statements.WECHAT_REWRITE,
                [WECHAT_SESSION_KEY_FIELD, ids, olds, news, WECHAT_SESSION_KEY_FIELD],
            )
            batch.rewritten = cursor.rowcount
        batch.changed_meanwhile = len(ids) - batch.rewritten
    return batch


def personal_data_left_on_old_keys() -> dict[str, int]:
    """Rows still under an older key or the other suite: an old key can go once these are 0
    (devices move only when seen again, see core/crypto/blind_index.py)."""
    cipher, digest = crypto.current_ciphertext_prefix(), crypto.current_digest_prefix()
    with connection.cursor() as cursor:
        cursor.execute(statements.DETAILS_LEFT, {"cipher": cipher, "digest": digest})
        details = cursor.fetchone()[0]
        cursor.execute(
            statements.WECHAT_LEFT,
            {"provider": WECHAT_PROVIDER_ID, "field": WECHAT_SESSION_KEY_FIELD, "cipher": cipher},
        )
        wechat = cursor.fetchone()[0]
        cursor.execute(statements.DEVICES_LEFT, {"digest": digest})
        devices = cursor.fetchone()[0]
    return {"verified personal details": details, "WeChat session keys": wechat, "guest devices": devices}
