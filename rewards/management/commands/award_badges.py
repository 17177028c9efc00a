"""`manage.py award_badges`: awards every active badge to whoever qualifies (never twice)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from rewards.gamification.badges import badges_award


class Command(BaseCommand):
    help = "Awards badges over the whole history; people who already have a badge keep the one award."

    def handle(self, *args, **options) -> None:
        for key, awarded in badges_award().items():
            self.stdout.write(f"{key}: {awarded} awarded")
