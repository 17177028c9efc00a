from django.core.management.base import BaseCommand

from operations.schedule import schedule_sync


class Command(BaseCommand):
    help = "Copy the periodic jobs declared in code into the beat scheduler's tables (keeps pauses)."

    def handle(self, *args, **options) -> None:
        result = schedule_sync()
        self.stdout.write(
            f"schedule: {len(result.created)} created, {len(result.updated)} updated, "
            f"{len(result.disabled)} disabled"
        )
