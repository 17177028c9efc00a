"""What activities tells the per-person cache (`core.person_cache`) when it changes what people see.

- A person's captured carbon (their records, their daily and monthly counters, their daily carbon):
  `carbon_changed(user_ids=...)` on the paths that write them by statement or delete them (capture,
  review hand-overs, merge, erasure), `carbon_changed_for_everyone()` on a set-based path over many
  people (a bulk import, a night's settlement); saves of the models through signals (the admin,
  the ORM paths).
- The methodology (behaviours, versions, factors) that everyone's "today" is read with: any save
  or delete, through signals.
"""

from __future__ import annotations

from collections.abc import Iterable

from core.person_cache import renew, renew_everyone


def carbon_changed(*, user_ids: Iterable[int]) -> None:
    renew("carbon", user_ids)


def carbon_changed_for_everyone() -> None:
    renew_everyone("carbon")


def on_carbon_saved(sender, instance, **kwargs) -> None:
    carbon_changed(user_ids=[instance.user_id])


def on_methodology_saved(sender, instance, **kwargs) -> None:
    renew_everyone("methodology")


def signals_connect() -> None:
    from django.db.models.signals import post_delete, post_save

    from activities.models import (
        ActivityRecord,
        Behaviour,
        BehaviourDay,
        BehaviourMonth,
        DailyCarbon,
        Factor,
        MethodologyVersion,
    )

    # Saves only: a receiver of post_delete would make Django fetch every row a bulk delete removes;
    # the paths that delete (erasure, a merge) renew by themselves.
    for model in (ActivityRecord, BehaviourDay, BehaviourMonth, DailyCarbon):
        post_save.connect(on_carbon_saved, sender=model, dispatch_uid=f"person_cache.carbon.{model.__name__}")
    for model in (Behaviour, Factor, MethodologyVersion):
        for signal in (post_save, post_delete):
            signal.connect(
                on_methodology_saved, sender=model, dispatch_uid=f"person_cache.methodology.{model.__name__}"
            )
