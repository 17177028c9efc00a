"""`manage.py rotate_keys`: moves every sealed secret and personal field to the current key and suite.

Online: keyset-paginated batches, each one short transaction of conditional updates (a concurrent
write is never overwritten), so the site keeps running. Resumable: run it again and it carries on
with what is left. Afterwards it says what is still under an older key; when that is 0 for a
purpose, its old key can be removed from the setting.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from accounts import services as accounts_services
from activities import services as activities_services


class Command(BaseCommand):
    help = (
        "Re-encrypts partners' sealed secrets, verified phone and ID numbers (and their blind indexes) "
        "and WeChat session keys under the first key of each setting and the CRYPTO_SUITE in force, in "
        "short batches; reports what it did and what is left on older keys."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument("--check", action="store_true", help="Only report what is left on older keys.")

    def handle(self, *args, batch_size: int, check: bool, **options) -> None:
        if not check:
            started = time.monotonic()
            partners = activities_services.partner_secrets_rekey()
            self._report(
                "partner secrets",
                partners.rewritten,
                partners.changed_meanwhile,
                partners.unreadable,
                started,
            )
            for name, rekey in (
                ("verified personal details", accounts_services.personal_details_rekey_batch),
                ("WeChat session keys", accounts_services.wechat_session_keys_rekey_batch),
            ):
                self._run_batches(name, rekey, batch_size)
        left = {
            "partner secrets": activities_services.partner_secrets_left_on_old_keys(),
            **accounts_services.personal_data_left_on_old_keys(),
        }
        self.stdout.write(
            "left on older keys: " + ", ".join(f"{name} {count}" for name, count in left.items())
        )
        if left["guest devices"]:
            self.stdout.write(
                "guest devices move to the current blind index key when next seen (their ids are never "
                "stored): keep the old blind index key listed while they matter."
            )

    def _run_batches(self, name: str, rekey, batch_size: int) -> None:
        started = time.monotonic()
        after_id, rewritten, changed, unreadable, batches = 0, 0, 0, 0, 0
        while True:
            batch = rekey(after_id=after_id, limit=batch_size)
            if not batch.read:
                break
            batches += 1
            after_id = batch.last_id
            rewritten += batch.rewritten
            changed += batch.changed_meanwhile
            unreadable += batch.unreadable
            if batches % 50 == 0:
                self.stdout.write(f"  {name}: {rewritten:,} rewritten, up to id {after_id}")
        self._report(name, rewritten, changed, unreadable, started, batches=batches)

    def _report(
        self,
        name: str,
        rewritten: int,
        changed: int,
        unreadable: int,
        started: float,
        batches: int | None = None,
    ) -> None:
        seconds = time.monotonic() - started
        in_batches = f" in {batches} batch(es)" if batches is not None else ""
        self.stdout.write(
            f"{name}: {rewritten:,} rewritten{in_batches} in {seconds:.1f} s; {changed} changed meanwhile "
            f"(left as written); {unreadable} no listed key opens"
        )
