from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts")

    def ready(self) -> None:
        from allauth.socialaccount.signals import social_account_added
        from django.db.models.signals import post_delete, post_save

        from accounts.adapters import on_social_account_added
        from accounts.models import User
        from accounts.sessions import on_user_saved

        post_save.connect(on_user_saved, sender=User, dispatch_uid="accounts.user_cache_renewed")
        post_delete.connect(on_user_saved, sender=User, dispatch_uid="accounts.user_cache_retired")

        social_account_added.connect(on_social_account_added, dispatch_uid="accounts.identity_linked")
