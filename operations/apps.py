from django.apps import AppConfig
from django.db.models.signals import post_migrate


class OperationsConfig(AppConfig):
    """The platform as operators run it, above every app: the admin dashboard, the night's jobs and
    their schedule, the cross-app invariants, the operators group and the management commands that
    span the apps (demo data, keys, the error catalogue).

    It has no models and no API; the apps never import it.
    """

    name = "operations"
    verbose_name = "Operations"

    def ready(self) -> None:
        from operations.operators import operators_group_sync_after_migrate

        post_migrate.connect(operators_group_sync_after_migrate, dispatch_uid="operations.operators_group")
