from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RewardsConfig(AppConfig):
    name = "rewards"
    verbose_name = _("Rewards")

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from rewards.models import CoinRate
        from rewards.selectors import on_coin_rate_saved

        for signal in (post_save, post_delete):
            signal.connect(on_coin_rate_saved, sender=CoinRate, dispatch_uid="person_cache.coin_rate")
