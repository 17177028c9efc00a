from django.apps import AppConfig


class PlatformConfig(AppConfig):
    """Wiring shared by the four apps: the schedule, the demo data, the API plumbing.

    Registered as an app only so that its management commands and templates are found;
    it holds no business logic and no models.
    """

    name = "config"
    label = "platform"
    verbose_name = "Platform"
