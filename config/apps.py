from django.apps import AppConfig
from django.db.models.signals import post_migrate


class PlatformConfig(AppConfig):
    """Wiring shared by the four apps: the schedule, the demo data, the API plumbing.

    Registered as an app only so that its management commands and templates are found;
    it holds no business logic and no models.
    """

    name = "config"
    label = "platform"
    verbose_name = "Platform"

    def ready(self) -> None:
        from config.operators import operators_group_sync_after_migrate

        post_migrate.connect(operators_group_sync_after_migrate, dispatch_uid="platform.operators_group")
