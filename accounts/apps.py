from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts")

    def ready(self) -> None:
        from allauth.socialaccount.signals import social_account_added

        from accounts.adapters import on_social_account_added

        social_account_added.connect(on_social_account_added, dispatch_uid="accounts.identity_linked")
