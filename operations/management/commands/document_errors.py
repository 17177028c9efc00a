from django.core.management.base import BaseCommand

from core.api.error_docs import render_error_docs


class Command(BaseCommand):
    help = "Print docs/api-errors.md, generated from the error codes the apps declare."

    def handle(self, *args, **options) -> None:
        self.stdout.write(render_error_docs(), ending="")
